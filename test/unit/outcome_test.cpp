// The outcome state machine: transitions, the timer, explicit settles_at, late events, settle().
#include "test_util.hpp"

#include <limits>

using namespace witn;
using namespace witn::test;

namespace {

constexpr std::int64_t kPeriod = 72 * kHour;

Contract contract(std::string_view condition, std::int64_t period = kPeriod,
                  AttributionMethod method = AttributionMethod::Last) {
    return contract_of(condition, period, method);
}

Event at(std::string action, std::int64_t occurred_at, std::int64_t seq, Scalar value = absent()) {
    return ev(std::move(action), std::move(value), occurred_at, seq);
}

std::string event_error(const Event &e) {
    return validation_message([&] { validate_event(e); });
}

const char *kSeenA = R"([{"fact":"a","operator":"seen"}])";
const char *kANotB = R"([{"fact":"a","operator":"seen"},{"fact":"b","operator":"not seen"}])";

} // namespace

TEST(Status, Names) {
    EXPECT_STREQ(status_name(Status::Open), "OPEN");
    EXPECT_STREQ(status_name(Status::Pending), "PENDING");
    EXPECT_STREQ(status_name(Status::Confirmed), "CONFIRMED");
    EXPECT_STREQ(status_name(Status::Failed), "FAILED");
    for (Status s : {Status::Open, Status::Pending, Status::Confirmed, Status::Failed})
        EXPECT_EQ(status_from_name(status_name(s)), s);
    EXPECT_FALSE(status_from_name("open").has_value());
    EXPECT_FALSE(status_from_name("").has_value());
}

TEST(ValidateEvent, Attribution) {
    Event e = at("a", 0, 1);
    EXPECT_NO_THROW(validate_event(e));
    e.attribution = D("0");
    EXPECT_NO_THROW(validate_event(e));
    e.attribution = D("-0");
    EXPECT_NO_THROW(validate_event(e));
    e.attribution = D("1.2");
    EXPECT_NO_THROW(validate_event(e));
    e.attribution = D("-0.000001");
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)");
    EXPECT_EQ(thrown_by([&] { validate_event(e); }).detail, "at properties.attribution");
    e.attribution = D("-1");
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)");
}

TEST(ValidateEvent, PathUnderTheGivenProperties) {
    Event e = at("a", 0, 1);
    e.attribution = D("-1");
    Thrown t = thrown_by([&] { validate_event(e, "[3].properties"); });
    EXPECT_EQ(t.message, "VALIDATION_ERROR: [3].properties.attribution must be a non-negative number (the billing quantity)");
    EXPECT_EQ(t.detail, "at [3].properties.attribution");
    EXPECT_NE(t.hint, "");
    e.attribution.reset();
    e.settles_at = -1;
    EXPECT_EQ(validation_message([&] { validate_event(e, "[0].properties"); }),
              "VALIDATION_ERROR: [0].properties.settles_at must be an ISO timestamp not before occurred_at");
}

TEST(ValidateEvent, SettlesAt) {
    constexpr std::int64_t k180d = 180 * 24 * kHour;
    Event e = at("a", 1000, 1);
    e.settles_at = 1000;
    EXPECT_NO_THROW(validate_event(e));
    e.settles_at = 1000 + k180d;
    EXPECT_NO_THROW(validate_event(e));
    e.settles_at = 1000 + k180d + 1;
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.settles_at must be an ISO timestamp at most 180 days after occurred_at");
    e.settles_at = 999;
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.settles_at must be an ISO timestamp not before occurred_at");
    // PostgreSQL's finite timestamptz range spans more than int64: no overflow at its ends.
    constexpr std::int64_t kPgMin = -211813488000000000LL;      // 4714-11-24 BC
    constexpr std::int64_t kPgMax = 9223371331200000000LL - 1;  // just before 294277-01-01
    e.occurred_at = kPgMin;
    e.settles_at = kPgMax;
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.settles_at must be an ISO timestamp at most 180 days after occurred_at");
    e.occurred_at = std::numeric_limits<std::int64_t>::min();
    e.settles_at = std::numeric_limits<std::int64_t>::max();
    EXPECT_EQ(event_error(e), "VALIDATION_ERROR: properties.settles_at must be an ISO timestamp at most 180 days after occurred_at");
    e.occurred_at = kPgMax - 10;
    e.settles_at = kPgMax;
    EXPECT_NO_THROW(validate_event(e));
}

