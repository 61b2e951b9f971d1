// The outcome state machine (CONTRACT §8–11): folding one event into an outcome, the timer, late
// events and settlement.
#pragma once
#include "pure.hpp"

#include "attribution.hpp"
#include "condition.hpp"
#include "event.hpp"
#include "facts.hpp"
#include "scalar.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace witn {

enum class Status { Open, Pending, Confirmed, Failed };
const char *status_name(Status s) noexcept; // "OPEN", ...
std::optional<Status> status_from_name(std::string_view name);

// The agent contract an outcome was opened under (snapshotted, CONTRACT §2).
struct Contract {
    Condition condition;
    std::int64_t settlement_period = 72 * kMicrosPerHour;
    AttributionMethod attribution_method = AttributionMethod::Last;
};

// Rejects what no outcome may accept: a negative attribution, a settles_at before the event or
// more than 180 days after it. Throws Error(ValidationError) naming the path under
// `properties_path` ("properties", or "[3].properties" for an element of an events array).
void validate_event(const Event &event, const std::string &properties_path = "properties");

struct OutcomeState {
    Status status = Status::Open;
    std::optional<Status> scheduled_resolution;
    std::int64_t settles_at = 0;   // meaningful once accepted_events > 0
    std::int64_t accepted_events = 0;
    Facts facts;
    Attribution attribution;
    bool condition_holds = false;

    // A new outcome: OPEN, no facts, settles_at not yet set (the first event sets it).
    static OutcomeState open(const Contract &contract);
};

enum class Applied { Accepted, Late };

// Folds one event into the outcome at arrival time `now`. Late (the outcome is resolved, or
// already due: settles_at <= now) leaves the state untouched.
Applied apply_event(OutcomeState &state, const Contract &contract, const Event &event,
                    std::int64_t now);

// Settlement at `as_of`: nullopt when not due (or already resolved), else the final status.
std::optional<Status> settle(const OutcomeState &state, std::int64_t as_of);

} // namespace witn
