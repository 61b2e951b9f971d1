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

OutcomeState OutcomeState::open(const Contract &contract) {
    OutcomeState s;
    s.facts = Facts(contract.condition);
    return s;
}

Applied apply_event(OutcomeState &state, const Contract &contract, const Event &event,
                    std::int64_t now) {
    bool resolved = state.status == Status::Confirmed || state.status == Status::Failed;
    if (resolved || (state.accepted_events > 0 && state.settles_at <= now)) return Applied::Late;

    state.facts.fold(event.action, event.value, event.occurred_at, event.seq);
    if (event.attribution) state.attribution.fold(*event.attribution, event.occurred_at, event.seq);
    state.condition_holds = evaluate(contract.condition, state.facts);
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

} // namespace witn