TEST(OutcomeOpen, StartsOpenAndEmpty) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    EXPECT_EQ(s.status, Status::Open);
    EXPECT_FALSE(s.scheduled_resolution.has_value());
    EXPECT_EQ(s.accepted_events, 0);
    EXPECT_EQ(s.facts.to_json(), "{}");
    EXPECT_EQ(s.attribution.count, 0);
    EXPECT_FALSE(settle(s, std::numeric_limits<std::int64_t>::max()).has_value()); // no events: no timer
}

TEST(OutcomeApply, OpenFalseStaysOpen) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    EXPECT_EQ(apply_event(s, c, at("other", 1000, 1), 1000), Applied::Accepted);
    EXPECT_EQ(s.status, Status::Open);
    EXPECT_FALSE(s.scheduled_resolution.has_value());
    EXPECT_FALSE(s.condition_holds);
    EXPECT_EQ(s.accepted_events, 1); // every accepted event counts and moves the timer
    EXPECT_EQ(s.settles_at, 1000 + kPeriod);
}

TEST(OutcomeApply, OpenTrueBecomesPendingConfirmed) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    EXPECT_EQ(apply_event(s, c, at("a", 1000, 1), 1000), Applied::Accepted);
    EXPECT_EQ(s.status, Status::Pending);
    EXPECT_EQ(s.scheduled_resolution, Status::Confirmed);
    EXPECT_TRUE(s.condition_holds);
    EXPECT_EQ(s.settles_at, 1000 + kPeriod);
}

TEST(OutcomeApply, PendingFollowsTheCurrentResult) {
    Contract c = contract(kANotB);
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, at("a", 0, 1), 0);
    ASSERT_EQ(s.status, Status::Pending);
    apply_event(s, c, at("b", 10, 2), 10);
    EXPECT_EQ(s.status, Status::Pending); // stays PENDING, will fail
    EXPECT_EQ(s.scheduled_resolution, Status::Failed);
    EXPECT_FALSE(s.condition_holds);
    apply_event(s, c, at("a", 20, 3), 20);
    EXPECT_EQ(s.scheduled_resolution, Status::Failed); // b stays seen
    EXPECT_EQ(settle(s, s.settles_at), Status::Failed);
}

TEST(OutcomeApply, PendingCanRecover) {
    Contract c = contract(R"([{"fact":"csat","operator":"gte","value":4}])");
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, at("csat", 0, 1, num("5")), 0);
    EXPECT_EQ(s.scheduled_resolution, Status::Confirmed);
    apply_event(s, c, at("csat", 10, 2, num("3")), 10);
    EXPECT_EQ(s.scheduled_resolution, Status::Failed);
    apply_event(s, c, at("csat", 5, 3, num("5")), 20); // back-dated: not the latest value
    EXPECT_EQ(s.scheduled_resolution, Status::Failed);
    apply_event(s, c, at("csat", 30, 4, num("4")), 30);
    EXPECT_EQ(s.scheduled_resolution, Status::Confirmed);
    EXPECT_EQ(s.status, Status::Pending);
    EXPECT_EQ(settle(s, s.settles_at), Status::Confirmed);
}

