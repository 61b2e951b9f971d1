// Facts: the incremental per-action state, its JSON form and round-trips.
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

const char *kCondition =
    R"([{"fact":"csat","operator":"gte","value":4},{"fact":"escalated","operator":"not seen"},
        {"fact":"tag","operator":"match","value":"vip"},{"fact":"flag","operator":"match","value":true}])";

std::string facts_error(const Condition &c, std::string_view text) {
    return validation_message([&] { Facts::from_json(c, text); });
}

} // namespace

TEST(Facts, TracksOnlyTheConditionsActions) {
    Condition c = parse_condition(kCondition);
    Facts f(c);
    EXPECT_EQ(f.find("csat"), nullptr); // tracked, but no event yet
    f.fold("unrelated", num("1"), 10, 1);
    EXPECT_EQ(f.find("unrelated"), nullptr);
    EXPECT_EQ(f.to_json(), "{}");
    f.fold("csat", num("4.5"), 10, 2);
    const ActionFact *a = f.find("csat");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->count, 1);
    EXPECT_EQ(a->latest_at, 10);
    EXPECT_EQ(a->latest_seq, 2);
    EXPECT_EQ(a->latest_value.number, D("4.5"));
    // Default-constructed facts track nothing.
    Facts none;
    none.fold("csat", num("1"), 1, 1);
    EXPECT_EQ(none.find("csat"), nullptr);
}

TEST(Facts, FoldKeepsLatestByTimeThenSeq) {
    Condition c = parse_condition(kCondition);
    Facts f(c);
    f.fold("csat", num("1"), 100, 1);
    f.fold("csat", num("2"), 50, 2);  // back-dated
    f.fold("csat", num("3"), 100, 3); // tie, later arrival
    f.fold("csat", num("4"), 100, 0); // tie, earlier seq (folded out of order)
    const ActionFact *a = f.find("csat");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->count, 4);
    EXPECT_EQ(a->latest_at, 100);
    EXPECT_EQ(a->latest_seq, 3);
    EXPECT_EQ(a->latest_value.number, D("3"));
}

TEST(Facts, ToJsonFormat) {
    Condition c = parse_condition(kCondition);
    Facts f(c);
    f.fold("csat", num("4.50"), 123, 9);
    f.fold("csat", num("2"), 100, 10);
    f.fold("escalated", absent(), -7, 11);
    f.fold("tag", str("v\"ip"), 5, 12);
    f.fold("flag", other(), 6, 13);
    EXPECT_EQ(f.to_json(), R"({"csat": {"n": 2, "at": 123, "seq": 9, "v": 4.50}, )"
                           R"("escalated": {"n": 1, "at": -7, "seq": 11}, )"
                           R"("flag": {"n": 1, "at": 6, "seq": 13, "v": null}, )"
                           R"("tag": {"n": 1, "at": 5, "seq": 12, "v": "v\"ip"}})");
    Facts g(c);
    g.fold("flag", boolean(false), 1, 1);
    EXPECT_EQ(g.to_json(), R"({"flag": {"n": 1, "at": 1, "seq": 1, "v": false}})");
}

TEST(Facts, RoundTrip) {
    Condition c = parse_condition(kCondition);
    Facts f(c);
    f.fold("csat", num("4.50"), 123, 9);
    f.fold("escalated", absent(), -7, 11);
    f.fold("tag", str("caf\xC3\xA9\n"), 5, 12);
    f.fold("flag", boolean(true), 6, 13);
    std::string text = f.to_json();
    Facts back = Facts::from_json(c, text);
    EXPECT_EQ(back.to_json(), text);
    EXPECT_EQ(evaluate(c, back), evaluate(c, f));
    const ActionFact *a = back.find("csat");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->latest_value.number.to_string(), "4.50");
    EXPECT_EQ(back.find("escalated")->latest_value.kind, Scalar::Kind::Absent);
    // Continuing to fold after a round-trip is the same as never having stopped.
    f.fold("csat", num("3"), 124, 14);
    back.fold("csat", num("3"), 124, 14);
    EXPECT_EQ(back.to_json(), f.to_json());
}

TEST(Facts, RoundTripOfOtherValues) {
    Condition c = parse_condition(R"([{"fact":"v","operator":"match","value":"x"},{"fact":"v","operator":"not gte","value":1}])");
    Facts f(c);
    f.fold("v", other(), 1, 1);
    Facts back = Facts::from_json(c, f.to_json());
    EXPECT_EQ(back.find("v")->latest_value.kind, Scalar::Kind::Other);
    EXPECT_FALSE(evaluate(c, back));
    EXPECT_EQ(back.to_json(), f.to_json());
}

TEST(Facts, FromJsonIgnoresActionsTheConditionDoesNotMention) {
    Condition c = parse_condition(R"([{"fact":"a","operator":"seen"}])");
    Facts f = Facts::from_json(c, R"({"a": {"n": 1, "at": 1, "seq": 1}, "b": {"n": 5, "at": 2, "seq": 2}})");
    EXPECT_EQ(f.to_json(), R"({"a": {"n": 1, "at": 1, "seq": 1}})");
    EXPECT_EQ(Facts::from_json(c, "{}").to_json(), "{}");
    // jsonb may reorder keys: member order does not matter.
    Facts g = Facts::from_json(c, R"({"a": {"v": 3, "seq": 4, "at": 2, "n": 7}})");
    EXPECT_EQ(g.to_json(), R"({"a": {"n": 7, "at": 2, "seq": 4, "v": 3}})");
}

TEST(Facts, FromJsonRejectsCorruptState) {
    Condition c = parse_condition(R"([{"fact":"a","operator":"seen"}])");
    const char *corrupt = "VALIDATION_ERROR: stored facts are corrupt";
    EXPECT_EQ(facts_error(c, R"({"a": {"at": 1, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": "1", "at": 1, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1, "at": null, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1, "at": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": 1})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": [1, 2, 3]})"), corrupt);
    // Numbers that are not int64 integers are corrupt, not truncated or an internal error.
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1.5, "at": 1, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1, "at": 1e30, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 99999999999999999999, "at": 1, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1, "at": -9223372036854775809, "seq": 1}})"), corrupt);
    EXPECT_EQ(facts_error(c, R"({"a": {"n": 1, "at": 1, "seq": 1e1000001}})"), corrupt);
    Thrown t = thrown_by([&] { Facts::from_json(c, R"({"a": {"at": 1, "seq": 1}})"); });
    EXPECT_EQ(t.detail, "missing integer \"n\"");
    // Integral spellings and the int64 extremes are fine.
    Facts ok = Facts::from_json(
        c, R"({"a": {"n": 2.0, "at": -9223372036854775808, "seq": 9223372036854775807}})");
    EXPECT_EQ(ok.to_json(), R"({"a": {"n": 2, "at": -9223372036854775808, "seq": 9223372036854775807}})");
    EXPECT_EQ(Facts::from_json(c, R"({"a": {"n": 1e1, "at": 0, "seq": 0}})").find("a")->count, 10);
    // Malformed JSON is a validation error too.
    EXPECT_EQ(facts_error(c, "{"), "VALIDATION_ERROR: malformed JSON, expected a string key");
}
