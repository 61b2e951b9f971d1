// What-if (CONTRACT §22): simulate_outcome replays an outcome's log under draft terms with the
// live path's state machine: the seed's tickets under a stricter CSAT threshold, a shorter
// window that makes a reopen late or on time, attribution methods and prices, outcomes not due
// yet, and the property that the outcome's own terms reproduce what the live path decided.
#include "test_util.hpp"

#include "core/error.hpp"
#include "core/settlement.hpp"
#include "core/simulation.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace witn;
using namespace witn::test;

namespace {

constexpr std::int64_t kDay = 24 * kHour;
constexpr std::int64_t kT0 = 20000 * kDay;

// An event received when it occurred, or `late_by` after.
Event rx(std::string action, std::int64_t at, std::int64_t seq, Scalar value = absent(), std::int64_t received_after = 0) {
    Event e = ev(std::move(action), std::move(value), at, seq);
    e.received_at = at + received_after;
    return e;
}

const char *kTicket = R"([{"fact":"agent_replied","operator":"seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}])";
const char *kStricter = R"([{"fact":"agent_replied","operator":"seen"},{"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":4}])";

// The live path: each event at its received_at, settlement by a cron that runs at `cron` times.
struct Live {
    Status status;
    std::optional<Decimal> amount;
};
Live live(const Contract &c, const Decimal &price, const std::vector<Event> &log, std::int64_t now,
          const std::vector<std::int64_t> &cron) {
    OutcomeState s = OutcomeState::open(c);
    std::size_t next_cron = 0;
    auto run_cron_until = [&](std::int64_t t) {
        while (next_cron < cron.size() && cron[next_cron] <= t) {
            if (auto r = settle(s, cron[next_cron])) {
                s.status = *r;
                s.resolved_at = s.settles_at;
            }
            ++next_cron;
        }
    };
    for (const Event &e : log) {
        run_cron_until(e.received_at);
        apply_event(s, c, e, e.received_at);
    }
    run_cron_until(now);
    Live out{s.status, std::nullopt};
    if (s.status == Status::Confirmed) out.amount = line_amount(price, s.attribution.quantity(c.attribution_method));
    return out;
}

} // namespace

TEST(Simulation, OwnTermsGiveWhatHappened) {
    const Contract c = contract_of(kTicket, 72 * kHour);
    const std::vector<Event> log = {rx("agent_replied", kT0, 1), rx("csat", kT0 + kHour, 2, num("4"))};
    const Simulated s = simulate_outcome(c, D("2.50"), log, kT0 + 10 * kDay);
    EXPECT_EQ(s.status, Status::Confirmed);
    ASSERT_TRUE(s.amount);
    EXPECT_EQ(s.amount->to_string(), "2.50");
    EXPECT_EQ(s.accepted_events, 2);
    EXPECT_EQ(s.late_events, 0);
}

TEST(Simulation, AStricterCsatThresholdFailsARatingOfFour) {
    const Contract c = contract_of(kTicket, 72 * kHour);
    const std::vector<Event> log = {rx("agent_replied", kT0, 1), rx("csat", kT0 + kHour, 2, num("4"))};
    DraftTerms d;
    d.condition = parse_condition(kStricter);
    const Simulated s = simulate_outcome(draft_contract(c, d), D("2.50"), log, kT0 + 10 * kDay);
    EXPECT_EQ(s.status, Status::Failed);
    EXPECT_FALSE(s.amount);
}

