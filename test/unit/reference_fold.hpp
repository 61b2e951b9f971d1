// What the statement-fold tests and fuzz target check StatementFold against (CONTRACT §1, §8–§12):
// the reference applies every event alone with apply_event, in id order, at its statement's
// arrival time, and decides the agent rules per statement straight from their definition. The
// driver runs StatementFold as the write path does: one fold per statement over the stored row
// the previous one left, with the History read from the committed log. The decoder turns bytes
// (the fuzz input, or random bytes in the unit tests) into such a scenario.
// No GoogleTest here: the fuzz target includes it too.
#pragma once

#include "core/condition.hpp"
#include "core/error.hpp"
#include "core/outcome.hpp"
#include "core/statement_fold.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace witn::testing {

inline const std::string kAgent = "agent-a", kOtherAgent = "agent-b";
inline const std::string kCustomer = "cust-1", kKey = "outcome-1";
// Earlier than every occurred_at the decoder makes (they are >= 0): at this arrival time no
// outcome that has accepted an event is due.
constexpr std::int64_t kBeforeEverything = -1;

struct Statement {
    std::vector<StatementEvent> events; // at least one; ids ascending
    std::int64_t now = 0;
    std::optional<std::int64_t> settle_as_of; // settlement runs at this as_of once it commits
};

struct Scenario {
    Contract contract;
    std::vector<Statement> statements;
    // The order in which the statements get the outcome's lock (a permutation of their indexes).
    // Each statement's ids are above every earlier statement's, except in a block of concurrent
    // statements, whose ids may interleave and which may get the lock in any order. Those arrive
    // at kBeforeEverything, are not followed by settlement and find the outcome existing, so that
    // neither lateness nor opening depends on the order.
    std::vector<std::size_t> order;
    bool history_has_own_events = false; // the History also yields the statement's own events
};

// What the folds leave in the outcome's row; exists is false until a statement opens it.
struct OutcomeRow {
    bool exists = false;
    std::string agent_key;
    OutcomeState state;
    std::int64_t late_events = 0;
    std::int64_t last_event_id = 0;
};

struct FoldResult {
    OutcomeRow row;
    std::vector<std::optional<Code>> rejected;         // per statement: the error it raised
    std::vector<std::vector<Disposition>> dispositions; // per statement that committed, per event
    bool replayed = false;                              // some statement replayed the history
    std::string broken; // a promise of StatementFold the driver saw broken (the reference keeps none)
};

// ---- the reference ----------------------------------------------------------------------------

// The agent rules for one statement: the error it must be rejected with, if any. A new outcome
// is opened by its first non-duplicate event (its first duplicate when there is none), which
// must name the agent; every event of it naming an agent must name that one. An existing
// outcome checks its non-duplicate events only.
inline std::optional<Code> reference_rejection(const OutcomeRow &row, const Statement &s) {
    if (row.exists) {
        for (const StatementEvent &e : s.events)
            if (!e.duplicate && e.agent_key && *e.agent_key != row.agent_key) return Code::AgentMismatch;
        return std::nullopt;
    }
    auto opener = std::find_if(s.events.begin(), s.events.end(), [](const StatementEvent &e) { return !e.duplicate; });
    if (opener == s.events.end()) opener = s.events.begin();
    if (!opener->agent_key) return Code::ValidationError;
    for (const StatementEvent &e : s.events)
        if (e.agent_key && *e.agent_key != *opener->agent_key) return Code::AgentMismatch;
    return std::nullopt;
}

// The opening agent of a statement that reference_rejection accepts for a new outcome.
inline std::string reference_opener(const Statement &s) {
    auto opener = std::find_if(s.events.begin(), s.events.end(), [](const StatementEvent &e) { return !e.duplicate; });
    return *(opener == s.events.end() ? s.events.begin() : opener)->agent_key;
}

// Settlement between statements, the same on both sides: it resolves a due outcome.
inline void settle_row(OutcomeRow &row, std::optional<std::int64_t> as_of) {
    if (!row.exists || !as_of) return;
    if (std::optional<Status> resolution = settle(row.state, *as_of)) row.state.status = *resolution;
}

