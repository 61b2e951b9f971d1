// StatementFold: one outcome's events in one statement — opening, the agent rule, duplicates,
// late events, last_event_id and the replay in id order after a concurrent later commit; and
// the properties that any split into statements, and any lock order, folds like the events one
// by one in id order.
#include "reference_fold.hpp"
#include "test_util.hpp"

#include "core/statement_fold.hpp"

#include <random>

using namespace witn;
using namespace witn::test;
using witn::testing::LogHistory;

namespace {

const std::string A = "agent-a", B = "agent-b";
constexpr std::int64_t kPeriod = 100;

const char *kSeenA = R"([{"fact":"a","operator":"seen"}])";
// Whether it ever held depends on the order the events are applied in (the latest v wins).
const char *kVAtLeast4 = R"([{"fact":"v","operator":"gte","value":4}])";

Contract contract(std::string_view condition, std::int64_t period = kPeriod,
                  AttributionMethod method = AttributionMethod::Last) {
    return contract_of(condition, period, method);
}

StatementEvent se(std::int64_t seq, std::optional<std::string> agent, std::string action = "a",
                  std::int64_t occurred_at = 0, Scalar value = absent()) {
    return StatementEvent{ev(std::move(action), std::move(value), occurred_at, seq), std::move(agent), false};
}

StatementEvent dup(std::int64_t seq, std::optional<std::string> agent, std::string action = "a") {
    StatementEvent e = se(seq, std::move(agent), std::move(action));
    e.duplicate = true;
    return e;
}

// open_terms that records which agents it was asked for.
struct Terms {
    Contract contract;
    std::vector<std::string> asked;
    StatementFold::OpenTerms fn() {
        return [this](const std::string &agent) {
            asked.push_back(agent);
            return contract;
        };
    }
};

// The row of an outcome that already accepted `events` one by one (agent A).
StoredOutcome stored(const Contract &c, const std::vector<Event> &events) {
    StoredOutcome s;
    s.agent_key = A;
    s.contract = c;
    s.state = OutcomeState::open(c);
    for (const Event &e : events) {
        apply_event(s.state, c, e, 0);
        s.last_event_id = std::max(s.last_event_id, e.seq);
    }
    return s;
}

// The events applied one by one in the given order, from a new outcome.
OutcomeState one_by_one(const Contract &c, const std::vector<Event> &events) {
    OutcomeState s = OutcomeState::open(c);
    for (const Event &e : events) apply_event(s, c, e, 0);
    return s;
}

void expect_same_state(const OutcomeState &got, const OutcomeState &want) {
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.scheduled_resolution, want.scheduled_resolution);
    EXPECT_EQ(got.settles_at, want.settles_at);
    EXPECT_EQ(got.accepted_events, want.accepted_events);
    EXPECT_EQ(got.facts.to_json(), want.facts.to_json());
    EXPECT_EQ(got.attribution.to_json(), want.attribution.to_json());
    EXPECT_EQ(got.condition_holds, want.condition_holds);
}

struct Fixture {
    Terms terms;
    LogHistory history;
    StatementFold fold;
    Fixture(const Contract &c, std::optional<StoredOutcome> row, std::int64_t now, std::vector<Event> log = {})
        : terms{c, {}}, history(std::move(log)), fold("c1", "k1", std::move(row), now, terms.fn(), history) {}
};

const char *kRequired = "VALIDATION_ERROR: agent_key is required on an outcome's first event";
const char *kMismatch = "AGENT_MISMATCH: outcome k1 belongs to agent agent-a, not agent-b";

void expect_mismatch(const Thrown &t, const char *message = kMismatch) {
    EXPECT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::AgentMismatch);
    EXPECT_EQ(t.message, message);
    EXPECT_EQ(t.detail, "customer c1, key k1");
    EXPECT_EQ(t.hint, "Omit agent_key on later events, or use a new outcome key for another agent.");
}

void expect_agent_required(const Thrown &t) {
    EXPECT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::ValidationError);
    EXPECT_EQ(t.message, kRequired);
    EXPECT_EQ(t.detail, "customer c1, key k1");
    EXPECT_EQ(t.hint, "Name the agent on the event that opens the outcome.");
}

} // namespace

// ---- opening -------------------------------------------------------------------------------

