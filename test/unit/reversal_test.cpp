// The reversal window (CONTRACT §20): what a confirmed outcome with a reversal policy does with an
// event arriving after its resolution — in apply_event, in StatementFold, and in replay_log — and
// the facts both conditions track.
#include "reference_fold.hpp"
#include "test_util.hpp"

#include "core/settlement.hpp"
#include "core/statement_fold.hpp"

#include <limits>

using namespace witn;
using namespace witn::test;
using witn::testing::LogHistory;

namespace {

constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kSettle = 72 * kHour;
constexpr std::int64_t kWindow = 7 * kDay;
constexpr std::int64_t kT0 = 20000 * kDay; // an arbitrary start

const char *kResolved = R"([{"fact":"resolved","operator":"seen"}])";
const char *kResolvedNotEscalated = R"([{"fact":"resolved","operator":"seen"},{"fact":"escalated","operator":"not seen"}])";
const char *kReopened = R"([{"fact":"reopened","operator":"seen"}])";
const char *kCsatAtMost2 = R"([{"fact":"csat","operator":"lte","value":2}])";

const std::string A = "agent-a";

Contract ticket(const char *condition = kResolved, const char *reversal = kReopened, std::int64_t window = kWindow) {
    Contract c = contract_of(condition, kSettle, AttributionMethod::Sum);
    c.reversal = ReversalPolicy{parse_condition(reversal), window};
    return c;
}

// An event received when it occurred.
Event rx(std::string action, std::int64_t at, std::int64_t seq, Scalar value = absent()) {
    Event e = ev(std::move(action), std::move(value), at, seq);
    e.received_at = at;
    return e;
}

// An event as the log stores one accepted in the reversal window (witn.events.after_resolution).
Event in_window(Event e) {
    e.after_resolution = true;
    return e;
}

Event with_attribution(Event e, std::string_view q) {
    e.attribution = D(q);
    return e;
}

// The outcome after `before` (each applied at its received_at) and settlement at resolved_at,
// which must confirm it.
OutcomeState confirmed(const Contract &c, const std::vector<Event> &before, std::int64_t resolved_at) {
    OutcomeState s = OutcomeState::open(c);
    for (const Event &e : before)
        if (apply_event(s, c, e, e.received_at) != Applied::Accepted) throw std::runtime_error("test bug: late");
    std::optional<Status> r = settle(s, resolved_at);
    if (r != Status::Confirmed) throw std::runtime_error("test bug: not confirmed");
    s.status = *r;
    s.resolved_at = resolved_at;
    return s;
}

// The common ticket: resolved at kT0 (attribution 2), settles at kT0 + 72h and is resolved then.
const Event kTicketResolved = with_attribution(rx("resolved", kT0, 1), "2");
constexpr std::int64_t kResolvedAt = kT0 + kSettle;

void expect_same_state(const OutcomeState &got, const OutcomeState &want) {
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.scheduled_resolution, want.scheduled_resolution);
    EXPECT_EQ(got.settles_at, want.settles_at);
    EXPECT_EQ(got.accepted_events, want.accepted_events);
    EXPECT_EQ(got.facts.to_json(), want.facts.to_json());
    EXPECT_EQ(got.attribution.to_json(), want.attribution.to_json());
    EXPECT_EQ(got.condition_holds, want.condition_holds);
    EXPECT_EQ(got.resolved_at, want.resolved_at);
    EXPECT_EQ(got.reversed, want.reversed);
    EXPECT_EQ(got.reversal_holds, want.reversal_holds);
}

StoredOutcome stored_confirmed(const Contract &c, const OutcomeState &state, std::int64_t last_event_id,
                               bool reversed = false) {
    StoredOutcome s;
    s.agent_key = A;
    s.contract = c;
    s.state = state;
    s.state.reversed = reversed;
    s.state.reversal_holds = false; // not stored
    s.last_event_id = last_event_id;
    return s;
}

StatementEvent se(Event e, std::optional<std::string> agent = std::nullopt) {
    return StatementEvent{std::move(e), std::move(agent), false};
}

