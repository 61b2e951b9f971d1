#include "simulation.hpp"

#include "error.hpp"
#include "settlement.hpp"

namespace witn {

void validate_draft(const DraftTerms &draft) {
    if (draft.settlement_period && (*draft.settlement_period <= 0 || *draft.settlement_period > kMaxSettlementPeriod))
        fail_validation("settlement_period", "more than 0 and at most 180 days",
                        "Give the window as an interval, e.g. '72 hours', or NULL for each outcome's own.");
    if (draft.price_per_unit && draft.price_per_unit->is_negative())
        fail_validation("price_per_unit", "0 or more", "Give the price per unit to try, or NULL for each outcome's own.");
}

Contract draft_contract(const Contract &snapshot, const DraftTerms &draft) {
    Contract c = snapshot;
    if (draft.condition) c.condition = *draft.condition;
    if (draft.settlement_period) c.settlement_period = *draft.settlement_period;
    if (draft.attribution_method) c.attribution_method = *draft.attribution_method;
    return c;
}

namespace {

void resolve(OutcomeState &state, Status resolution) {
    state.status = resolution;
    state.resolved_at = state.settles_at;
}

} // namespace

Simulated simulate_outcome(const Contract &contract, const Decimal &unit_price, const std::vector<Event> &log,
                           std::int64_t now) {
    OutcomeState state = OutcomeState::open(contract);
    Simulated out;
    for (const Event &e : log) {
        // Settlement would have run by then: the outcome was resolved as of its settles_at.
        if (const std::optional<Status> due = settle(state, e.received_at)) resolve(state, *due);
        if (apply_event(state, contract, e, e.received_at) == Applied::Accepted) ++out.accepted_events;
        else ++out.late_events;
    }
    if (const std::optional<Status> due = settle(state, now)) resolve(state, *due);
    out.status = state.status;
    out.settles_at = state.settles_at;
    if (state.status == Status::Confirmed) out.amount = line_amount(unit_price, state.attribution.quantity(contract.attribution_method));
    return out;
}

} // namespace witn
