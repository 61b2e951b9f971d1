// Leaf semantics: every operator at, below and above its boundary; missing values; wrong types;
// the latest value by occurred_at with ties by arrival.
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

std::string leaf(std::string_view op, std::string_view value_json = {}, std::string_view fact = "x") {
    std::string out = "[{\"fact\": \"" + std::string(fact) + "\", \"operator\": \"" + std::string(op) + "\"";
    if (!value_json.empty()) out += ", \"value\": " + std::string(value_json);
    return out + "}]";
}

// One event of action "x" with the given value (nullopt: no event at all).
bool holds_with(std::string_view op, std::string_view threshold, const std::optional<Scalar> &value) {
    std::vector<Event> events;
    if (value) events.push_back(ev("x", *value, 100, 1));
    return eval_events(leaf(op, threshold), events);
}

bool holds_n(std::string_view op, std::string_view n, int count) {
    std::vector<Event> events;
    for (int i = 0; i < count; ++i) events.push_back(ev("x", num("1"), 100 + i, i + 1));
    // Other actions never count.
    events.push_back(ev("y", num("1"), 50, 100));
    return eval_events(leaf(op, n), events);
}

const std::optional<Scalar> kNoEvent = std::nullopt;

} // namespace

TEST(Occurrence, SeenAndNotSeen) {
    EXPECT_FALSE(holds_n("seen", "", 0));
    EXPECT_TRUE(holds_n("seen", "", 1));
    EXPECT_TRUE(holds_n("seen", "", 5));
    EXPECT_TRUE(holds_n("not seen", "", 0));
    EXPECT_FALSE(holds_n("not seen", "", 1));
    EXPECT_FALSE(holds_n("not seen", "", 5));
    // Any value (or none) counts as seen.
    for (const Scalar &v : {absent(), other(), str(""), boolean(false), num("0")}) {
        EXPECT_TRUE(holds_with("seen", "", v));
        EXPECT_FALSE(holds_with("not seen", "", v));
    }
}

TEST(Count, EveryOperatorAroundTheBoundary) {
    struct Case {
        const char *op;
        bool below, at, above; // counts 2, 3, 4 against N = 3
        bool none;             // count 0
    };
    const Case cases[] = {
        {"count_gte", false, true, true, false},
        {"count_lte", true, true, false, true},
        {"count_gt", false, false, true, false},
        {"count_lt", true, false, false, true},
        {"count_eq", false, true, false, false},
    };
    for (const Case &c : cases) {
        EXPECT_EQ(holds_n(c.op, "3", 2), c.below) << c.op;
        EXPECT_EQ(holds_n(c.op, "3", 3), c.at) << c.op;
        EXPECT_EQ(holds_n(c.op, "3", 4), c.above) << c.op;
        EXPECT_EQ(holds_n(c.op, "3", 0), c.none) << c.op;
    }
}

TEST(Count, ZeroThreshold) {
    EXPECT_TRUE(holds_n("count_gte", "0", 0));
    EXPECT_TRUE(holds_n("count_eq", "0", 0));
    EXPECT_FALSE(holds_n("count_eq", "0", 1));
    EXPECT_TRUE(holds_n("count_lte", "0", 0));
    EXPECT_FALSE(holds_n("count_lte", "0", 1));
    EXPECT_FALSE(holds_n("count_lt", "0", 0));
    EXPECT_FALSE(holds_n("count_gt", "0", 0));
    EXPECT_TRUE(holds_n("count_gt", "0", 1));
}

TEST(Count, CountsEveryEventWhateverItsValueOrTime) {
    std::vector<Event> events = {ev("w", absent(), 300, 1), ev("w", str("x"), 100, 2), ev("w", num("-1"), 200, 3),
                                 ev("w", other(), 200, 4)};
    EXPECT_TRUE(eval_events(leaf("count_eq", "4", "w"), events));
    EXPECT_TRUE(eval_events(leaf("count_gte", "4", "w"), events));
    EXPECT_FALSE(eval_events(leaf("count_gt", "4", "w"), events));
}