struct Fold {
    LogHistory history;
    StatementFold fold;
    Fold(StoredOutcome row, std::int64_t now, std::vector<Event> log = {})
        : history(std::move(log)),
          fold("c1", "k1", std::move(row), now, [](const std::string &) -> Contract {
              throw std::logic_error("open_terms called for an existing outcome");
          }, history) {}
};

} // namespace

// ---- the facts both conditions track ---------------------------------------------------------

TEST(ReversalFacts, TwoConditionFactsTrackTheUnionOnce) {
    Facts f(parse_condition(kResolvedNotEscalated), parse_condition(R"([{"fact":"reopened","operator":"seen"},{"fact":"resolved","operator":"count_gte","value":2}])"));
    f.fold("resolved", absent(), 10, 1);
    f.fold("reopened", num("1"), 20, 2);
    f.fold("escalated", absent(), 30, 3);
    f.fold("ignored", absent(), 40, 4);
    ASSERT_NE(f.find("resolved"), nullptr);
    EXPECT_EQ(f.find("resolved")->count, 1); // tracked by both conditions, counted once
    ASSERT_NE(f.find("reopened"), nullptr);
    EXPECT_EQ(f.find("reopened")->count, 1);
    EXPECT_EQ(f.find("reopened")->latest_at, 20);
    EXPECT_EQ(f.find("escalated")->count, 1);
    EXPECT_EQ(f.find("ignored"), nullptr);
    EXPECT_EQ(f.to_json(), R"({"escalated": {"n": 1, "at": 30, "seq": 3}, "reopened": {"n": 1, "at": 20, "seq": 2, "v": 1}, "resolved": {"n": 1, "at": 10, "seq": 1}})");
}

TEST(ReversalFacts, TheContractTracksTheReversalConditionsActions) {
    Contract with = ticket();
    Contract without = contract_of(kResolved, kSettle);
    OutcomeState a = OutcomeState::open(with), b = OutcomeState::open(without);
    for (OutcomeState *s : {&a, &b}) s->facts.fold("reopened", absent(), 5, 1);
    ASSERT_NE(a.facts.find("reopened"), nullptr);
    EXPECT_EQ(a.facts.find("reopened")->count, 1);
    EXPECT_EQ(b.facts.find("reopened"), nullptr);
    // An event before the resolution is kept for the reversal condition too.
    OutcomeState s = OutcomeState::open(with);
    apply_event(s, with, rx("reopened", kT0, 1), kT0);
    EXPECT_EQ(s.facts.to_json(), R"({"reopened": {"n": 1, "at": )" + std::to_string(kT0) + R"(, "seq": 1}})");
    EXPECT_FALSE(s.reversal_holds); // only set by events in the window
    EXPECT_EQ(s.status, Status::Open);
    // The stored facts read back under the same tracking keep it.
    Facts back = Facts::from_json(with.tracked_facts(), s.facts.to_json());
    EXPECT_EQ(back.to_json(), s.facts.to_json());
    EXPECT_EQ(Facts::from_json(without.tracked_facts(), s.facts.to_json()).to_json(), "{}");
}

// ---- in_reversal_window ----------------------------------------------------------------------

TEST(ReversalWindow, IsHalfOpenFromResolvedAt) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    EXPECT_FALSE(in_reversal_window(s, c, kResolvedAt - 1));
    EXPECT_TRUE(in_reversal_window(s, c, kResolvedAt));
    EXPECT_TRUE(in_reversal_window(s, c, kResolvedAt + 3 * kDay));
    EXPECT_TRUE(in_reversal_window(s, c, kResolvedAt + kWindow - 1));
    EXPECT_FALSE(in_reversal_window(s, c, kResolvedAt + kWindow));
    EXPECT_FALSE(in_reversal_window(s, c, kResolvedAt + 30 * kDay));
    EXPECT_FALSE(in_reversal_window(s, c, std::numeric_limits<std::int64_t>::min()));
    EXPECT_FALSE(in_reversal_window(s, c, std::numeric_limits<std::int64_t>::max()));
}