TEST(OutcomeTimer, MovesLaterNeverEarlier) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, at("a", 1000, 1), 1000);
    EXPECT_EQ(s.settles_at, 1000 + kPeriod);
    apply_event(s, c, at("a", 2000, 2), 2000);
    EXPECT_EQ(s.settles_at, 2000 + kPeriod);
    apply_event(s, c, at("a", 500, 3), 2500); // back-dated
    EXPECT_EQ(s.settles_at, 2000 + kPeriod);
    apply_event(s, c, at("x", 2000, 4), 2600); // same time: unchanged
    EXPECT_EQ(s.settles_at, 2000 + kPeriod);
    EXPECT_EQ(s.accepted_events, 4);
}

TEST(OutcomeTimer, ExplicitSettlesAt) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    Event first = at("a", 1000, 1);
    first.settles_at = 1000 + kHour; // shorter than the period: honoured on the first event
    apply_event(s, c, first, 1000);
    EXPECT_EQ(s.settles_at, 1000 + kHour);
    Event earlier = at("a", 1100, 2);
    earlier.settles_at = 1100; // earlier than the current timer: ignored
    apply_event(s, c, earlier, 1100);
    EXPECT_EQ(s.settles_at, 1000 + kHour);
    Event later = at("a", 1200, 3);
    later.settles_at = 1200 + 100 * kHour; // later: moves the timer
    apply_event(s, c, later, 1200);
    EXPECT_EQ(s.settles_at, 1200 + 100 * kHour);
    // Without settles_at the period applies again, but only if later.
    apply_event(s, c, at("a", 1300, 4), 1300);
    EXPECT_EQ(s.settles_at, 1200 + 100 * kHour);
}

TEST(OutcomeTimer, SaturatesAtTheEndOfTime) {
    Contract c = contract(kSeenA, 180 * 24 * kHour);
    OutcomeState s = OutcomeState::open(c);
    constexpr std::int64_t kPgMax = 9223371331200000000LL - 1;
    EXPECT_EQ(apply_event(s, c, at("a", kPgMax, 1), kPgMax), Applied::Accepted);
    EXPECT_EQ(s.settles_at, std::numeric_limits<std::int64_t>::max());
    EXPECT_FALSE(settle(s, kPgMax).has_value());
}

TEST(OutcomeLate, DueOutcomesRejectEvents) {
    Contract c = contract(kANotB);
    OutcomeState s = OutcomeState::open(c);
    apply_event(s, c, at("a", 0, 1), 0);
    const std::int64_t due = s.settles_at;
    // Just before the timer: accepted (and the timer moves).
    EXPECT_EQ(apply_event(s, c, at("x", 0, 2), due - 1), Applied::Accepted);
    EXPECT_EQ(s.settles_at, due);
    // At or after settles_at: late, nothing changes.
    OutcomeState before = s;
    EXPECT_EQ(apply_event(s, c, at("b", due, 3), due), Applied::Late);
    EXPECT_EQ(apply_event(s, c, at("b", 1, 4), due + 1000), Applied::Late); // even back-dated
    EXPECT_EQ(s.status, before.status);
    EXPECT_EQ(s.scheduled_resolution, before.scheduled_resolution);
    EXPECT_EQ(s.settles_at, before.settles_at);
    EXPECT_EQ(s.accepted_events, before.accepted_events);
    EXPECT_EQ(s.facts.to_json(), before.facts.to_json());
    EXPECT_EQ(s.attribution.to_json(), before.attribution.to_json());
    EXPECT_EQ(s.condition_holds, before.condition_holds);
    EXPECT_EQ(settle(s, due), Status::Confirmed); // b never counted
}

TEST(OutcomeLate, ResolvedOutcomesRejectEvents) {
    Contract c = contract(kSeenA);
    for (Status resolved : {Status::Confirmed, Status::Failed}) {
        OutcomeState s = OutcomeState::open(c);
        apply_event(s, c, at("a", 0, 1), 0);
        s.status = resolved;
        Event e = at("a", 1, 2);
        e.attribution = D("5");
        EXPECT_EQ(apply_event(s, c, e, 1), Applied::Late);
        EXPECT_EQ(s.accepted_events, 1);
        EXPECT_EQ(s.attribution.count, 0);
        EXPECT_FALSE(settle(s, std::numeric_limits<std::int64_t>::max()).has_value());
    }
}