TEST(Count, HugeThresholds) {
    EXPECT_FALSE(holds_n("count_gte", "9223372036854775807", 3));
    EXPECT_TRUE(holds_n("count_lt", "9223372036854775807", 3));
    EXPECT_TRUE(holds_n("count_lte", "9223372036854775807", 0));
}

TEST(Comparison, EveryOperatorAroundTheBoundary) {
    // Threshold 4 (also written 4.0 and 40e-1); values below, at (in three spellings) and above.
    struct Case {
        const char *op;
        bool below, at, above, none;
    };
    const Case cases[] = {
        {"gte", false, true, true, false},    {"lte", true, true, false, false},
        {"gt", false, false, true, false},    {"lt", true, false, false, false},
        {"not gte", true, false, false, true}, {"not lte", false, false, true, true},
        {"not gt", true, true, false, true},  {"not lt", false, true, true, true},
        {"match", false, true, false, false},
    };
    const char *thresholds[] = {"4", "4.0", "40e-1"};
    for (const Case &c : cases)
        for (const char *t : thresholds) {
            for (const char *below : {"3", "3.99999999999999999999", "-4", "0", "-0"})
                EXPECT_EQ(holds_with(c.op, t, num(below)), c.below) << c.op << " " << t << " with " << below;
            for (const char *at : {"4", "4.0", "40e-1", "0.4e1", "4.00000000000000000000"})
                EXPECT_EQ(holds_with(c.op, t, num(at)), c.at) << c.op << " " << t << " with " << at;
            for (const char *above : {"4.00000000000000000001", "5", "1e1000000", "9007199254740993"})
                EXPECT_EQ(holds_with(c.op, t, num(above)), c.above) << c.op << " " << t << " with " << above;
            EXPECT_EQ(holds_with(c.op, t, kNoEvent), c.none) << c.op << " " << t << " without events";
        }
}

TEST(Comparison, ContractExactNumbers) {
    EXPECT_FALSE(holds_with("gte", "700", num("699.99999999999999999999")));
    EXPECT_TRUE(holds_with("lt", "700", num("699.99999999999999999999")));
    EXPECT_TRUE(holds_with("not gte", "700", num("699.99999999999999999999")));
    EXPECT_TRUE(holds_with("gt", "9007199254740992", num("9007199254740993")));
    EXPECT_FALSE(holds_with("match", "9007199254740992", num("9007199254740993")));
    EXPECT_TRUE(holds_with("match", "9007199254740993", num("9007199254740993")));
    EXPECT_TRUE(holds_with("lt", "0", num("-1e-1000000")));
    EXPECT_TRUE(holds_with("gte", "0", num("-0")));
    EXPECT_TRUE(holds_with("match", "0", num("-0.000")));
    EXPECT_TRUE(holds_with("gte", "-1", num("-0.5")));
    EXPECT_FALSE(holds_with("gte", "-0.5", num("-1")));
}

TEST(Comparison, MissingValueOrWrongTypeIsFalseEvenForNotOperators) {
    // The latest event exists but has no properties.value, or a non-number: every numeric
    // comparison is false, including the missing-value-allowed ones.
    for (const char *op : {"gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt"})
        for (const Scalar &v : {absent(), other(), str("4"), str("5"), str(""), boolean(true), boolean(false)})
            EXPECT_FALSE(holds_with(op, "4", v)) << op;
}

