// Randomized properties with a fixed seed: random conditions and random event streams, checking
// that the incremental path (Facts::fold, apply_event) agrees with evaluate_log over every prefix
// and with an independent reference evaluator, that serializing midway changes nothing, and that
// fold order does not matter.
#include "reference_evaluator.hpp"
#include "test_util.hpp"

#include <algorithm>
#include <random>

using namespace witn;
using namespace witn::test;

namespace {

class Gen {
public:
    explicit Gen(std::uint64_t seed) : rng_(seed) {}
    int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(int percent) { return between(1, 100) <= percent; }
    template <class T, std::size_t N> const T &pick(const T (&items)[N]) { return items[between(0, int(N) - 1)]; }
    std::mt19937_64 &rng() { return rng_; }

private:
    std::mt19937_64 rng_;
};

const char *const kFacts[] = {"a", "b", "c", "d"};
const char *const kActions[] = {"a", "b", "c", "x"};
const char *const kNumbers[] = {"3", "4", "4.0", "40e-1", "5", "-1", "0", "-0", "0.5", "699.99999999999999999999",
                                "700", "9007199254740992", "9007199254740993", "1e3", "3.99999999999999999999"};
const char *const kStrings[] = {"4", "pass", "x", ""};
const char *const kOps[] = {"seen", "not seen", "count_gte", "count_lte", "count_gt", "count_lt", "count_eq",
                            "match", "gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt"};
const char *const kCounts[] = {"0", "1", "2", "3", "4", "2.0", "20e-1", "0.3e1"};

std::string random_condition(Gen &g) {
    int n = g.between(0, 5);
    std::string out = "[";
    for (int i = 0; i < n; ++i) {
        if (i) out += ",";
        std::string op = g.pick(kOps);
        // Keys in a random order: the canonical form fixes it.
        std::vector<std::string> members = {"\"fact\":\"" + std::string(g.pick(kFacts)) + "\"",
                                            "\"operator\":\"" + op + "\""};
        Condition probe = parse_condition("[{\"fact\":\"p\",\"operator\":\"" + op + "\"" +
                                          (op == "seen" || op == "not seen" ? "" : ",\"value\":1") + "}]");
        switch (op_group(probe[0].op)) {
        case OpGroup::Occurrence: break;
        case OpGroup::Count: members.push_back("\"value\":" + std::string(g.pick(kCounts))); break;
        default:
            if (op == "match" && g.chance(40)) {
                if (g.chance(50)) members.push_back("\"value\":\"" + std::string(g.pick(kStrings)) + "\"");
                else members.push_back(std::string("\"value\":") + (g.chance(50) ? "true" : "false"));
            } else {
                members.push_back("\"value\":" + std::string(g.pick(kNumbers)));
            }
        }
        std::shuffle(members.begin(), members.end(), g.rng());
        out += "{";
        for (std::size_t k = 0; k < members.size(); ++k) out += (k ? "," : "") + members[k];
        out += "}";
    }
    return out + "]";
}

Scalar random_value(Gen &g) {
    int r = g.between(1, 100);
    if (r <= 25) return absent();
    if (r <= 35) return other();
    if (r <= 50) return str(g.pick(kStrings));
    if (r <= 60) return boolean(g.chance(50));
    return num(g.pick(kNumbers));
}

Event random_event(Gen &g, std::int64_t seq, std::int64_t base_time) {
    Event e = ev(g.pick(kActions), random_value(g), base_time + g.between(0, 8), seq);
    if (g.chance(40)) {
        const char *const quantities[] = {"0", "1", "1.2", "0.5", "2.50", "7", "0.00000000000000000001", "1e3"};
        e.attribution = D(g.pick(quantities));
    }
    if (g.chance(10)) e.settles_at = e.occurred_at + g.between(0, 200) * kHour;
    return e;
}

using witn::testing::reference_leaf;

bool reference(const Condition &c, const std::vector<Event> &log) {
    return std::all_of(c.begin(), c.end(), [&](const Leaf &l) { return reference_leaf(l, log); });
}

struct ReferenceAttribution {
    std::int64_t n = 0;
    Decimal sum, min, max, first, last;
    std::int64_t first_at = 0, first_seq = 0, last_at = 0, last_seq = 0;
};

ReferenceAttribution reference_attribution(const std::vector<Event> &log) {
    ReferenceAttribution r;
    for (const Event &e : log) {
        if (!e.attribution) continue;
        const Decimal &q = *e.attribution;
        if (r.n == 0) {
            r.sum = r.min = r.max = r.first = r.last = q;
            r.first_at = r.last_at = e.occurred_at;
            r.first_seq = r.last_seq = e.seq;
        } else {
            r.sum = r.sum + q;
            if (q < r.min) r.min = q;
            if (q > r.max) r.max = q;
            if (std::pair(e.occurred_at, e.seq) < std::pair(r.first_at, r.first_seq)) {
                r.first = q;
                r.first_at = e.occurred_at;
                r.first_seq = e.seq;
            }
            if (std::pair(e.occurred_at, e.seq) > std::pair(r.last_at, r.last_seq)) {
                r.last = q;
                r.last_at = e.occurred_at;
                r.last_seq = e.seq;
            }
        }
        ++r.n;
    }
    return r;
}

void expect_attribution(const Attribution &a, const std::vector<Event> &log, const std::string &where) {
    ReferenceAttribution r = reference_attribution(log);
    ASSERT_EQ(a.count, r.n) << where;
    if (r.n == 0) {
        EXPECT_EQ(a.quantity(AttributionMethod::Sum).to_string(), "1") << where;
        return;
    }
    EXPECT_EQ(a.quantity(AttributionMethod::Sum).to_string(), r.sum.to_string()) << where;
    EXPECT_EQ(a.quantity(AttributionMethod::Min), r.min) << where;
    EXPECT_EQ(a.quantity(AttributionMethod::Max), r.max) << where;
    EXPECT_EQ(a.quantity(AttributionMethod::First).to_string(), r.first.to_string()) << where;
    EXPECT_EQ(a.quantity(AttributionMethod::Last).to_string(), r.last.to_string()) << where;
    EXPECT_EQ(a.quantity(AttributionMethod::Average).to_string(), r.sum.divide(r.n, 20).to_string()) << where;
}

constexpr int kStreams = 3000;
constexpr std::uint64_t kSeed = 0x5EEDu;

} // namespace