TEST(StatementFold, TheFirstEventOpensTheOutcomeUnderItsAgentsTerms) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    EXPECT_TRUE(f.fold.opens());
    EXPECT_EQ(f.fold.add(se(7, A, "a", 10)), Disposition::Accepted);
    f.fold.finish();
    EXPECT_EQ(f.terms.asked, std::vector<std::string>{A});
    EXPECT_EQ(f.fold.agent_key(), A);
    EXPECT_EQ(f.fold.contract().settlement_period, kPeriod);
    EXPECT_EQ(f.fold.state().status, Status::Pending);
    EXPECT_EQ(f.fold.state().scheduled_resolution, Status::Confirmed);
    EXPECT_TRUE(f.fold.state().condition_holds);
    EXPECT_EQ(f.fold.state().accepted_events, 1);
    EXPECT_EQ(f.fold.state().settles_at, 10 + kPeriod);
    EXPECT_EQ(f.fold.late_events(), 0);
    EXPECT_EQ(f.fold.last_event_id(), 7);
    EXPECT_FALSE(f.fold.replayed());
}

TEST(StatementFold, OpenTermsIsCalledOnceForANewOutcome) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    f.fold.add(dup(1, std::nullopt));
    EXPECT_TRUE(f.terms.asked.empty()); // a leading duplicate does not open it
    f.fold.add(se(2, A));
    f.fold.add(se(3, std::nullopt));
    f.fold.add(dup(4, A));
    f.fold.add(se(5, A));
    f.fold.finish();
    EXPECT_EQ(f.terms.asked, std::vector<std::string>{A});
}

TEST(StatementFold, OpenTermsIsNeverCalledForAnExistingOutcome) {
    Contract snapshot = contract(kSeenA, 555);
    Fixture f(contract(kSeenA, 1), stored(snapshot, {ev("a", absent(), 0, 1)}), 0);
    EXPECT_FALSE(f.fold.opens());
    f.fold.add(se(2, A));
    f.fold.add(dup(3, std::nullopt));
    f.fold.add(se(4, std::nullopt));
    f.fold.finish();
    EXPECT_TRUE(f.terms.asked.empty());
    EXPECT_EQ(f.fold.contract().settlement_period, 555); // the snapshot, not today's terms
    EXPECT_EQ(f.fold.state().settles_at, 555);
    EXPECT_EQ(f.fold.state().accepted_events, 3);
}

TEST(StatementFold, AnErrorOfTheTermsLookupPropagates) {
    LogHistory history({});
    StatementFold fold("c1", "k1", std::nullopt, 0, [](const std::string &agent) -> Contract {
        throw Error(Code::PriceNotFound, "PRICE_NOT_FOUND: no price for agent " + agent, "customer c1");
    }, history);
    Thrown t = thrown_by([&] { fold.add(se(1, A)); });
    EXPECT_EQ(t.code, Code::PriceNotFound);
    EXPECT_EQ(t.message, "PRICE_NOT_FOUND: no price for agent agent-a");
    EXPECT_EQ(t.detail, "customer c1");
}

TEST(StatementFold, TheOpeningEventMustNameAnAgent) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    expect_agent_required(thrown_by([&] { f.fold.add(se(1, std::nullopt)); }));
    EXPECT_TRUE(f.terms.asked.empty());
}

TEST(StatementFold, TheOpeningEventIsTheFirstNonDuplicate) {
    // A leading duplicate naming the agent does not make the opener's agent optional...
    Fixture named(contract(kSeenA), std::nullopt, 0);
    EXPECT_EQ(named.fold.add(dup(1, A)), Disposition::Duplicate);
    expect_agent_required(thrown_by([&] { named.fold.add(se(2, std::nullopt)); }));
    // ...and one without an agent does not stop the opener from naming it.
    Fixture unnamed(contract(kSeenA), std::nullopt, 0);
    EXPECT_EQ(unnamed.fold.add(dup(1, std::nullopt)), Disposition::Duplicate);
    EXPECT_EQ(unnamed.fold.add(se(2, A)), Disposition::Accepted);
    unnamed.fold.finish();
    EXPECT_EQ(unnamed.fold.agent_key(), A);
    EXPECT_EQ(unnamed.fold.state().accepted_events, 1);
    EXPECT_EQ(unnamed.fold.last_event_id(), 2);
}

