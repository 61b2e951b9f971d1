// The settlement decision (CONTRACT §10, §13–§15): skip, look again later, or resolve — and then
// the resolution, the exact invoice amount and the notification kind.
#include "test_util.hpp"

#include "core/settlement.hpp"

#include <limits>
#include <random>

using namespace witn;
using namespace witn::test;

namespace {

using Action = SettlementDecision::Action;

constexpr std::int64_t kAsOf = 1000;

// An unresolved outcome that was due at kAsOf, indexed at its settles_at.
DueOutcome due(Status status, std::optional<Status> scheduled = std::nullopt, std::string_view quantity = "1",
               std::string_view unit_price = "0.99") {
    DueOutcome o;
    o.status = status;
    o.scheduled_resolution = scheduled;
    o.settles_at = o.check_at = kAsOf;
    o.quantity = D(quantity);
    o.unit_price = D(unit_price);
    return o;
}

void expect_skip(const SettlementDecision &d) {
    EXPECT_EQ(d.action, Action::Skip);
    EXPECT_FALSE(d.amount.has_value());
    EXPECT_EQ(d.notification_kind, nullptr);
}

} // namespace

TEST(ResolutionOf, OpenIsMissedPendingTakesItsScheduledResolution) {
    for (std::optional<Status> s : {std::optional<Status>(), std::optional(Status::Confirmed), std::optional(Status::Failed)})
        EXPECT_EQ(resolution_of(Status::Open, s), Status::Failed);
    EXPECT_EQ(resolution_of(Status::Pending, Status::Confirmed), Status::Confirmed);
    EXPECT_EQ(resolution_of(Status::Pending, Status::Failed), Status::Failed);
    EXPECT_EQ(resolution_of(Status::Pending, std::nullopt), Status::Confirmed);
}

TEST(NotificationKind, MirrorsTheHostedWebhook) {
    EXPECT_STREQ(notification_kind(Status::Confirmed), "outcome_succeed");
    EXPECT_STREQ(notification_kind(Status::Failed), "outcome_failed");
}

TEST(LineAmount, IsTheExactProduct) {
    EXPECT_EQ(line_amount(D("0.99"), D("3")).to_string(), "2.97");
    EXPECT_EQ(line_amount(D("0.99"), D("3")), D("2.97"));
    EXPECT_EQ(line_amount(D("0.99"), D("1.5")).to_string(), "1.485"); // not rounded to cents here
    EXPECT_EQ(line_amount(D("1.20"), D("10")).to_string(), "12.00");
    EXPECT_EQ(line_amount(D("9.99"), D("0")).to_string(), "0.00");
    EXPECT_EQ(line_amount(D("0.1"), D("3")).to_string(), "0.3"); // no binary floating point
}

TEST(LineAmount, TinyScales) {
    EXPECT_EQ(line_amount(D("0.00000000000000000001"), D("3")).to_string(), "0.00000000000000000003");
    EXPECT_EQ(line_amount(D("1"), D("1e-20")).to_string(), "0.00000000000000000001");
    EXPECT_EQ(line_amount(D("1e-20"), D("1e-20")).to_string(), "0." + std::string(39, '0') + "1");
    // An average quantity carries 20 fractional digits (kAverageScale).
    Decimal average = D("1").divide(3, kAverageScale);
    EXPECT_EQ(line_amount(D("0.99"), average).to_string(), "0.3299999999999999999967");
}

TEST(LineAmount, BeyondSixtyFourBits) {
    EXPECT_EQ(line_amount(D("12345678901234567890.12"), D("98765432109876543210")).to_string(),
              "1219326311370217952249315652964448712085.20");
    EXPECT_EQ(line_amount(D("3.00"), D("18446744073709551616.5")).to_string(), "55340232221128654849.500");
    EXPECT_EQ(line_amount(D("9223372036854775807"), D("9223372036854775807")).to_string(),
              "85070591730234615847396907784232501249");
}

TEST(DecideSettlement, SkipsAResolvedOutcome) {
    DueOutcome o = due(Status::Pending, Status::Confirmed);
    o.resolved = true;
    expect_skip(decide_settlement(o, kAsOf));
}

TEST(DecideSettlement, SkipsAFinalStatus) {
    for (Status s : {Status::Confirmed, Status::Failed}) {
        DueOutcome o = due(s, Status::Confirmed); // resolved_at not set: the status alone decides
        expect_skip(decide_settlement(o, kAsOf));
    }
}

TEST(DecideSettlement, SkipsAStaleIndexEntry) {
    DueOutcome o = due(Status::Pending, Status::Confirmed);
    o.check_at = kAsOf + 1;
    expect_skip(decide_settlement(o, kAsOf));
    o.settles_at = kAsOf + 5; // also when settles_at moved on
    expect_skip(decide_settlement(o, kAsOf));
}

TEST(DecideSettlement, RearmsAtTheNewSettlesAt) {
    for (Status s : {Status::Open, Status::Pending}) {
        DueOutcome o = due(s, Status::Confirmed);
        o.check_at = kAsOf - 10;
        o.settles_at = kAsOf + 3600;
        SettlementDecision d = decide_settlement(o, kAsOf);
        EXPECT_EQ(d.action, Action::Rearm);
        EXPECT_EQ(d.check_at, kAsOf + 3600);
        EXPECT_FALSE(d.amount.has_value());
        EXPECT_EQ(d.notification_kind, nullptr);
    }
}

