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
#include <vector>

namespace witn {

enum class Status { Open, Pending, Confirmed, Failed };
const char *status_name(Status s) noexcept; // "OPEN", ...
std::optional<Status> status_from_name(std::string_view name);

// An agent's reversal policy (CONTRACT §20): an event for a confirmed outcome that arrives within
// `period` after its resolved_at is accepted, and once `condition` holds over all accepted
// events the outcome is reversed (credited in full).
struct ReversalPolicy {
    Condition condition;
    std::int64_t period = 0; // > 0, at most kMaxSettlementPeriod

    // Whether `now` lies in the window that opens at `start`: start <= now < start + period.
    bool window_open(std::int64_t start, std::int64_t now) const;
};

// The agent contract an outcome was opened under (snapshotted, CONTRACT §2, §20).
struct Contract {
    Condition condition;
    std::int64_t settlement_period = 72 * kMicrosPerHour;
    AttributionMethod attribution_method = AttributionMethod::Last;
    std::optional<ReversalPolicy> reversal;

    // What an outcome keeps of its events: the facts both conditions mention.
    Facts tracked_facts() const;
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
    // Set once settled (CONFIRMED or FAILED).
    std::optional<std::int64_t> resolved_at;
    // A confirmed outcome that was reversed (witn.outcomes.reversed_at is set).
    bool reversed = false;
    // After the latest event accepted in the reversal window: whether the reversal condition
    // holds over all accepted events (not stored; false until such an event).
    bool reversal_holds = false;

    // A new outcome: OPEN, no facts, settles_at not yet set (the first event sets it).
    static OutcomeState open(const Contract &contract);
};

enum class Applied { Accepted, Late };

// Whether an event arriving at `now` for this (confirmed) outcome falls in its reversal window:
// resolved_at <= now < resolved_at + reversal period.
bool in_reversal_window(const OutcomeState &state, const Contract &contract, std::int64_t now);

// Folds one event into the outcome at arrival time `now`. Late (the outcome is resolved, or
// already due: settles_at <= now) leaves the state untouched; except that a confirmed outcome
// accepts events in its reversal window: they update its facts and condition_holds and set
// reversal_holds, never its status, timer or billed quantity (their attribution is ignored).
Applied apply_event(OutcomeState &state, const Contract &contract, const Event &event,
                    std::int64_t now);

// Settlement at `as_of`: nullopt when not due (or already resolved), else the final status.
std::optional<Status> settle(const OutcomeState &state, std::int64_t as_of);

// An outcome recomputed from its accepted events (witn.replay): the events accepted before its
// resolution decide it; those accepted in a confirmed outcome's reversal window (marked
// after_resolution) are folded in afterwards, each as of its received_at.
struct Replay {
    OutcomeState state;                    // after every accepted event
    std::optional<Status> resolution;      // settlement at resolved_at of the events before it
    bool reversal_held = false;            // the reversal condition held after an event in the window
};
Replay replay_log(const Contract &contract, const std::vector<Event> &log,
                  std::optional<std::int64_t> resolved_at);

} // namespace witn