TEST(StatementFold, LaterEventsMayOmitTheAgent) {
    Fixture fresh(contract(kSeenA), std::nullopt, 0);
    EXPECT_EQ(fresh.fold.add(se(1, A)), Disposition::Accepted);
    EXPECT_EQ(fresh.fold.add(se(2, std::nullopt)), Disposition::Accepted);
    EXPECT_EQ(fresh.fold.add(se(3, A)), Disposition::Accepted);
    fresh.fold.finish();
    EXPECT_EQ(fresh.fold.state().accepted_events, 3);

    Contract c = contract(kSeenA);
    Fixture existing(c, stored(c, {ev("a", absent(), 0, 1)}), 0);
    EXPECT_EQ(existing.fold.add(se(2, std::nullopt)), Disposition::Accepted);
    existing.fold.finish();
    EXPECT_EQ(existing.fold.state().accepted_events, 2);
}

// ---- the agent rule ------------------------------------------------------------------------

TEST(StatementFold, AnEventNamingAnotherAgentIsRejected) {
    Fixture fresh(contract(kSeenA), std::nullopt, 0);
    fresh.fold.add(se(1, A));
    expect_mismatch(thrown_by([&] { fresh.fold.add(se(2, B)); }));

    Contract c = contract(kSeenA);
    Fixture existing(c, stored(c, {ev("a", absent(), 0, 1)}), 0);
    expect_mismatch(thrown_by([&] { existing.fold.add(se(2, B)); }));
}

TEST(StatementFold, AnEventNamingAnotherAgentIsRejectedEvenWhenLate) {
    Contract c = contract(kSeenA);
    StoredOutcome row = stored(c, {ev("a", absent(), 0, 1)});
    row.state.status = Status::Confirmed;
    Fixture f(c, row, 0);
    expect_mismatch(thrown_by([&] { f.fold.add(se(2, B)); }));
}

TEST(StatementFold, LeadingDuplicatesAreCheckedAgainstTheOpenersAgent) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    EXPECT_EQ(f.fold.add(dup(1, B)), Disposition::Duplicate); // the agent is not known yet
    expect_mismatch(thrown_by([&] { f.fold.add(se(2, A)); }));
}

TEST(StatementFold, DuplicatesOfANewOutcomeMustMatchItsAgent) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    f.fold.add(se(1, A));
    EXPECT_EQ(f.fold.add(dup(2, std::nullopt)), Disposition::Duplicate);
    EXPECT_EQ(f.fold.add(dup(3, A)), Disposition::Duplicate);
    expect_mismatch(thrown_by([&] { f.fold.add(dup(4, B)); }));
}

TEST(StatementFold, DuplicatesOfAnExistingOutcomeAreNotChecked) {
    Contract c = contract(kSeenA);
    Fixture f(c, stored(c, {ev("a", absent(), 0, 1)}), 0);
    EXPECT_EQ(f.fold.add(dup(2, B)), Disposition::Duplicate);
    EXPECT_EQ(f.fold.add(se(3, std::nullopt)), Disposition::Accepted);
    f.fold.finish();
    EXPECT_EQ(f.fold.agent_key(), A);
}

// ---- duplicates ----------------------------------------------------------------------------

TEST(StatementFold, DuplicatesAreRecordedNotApplied) {
    Contract c = contract(R"([{"fact":"a","operator":"seen"},{"fact":"b","operator":"not seen"}])");
    Fixture fresh(c, std::nullopt, 0);
    fresh.fold.add(se(1, A, "a"));
    StatementEvent b = dup(2, A, "b");
    b.event.attribution = D("5");
    b.event.occurred_at = 1000;
    EXPECT_EQ(fresh.fold.add(b), Disposition::Duplicate);
    fresh.fold.finish();
    expect_same_state(fresh.fold.state(), one_by_one(c, {ev("a", absent(), 0, 1)}));
    EXPECT_EQ(fresh.fold.state().scheduled_resolution, Status::Confirmed); // b never counted
    EXPECT_EQ(fresh.fold.last_event_id(), 1);

    StoredOutcome row = stored(c, {ev("a", absent(), 0, 1)});
    row.late_events = 4;
    Fixture existing(c, row, 0);
    EXPECT_EQ(existing.fold.add(b), Disposition::Duplicate);
    existing.fold.finish();
    expect_same_state(existing.fold.state(), row.state);
    EXPECT_EQ(existing.fold.late_events(), 4);
    EXPECT_EQ(existing.fold.last_event_id(), 1);
}