TEST(ReversalWindow, NeedsAConfirmedOutcomeAPolicyAndAResolution) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const std::int64_t inside = kResolvedAt + kDay;
    ASSERT_TRUE(in_reversal_window(s, c, inside));
    for (Status st : {Status::Open, Status::Pending, Status::Failed}) {
        OutcomeState t = s;
        t.status = st;
        EXPECT_FALSE(in_reversal_window(t, c, inside)) << status_name(st);
    }
    OutcomeState unresolved = s;
    unresolved.resolved_at.reset();
    EXPECT_FALSE(in_reversal_window(unresolved, c, inside));
    Contract no_policy = c;
    no_policy.reversal.reset();
    EXPECT_FALSE(in_reversal_window(s, no_policy, inside));
}

TEST(ReversalWindow, FarApartTimestampsDoNotOverflow) {
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    Contract c = ticket(kResolved, kReopened, 180 * kDay);
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    s.resolved_at = kMin;
    EXPECT_TRUE(in_reversal_window(s, c, kMin));
    EXPECT_TRUE(in_reversal_window(s, c, kMin + 180 * kDay - 1));
    EXPECT_FALSE(in_reversal_window(s, c, kMin + 180 * kDay));
    EXPECT_FALSE(in_reversal_window(s, c, kMax));
    s.resolved_at = kMax - 10;
    EXPECT_TRUE(in_reversal_window(s, c, kMax));
    EXPECT_FALSE(in_reversal_window(s, c, kMin));
    EXPECT_FALSE(in_reversal_window(s, c, 0));
}

// ---- apply_event in the window ---------------------------------------------------------------

TEST(ReversalApply, AnEventInTheWindowFoldsButKeepsStatusAndTimer) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const OutcomeState before = s;
    Event reopened = with_attribution(rx("reopened", kResolvedAt + 3 * kDay, 2), "5");
    reopened.settles_at = kResolvedAt + 100 * kDay; // would move an unresolved outcome's timer
    EXPECT_EQ(apply_event(s, c, reopened, reopened.received_at), Applied::Accepted);
    EXPECT_EQ(s.status, Status::Confirmed);
    EXPECT_EQ(s.scheduled_resolution, before.scheduled_resolution);
    EXPECT_EQ(s.settles_at, kT0 + kSettle);
    EXPECT_EQ(s.resolved_at, kResolvedAt);
    EXPECT_EQ(s.accepted_events, 2);
    ASSERT_NE(s.facts.find("reopened"), nullptr);
    EXPECT_EQ(s.facts.find("reopened")->count, 1);
    EXPECT_EQ(s.facts.find("reopened")->latest_seq, 2);
    // The billed quantity stays: an attribution in the window is not folded.
    EXPECT_EQ(s.attribution.count, 1);
    EXPECT_EQ(s.attribution.quantity(AttributionMethod::Sum), D("2"));
    EXPECT_TRUE(s.condition_holds);
    EXPECT_TRUE(s.reversal_holds);
    EXPECT_FALSE(s.reversed); // apply_event never marks it: the caller reverses
}

TEST(ReversalApply, AnEventThatDoesNotMeetTheReversalCondition) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    EXPECT_EQ(apply_event(s, c, rx("resolved", kResolvedAt + kDay, 2), kResolvedAt + kDay), Applied::Accepted);
    EXPECT_EQ(s.accepted_events, 2);
    EXPECT_EQ(s.facts.find("resolved")->count, 2);
    EXPECT_FALSE(s.reversal_holds);
    // An untracked action is still an accepted event.
    EXPECT_EQ(apply_event(s, c, rx("note", kResolvedAt + 2 * kDay, 3), kResolvedAt + 2 * kDay), Applied::Accepted);
    EXPECT_EQ(s.accepted_events, 3);
    EXPECT_EQ(s.facts.find("note"), nullptr);
    EXPECT_FALSE(s.reversal_holds);
}