TEST(Match, ByTypeAndValue) {
    EXPECT_TRUE(holds_with("match", "4", num("4.0")));
    EXPECT_TRUE(holds_with("match", "4.0", num("4")));
    EXPECT_FALSE(holds_with("match", "\"4\"", num("4")));
    EXPECT_FALSE(holds_with("match", "4", str("4")));
    EXPECT_TRUE(holds_with("match", "\"4\"", str("4")));
    EXPECT_FALSE(holds_with("match", "\"4\"", str("4.0")));
    EXPECT_TRUE(holds_with("match", "\"pass\"", str("pass")));
    EXPECT_FALSE(holds_with("match", "\"pass\"", str("Pass")));
    EXPECT_FALSE(holds_with("match", "\"pass\"", str("pass ")));
    EXPECT_FALSE(holds_with("match", "\"pass\"", str("")));
    EXPECT_TRUE(holds_with("match", "\"\"", str("")));
    EXPECT_TRUE(holds_with("match", "\"caf\\u00e9\"", str("caf\xC3\xA9")));
    EXPECT_TRUE(holds_with("match", "true", boolean(true)));
    EXPECT_FALSE(holds_with("match", "true", boolean(false)));
    EXPECT_FALSE(holds_with("match", "true", str("true")));
    EXPECT_FALSE(holds_with("match", "true", num("1")));
    EXPECT_TRUE(holds_with("match", "false", boolean(false)));
    EXPECT_FALSE(holds_with("match", "false", absent()));
    EXPECT_FALSE(holds_with("match", "false", other()));
    EXPECT_FALSE(holds_with("match", "false", num("0")));
    EXPECT_FALSE(holds_with("match", "0", boolean(false)));
    for (const char *t : {"\"pass\"", "true", "false", "4", "0"}) {
        EXPECT_FALSE(holds_with("match", t, kNoEvent)) << t;
        EXPECT_FALSE(holds_with("match", t, absent())) << t;
        EXPECT_FALSE(holds_with("match", t, other())) << t;
    }
}

TEST(LatestValue, LaterOccurredAtWins) {
    std::vector<Event> events = {ev("csat", num("5"), 100, 1), ev("csat", num("2"), 200, 2)};
    EXPECT_FALSE(eval_events(leaf("gte", "4", "csat"), events));
    EXPECT_TRUE(eval_events(leaf("not gte", "4", "csat"), events));
    EXPECT_TRUE(eval_events(leaf("match", "2", "csat"), events));
}

TEST(LatestValue, BackDatedEventCountsButDoesNotReplace) {
    // Arrives second but happened first.
    std::vector<Event> events = {ev("csat", num("5"), 200, 1), ev("csat", num("2"), 100, 2)};
    EXPECT_TRUE(eval_events(leaf("gte", "4", "csat"), events));
    EXPECT_TRUE(eval_events(leaf("match", "5", "csat"), events));
    EXPECT_TRUE(eval_events(leaf("count_eq", "2", "csat"), events));
    EXPECT_FALSE(eval_events(leaf("not lte", "4", "csat"), std::vector<Event>{ev("csat", num("5"), 200, 1), ev("csat", num("2"), 300, 2)}));
    EXPECT_TRUE(eval_events(leaf("not lte", "4", "csat"), events));
}

TEST(LatestValue, TiesGoToTheLaterArrival) {
    std::vector<Event> events = {ev("csat", num("2"), 100, 1), ev("csat", num("5"), 100, 2)};
    EXPECT_TRUE(eval_events(leaf("match", "5", "csat"), events));
    // Folded out of arrival order (replay), the higher seq still wins the tie.
    std::vector<Event> reversed = {events[1], events[0]};
    EXPECT_TRUE(eval_events(leaf("match", "5", "csat"), reversed));
    // A tie with a later event that is back-dated relative to neither: seq 3 at the same time wins.
    events.push_back(ev("csat", num("3"), 100, 3));
    EXPECT_TRUE(eval_events(leaf("match", "3", "csat"), events));
    // An earlier seq at a later time still wins on time.
    std::vector<Event> by_time = {ev("csat", num("7"), 101, 1), ev("csat", num("5"), 100, 2)};
    EXPECT_TRUE(eval_events(leaf("match", "7", "csat"), by_time));
}