TEST(StatementFold, OnlyDuplicatesOpenTheOutcomeAtFinish) {
    Fixture f(contract(kSeenA), std::nullopt, 0);
    EXPECT_EQ(f.fold.add(dup(1, A)), Disposition::Duplicate);
    EXPECT_EQ(f.fold.add(dup(2, std::nullopt)), Disposition::Duplicate);
    EXPECT_TRUE(f.terms.asked.empty());
    f.fold.finish();
    EXPECT_EQ(f.terms.asked, std::vector<std::string>{A});
    EXPECT_TRUE(f.fold.opens());
    EXPECT_EQ(f.fold.agent_key(), A);
    expect_same_state(f.fold.state(), OutcomeState::open(f.fold.contract()));
    EXPECT_EQ(f.fold.late_events(), 0);
    EXPECT_EQ(f.fold.last_event_id(), 0);
}

TEST(StatementFold, OnlyDuplicatesOpenUnderTheFirstOnesAgent) {
    Fixture unnamed(contract(kSeenA), std::nullopt, 0);
    unnamed.fold.add(dup(1, std::nullopt));
    unnamed.fold.add(dup(2, A));
    expect_agent_required(thrown_by([&] { unnamed.fold.finish(); }));
    EXPECT_TRUE(unnamed.terms.asked.empty());

    Fixture two(contract(kSeenA), std::nullopt, 0);
    two.fold.add(dup(1, A));
    two.fold.add(dup(2, B));
    expect_mismatch(thrown_by([&] { two.fold.finish(); }));
}

// ---- late events ---------------------------------------------------------------------------

TEST(StatementFold, LateEventsAreCountedAndNotApplied) {
    Contract c = contract(kSeenA, kPeriod, AttributionMethod::Sum);
    StoredOutcome row = stored(c, {ev("x", absent(), 0, 1)});
    row.late_events = 2;
    const std::int64_t due = row.state.settles_at;
    Fixture f(c, row, due);
    StatementEvent a = se(2, std::nullopt, "a", due - 1);
    a.event.attribution = D("3");
    EXPECT_EQ(f.fold.add(a), Disposition::Late);
    EXPECT_EQ(f.fold.add(se(3, A, "a")), Disposition::Late);
    f.fold.finish();
    expect_same_state(f.fold.state(), row.state);
    EXPECT_EQ(f.fold.state().status, Status::Open); // a never counted
    EXPECT_EQ(f.fold.late_events(), 4);
    EXPECT_EQ(f.fold.last_event_id(), 1);
}

TEST(StatementFold, AnOutcomeIsDueFromItsSettlesAt) {
    Contract c = contract(kSeenA);
    StoredOutcome row = stored(c, {ev("x", absent(), 0, 1)});
    const std::int64_t due = row.state.settles_at;
    Fixture before(c, row, due - 1);
    EXPECT_EQ(before.fold.add(se(2, A)), Disposition::Accepted);
    Fixture at(c, row, due);
    EXPECT_EQ(at.fold.add(se(2, A)), Disposition::Late);
}

TEST(StatementFold, EventsForAResolvedOutcomeAreLate) {
    Contract c = contract(kSeenA);
    for (Status resolved : {Status::Confirmed, Status::Failed}) {
        StoredOutcome row = stored(c, {ev("a", absent(), 0, 1)});
        row.state.status = resolved;
        Fixture f(c, row, 0); // long before settles_at
        EXPECT_EQ(f.fold.add(se(2, A)), Disposition::Late) << status_name(resolved);
        f.fold.finish();
        EXPECT_EQ(f.fold.state().status, resolved);
        EXPECT_EQ(f.fold.state().accepted_events, 1);
        EXPECT_EQ(f.fold.late_events(), 1);
    }
}