TEST(ReversalApply, ConditionHoldsIsRecomputedButTheStatusStays) {
    Contract c = ticket(kResolvedNotEscalated, R"([{"fact":"escalated","operator":"seen"}])");
    OutcomeState s = confirmed(c, {rx("resolved", kT0, 1)}, kResolvedAt);
    ASSERT_TRUE(s.condition_holds);
    ASSERT_EQ(s.scheduled_resolution, Status::Confirmed);
    EXPECT_EQ(apply_event(s, c, rx("escalated", kResolvedAt, 2), kResolvedAt), Applied::Accepted);
    EXPECT_FALSE(s.condition_holds);
    EXPECT_TRUE(s.reversal_holds);
    EXPECT_EQ(s.status, Status::Confirmed);
    EXPECT_EQ(s.scheduled_resolution, Status::Confirmed);
}

TEST(ReversalApply, ReversalHoldsFollowsTheLatestEvent) {
    Contract c = ticket(kResolved, kCsatAtMost2);
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    apply_event(s, c, rx("csat", kResolvedAt + 10, 2, num("1")), kResolvedAt + 10);
    EXPECT_TRUE(s.reversal_holds);
    apply_event(s, c, rx("csat", kResolvedAt + 20, 3, num("5")), kResolvedAt + 20);
    EXPECT_FALSE(s.reversal_holds);
    // Back-dated: counts, but the latest value stays 5.
    apply_event(s, c, rx("csat", kResolvedAt + 15, 4, num("1")), kResolvedAt + 30);
    EXPECT_FALSE(s.reversal_holds);
    EXPECT_EQ(s.facts.find("csat")->count, 3);
    EXPECT_EQ(s.accepted_events, 4);
}

TEST(ReversalApply, OutsideTheWindowIsLateAndChangesNothing) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const OutcomeState before = s;
    for (std::int64_t now : {kResolvedAt + kWindow, kResolvedAt + kWindow + 1, kResolvedAt + 365 * kDay, kResolvedAt - 1}) {
        EXPECT_EQ(apply_event(s, c, with_attribution(rx("reopened", now, 2), "9"), now), Applied::Late) << now;
        expect_same_state(s, before);
    }
}

TEST(ReversalApply, AFailedOutcomeIsLateEvenWithinThePeriod) {
    Contract c = ticket(kResolvedNotEscalated);
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, rx("resolved", kT0, 1), kT0);
    apply_event(s, c, rx("escalated", kT0 + 1, 2), kT0 + 1);
    ASSERT_EQ(settle(s, kT0 + 1 + kSettle), Status::Failed);
    s.status = Status::Failed;
    s.resolved_at = kT0 + 1 + kSettle;
    const OutcomeState before = s;
    EXPECT_EQ(apply_event(s, c, rx("reopened", kT0 + 1 + kSettle + kDay, 3), kT0 + 1 + kSettle + kDay), Applied::Late);
    expect_same_state(s, before);
}

TEST(ReversalApply, WithoutAPolicyAConfirmedOutcomeIsLate) {
    Contract c = contract_of(kResolved, kSettle, AttributionMethod::Sum);
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const OutcomeState before = s;
    EXPECT_EQ(apply_event(s, c, rx("resolved", kResolvedAt, 2), kResolvedAt), Applied::Late);
    EXPECT_EQ(apply_event(s, c, rx("resolved", kResolvedAt + kDay, 3), kResolvedAt + kDay), Applied::Late);
    expect_same_state(s, before);
}

TEST(ReversalApply, AnUnresolvedOutcomeNeverSetsReversalHolds) {
    Contract c = ticket();
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, rx("resolved", kT0, 1), kT0);
    apply_event(s, c, rx("reopened", kT0 + 1, 2), kT0 + 1);
    EXPECT_EQ(s.status, Status::Pending);
    EXPECT_FALSE(s.reversal_holds);
    EXPECT_EQ(s.facts.find("reopened")->count, 1);
    EXPECT_EQ(s.settles_at, kT0 + 1 + kSettle);
}

// ---- StatementFold on a confirmed outcome ----------------------------------------------------