TEST(Simulation, TheWindowDecidesWhetherAReopenCounts) {
    const Contract c = contract_of(kTicket, 24 * kHour);
    // Reopened 30 hours after the reply: late under a 24-hour window (confirmed), on time under
    // 72 hours (failed).
    const std::vector<Event> log = {rx("agent_replied", kT0, 1), rx("reopened", kT0 + 30 * kHour, 2)};
    const Simulated own = simulate_outcome(c, D("2.50"), log, kT0 + 10 * kDay);
    EXPECT_EQ(own.status, Status::Confirmed);
    EXPECT_EQ(own.late_events, 1);
    DraftTerms d;
    d.settlement_period = 72 * kHour;
    const Simulated longer = simulate_outcome(draft_contract(c, d), D("2.50"), log, kT0 + 10 * kDay);
    EXPECT_EQ(longer.status, Status::Failed);
    EXPECT_EQ(longer.late_events, 0);
    // And the other way: a shorter window makes the reopen late.
    const Contract wide = contract_of(kTicket, 72 * kHour);
    d.settlement_period = 24 * kHour;
    EXPECT_EQ(simulate_outcome(wide, D("2.50"), log, kT0 + 10 * kDay).status, Status::Failed);
    EXPECT_EQ(simulate_outcome(draft_contract(wide, d), D("2.50"), log, kT0 + 10 * kDay).status, Status::Confirmed);
}

TEST(Simulation, ArrivalTimeNotOccurrenceDecidesLateness) {
    const Contract c = contract_of(kTicket, 24 * kHour);
    // Occurred within the window but received after it closed: late.
    const std::vector<Event> log = {rx("agent_replied", kT0, 1), rx("reopened", kT0 + kHour, 2, absent(), 30 * kHour)};
    const Simulated s = simulate_outcome(c, D("1"), log, kT0 + 10 * kDay);
    EXPECT_EQ(s.status, Status::Confirmed);
    EXPECT_EQ(s.late_events, 1);
}

TEST(Simulation, AttributionMethodAndPriceChangeTheAmount) {
    const Contract c = contract_of(R"([{"fact":"api_call","operator":"seen"}])", 72 * kHour, AttributionMethod::Last);
    std::vector<Event> log;
    for (int i = 0; i < 3; ++i) {
        Event e = rx("api_call", kT0 + i * kHour, i + 1);
        e.attribution = D(i == 0 ? "0.5" : i == 1 ? "0.3" : "0.4");
        log.push_back(e);
    }
    EXPECT_EQ(simulate_outcome(c, D("10"), log, kT0 + 10 * kDay).amount->to_string(), "4.0");
    DraftTerms d;
    d.attribution_method = AttributionMethod::Sum;
    EXPECT_EQ(simulate_outcome(draft_contract(c, d), D("10"), log, kT0 + 10 * kDay).amount->to_string(), "12.0");
    d.attribution_method = AttributionMethod::Max;
    EXPECT_EQ(simulate_outcome(draft_contract(c, d), D("12.5"), log, kT0 + 10 * kDay).amount->to_string(), "6.25");
}

TEST(Simulation, NotDueYetIsOpenOrPending) {
    const Contract c = contract_of(kTicket, 72 * kHour);
    EXPECT_EQ(simulate_outcome(c, D("1"), {rx("agent_replied", kT0, 1)}, kT0 + kHour).status, Status::Pending);
    EXPECT_EQ(simulate_outcome(c, D("1"), {rx("opened", kT0, 1)}, kT0 + kHour).status, Status::Open);
    EXPECT_EQ(simulate_outcome(c, D("1"), {rx("opened", kT0, 1)}, kT0 + 4 * kDay).status, Status::Failed);
    // Due exactly at settles_at.
    EXPECT_EQ(simulate_outcome(c, D("1"), {rx("agent_replied", kT0, 1)}, kT0 + 72 * kHour).status, Status::Confirmed);
    EXPECT_EQ(simulate_outcome(c, D("1"), {rx("agent_replied", kT0, 1)}, kT0 + 72 * kHour - 1).status, Status::Pending);
}

TEST(Simulation, PropertiesSettlesAtIsHonoured) {
    const Contract c = contract_of(kTicket, 72 * kHour);
    Event e = rx("agent_replied", kT0, 1);
    e.settles_at = kT0 + kHour;
    const Simulated s = simulate_outcome(c, D("1"), {e, rx("reopened", kT0 + 2 * kHour, 2)}, kT0 + 3 * kHour);
    EXPECT_EQ(s.status, Status::Confirmed);
    EXPECT_EQ(s.late_events, 1);
}

