// The fold of one outcome's events in one statement (CONTRACT §1, §8–§12): which event opens a
// new outcome, the agent rule, duplicates, late events, and the replay in arrival order when a
// concurrent transaction applied later ids first. The write path streams a statement's events
// to it outcome by outcome, in id order; nothing here grows with the number of events.
#pragma once
#include "pure.hpp"

#include "outcome.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace witn {

// One event of the statement as the write path hands it over.
struct StatementEvent {
    Event event;                          // event.seq is its id (arrival order)
    std::optional<std::string> agent_key; // as the event named it
    bool duplicate = false;               // a retried idempotency key: recorded, not applied
};

// An outcome as its row stores it.
struct StoredOutcome {
    std::string agent_key;
    Contract contract;
    OutcomeState state; // condition_holds as stored
    std::int64_t late_events = 0;
    std::int64_t last_event_id = 0; // highest id applied so far; 0 for none
};

// What happened to one event of the statement.
// InReversalWindow: accepted by a confirmed outcome in its reversal window (CONTRACT §20).
enum class Disposition { Accepted, Late, Duplicate, InReversalWindow };

// The outcome's accepted events already in the log, in id order, read only when a replay is
// needed. It may also yield this statement's own events (skipped: they come from the statement).
class History {
public:
    virtual ~History() = default;
    // The next event, or nullptr at the end; valid until the next call.
    virtual const Event *next() = 0;
};

class StatementFold {
public:
    // The contract a new outcome opens under, for the opening event's agent (it throws
    // CUSTOMER_NOT_FOUND, AGENT_NOT_FOUND or PRICE_NOT_FOUND as the lookup finds).
    using OpenTerms = std::function<Contract(const std::string &agent_key)>;

    // `stored`: the outcome's row, or nullopt when this statement opens it. `now` is the
    // arrival time: an event is late when the outcome is resolved or settles_at <= now.
    // customer_key and key name the outcome in errors.
    StatementFold(std::string customer_key, std::string key, std::optional<StoredOutcome> stored,
                  std::int64_t now, OpenTerms open_terms, History &history);

    // The statement's next event for this outcome (ids ascending). Throws AGENT_MISMATCH for an
    // event naming another agent, VALIDATION_ERROR when the opening event names no agent.
    Disposition add(const StatementEvent &e);

    // After the last event (there is at least one): completes the replay if one started, and
    // opens the outcome if only duplicates arrived for it. Call once.
    void finish();

    bool opens() const { return !existed_; }
    const std::string &agent_key() const { return outcome_.agent_key; }
    const Contract &contract() const { return outcome_.contract; }
    const OutcomeState &state() const { return outcome_.state; }
    std::int64_t late_events() const { return outcome_.late_events; }
    // The highest id applied, stored ones included; 0 for none.
    std::int64_t last_event_id() const { return outcome_.last_event_id; }
    Decimal quantity() const { return outcome_.state.attribution.quantity(outcome_.contract.attribution_method); }
    // Whether the stored history was replayed in id order (for tests and diagnostics).
    bool replayed() const { return replaying_; }
    // Whether this statement's events made the reversal condition of a confirmed outcome that
    // was not reversed hold (CONTRACT §20): the caller reverses it in the same transaction.
    bool reverses() const { return reverses_; }

private:
    void open(const std::string &agent_key);
    // AGENT_MISMATCH unless `agent` is absent or the outcome's.
    void check_agent(const std::optional<std::string> &agent) const;
    void apply(const Event &e);
    // Applies the history's events with ids below `seq` (all of them for nullopt), skipping one
    // equal to `seq` (the statement's own event).
    void replay_until(std::optional<std::int64_t> seq);

    std::string customer_key_, key_;
    StoredOutcome outcome_;
    bool existed_ = false, opened_ = false, replaying_ = false, reverses_ = false;
    std::int64_t now_;
    OpenTerms open_terms_;
    History &history_;
    const Event *pending_history_ = nullptr;
    bool history_done_ = false;
    // Duplicates that came before the opening event: checked against its agent once known.
    std::vector<std::optional<std::string>> early_duplicate_agents_;
};

} // namespace witn