TEST(ReversalStatementFold, ATicketReopenedWithinSevenDaysIsReversed) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const std::int64_t now = kResolvedAt + 6 * kDay;
    Fold f(stored_confirmed(c, s, 1), now);
    EXPECT_EQ(f.fold.add(se(with_attribution(rx("reopened", now, 2), "1"), A)), Disposition::InReversalWindow);
    f.fold.finish();
    EXPECT_TRUE(f.fold.reverses());
    EXPECT_FALSE(f.fold.replayed());
    EXPECT_FALSE(f.fold.opens());
    EXPECT_EQ(f.fold.state().status, Status::Confirmed);
    EXPECT_EQ(f.fold.state().settles_at, kT0 + kSettle);
    EXPECT_EQ(f.fold.state().resolved_at, kResolvedAt);
    EXPECT_EQ(f.fold.state().accepted_events, 2);
    EXPECT_EQ(f.fold.state().facts.find("reopened")->count, 1);
    EXPECT_EQ(f.fold.quantity(), D("2")); // billed at confirmation: the window event's attribution is not folded
    EXPECT_EQ(f.fold.late_events(), 0);
    EXPECT_EQ(f.fold.last_event_id(), 2);
}

TEST(ReversalStatementFold, TheSameEventAfterSevenDaysIsLate) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    for (std::int64_t now : {kResolvedAt + kWindow, kResolvedAt + 8 * kDay}) {
        StoredOutcome row = stored_confirmed(c, s, 1);
        row.late_events = 3;
        Fold f(row, now);
        EXPECT_EQ(f.fold.add(se(rx("reopened", now, 2))), Disposition::Late);
        f.fold.finish();
        EXPECT_FALSE(f.fold.reverses());
        EXPECT_EQ(f.fold.late_events(), 4);
        EXPECT_EQ(f.fold.state().accepted_events, 1);
        EXPECT_EQ(f.fold.state().facts.find("reopened"), nullptr);
        EXPECT_EQ(f.fold.last_event_id(), 1); // a late event is not applied
    }
}

TEST(ReversalStatementFold, AnAlreadyReversedOutcomeIsNotReversedAgain) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    Fold f(stored_confirmed(c, s, 1, /*reversed=*/true), kResolvedAt + kDay);
    EXPECT_EQ(f.fold.add(se(rx("reopened", kResolvedAt + kDay, 2))), Disposition::InReversalWindow);
    f.fold.finish();
    EXPECT_FALSE(f.fold.reverses());
    EXPECT_TRUE(f.fold.state().reversed);
    EXPECT_TRUE(f.fold.state().reversal_holds);
    EXPECT_EQ(f.fold.state().accepted_events, 2);
}

TEST(ReversalStatementFold, AnEventNotMeetingTheConditionDoesNotReverse) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    Fold f(stored_confirmed(c, s, 1), kResolvedAt + kDay);
    EXPECT_EQ(f.fold.add(se(rx("resolved", kResolvedAt + kDay, 2))), Disposition::InReversalWindow);
    f.fold.finish();
    EXPECT_FALSE(f.fold.reverses());
    EXPECT_FALSE(f.fold.state().reversed);
    EXPECT_EQ(f.fold.state().accepted_events, 2);
    EXPECT_EQ(f.fold.state().facts.find("resolved")->count, 2);
}

TEST(ReversalStatementFold, TheReversalIsALatch) {
    Contract c = ticket(kResolved, kCsatAtMost2);
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const std::int64_t now = kResolvedAt + kDay;
    Fold f(stored_confirmed(c, s, 1), now);
    EXPECT_EQ(f.fold.add(se(ev("csat", num("5"), now, 2))), Disposition::InReversalWindow);
    EXPECT_FALSE(f.fold.reverses());
    EXPECT_EQ(f.fold.add(se(ev("csat", num("1"), now + 1, 3))), Disposition::InReversalWindow);
    EXPECT_TRUE(f.fold.reverses());
    EXPECT_EQ(f.fold.add(se(ev("csat", num("4"), now + 2, 4))), Disposition::InReversalWindow);
    f.fold.finish();
    EXPECT_TRUE(f.fold.reverses()); // taken once, not undone
    EXPECT_FALSE(f.fold.state().reversal_holds);
    EXPECT_TRUE(f.fold.state().reversed);
    EXPECT_EQ(f.fold.state().accepted_events, 4);
    EXPECT_EQ(f.fold.state().facts.find("csat")->count, 3);
}