// The events of the first `count` statements (all by default) one by one in id order, each at
// its statement's arrival time. A statement's agent rules are decided at its first event, and
// settlement after its last.
inline FoldResult reference_fold(const Scenario &sc, std::size_t count = std::numeric_limits<std::size_t>::max()) {
    FoldResult r;
    count = std::min(count, sc.statements.size());
    r.rejected.resize(count);
    r.dispositions.resize(count);
    std::vector<std::pair<std::size_t, std::size_t>> by_id; // (statement, event)
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t k = 0; k < sc.statements[i].events.size(); ++k) by_id.emplace_back(i, k);
    auto seq = [&](const std::pair<std::size_t, std::size_t> &p) { return sc.statements[p.first].events[p.second].event.seq; };
    std::sort(by_id.begin(), by_id.end(), [&](const auto &a, const auto &b) { return seq(a) < seq(b); });
    for (auto [i, k] : by_id) {
        const Statement &s = sc.statements[i];
        const StatementEvent &e = s.events[k];
        if (k == 0) {
            r.rejected[i] = reference_rejection(r.row, s);
            if (!r.rejected[i] && !r.row.exists) {
                r.row.exists = true;
                r.row.agent_key = reference_opener(s);
                r.row.state = OutcomeState::open(sc.contract);
            }
        }
        if (!r.rejected[i]) {
            if (e.duplicate) {
                r.dispositions[i].push_back(Disposition::Duplicate);
            } else if (apply_event(r.row.state, sc.contract, e.event, s.now) == Applied::Late) {
                r.dispositions[i].push_back(Disposition::Late);
                ++r.row.late_events;
            } else {
                r.dispositions[i].push_back(Disposition::Accepted);
                r.row.last_event_id = std::max(r.row.last_event_id, e.event.seq);
            }
        }
        if (k + 1 == s.events.size()) settle_row(r.row, s.settle_as_of);
    }
    return r;
}

// ---- the driver ------------------------------------------------------------------------------

// A History over events in any order, counting how often it is read. It sorts them by id on
// the first read, so that a fold that never replays costs nothing here.
class LogHistory : public History {
public:
    explicit LogHistory(std::vector<Event> events) : events_(std::move(events)) {}
    const Event *next() override {
        if (reads++ == 0)
            std::sort(events_.begin(), events_.end(), [](const Event &a, const Event &b) { return a.seq < b.seq; });
        return next_ < events_.size() ? &events_[next_++] : nullptr;
    }
    int reads = 0;

private:
    std::vector<Event> events_;
    std::size_t next_ = 0;
};

// The row as the next statement reads it back: facts and attribution through their JSON.
inline StoredOutcome stored_row(const OutcomeRow &row, const Contract &contract) {
    StoredOutcome s;
    s.agent_key = row.agent_key;
    s.contract = contract;
    s.state = row.state;
    s.state.facts = Facts::from_json(contract.condition, row.state.facts.to_json());
    s.state.attribution = Attribution::from_json(row.state.attribution.to_json());
    s.late_events = row.late_events;
    s.last_event_id = row.last_event_id;
    return s;
}