TEST(StatementFold, TheFirstEventsTimerCanMakeTheRestOfTheStatementLate) {
    Fixture f(contract(kSeenA), std::nullopt, 10 * kPeriod);
    EXPECT_EQ(f.fold.add(se(1, A, "x", 0)), Disposition::Accepted); // never late: it opens
    EXPECT_EQ(f.fold.add(se(2, std::nullopt, "a", 10 * kPeriod)), Disposition::Late);
    f.fold.finish();
    EXPECT_EQ(f.fold.state().status, Status::Open);
    EXPECT_EQ(f.fold.state().settles_at, kPeriod);
    EXPECT_EQ(f.fold.late_events(), 1);
    EXPECT_EQ(f.fold.last_event_id(), 1);
}

// ---- last_event_id ---------------------------------------------------------------------------

TEST(StatementFold, LastEventIdIsTheHighestAppliedId) {
    Fixture fresh(contract(kSeenA), std::nullopt, 0);
    fresh.fold.add(se(1, A));
    fresh.fold.add(se(2, std::nullopt));
    fresh.fold.add(dup(9, std::nullopt)); // recorded, not applied
    fresh.fold.finish();
    EXPECT_EQ(fresh.fold.last_event_id(), 2);

    Contract c = contract(kSeenA);
    Fixture existing(c, stored(c, {ev("a", absent(), 0, 10)}), 0);
    existing.fold.add(se(11, std::nullopt));
    existing.fold.add(se(12, std::nullopt));
    existing.fold.finish();
    EXPECT_EQ(existing.fold.last_event_id(), 12);

    StoredOutcome row = stored(c, {ev("a", absent(), 0, 10)});
    row.state.status = Status::Failed;
    Fixture late(c, row, 0);
    late.fold.add(se(20, std::nullopt));
    late.fold.finish();
    EXPECT_EQ(late.fold.last_event_id(), 10); // late events are not applied
}

TEST(StatementFold, QuantityFollowsTheContractsAttributionMethod) {
    Contract c = contract(kSeenA, kPeriod, AttributionMethod::Sum);
    Event first = ev("a", absent(), 0, 1);
    first.attribution = D("1.5");
    Fixture f(c, stored(c, {first}), 0);
    StatementEvent e = se(2, std::nullopt);
    e.event.attribution = D("2");
    f.fold.add(e);
    f.fold.add(se(3, std::nullopt)); // none: does not count
    f.fold.finish();
    EXPECT_EQ(f.fold.quantity().to_string(), "3.5");
    Fixture none(contract(kSeenA, kPeriod, AttributionMethod::Max), std::nullopt, 0);
    none.fold.add(se(1, A));
    none.fold.finish();
    EXPECT_EQ(none.fold.quantity().to_string(), "1");
}

// ---- the replay ----------------------------------------------------------------------------

namespace {

// Ids 1 (x), 2 (v=5 at 10) and 3 (v=1 at 20). In id order v=5 is the latest value at 2, so the
// outcome goes PENDING; folded as 1, 3, 2 it never holds (3 stays the latest) and stays OPEN.
struct Race {
    Contract c = contract(kVAtLeast4);
    Event e1 = ev("x", absent(), 0, 1), e2 = ev("v", num("5"), 10, 2), e3 = ev("v", num("1"), 20, 3);
};

} // namespace

TEST(StatementFold, AnIdBelowTheStoredLastReplaysTheHistoryInIdOrder) {
    Race r;
    // The transaction holding id 3 got the lock first and committed 1 and 3.
    StoredOutcome row = stored(r.c, {r.e1, r.e3});
    ASSERT_EQ(row.state.status, Status::Open);
    Fixture f(r.c, row, 0, {r.e1, r.e3});
    EXPECT_EQ(f.fold.add(StatementEvent{r.e2, std::nullopt, false}), Disposition::Accepted);
    f.fold.finish();
    EXPECT_TRUE(f.fold.replayed());
    EXPECT_GT(f.history.reads, 0);
    expect_same_state(f.fold.state(), one_by_one(r.c, {r.e1, r.e2, r.e3}));
    EXPECT_EQ(f.fold.state().status, Status::Pending);
    EXPECT_EQ(f.fold.state().scheduled_resolution, Status::Failed);
    EXPECT_EQ(f.fold.last_event_id(), 3);
    // Folded in arrival at the lock instead, it would have stayed OPEN.
    EXPECT_EQ(one_by_one(r.c, {r.e1, r.e3, r.e2}).status, Status::Open);
}