TEST(ReversalStatementFold, LowerIdsDoNotReplayAConfirmedOutcome) {
    Contract c = ticket();
    // A concurrent transaction applied ids 1 and 10 (both accepted) before this statement's 5.
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    const std::int64_t now = kResolvedAt + kDay;
    Event later = rx("resolved", now, 10);
    ASSERT_EQ(apply_event(s, c, later, now), Applied::Accepted);
    Fold f(stored_confirmed(c, s, 10), now, {kTicketResolved, later});
    EXPECT_EQ(f.fold.add(se(rx("reopened", now - 5, 5))), Disposition::InReversalWindow);
    f.fold.finish();
    EXPECT_FALSE(f.fold.replayed());
    EXPECT_EQ(f.history.reads, 0); // the stored history was never read
    EXPECT_TRUE(f.fold.reverses());
    EXPECT_EQ(f.fold.state().accepted_events, 3);
    EXPECT_EQ(f.fold.state().facts.find("resolved")->count, 2);
    EXPECT_EQ(f.fold.state().facts.find("reopened")->count, 1);
    EXPECT_EQ(f.fold.state().status, Status::Confirmed);
    EXPECT_EQ(f.fold.last_event_id(), 10);
}

TEST(ReversalStatementFold, WithoutAResolvedAtEventsAreLate) {
    Contract c = ticket();
    OutcomeState s = confirmed(c, {kTicketResolved}, kResolvedAt);
    s.resolved_at.reset();
    Fold f(stored_confirmed(c, s, 1), kResolvedAt + kDay);
    EXPECT_EQ(f.fold.add(se(rx("reopened", kResolvedAt + kDay, 2))), Disposition::Late);
    f.fold.finish();
    EXPECT_FALSE(f.fold.reverses());
    EXPECT_EQ(f.fold.late_events(), 1);
}

// ---- replay_log ------------------------------------------------------------------------------

TEST(ReversalReplay, ReproducesTheIncrementalFold) {
    Contract c = ticket();
    // Before the resolution: the events trigger, one statement each, at their arrival.
    std::vector<Event> log = {kTicketResolved, with_attribution(rx("note", kT0 + kHour, 2), "0.5")};
    OutcomeState s = confirmed(c, log, kT0 + kHour + kSettle);
    const std::int64_t resolved_at = kT0 + kHour + kSettle;
    // In the window: two statements.
    std::vector<Event> window = {with_attribution(rx("resolved", resolved_at + kDay, 3), "1"),
                                 rx("reopened", resolved_at + 2 * kDay, 4, str("customer"))};
    StoredOutcome row = stored_confirmed(c, s, 2);
    bool reversed = false;
    for (const Event &e : window) {
        Fold f(row, e.received_at);
        ASSERT_EQ(f.fold.add(se(e)), Disposition::InReversalWindow);
        f.fold.finish();
        reversed = reversed || f.fold.reverses();
        row.state = f.fold.state();
        row.last_event_id = f.fold.last_event_id();
        log.push_back(in_window(e)); // as the trigger logs an event the window took
    }
    ASSERT_TRUE(reversed);

    Replay r = replay_log(c, log, resolved_at);
    EXPECT_EQ(r.resolution, Status::Confirmed);
    EXPECT_TRUE(r.reversal_held);
    EXPECT_EQ(r.state.status, Status::Confirmed);
    EXPECT_EQ(r.state.resolved_at, resolved_at);
    EXPECT_EQ(r.state.facts.to_json(), row.state.facts.to_json());
    EXPECT_EQ(r.state.attribution.to_json(), row.state.attribution.to_json());
    EXPECT_EQ(r.state.accepted_events, 4);
    EXPECT_EQ(r.state.accepted_events, row.state.accepted_events);
    EXPECT_EQ(r.state.condition_holds, row.state.condition_holds);
    EXPECT_EQ(r.state.settles_at, row.state.settles_at);
    EXPECT_EQ(r.state.scheduled_resolution, row.state.scheduled_resolution);
    // The window event's attribution (1) is not billed.
    EXPECT_EQ(r.state.attribution.quantity(AttributionMethod::Sum), D("2.5"));
}