TEST(Property, IncrementalFactsAgreeWithEvaluateLogAndReference) {
    Gen g(kSeed);
    int holds_seen = 0, fails_seen = 0;
    for (int iter = 0; iter < kStreams; ++iter) {
        std::string text = random_condition(g);
        Condition c = parse_condition(text);
        std::string canon = condition_to_json(c);
        Condition again = parse_condition(canon);
        ASSERT_TRUE(same_condition(c, again)) << text;
        ASSERT_EQ(condition_to_json(again), canon) << text;

        int n = g.between(0, 30);
        int checkpoint = g.between(0, n);
        Facts inc(c);
        std::optional<Facts> restored;
        std::vector<Event> log;
        for (int i = 0; i < n; ++i) {
            if (i == checkpoint) restored = Facts::from_json(c, inc.to_json());
            Event e = random_event(g, i + 1, 0);
            log.push_back(e);
            inc.fold(e.action, e.value, e.occurred_at, e.seq);
            if (restored) restored->fold(e.action, e.value, e.occurred_at, e.seq);
            bool got = evaluate(c, inc);
            std::string where = text + " after event " + std::to_string(i) + " (stream " + std::to_string(iter) + ")";
            ASSERT_EQ(got, evaluate_log(c, log)) << where;
            ASSERT_EQ(got, reference(c, log)) << where;
            if (restored) {
                ASSERT_EQ(evaluate(c, *restored), got) << where;
                ASSERT_EQ(restored->to_json(), inc.to_json()) << where;
            }
            (got ? holds_seen : fails_seen)++;
        }
        // Fold order does not matter (seq is unique): replay in a random order gives the same facts.
        std::vector<Event> shuffled = log;
        std::shuffle(shuffled.begin(), shuffled.end(), g.rng());
        Facts replay(c);
        for (const Event &e : shuffled) replay.fold(e.action, e.value, e.occurred_at, e.seq);
        ASSERT_EQ(replay.to_json(), inc.to_json()) << text;
        ASSERT_EQ(Facts::from_json(c, inc.to_json()).to_json(), inc.to_json()) << text;
    }
    // The generator exercises both outcomes substantially.
    EXPECT_GT(holds_seen, 1000);
    EXPECT_GT(fails_seen, 1000);
}