TEST(OutcomeLate, TheFirstEventIsNeverLate) {
    Contract c = contract(kSeenA);
    OutcomeState s = OutcomeState::open(c);
    // Arrives long after its own occurred_at + period: it opens the outcome anyway.
    EXPECT_EQ(apply_event(s, c, at("a", 0, 1), 10 * kPeriod), Applied::Accepted);
    EXPECT_EQ(s.settles_at, kPeriod);
    // ...which is then already due.
    EXPECT_EQ(apply_event(s, c, at("a", 0, 2), 10 * kPeriod), Applied::Late);
    EXPECT_EQ(settle(s, 10 * kPeriod), Status::Confirmed);
}

TEST(OutcomeSettle, Transitions) {
    Contract c = contract(kANotB);
    OutcomeState open = OutcomeState::open(c);
    apply_event(open, c, at("x", 0, 1), 0);
    ASSERT_EQ(open.status, Status::Open);
    EXPECT_FALSE(settle(open, open.settles_at - 1).has_value());
    EXPECT_EQ(settle(open, open.settles_at), Status::Failed);
    EXPECT_EQ(settle(open, open.settles_at + 1), Status::Failed);

    OutcomeState confirm = OutcomeState::open(c);
    apply_event(confirm, c, at("a", 0, 1), 0);
    EXPECT_FALSE(settle(confirm, confirm.settles_at - 1).has_value());
    EXPECT_EQ(settle(confirm, confirm.settles_at), Status::Confirmed);

    OutcomeState fail = confirm;
    apply_event(fail, c, at("b", 1, 2), 1);
    EXPECT_EQ(settle(fail, fail.settles_at), Status::Failed);
    // settle() does not change the state itself.
    EXPECT_EQ(fail.status, Status::Pending);
}

TEST(OutcomeAttribution, FoldedForAcceptedEventsOnly) {
    Contract c = contract(kSeenA, kPeriod, AttributionMethod::Sum);
    OutcomeState s = OutcomeState::open(c);
    Event e1 = at("a", 0, 1);
    e1.attribution = D("1.5");
    apply_event(s, c, e1, 0);
    Event e2 = at("zzz", 10, 2); // unrelated action, still carries attribution
    e2.attribution = D("2");
    apply_event(s, c, e2, 10);
    Event e3 = at("a", 20, 3); // no attribution
    apply_event(s, c, e3, 20);
    EXPECT_EQ(s.attribution.quantity(c.attribution_method).to_string(), "3.5");
    Event late = at("a", 30, 4);
    late.attribution = D("100");
    EXPECT_EQ(apply_event(s, c, late, s.settles_at), Applied::Late);
    EXPECT_EQ(s.attribution.quantity(c.attribution_method).to_string(), "3.5");
}

TEST(OutcomeApply, ConditionHoldsMatchesEvaluateLog) {
    Contract c = contract(R"([{"fact":"a","operator":"count_gte","value":2},{"fact":"v","operator":"not lt","value":1}])");
    OutcomeState s = OutcomeState::open(c);
    std::vector<Event> log;
    std::vector<Event> stream = {at("a", 5, 1), at("v", 6, 2, num("0")), at("a", 1, 3), at("v", 2, 4, num("7")),
                                 at("v", 6, 5, num("1"))};
    for (const Event &e : stream) {
        ASSERT_EQ(apply_event(s, c, e, 10), Applied::Accepted);
        log.push_back(e);
        EXPECT_EQ(s.condition_holds, evaluate_log(c.condition, log));
    }
    EXPECT_TRUE(s.condition_holds);
}