TEST(StatementFold, TheReplaySkipsTheStatementsOwnEventsInTheHistory) {
    Race r;
    Fixture f(r.c, stored(r.c, {r.e1, r.e3}), 0, {r.e1, r.e2, r.e3});
    f.fold.add(StatementEvent{r.e2, std::nullopt, false});
    f.fold.finish();
    EXPECT_TRUE(f.fold.replayed());
    expect_same_state(f.fold.state(), one_by_one(r.c, {r.e1, r.e2, r.e3}));
    EXPECT_EQ(f.fold.state().accepted_events, 3); // 2 once, not twice
}

TEST(StatementFold, TheReplayMergesTheHistoryAndTheStatementInIdOrder) {
    Contract c = contract(kVAtLeast4);
    Event h1 = ev("x", absent(), 0, 1), h5 = ev("v", num("1"), 20, 5), h10 = ev("x", absent(), 0, 10);
    Event s3 = ev("v", num("5"), 10, 3), s7 = ev("x", absent(), 30, 7);
    s7.attribution = D("2");
    Fixture f(c, stored(c, {h1, h5, h10}), 0, {h1, h5, h10});
    f.fold.add(StatementEvent{s3, std::nullopt, false});
    f.fold.add(StatementEvent{s7, A, false});
    f.fold.finish(); // applies 10, after the statement's last event
    EXPECT_TRUE(f.fold.replayed());
    expect_same_state(f.fold.state(), one_by_one(c, {h1, s3, h5, s7, h10}));
    EXPECT_EQ(f.fold.state().accepted_events, 5);
    EXPECT_EQ(f.fold.state().status, Status::Pending);
    EXPECT_EQ(f.fold.last_event_id(), 10);
}

TEST(StatementFold, ConcurrentStatementsWithInterleavedIdsReplayInIdOrder) {
    // Two concurrent COPYs drew ids 2, 4 and 3, 5; the second got the lock first.
    Contract c = contract(kVAtLeast4);
    Event e1 = ev("x", absent(), 0, 1), e2 = ev("v", num("5"), 10, 2), e3 = ev("v", num("1"), 20, 3);
    Event e4 = ev("x", absent(), 0, 4), e5 = ev("x", absent(), 0, 5);
    Fixture second(c, stored(c, {e1}), 0, {e1});
    second.fold.add(StatementEvent{e3, std::nullopt, false});
    second.fold.add(StatementEvent{e5, std::nullopt, false});
    second.fold.finish();
    EXPECT_FALSE(second.fold.replayed());
    StoredOutcome row = stored(c, {e1, e3, e5});
    row.state = second.fold.state();
    Fixture first(c, row, 0, {e1, e3, e5});
    first.fold.add(StatementEvent{e2, std::nullopt, false});
    first.fold.add(StatementEvent{e4, std::nullopt, false});
    first.fold.finish();
    EXPECT_TRUE(first.fold.replayed());
    expect_same_state(first.fold.state(), one_by_one(c, {e1, e2, e3, e4, e5}));
    EXPECT_EQ(first.fold.state().status, Status::Pending);
    EXPECT_EQ(first.fold.last_event_id(), 5);
}

TEST(StatementFold, TheReplayKeepsTheStoredLateCount) {
    Race r;
    StoredOutcome row = stored(r.c, {r.e1, r.e3});
    row.late_events = 2;
    Fixture f(r.c, row, 0, {r.e1, r.e3});
    f.fold.add(StatementEvent{r.e2, std::nullopt, false});
    f.fold.add(dup(4, B));
    f.fold.finish();
    EXPECT_TRUE(f.fold.replayed());
    EXPECT_EQ(f.fold.late_events(), 2);
    EXPECT_EQ(f.fold.last_event_id(), 3);
}

TEST(StatementFold, NoReplayAboveTheStoredLastId) {
    Race r;
    Fixture f(r.c, stored(r.c, {r.e1, r.e2}), 0, {r.e1, r.e2});
    f.fold.add(StatementEvent{r.e3, std::nullopt, false});
    f.fold.finish();
    EXPECT_FALSE(f.fold.replayed());
    EXPECT_EQ(f.history.reads, 0); // the history is read only for a replay
    expect_same_state(f.fold.state(), one_by_one(r.c, {r.e1, r.e2, r.e3}));
}