TEST(Property, StateMachineAgreesWithTheDefinitions) {
    Gen g(kSeed + 1);
    int late_seen = 0, confirmed = 0, failed = 0;
    for (int iter = 0; iter < kStreams; ++iter) {
        Contract contract;
        std::string text = random_condition(g);
        contract.condition = parse_condition(text);
        contract.settlement_period = g.between(1, 96) * kHour;
        const AttributionMethod methods[] = {AttributionMethod::Last, AttributionMethod::First, AttributionMethod::Sum,
                                             AttributionMethod::Max,  AttributionMethod::Min,   AttributionMethod::Average};
        contract.attribution_method = g.pick(methods);

        OutcomeState s = OutcomeState::open(contract);
        std::vector<Event> accepted;
        bool ever_held = false;
        std::int64_t expected_settles_at = 0;
        std::int64_t now = 0;
        int n = g.between(0, 25);
        int checkpoint = g.between(0, n);
        for (int i = 0; i < n; ++i) {
            std::string where = text + " event " + std::to_string(i) + " (stream " + std::to_string(iter) + ")";
            if (i == checkpoint) {
                // Persist and reload the state midway, as the events trigger does.
                OutcomeState reloaded = s;
                reloaded.facts = Facts::from_json(contract.condition, s.facts.to_json());
                reloaded.attribution = Attribution::from_json(s.attribution.to_json());
                s = reloaded;
            }
            // Events happen around arrival time; arrival time only moves forward.
            now += g.between(0, 30) * kHour;
            Event e = random_event(g, i + 1, now - g.between(0, 48) * kHour);
            validate_event(e);
            bool expect_late = !accepted.empty() && expected_settles_at <= now;
            Applied applied = apply_event(s, contract, e, now);
            ASSERT_EQ(applied, expect_late ? Applied::Late : Applied::Accepted) << where;
            if (expect_late) {
                ++late_seen;
                continue;
            }
            std::int64_t proposed = e.settles_at ? *e.settles_at : e.occurred_at + contract.settlement_period;
            expected_settles_at = accepted.empty() ? proposed : std::max(expected_settles_at, proposed);
            accepted.push_back(e);

            bool holds = reference(contract.condition, accepted);
            ever_held = ever_held || holds;
            ASSERT_EQ(s.condition_holds, holds) << where;
            ASSERT_EQ(s.condition_holds, evaluate_log(contract.condition, accepted)) << where;
            ASSERT_EQ(s.accepted_events, static_cast<std::int64_t>(accepted.size())) << where;
            ASSERT_EQ(s.settles_at, expected_settles_at) << where;
            if (ever_held) {
                ASSERT_EQ(s.status, Status::Pending) << where;
                ASSERT_EQ(s.scheduled_resolution, holds ? Status::Confirmed : Status::Failed) << where;
            } else {
                ASSERT_EQ(s.status, Status::Open) << where;
                ASSERT_FALSE(s.scheduled_resolution.has_value()) << where;
            }
            expect_attribution(s.attribution, accepted, where);
        }
        // Settlement.
        if (accepted.empty()) {
            EXPECT_FALSE(settle(s, now + 1000 * kHour).has_value());
            continue;
        }
        EXPECT_FALSE(settle(s, s.settles_at - 1).has_value());
        std::optional<Status> final_status = settle(s, s.settles_at);
        ASSERT_TRUE(final_status.has_value());
        Status expected = !ever_held ? Status::Failed
                                     : reference(contract.condition, accepted) ? Status::Confirmed : Status::Failed;
        EXPECT_EQ(*final_status, expected) << text;
        (*final_status == Status::Confirmed ? confirmed : failed)++;
    }
    EXPECT_GT(late_seen, 100);
    EXPECT_GT(confirmed, 300);
    EXPECT_GT(failed, 300);
}