// The statements in sc.order, each a StatementFold over the row the previous one left.
inline FoldResult statement_folds(const Scenario &sc) {
    FoldResult r;
    r.rejected.resize(sc.statements.size());
    r.dispositions.resize(sc.statements.size());
    std::vector<Event> committed; // the accepted events in the log
    auto broken = [&](std::size_t i, const std::string &what) {
        if (r.broken.empty()) r.broken = "statement " + std::to_string(i) + ": " + what;
    };
    for (std::size_t i : sc.order) {
        const Statement &s = sc.statements[i];
        std::optional<StoredOutcome> stored;
        if (r.row.exists) stored = stored_row(r.row, sc.contract);
        const bool existed = stored.has_value();
        std::vector<Event> log = committed;
        if (sc.history_has_own_events)
            for (const StatementEvent &e : s.events)
                if (!e.duplicate) log.push_back(e.event);
        LogHistory history(std::move(log));
        int terms_calls = 0;
        std::string terms_agent;
        auto open_terms = [&](const std::string &agent) {
            ++terms_calls;
            terms_agent = agent;
            return sc.contract;
        };
        try {
            StatementFold fold(kCustomer, kKey, std::move(stored), s.now, open_terms, history);
            std::vector<Disposition> dispositions;
            for (const StatementEvent &e : s.events) dispositions.push_back(fold.add(e));
            fold.finish();
            if (fold.opens() == existed) broken(i, "opens() is wrong");
            if (terms_calls != (existed ? 0 : 1)) broken(i, "open_terms called " + std::to_string(terms_calls) + " times");
            if (!existed && terms_agent != fold.agent_key()) broken(i, "open_terms asked for another agent");
            if (!fold.replayed() && history.reads > 0) broken(i, "history read without a replay");
            if (!(fold.quantity() == fold.state().attribution.quantity(fold.contract().attribution_method)))
                broken(i, "quantity() is not the contract's method");
            r.replayed = r.replayed || fold.replayed();
            r.row.exists = true;
            r.row.agent_key = fold.agent_key();
            r.row.state = fold.state();
            r.row.late_events = fold.late_events();
            r.row.last_event_id = fold.last_event_id();
            for (std::size_t k = 0; k < s.events.size(); ++k)
                if (dispositions[k] == Disposition::Accepted) committed.push_back(s.events[k].event);
            r.dispositions[i] = std::move(dispositions);
        } catch (const Error &e) {
            r.rejected[i] = e.code(); // rolled back: the row and the log stay as they were
            if (existed ? terms_calls != 0 : terms_calls > 1)
                broken(i, "open_terms called " + std::to_string(terms_calls) + " times before an error");
        }
        settle_row(r.row, s.settle_as_of);
    }
    return r;
}

// ---- comparing -------------------------------------------------------------------------------

inline std::string status_text(std::optional<Status> s) { return s ? status_name(*s) : "NULL"; }

// Empty when `got` is what `want` says; else the first difference.
inline std::string difference(const FoldResult &want, const FoldResult &got) {
    if (!got.broken.empty()) return got.broken;
    auto code = [](std::optional<Code> c) { return std::string(c ? code_name(*c) : "none"); };
    for (std::size_t i = 0; i < want.rejected.size(); ++i) {
        if (want.rejected[i] != got.rejected[i])
            return "statement " + std::to_string(i) + ": rejected with " + code(got.rejected[i]) + ", want " +
                   code(want.rejected[i]);
        if (want.dispositions[i] != got.dispositions[i]) return "statement " + std::to_string(i) + ": dispositions differ";
    }
    const OutcomeRow &w = want.row, &g = got.row;
    auto num = [](std::int64_t v) { return std::to_string(v); };
    auto field = [](const char *name, const std::string &gv, const std::string &wv) {
        return gv == wv ? std::string() : std::string(name) + " is " + gv + ", want " + wv;
    };
    for (const std::string &d : {
             field("exists", num(g.exists), num(w.exists)),
             field("agent_key", g.agent_key, w.agent_key),
             field("status", status_name(g.state.status), status_name(w.state.status)),
             field("scheduled_resolution", status_text(g.state.scheduled_resolution),
                   status_text(w.state.scheduled_resolution)),
             field("settles_at", num(g.state.settles_at), num(w.state.settles_at)),
             field("accepted_events", num(g.state.accepted_events), num(w.state.accepted_events)),
             field("facts", g.state.facts.to_json(), w.state.facts.to_json()),
             field("attribution", g.state.attribution.to_json(), w.state.attribution.to_json()),
             field("condition_holds", num(g.state.condition_holds), num(w.state.condition_holds)),
             field("late_events", num(g.late_events), num(w.late_events)),
             field("last_event_id", num(g.last_event_id), num(w.last_event_id)),
         })
        if (!d.empty()) return d;
    return {};
}

inline std::string check_scenario(const Scenario &sc) { return difference(reference_fold(sc), statement_folds(sc)); }

