#include "outcome.hpp"

#include "error.hpp"
#include "evaluator.hpp"
#include "settlement.hpp"

#include <algorithm>
#include <limits>

namespace witn {

const char *status_name(Status s) noexcept {
    switch (s) {
    case Status::Open: return "OPEN";
    case Status::Pending: return "PENDING";
    case Status::Confirmed: return "CONFIRMED";
    case Status::Failed: return "FAILED";
    }
    return "OPEN";
}

std::optional<Status> status_from_name(std::string_view name) {
    for (Status s : {Status::Open, Status::Pending, Status::Confirmed, Status::Failed})
        if (name == status_name(s)) return s;
    return std::nullopt;
}

void validate_event(const Event &event, const std::string &properties_path) {
    if (event.attribution && event.attribution->is_negative())
        fail_validation(properties_path + ".attribution", "a non-negative number (the billing quantity)",
                        "Send the quantity to bill as a JSON number >= 0, or leave attribution out.");
    if (event.settles_at) {
        if (*event.settles_at < event.occurred_at)
            fail_validation(properties_path + ".settles_at", "an ISO timestamp not before occurred_at",
                            "Set settles_at between occurred_at and 180 days after it, or leave it out.");
        // Unsigned: the difference of two far-apart timestamps overflows int64.
        if (static_cast<std::uint64_t>(*event.settles_at) - static_cast<std::uint64_t>(event.occurred_at) >
            static_cast<std::uint64_t>(kMaxSettlementPeriod))
            fail_validation(properties_path + ".settles_at",
                            "an ISO timestamp at most 180 days after occurred_at",
                            "Set settles_at between occurred_at and 180 days after it, or leave it out.");
    }
}

Facts Contract::tracked_facts() const {
    return reversal ? Facts(condition, reversal->condition) : Facts(condition);
}

OutcomeState OutcomeState::open(const Contract &contract) {
    OutcomeState s;
    s.facts = contract.tracked_facts();
    return s;
}

bool ReversalPolicy::window_open(std::int64_t start, std::int64_t now) const {
    // Unsigned: the difference of two far-apart timestamps overflows int64.
    return now >= start && static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(start) <
                               static_cast<std::uint64_t>(period);
}

bool in_reversal_window(const OutcomeState &state, const Contract &contract, std::int64_t now) {
    return state.status == Status::Confirmed && contract.reversal && state.resolved_at &&
           contract.reversal->window_open(*state.resolved_at, now);
}

namespace {
// An accepted event's facts, and whether the billable condition holds after it.
void fold_facts(OutcomeState &state, const Contract &contract, const Event &event) {
    state.facts.fold(event.action, event.value, event.occurred_at, event.seq);
    state.condition_holds = evaluate(contract.condition, state.facts);
}
} // namespace

Applied apply_event(OutcomeState &state, const Contract &contract, const Event &event,
                    std::int64_t now) {
    if (state.status == Status::Confirmed) {
        if (!in_reversal_window(state, contract, now)) return Applied::Late;
        // The reversal window (CONTRACT §20): the invoice line is written and the status stays,
        // and so does the billed quantity (an attribution here is not folded); the facts follow,
        // and the reversal condition is checked over all accepted events.
        fold_facts(state, contract, event);
        state.reversal_holds = evaluate(contract.reversal->condition, state.facts);
        ++state.accepted_events;
        return Applied::Accepted;
    }
    if (state.status == Status::Failed || (state.accepted_events > 0 && state.settles_at <= now)) return Applied::Late;

    fold_facts(state, contract, event);
    if (event.attribution) state.attribution.fold(*event.attribution, event.occurred_at, event.seq);
    if (state.status == Status::Open) {
        if (state.condition_holds) {
            state.status = Status::Pending;
            state.scheduled_resolution = Status::Confirmed;
        }
    } else {
        state.scheduled_resolution = state.condition_holds ? Status::Confirmed : Status::Failed;
    }
    // The timer only ever moves later: a back-dated event cannot shorten the window.
    std::int64_t proposed = 0;
    if (event.settles_at) proposed = *event.settles_at;
    else if (__builtin_add_overflow(event.occurred_at, contract.settlement_period, &proposed))
        proposed = std::numeric_limits<std::int64_t>::max(); // beyond any timestamp: saturate
    state.settles_at = state.accepted_events == 0 ? proposed : std::max(state.settles_at, proposed);
    ++state.accepted_events;
    return Applied::Accepted;
}

std::optional<Status> settle(const OutcomeState &state, std::int64_t as_of) {
    if (state.status == Status::Confirmed || state.status == Status::Failed) return std::nullopt;
    if (state.accepted_events == 0 || state.settles_at > as_of) return std::nullopt;
    return resolution_of(state.status, state.scheduled_resolution);
}

Replay replay_log(const Contract &contract, const std::vector<Event> &log, std::optional<std::int64_t> resolved_at) {
    Replay r;
    r.state = OutcomeState::open(contract);
    std::vector<const Event *> after;
    // The events accepted in the reversal window are marked so (witn.events.after_resolution).
    for (const Event &e : log) {
        if (resolved_at && e.after_resolution) after.push_back(&e);
        else apply_event(r.state, contract, e, std::numeric_limits<std::int64_t>::min());
    }
    if (!resolved_at) return r;
    r.resolution = settle(r.state, *resolved_at);
    if (r.resolution) r.state.status = *r.resolution;
    r.state.resolved_at = resolved_at;
    for (const Event *e : after) {
        // One the window does not take (it was accepted, so the stored outcome disagrees with
        // its contract) is left out, and replay reports the difference.
        if (apply_event(r.state, contract, *e, e->received_at) == Applied::Accepted && r.state.reversal_holds)
            r.reversal_held = true;
    }
    return r;
}

} // namespace witn
