// The settlement decision for one outcome (CONTRACT §10, §13–§15): leave it, look again later,
// or resolve it, and then what it bills and which notification it sends.
#pragma once
#include "pure.hpp"

#include "decimal.hpp"
#include "outcome.hpp"

#include <cstdint>
#include <optional>

namespace witn {

// What settlement reads from a locked outcome row.
struct DueOutcome {
    Status status = Status::Open;
    std::optional<Status> scheduled_resolution;
    std::int64_t settles_at = 0;
    std::int64_t check_at = 0;
    bool resolved = false; // resolved_at is set
    Decimal quantity, unit_price;
};

struct SettlementDecision {
    enum class Action {
        Skip,    // resolved already, or check_at is after as_of (the index entry was stale)
        Rearm,   // later events moved settles_at past as_of: check_at becomes settles_at
        Resolve, // status becomes `resolution`, resolved_at = settles_at
    };
    Action action = Action::Skip;
    std::int64_t check_at = 0;                  // Rearm
    Status resolution = Status::Failed;         // Resolve
    std::optional<Decimal> amount;              // Resolve and CONFIRMED: the invoice line's amount
    const char *notification_kind = nullptr;    // Resolve: "outcome_succeed" | "outcome_failed"
};

// What an unresolved outcome becomes once due: OPEN -> FAILED (missed), PENDING -> its
// scheduled resolution.
Status resolution_of(Status status, std::optional<Status> scheduled_resolution);

// The notification kind of a resolution.
const char *notification_kind(Status resolution);

// amount = unit_price x quantity, exact (rounding happens once, where lines are summed).
Decimal line_amount(const Decimal &unit_price, const Decimal &quantity);

SettlementDecision decide_settlement(const DueOutcome &o, std::int64_t as_of);

// An event arriving at `now` for an outcome that is due but not settled yet, which settlement
// will confirm, and whose agent has a reversal policy whose window (from settles_at, which
// becomes resolved_at) is open at `now`: the write path settles the outcome first, as of its
// settles_at, so that the event is taken in the reversal window (CONTRACT §11, §20) instead of
// being late.
bool settles_before_event(const OutcomeState &state, const Contract &contract, std::int64_t now);

} // namespace witn