TEST(LatestValue, LatestWithoutValueHidesEarlierValues) {
    std::vector<Event> events = {ev("csat", num("5"), 100, 1), ev("csat", absent(), 200, 2)};
    for (const char *op : {"gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt", "match"})
        EXPECT_FALSE(eval_events(leaf(op, "5", "csat"), events)) << op;
    EXPECT_TRUE(eval_events(leaf("seen", "", "csat"), events));
    // A back-dated event without a value does not hide the latest one.
    std::vector<Event> back = {ev("csat", num("5"), 200, 1), ev("csat", absent(), 100, 2)};
    EXPECT_TRUE(eval_events(leaf("gte", "5", "csat"), back));
}

TEST(LatestValue, NegativeAndZeroTimestamps) {
    std::vector<Event> events = {ev("t", num("1"), 0, 0), ev("t", num("2"), -5, 1), ev("t", num("3"), 0, -1)};
    EXPECT_TRUE(eval_events(leaf("match", "1", "t"), events));
    std::vector<Event> neg = {ev("t", num("1"), -10, 5), ev("t", num("2"), -5, 1)};
    EXPECT_TRUE(eval_events(leaf("match", "2", "t"), neg));
}

TEST(LeafHolds, DirectlyOnActionFacts) {
    Condition c = parse_condition(leaf("not lte", "3"));
    EXPECT_TRUE(leaf_holds(c[0], nullptr));
    ActionFact f;
    f.count = 1;
    f.latest_value = num("3");
    EXPECT_FALSE(leaf_holds(c[0], &f));
    f.latest_value = num("3.000000000000000000001");
    EXPECT_TRUE(leaf_holds(c[0], &f));
    f.latest_value = absent();
    EXPECT_FALSE(leaf_holds(c[0], &f));
}

TEST(Evaluate, ImplicitAndAndEmpty) {
    EXPECT_TRUE(eval_events("[]", {}));
    EXPECT_TRUE(eval_events("[]", {ev("anything")}));
    const char *two = R"([{"fact":"a","operator":"seen"},{"fact":"b","operator":"seen"}])";
    EXPECT_FALSE(eval_events(two, {}));
    EXPECT_FALSE(eval_events(two, {ev("a")}));
    EXPECT_FALSE(eval_events(two, {ev("b")}));
    EXPECT_TRUE(eval_events(two, {ev("a"), ev("b", absent(), 0, 1)}));
    // The same action may appear in several leaves.
    const char *range = R"([{"fact":"s","operator":"gte","value":1},{"fact":"s","operator":"lt","value":2}])";
    EXPECT_TRUE(eval_events(range, {ev("s", num("1.5"))}));
    EXPECT_FALSE(eval_events(range, {ev("s", num("2"))}));
    EXPECT_FALSE(eval_events(range, {ev("s", num("0.5"))}));
}

TEST(Explain, PerLeaf) {
    Condition c = parse_condition(
        R"([{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}])");
    Facts facts(c);
    facts.fold("agent_replied", absent(), 10, 1);
    facts.fold("csat", num("2"), 20, 2);
    std::vector<LeafExplanation> ex = explain(c, facts);
    ASSERT_EQ(ex.size(), 3u);
    EXPECT_EQ(ex[0].leaf, &c[0]);
    ASSERT_NE(ex[0].fact, nullptr);
    EXPECT_EQ(ex[0].fact->count, 1);
    EXPECT_TRUE(ex[0].passes);
    EXPECT_EQ(ex[1].fact, nullptr);
    EXPECT_TRUE(ex[1].passes);
    ASSERT_NE(ex[2].fact, nullptr);
    EXPECT_EQ(ex[2].fact->latest_at, 20);
    EXPECT_FALSE(ex[2].passes);
    EXPECT_FALSE(evaluate(c, facts));
    EXPECT_TRUE(explain(parse_condition("[]"), facts).empty());
}