TEST(DecideSettlement, AnOpenOutcomeIsMissed) {
    SettlementDecision d = decide_settlement(due(Status::Open, std::nullopt, "5"), kAsOf);
    EXPECT_EQ(d.action, Action::Resolve);
    EXPECT_EQ(d.resolution, Status::Failed);
    EXPECT_FALSE(d.amount.has_value()); // nothing billed
    EXPECT_STREQ(d.notification_kind, "outcome_failed");
}

TEST(DecideSettlement, APendingOutcomeTakesItsScheduledResolution) {
    SettlementDecision confirm = decide_settlement(due(Status::Pending, Status::Confirmed, "3", "0.99"), kAsOf);
    EXPECT_EQ(confirm.action, Action::Resolve);
    EXPECT_EQ(confirm.resolution, Status::Confirmed);
    ASSERT_TRUE(confirm.amount.has_value());
    EXPECT_EQ(confirm.amount->to_string(), "2.97");
    EXPECT_STREQ(confirm.notification_kind, "outcome_succeed");

    SettlementDecision fail = decide_settlement(due(Status::Pending, Status::Failed, "3"), kAsOf);
    EXPECT_EQ(fail.action, Action::Resolve);
    EXPECT_EQ(fail.resolution, Status::Failed);
    EXPECT_FALSE(fail.amount.has_value());
    EXPECT_STREQ(fail.notification_kind, "outcome_failed");

    SettlementDecision unset = decide_settlement(due(Status::Pending, std::nullopt, "2", "1.20"), kAsOf);
    EXPECT_EQ(unset.resolution, Status::Confirmed);
    ASSERT_TRUE(unset.amount.has_value());
    EXPECT_EQ(unset.amount->to_string(), "2.40");
    EXPECT_STREQ(unset.notification_kind, "outcome_succeed");
}

TEST(DecideSettlement, TheAmountIsExact) {
    SettlementDecision tiny = decide_settlement(due(Status::Pending, Status::Confirmed, "3", "1e-20"), kAsOf);
    ASSERT_TRUE(tiny.amount.has_value());
    EXPECT_EQ(tiny.amount->to_string(), "0.00000000000000000003");
    SettlementDecision big = decide_settlement(
        due(Status::Pending, Status::Confirmed, "98765432109876543210", "12345678901234567890.12"), kAsOf);
    ASSERT_TRUE(big.amount.has_value());
    EXPECT_EQ(big.amount->to_string(), "1219326311370217952249315652964448712085.20");
    SettlementDecision zero = decide_settlement(due(Status::Pending, Status::Confirmed, "0", "0.99"), kAsOf);
    ASSERT_TRUE(zero.amount.has_value()); // a confirmed outcome always writes its line
    EXPECT_EQ(zero.amount->to_string(), "0.00");
}

TEST(DecideSettlement, DueFromSettlesAt) {
    DueOutcome o = due(Status::Pending, Status::Confirmed);
    o.check_at = kAsOf - 1;
    o.settles_at = kAsOf; // settles_at == as_of: due
    EXPECT_EQ(decide_settlement(o, kAsOf).action, Action::Resolve);
    o.settles_at = kAsOf + 1; // one microsecond later: not yet
    EXPECT_EQ(decide_settlement(o, kAsOf).action, Action::Rearm);
    o.settles_at = kAsOf - 1000;
    EXPECT_EQ(decide_settlement(o, kAsOf).action, Action::Resolve);
    o.check_at = kAsOf; // check_at == as_of: looked at
    o.settles_at = kAsOf;
    EXPECT_EQ(decide_settlement(o, kAsOf).action, Action::Resolve);
    o.settles_at = std::numeric_limits<std::int64_t>::max(); // a saturated timer never comes due
    EXPECT_EQ(decide_settlement(o, std::numeric_limits<std::int64_t>::max() - 1).action, Action::Rearm);
}

TEST(DecideSettlement, AgreesWithSettleOnTheOutcomeState) {
    // Indexed at settles_at (check_at = settles_at), deciding resolves exactly when settle()
    // says the outcome is due, to the same status.
    std::mt19937_64 rng(0x5E771Eu);
    const Status statuses[] = {Status::Open, Status::Pending, Status::Confirmed, Status::Failed};
    const std::optional<Status> scheduled[] = {std::nullopt, Status::Confirmed, Status::Failed};
    for (int i = 0; i < 2000; ++i) {
        OutcomeState s;
        s.status = statuses[rng() % 4];
        s.scheduled_resolution = scheduled[rng() % 3];
        s.settles_at = static_cast<std::int64_t>(rng() % 100);
        s.accepted_events = 1;
        std::int64_t as_of = static_cast<std::int64_t>(rng() % 100);
        DueOutcome o;
        o.status = s.status;
        o.scheduled_resolution = s.scheduled_resolution;
        o.settles_at = o.check_at = s.settles_at;
        o.quantity = D("2");
        o.unit_price = D("0.50");
        SettlementDecision d = decide_settlement(o, as_of);
        std::optional<Status> expected = settle(s, as_of);
        ASSERT_EQ(d.action == Action::Resolve, expected.has_value());
        if (!expected) {
            ASSERT_EQ(d.action, Action::Skip); // check_at = settles_at: nothing to rearm
            continue;
        }
        ASSERT_EQ(d.resolution, *expected);
        ASSERT_EQ(d.amount.has_value(), *expected == Status::Confirmed);
        if (d.amount) {
            ASSERT_EQ(d.amount->to_string(), "1.00");
        }
        ASSERT_STREQ(d.notification_kind, notification_kind(*expected));
    }
}
