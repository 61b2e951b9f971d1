#include "statement_fold.hpp"

#include "error.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace witn {

StatementFold::StatementFold(std::string customer_key, std::string key,
                             std::optional<StoredOutcome> stored, std::int64_t now,
                             OpenTerms open_terms, History &history)
    : customer_key_(std::move(customer_key)), key_(std::move(key)), now_(now),
      open_terms_(std::move(open_terms)), history_(history) {
    if (stored) {
        outcome_ = std::move(*stored);
        existed_ = opened_ = true;
    }
}

void StatementFold::check_agent(const std::optional<std::string> &agent) const {
    if (agent && *agent != outcome_.agent_key)
        throw Error(Code::AgentMismatch,
                    "AGENT_MISMATCH: outcome " + key_ + " belongs to agent " + outcome_.agent_key +
                        ", not " + *agent,
                    "customer " + customer_key_ + ", key " + key_,
                    "Omit agent_key on later events, or use a new outcome key for another agent.");
}

void StatementFold::open(const std::string &agent_key) {
    outcome_.agent_key = agent_key;
    outcome_.contract = open_terms_(agent_key);
    outcome_.state = OutcomeState::open(outcome_.contract);
    opened_ = true;
    // Every event of a new outcome, duplicates too, must agree with the agent that opened it.
    for (const auto &agent : early_duplicate_agents_) check_agent(agent);
    early_duplicate_agents_.clear();
}

void StatementFold::apply(const Event &e) {
    // A replay applies accepted history: nothing in it is late.
    apply_event(outcome_.state, outcome_.contract, e, std::numeric_limits<std::int64_t>::min());
}

void StatementFold::replay_until(std::optional<std::int64_t> seq) {
    for (;;) {
        if (!pending_history_ && !history_done_) {
            pending_history_ = history_.next();
            history_done_ = !pending_history_;
        }
        if (!pending_history_) return;
        if (seq && pending_history_->seq > *seq) return;
        if (!seq || pending_history_->seq < *seq) apply(*pending_history_);
        pending_history_ = nullptr; // applied, or the statement's own event (equal seq)
    }
}

Disposition StatementFold::add(const StatementEvent &e) {
    if (!opened_) {
        if (e.duplicate) {
            early_duplicate_agents_.push_back(e.agent_key);
            return Disposition::Duplicate;
        }
        if (!e.agent_key)
            throw Error(Code::ValidationError, "VALIDATION_ERROR: agent_key is required on an outcome's first event",
                        "customer " + customer_key_ + ", key " + key_,
                        "Name the agent on the event that opens the outcome.");
        open(*e.agent_key);
    }
    if (e.duplicate) {
        if (!existed_) check_agent(e.agent_key);
        return Disposition::Duplicate;
    }
    check_agent(e.agent_key);
    if (replaying_) {
        replay_until(e.event.seq);
        apply(e.event);
    } else if (apply_event(outcome_.state, outcome_.contract, e.event, now_) == Applied::Late) {
        ++outcome_.late_events;
        return Disposition::Late;
    } else if (outcome_.state.status == Status::Confirmed) {
        // An event in a confirmed outcome's reversal window. Facts do not depend on the order
        // events are folded in (latest by occurred_at, ties by id) and the billed attribution
        // no longer changes, so a later id applied first needs no replay; the reversal is a
        // latch, taken once.
        if (outcome_.state.reversal_holds && !outcome_.state.reversed) {
            outcome_.state.reversed = true;
            reverses_ = true;
        }
        outcome_.last_event_id = std::max(outcome_.last_event_id, e.event.seq);
        return Disposition::InReversalWindow;
    } else if (e.event.seq < outcome_.last_event_id) {
        // Arrival order is id order, and a concurrent transaction that drew later ids applied
        // them first (it got the outcome's lock first). Whether the outcome ever went PENDING
        // depends on the order, so its accepted history is replayed in id order from here on.
        // Once one event of the statement is accepted, the rest are (settles_at only moves
        // later), so nothing decided so far changes.
        replaying_ = true;
        outcome_.state = OutcomeState::open(outcome_.contract);
        replay_until(e.event.seq);
        apply(e.event);
    }
    outcome_.last_event_id = std::max(outcome_.last_event_id, e.event.seq);
    return Disposition::Accepted;
}

void StatementFold::finish() {
    if (!opened_) {
        if (early_duplicate_agents_.empty()) throw std::logic_error("witn: a statement fold without events");
        // Only duplicates arrived for an outcome that does not exist: the first opens it.
        std::optional<std::string> agent = early_duplicate_agents_.front();
        if (!agent)
            throw Error(Code::ValidationError, "VALIDATION_ERROR: agent_key is required on an outcome's first event",
                        "customer " + customer_key_ + ", key " + key_,
                        "Name the agent on the event that opens the outcome.");
        open(*agent);
    }
    if (replaying_) replay_until(std::nullopt);
}

} // namespace witn