TEST(ReversalReplay, AnEventTheWindowDoesNotTakeIsLeftOut) {
    Contract c = ticket();
    Event reopened_late = in_window(rx("reopened", kResolvedAt + kWindow, 2)); // the log disagrees with the contract
    Replay r = replay_log(c, {kTicketResolved, reopened_late}, kResolvedAt);
    EXPECT_EQ(r.resolution, Status::Confirmed);
    EXPECT_FALSE(r.reversal_held);
    EXPECT_EQ(r.state.accepted_events, 1);
    EXPECT_EQ(r.state.facts.find("reopened"), nullptr);
    // One microsecond earlier it is taken.
    Event reopened = in_window(rx("reopened", kResolvedAt + kWindow - 1, 2));
    Replay in = replay_log(c, {kTicketResolved, reopened}, kResolvedAt);
    EXPECT_TRUE(in.reversal_held);
    EXPECT_EQ(in.state.accepted_events, 2);
}

TEST(ReversalReplay, AnEventReceivedAtResolvedAtIsInTheWindow) {
    Contract c = ticket();
    Replay r = replay_log(c, {kTicketResolved, in_window(rx("reopened", kResolvedAt, 2))}, kResolvedAt);
    EXPECT_EQ(r.resolution, Status::Confirmed);
    EXPECT_TRUE(r.reversal_held);
    EXPECT_EQ(r.state.accepted_events, 2);
    EXPECT_EQ(r.state.settles_at, kT0 + kSettle); // the window event did not move the timer
}

TEST(ReversalReplay, EventsBeforeTheResolutionDecideIt) {
    // escalated before the resolution fails the outcome; after it (in the window) it would not.
    Contract c = ticket(kResolvedNotEscalated, R"([{"fact":"escalated","operator":"seen"}])");
    Replay before = replay_log(c, {rx("resolved", kT0, 1), rx("escalated", kT0 + 1, 2)}, kT0 + 1 + kSettle);
    EXPECT_EQ(before.resolution, Status::Failed);
    EXPECT_EQ(before.state.status, Status::Failed);
    EXPECT_FALSE(before.reversal_held);

    Replay after = replay_log(c, {rx("resolved", kT0, 1), in_window(rx("escalated", kResolvedAt + 1, 2))}, kResolvedAt);
    EXPECT_EQ(after.resolution, Status::Confirmed);
    EXPECT_EQ(after.state.status, Status::Confirmed);
    EXPECT_TRUE(after.reversal_held);
    EXPECT_FALSE(after.state.condition_holds);
    EXPECT_EQ(after.state.accepted_events, 2);
}

TEST(ReversalReplay, AFailedOutcomeFoldsNoWindowEvents) {
    Contract c = ticket(kResolvedNotEscalated);
    const std::int64_t resolved_at = kT0 + 1 + kSettle;
    Replay r = replay_log(c, {rx("resolved", kT0, 1), rx("escalated", kT0 + 1, 2), in_window(rx("reopened", resolved_at + kDay, 3))},
                          resolved_at);
    EXPECT_EQ(r.resolution, Status::Failed);
    EXPECT_FALSE(r.reversal_held);
    EXPECT_EQ(r.state.accepted_events, 2);
    EXPECT_EQ(r.state.facts.find("reopened"), nullptr);
}

TEST(ReversalReplay, ReversalHeldIsTrueIfItHeldAfterAnyWindowEvent) {
    Contract c = ticket(kResolved, kCsatAtMost2);
    Replay r = replay_log(c, {kTicketResolved, in_window(rx("csat", kResolvedAt + 1, 2, num("1"))),
                                 in_window(rx("csat", kResolvedAt + 2, 3, num("5")))},
                          kResolvedAt);
    EXPECT_TRUE(r.reversal_held);
    EXPECT_FALSE(r.state.reversal_holds);
    EXPECT_EQ(r.state.accepted_events, 3);
    // A reversal fact seen only before the resolution is not a reversal on its own.
    Replay pre = replay_log(c, {kTicketResolved, rx("csat", kT0 + 1, 2, num("1"))}, kT0 + 1 + kSettle);
    EXPECT_EQ(pre.resolution, Status::Confirmed);
    EXPECT_FALSE(pre.reversal_held);
    EXPECT_EQ(pre.state.facts.find("csat")->count, 1);
}

