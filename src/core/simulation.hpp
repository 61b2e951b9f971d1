// What-if (CONTRACT §22): an outcome's real event log replayed under draft terms (a condition, a
// settlement period, an attribution method, a price), with the live path's own state machine
// and timer, lateness decided by each event's received_at, and settlement as of `now`.
#pragma once
#include "pure.hpp"

#include "attribution.hpp"
#include "condition.hpp"
#include "decimal.hpp"
#include "event.hpp"
#include "outcome.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace witn {

// The terms to try; nullopt keeps the outcome's own snapshot.
struct DraftTerms {
    std::optional<Condition> condition;
    std::optional<std::int64_t> settlement_period;
    std::optional<AttributionMethod> attribution_method;
    std::optional<Decimal> price_per_unit;
};

// Checks the draft's settlement period (more than 0, at most 180 days) and price (0 or more, a
// number), as an agent's and a rate card price's writes would. Throws VALIDATION_ERROR naming
// settlement_period or price_per_unit.
void validate_draft(const DraftTerms &draft);

// The contract an outcome would have been opened under with the draft's terms.
Contract draft_contract(const Contract &snapshot, const DraftTerms &draft);

struct Simulated {
    Status status = Status::Open;
    std::optional<Decimal> amount; // CONFIRMED: unit_price x quantity, as its invoice line would be
    std::int64_t settles_at = 0;
    std::int64_t accepted_events = 0, late_events = 0;
};

// Replays `log` (every event of the outcome's key but duplicates, in arrival order, each with
// its received_at) as the events trigger and settlement would have handled it under
// `contract`: an event received once the outcome was due is late; an outcome due by an event's
// arrival is settled first (as of its settles_at, so that a reversal window can take the
// event); at the end it is settled as of `now`, or left OPEN / PENDING when not due by then.
Simulated simulate_outcome(const Contract &contract, const Decimal &unit_price, const std::vector<Event> &log,
                           std::int64_t now);

} // namespace witn