// The scenario in a few lines, for failure messages.
inline std::string describe(const Scenario &sc) {
    std::string out = "condition " + condition_to_json(sc.contract.condition) + ", period " +
                      std::to_string(sc.contract.settlement_period) + ", method " +
                      std::to_string(static_cast<int>(sc.contract.attribution_method)) + ", order";
    for (std::size_t i : sc.order) out += " " + std::to_string(i);
    if (sc.history_has_own_events) out += ", history has own events";
    for (std::size_t i = 0; i < sc.statements.size(); ++i) {
        const Statement &s = sc.statements[i];
        out += "\n  [" + std::to_string(i) + "] now " + std::to_string(s.now);
        if (s.settle_as_of) out += ", settle at " + std::to_string(*s.settle_as_of);
        out += ":";
        for (const StatementEvent &e : s.events) {
            out += " #" + std::to_string(e.event.seq) + " " + e.event.action + "@" + std::to_string(e.event.occurred_at);
            if (e.event.value.kind == Scalar::Kind::Number) out += "=" + e.event.value.number.to_string();
            if (e.event.value.kind == Scalar::Kind::String) out += "=\"" + e.event.value.string + "\"";
            if (e.event.value.kind == Scalar::Kind::Bool) out += e.event.value.boolean ? "=true" : "=false";
            if (e.event.value.kind == Scalar::Kind::Other) out += "=null";
            if (e.event.attribution) out += " q" + e.event.attribution->to_string();
            if (e.event.settles_at) out += " until " + std::to_string(*e.event.settles_at);
            if (e.agent_key) out += " by " + *e.agent_key;
            if (e.duplicate) out += " (dup)";
        }
    }
    return out;
}

// ---- decoding bytes into a scenario ----------------------------------------------------------