TEST(ReversalReplay, WithoutAResolutionEveryEventIsFolded) {
    Contract c = ticket();
    Replay r = replay_log(c, {kTicketResolved, rx("reopened", kT0 + kHour, 2)}, std::nullopt);
    EXPECT_FALSE(r.resolution.has_value());
    EXPECT_FALSE(r.reversal_held);
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_FALSE(r.state.resolved_at.has_value());
    EXPECT_EQ(r.state.accepted_events, 2);
    EXPECT_EQ(r.state.settles_at, kT0 + kHour + kSettle);
    EXPECT_EQ(r.state.facts.find("reopened")->count, 1);
    EXPECT_FALSE(r.state.reversal_holds);
}

TEST(ReversalReplay, TheWindowEventsAreTheMarkedOnes) {
    // witn.events.after_resolution, not received_at, says which events the window took: an
    // unmarked event received after resolved_at is folded with those that decide the resolution,
    // where it moves the timer past resolved_at, so no resolution is reproduced (replay reports
    // the difference).
    Contract c = ticket();
    Replay r = replay_log(c, {kTicketResolved, rx("reopened", kResolvedAt + 1, 2)}, kResolvedAt);
    EXPECT_FALSE(r.resolution.has_value());
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.state.settles_at, kResolvedAt + 1 + kSettle);
    EXPECT_FALSE(r.reversal_held);
    EXPECT_EQ(r.state.accepted_events, 2);
    // Without a resolution a marked event is folded like any other.
    Replay open = replay_log(c, {kTicketResolved, in_window(rx("reopened", kT0 + 1, 2))}, std::nullopt);
    EXPECT_EQ(open.state.accepted_events, 2);
    EXPECT_EQ(open.state.status, Status::Pending);
    EXPECT_FALSE(open.reversal_held);
}

// ---- settling before an event in the window --------------------------------------------------

TEST(ReversalSettleFirst, ADueOutcomeThatWillConfirmIsSettledBeforeAWindowEvent) {
    Contract c = ticket();
    OutcomeState s = OutcomeState::open(c);
    ASSERT_EQ(apply_event(s, c, rx("resolved", kT0, 1), kT0), Applied::Accepted);
    ASSERT_EQ(s.status, Status::Pending);
    EXPECT_FALSE(settles_before_event(s, c, kResolvedAt - 1));      // not due yet: the event applies as usual
    EXPECT_TRUE(settles_before_event(s, c, kResolvedAt));           // due, to be confirmed, the window open
    EXPECT_TRUE(settles_before_event(s, c, kResolvedAt + kWindow - 1));
    EXPECT_FALSE(settles_before_event(s, c, kResolvedAt + kWindow)); // its window has passed: late, as before
}

TEST(ReversalSettleFirst, NotWhenItWillFailOrHasNoPolicyOrIsSettled) {
    Contract c = ticket();
    OutcomeState fails = OutcomeState::open(c);
    ASSERT_EQ(apply_event(fails, c, rx("other", kT0, 1), kT0), Applied::Accepted);
    ASSERT_EQ(fails.status, Status::Open); // will FAIL
    EXPECT_FALSE(settles_before_event(fails, c, kResolvedAt));
    Contract plain = c;
    plain.reversal.reset();
    OutcomeState s = OutcomeState::open(plain);
    ASSERT_EQ(apply_event(s, plain, rx("resolved", kT0, 1), kT0), Applied::Accepted);
    EXPECT_FALSE(settles_before_event(s, plain, kResolvedAt));
    OutcomeState settled = confirmed(c, {kTicketResolved}, kResolvedAt);
    EXPECT_FALSE(settles_before_event(settled, c, kResolvedAt + kDay));
    EXPECT_FALSE(settles_before_event(OutcomeState::open(c), c, kResolvedAt)); // no event yet
}