TEST(StatementFold, LateEventsAndDuplicatesDoNotReplay) {
    Race r;
    StoredOutcome resolved = stored(r.c, {r.e1, r.e3});
    resolved.state.status = Status::Failed;
    Fixture late(r.c, resolved, 0, {r.e1, r.e3});
    EXPECT_EQ(late.fold.add(StatementEvent{r.e2, std::nullopt, false}), Disposition::Late);
    late.fold.finish();
    EXPECT_FALSE(late.fold.replayed());
    EXPECT_EQ(late.history.reads, 0);

    Fixture duplicate(r.c, stored(r.c, {r.e1, r.e3}), 0, {r.e1, r.e3});
    EXPECT_EQ(duplicate.fold.add(StatementEvent{r.e2, std::nullopt, true}), Disposition::Duplicate);
    EXPECT_EQ(duplicate.fold.add(se(4, std::nullopt, "x")), Disposition::Accepted);
    duplicate.fold.finish();
    EXPECT_FALSE(duplicate.fold.replayed());
    EXPECT_EQ(duplicate.history.reads, 0);
    EXPECT_EQ(duplicate.fold.state().status, Status::Open);
}

// ---- properties ----------------------------------------------------------------------------

namespace {

using witn::testing::Bytes;
using witn::testing::Order;
using witn::testing::Scenario;

constexpr int kScenarios = 4000;

std::vector<std::uint8_t> random_bytes(std::mt19937_64 &rng) {
    std::vector<std::uint8_t> bytes(std::uniform_int_distribution<std::size_t>(0, 400)(rng));
    for (std::uint8_t &b : bytes) b = static_cast<std::uint8_t>(rng());
    return bytes;
}

struct Seen {
    int statements_after_the_first = 0, accepted = 0, late = 0, duplicates = 0, rejected = 0, replays = 0;
};

// Folds random scenarios both ways and counts what they exercised.
Seen check_random_scenarios(std::uint64_t seed, Order order) {
    std::mt19937_64 rng(seed);
    Seen seen;
    for (int i = 0; i < kScenarios; ++i) {
        std::vector<std::uint8_t> bytes = random_bytes(rng);
        Bytes in(bytes.data(), bytes.size());
        Scenario sc = witn::testing::decode_scenario(in, order);
        witn::testing::FoldResult want = witn::testing::reference_fold(sc);
        witn::testing::FoldResult got = witn::testing::statement_folds(sc);
        std::string diff = witn::testing::difference(want, got);
        EXPECT_EQ(diff, "") << "scenario " << i << ": " << witn::testing::describe(sc);
        if (!diff.empty()) break;
        seen.statements_after_the_first += static_cast<int>(sc.statements.size()) - 1;
        seen.replays += got.replayed;
        for (const auto &r : want.rejected) seen.rejected += r.has_value();
        for (const auto &ds : want.dispositions)
            for (Disposition d : ds) {
                seen.accepted += d == Disposition::Accepted;
                seen.late += d == Disposition::Late;
                seen.duplicates += d == Disposition::Duplicate;
            }
    }
    return seen;
}

} // namespace

TEST(StatementFoldProperty, AnySplitIntoStatementsFoldsLikeTheEventsOneByOne) {
    Seen seen = check_random_scenarios(0x5717u, Order::Id);
    EXPECT_GT(seen.statements_after_the_first, 10000);
    EXPECT_GT(seen.accepted, 10000);
    EXPECT_GT(seen.late, 5000);
    EXPECT_GT(seen.duplicates, 3000);
    EXPECT_GT(seen.rejected, 1000);
    EXPECT_EQ(seen.replays, 0); // in id order nothing is replayed
}

TEST(StatementFoldProperty, AnyLockOrderFoldsLikeTheEventsOneByOneInIdOrder) {
    Seen seen = check_random_scenarios(0x0DD5u, Order::Concurrent);
    EXPECT_GT(seen.replays, 1500);
    EXPECT_GT(seen.accepted, 10000);
    EXPECT_GT(seen.rejected, 500);
}