TEST(Simulation, DraftChecks) {
    DraftTerms d;
    d.settlement_period = 0;
    EXPECT_EQ(validation_message([&] { validate_draft(d); }), "VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days");
    d.settlement_period = kMaxSettlementPeriod + 1;
    EXPECT_THROW(validate_draft(d), Error);
    d.settlement_period = kMaxSettlementPeriod;
    EXPECT_NO_THROW(validate_draft(d));
    d.price_per_unit = D("-0.01");
    EXPECT_EQ(validation_message([&] { validate_draft(d); }), "VALIDATION_ERROR: price_per_unit must be 0 or more");
    d.price_per_unit = D("0");
    EXPECT_NO_THROW(validate_draft(d));
}

// The property of the issue: under the outcome's own terms, simulation gives exactly what the
// live path decided, whatever the arrival times and whenever cron ran after settles_at.
TEST(Simulation, RandomHistoriesUnderOwnTermsMatchTheLivePath) {
    std::mt19937_64 rng(20261202);
    const char *actions[] = {"agent_replied", "reopened", "csat", "escalated", "note"};
    int compared = 0;
    for (int round = 0; round < 3000; ++round) {
        const std::int64_t window = (1 + static_cast<std::int64_t>(rng() % 96)) * kHour;
        const AttributionMethod method = static_cast<AttributionMethod>(rng() % 6);
        const Contract c = contract_of(kTicket, window, method);
        std::vector<Event> log;
        std::int64_t t = kT0;
        const int n = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < n; ++i) {
            t += static_cast<std::int64_t>(rng() % (48 * kHour));
            const char *a = actions[rng() % 5];
            Event e = rx(a, t, i + 1, std::string(a) == "csat" ? num(std::to_string(1 + rng() % 5)) : absent(),
                         rng() % 4 == 0 ? static_cast<std::int64_t>(rng() % (72 * kHour)) : 0);
            if (rng() % 3 == 0) e.attribution = D(std::to_string(rng() % 100) + "." + std::to_string(rng() % 10));
            if (rng() % 10 == 0) e.settles_at = e.occurred_at + static_cast<std::int64_t>(rng() % (24 * kHour));
            log.push_back(e);
        }
        // Arrival order is id order: the log is sorted by received_at, ids following.
        std::stable_sort(log.begin(), log.end(), [](const Event &a, const Event &b) { return a.received_at < b.received_at; });
        for (std::size_t i = 0; i < log.size(); ++i) log[i].seq = static_cast<std::int64_t>(i) + 1;
        const std::int64_t now = t + static_cast<std::int64_t>(rng() % (200 * kHour));
        // Cron every 1 to 120 minutes.
        std::vector<std::int64_t> cron;
        const std::int64_t step = (1 + static_cast<std::int64_t>(rng() % 120)) * 60 * 1000000LL;
        for (std::int64_t at = kT0; at <= now; at += step) cron.push_back(at);
        const Live l = live(c, D("2.50"), log, now, cron);
        const Simulated s = simulate_outcome(c, D("2.50"), log, now);
        // The live path settles at the next cron run; the simulation as of settles_at: they
        // agree once cron has run after settles_at (an outcome still due is PENDING/OPEN live).
        if (l.status == Status::Confirmed || l.status == Status::Failed) {
            ++compared;
            ASSERT_EQ(status_name(s.status), std::string(status_name(l.status))) << "round " << round;
            ASSERT_EQ(s.amount.has_value(), l.amount.has_value()) << "round " << round;
            if (s.amount) {
                ASSERT_EQ(s.amount->to_string(), l.amount->to_string()) << "round " << round;
            }
        }
    }
    EXPECT_GT(compared, 1500);
}