// Reads small choices from bytes; once they run out every choice is 0.
class Bytes {
public:
    Bytes(const std::uint8_t *data, std::size_t size) : data_(data), size_(size) {}
    unsigned below(unsigned n) { return pos_ < size_ ? data_[pos_++] % n : 0; }
    // True one time in n (never once the bytes run out).
    bool one_in(unsigned n) { return below(n) == n - 1; }

private:
    const std::uint8_t *data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

inline Condition decode_condition(Bytes &in) {
    static const char *const facts[] = {"a", "b", "c"};
    static const char *const numbers[] = {"4", "4.0", "5", "-1", "0", "0.5", "699.99999999999999999999", "700",
                                          "9007199254740993"};
    static const char *const scalars[] = {"\"4\"", "\"pass\"", "true", "false"};
    std::string text = "[";
    for (unsigned i = 0, n = in.below(5); i < n; ++i) {
        Op op = static_cast<Op>(in.below(16));
        text += std::string(i ? "," : "") + "{\"fact\":\"" + facts[in.below(3)] + "\",\"operator\":\"" + op_name(op) + "\"";
        switch (op_group(op)) {
        case OpGroup::Occurrence: break;
        case OpGroup::Count: text += ",\"value\":" + std::to_string(in.below(4)); break;
        default:
            text += ",\"value\":";
            text += op == Op::Match && in.one_in(3) ? scalars[in.below(4)] : numbers[in.below(9)];
        }
        text += "}";
    }
    return parse_condition(text + "]");
}

inline StatementEvent decode_event(Bytes &in, std::int64_t seq) {
    static const char *const actions[] = {"a", "b", "c", "x"};
    static const char *const numbers[] = {"3", "4", "4.0", "5", "-1", "0", "699.99999999999999999999", "700",
                                          "9007199254740993", "0.5"};
    static const char *const strings[] = {"4", "pass", ""};
    static const char *const quantities[] = {"1", "0", "1.5", "2.50", "7", "0.00000000000000000001", "1e3",
                                             "12345678901234567890.5"};
    StatementEvent e;
    e.event.seq = seq;
    e.event.action = actions[in.below(4)];
    e.event.occurred_at = in.below(60);
    switch (in.below(8)) {
    case 0: case 1: break; // no properties.value
    case 2: e.event.value.kind = Scalar::Kind::Other; break;
    case 3:
        e.event.value.kind = Scalar::Kind::Bool;
        e.event.value.boolean = in.below(2);
        break;
    case 4:
        e.event.value.kind = Scalar::Kind::String;
        e.event.value.string = strings[in.below(3)];
        break;
    default:
        e.event.value.kind = Scalar::Kind::Number;
        e.event.value.number = *Decimal::parse(numbers[in.below(10)]);
    }
    if (in.one_in(3)) e.event.attribution = *Decimal::parse(quantities[in.below(8)]);
    if (in.one_in(8)) e.event.settles_at = e.event.occurred_at + in.below(60);
    unsigned agent = in.below(16);
    if (agent >= 7) e.agent_key = agent == 15 ? kOtherAgent : kAgent;
    e.duplicate = in.one_in(6);
    return e;
}

enum class Order {
    Id,        // the statements take the lock in id order
    Any,       // the bytes choose whether a block of statements takes it out of id order
    Concurrent // the first statement opens the outcome, and with three statements or more a
               // block of the later ones takes the lock out of id order
};

inline Scenario decode_scenario(Bytes &in, Order order) {
    static const std::int64_t periods[] = {1000, 1, 7, 30};
    Scenario sc;
    sc.contract.condition = decode_condition(in);
    sc.contract.settlement_period = periods[in.below(4)];
    sc.contract.attribution_method = static_cast<AttributionMethod>(in.below(6));
    sc.history_has_own_events = in.below(2);
    std::int64_t seq = 0;
    for (unsigned i = 0, n = 1 + in.below(32); i < n; ++i) {
        if (i == 0 || in.below(3) == 0) {
            Statement s;
            s.now = in.below(80);
            if (in.one_in(6)) s.settle_as_of = in.below(100);
            sc.statements.push_back(std::move(s));
        }
        seq += 1 + (in.one_in(4) ? in.below(5) : 0); // ids have gaps, as sequences do
        sc.statements.back().events.push_back(decode_event(in, seq));
    }
    if (order == Order::Concurrent) {
        std::vector<StatementEvent> &first = sc.statements.front().events;
        for (StatementEvent &e : first)
            if (e.agent_key == kOtherAgent) e.agent_key.reset();
        auto opener = std::find_if(first.begin(), first.end(), [](const StatementEvent &e) { return !e.duplicate; });
        (opener == first.end() ? first.front() : *opener).agent_key = kAgent;
    }
    sc.order.resize(sc.statements.size());
    std::iota(sc.order.begin(), sc.order.end(), std::size_t{0});
    const std::size_t count = sc.statements.size();
    if (count >= 3 && (order == Order::Concurrent || (order == Order::Any && in.below(2) == 1))) {
        std::size_t begin = 1 + in.below(static_cast<unsigned>(count - 2));
        std::size_t end = begin + 2 + in.below(static_cast<unsigned>(count - begin - 1));
        if (!reference_fold(sc, begin).row.exists) return sc; // the block might open it
        for (std::size_t k = end - 1; k > begin; --k)
            std::swap(sc.order[k], sc.order[begin + in.below(static_cast<unsigned>(k - begin + 1))]);
        if (std::is_sorted(sc.order.begin(), sc.order.end()))
            std::rotate(sc.order.begin() + begin, sc.order.begin() + end - 1, sc.order.begin() + end);
        if (in.below(2) == 1) {
            // Interleave the block's ids: deal them out in ascending order to its statements,
            // taken in a shuffled sequence of turns (one per event).
            std::vector<std::int64_t> ids;
            std::vector<std::size_t> turns;
            for (std::size_t i = begin; i < end; ++i)
                for (const StatementEvent &e : sc.statements[i].events) {
                    ids.push_back(e.event.seq);
                    turns.push_back(i);
                }
            for (std::size_t k = turns.size() - 1; k > 0; --k)
                std::swap(turns[k], turns[in.below(static_cast<unsigned>(k + 1))]);
            std::vector<std::size_t> dealt(count, 0);
            for (std::size_t k = 0; k < ids.size(); ++k)
                sc.statements[turns[k]].events[dealt[turns[k]]++].event.seq = ids[k];
        }
        for (std::size_t k = begin; k < end; ++k) {
            sc.statements[k].now = kBeforeEverything;
            sc.statements[k].settle_as_of.reset();
        }
    }
    return sc;
}

} // namespace witn::testing
