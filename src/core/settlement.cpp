#include "settlement.hpp"

namespace witn {

Status resolution_of(Status status, std::optional<Status> scheduled_resolution) {
    if (status == Status::Open) return Status::Failed;
    return scheduled_resolution.value_or(Status::Confirmed);
}

const char *notification_kind(Status resolution) {
    return resolution == Status::Confirmed ? "outcome_succeed" : "outcome_failed";
}

Decimal line_amount(const Decimal &unit_price, const Decimal &quantity) { return unit_price * quantity; }

SettlementDecision decide_settlement(const DueOutcome &o, std::int64_t as_of) {
    SettlementDecision d;
    const bool final_status = o.status == Status::Confirmed || o.status == Status::Failed;
    if (o.resolved || final_status || o.check_at > as_of) return d;
    if (o.settles_at > as_of) {
        d.action = SettlementDecision::Action::Rearm;
        d.check_at = o.settles_at;
        return d;
    }
    d.action = SettlementDecision::Action::Resolve;
    d.resolution = resolution_of(o.status, o.scheduled_resolution);
    d.notification_kind = notification_kind(d.resolution);
    if (d.resolution == Status::Confirmed) d.amount = line_amount(o.unit_price, o.quantity);
    return d;
}

bool settles_before_event(const OutcomeState &state, const Contract &contract, std::int64_t now) {
    if (state.status != Status::Open && state.status != Status::Pending) return false;
    if (state.accepted_events == 0 || !contract.reversal) return false;
    return resolution_of(state.status, state.scheduled_resolution) == Status::Confirmed &&
           contract.reversal->window_open(state.settles_at, now);
}

} // namespace witn
