// Attribution: quantity methods, ordering by occurred_at then arrival, average rounding, JSON.
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

const AttributionMethod kAll[] = {AttributionMethod::Last, AttributionMethod::First, AttributionMethod::Sum,
                                  AttributionMethod::Max,  AttributionMethod::Min,   AttributionMethod::Average};

std::string q(const Attribution &a, AttributionMethod m) { return a.quantity(m).to_string(); }

std::string attribution_error(std::string_view text) {
    return validation_message([&] { Attribution::from_json(text); });
}

} // namespace

TEST(AttributionMethod, Names) {
    EXPECT_EQ(attribution_method_from_name("last"), AttributionMethod::Last);
    EXPECT_EQ(attribution_method_from_name("first"), AttributionMethod::First);
    EXPECT_EQ(attribution_method_from_name("sum"), AttributionMethod::Sum);
    EXPECT_EQ(attribution_method_from_name("max"), AttributionMethod::Max);
    EXPECT_EQ(attribution_method_from_name("min"), AttributionMethod::Min);
    EXPECT_EQ(attribution_method_from_name("average"), AttributionMethod::Average);
    for (const char *bad : {"", "Last", "avg", "mean", "last ", "count"})
        EXPECT_FALSE(attribution_method_from_name(bad).has_value()) << bad;
}

TEST(Attribution, NoAttributionBillsOne) {
    Attribution a;
    for (AttributionMethod m : kAll) {
        EXPECT_EQ(a.quantity(m), D("1"));
        EXPECT_EQ(q(a, m), "1");
    }
    EXPECT_EQ(a.to_json(), "{\"n\": 0}");
}

TEST(Attribution, SingleValue) {
    Attribution a;
    a.fold(D("1.2"), 100, 1);
    for (AttributionMethod m : kAll) EXPECT_EQ(a.quantity(m), D("1.2"));
    EXPECT_EQ(q(a, AttributionMethod::Last), "1.2");
    EXPECT_EQ(q(a, AttributionMethod::Average), "1.20000000000000000000");
}

TEST(Attribution, ZeroIsAQuantityNotAbsence) {
    Attribution a;
    a.fold(D("0"), 1, 1);
    for (AttributionMethod m : kAll) EXPECT_TRUE(a.quantity(m).is_zero());
}

TEST(Attribution, EveryMethodOverAStream) {
    Attribution a;
    a.fold(D("3"), 10, 1);
    a.fold(D("1"), 5, 2);    // back-dated: the new first
    a.fold(D("2"), 20, 3);   // the new last
    a.fold(D("2.5"), 20, 4); // ties with the last, arrives later: the new last
    EXPECT_EQ(a.count, 4);
    EXPECT_EQ(q(a, AttributionMethod::Last), "2.5");
    EXPECT_EQ(q(a, AttributionMethod::First), "1");
    EXPECT_EQ(q(a, AttributionMethod::Sum), "8.5");
    EXPECT_EQ(q(a, AttributionMethod::Max), "3");
    EXPECT_EQ(q(a, AttributionMethod::Min), "1");
    EXPECT_EQ(q(a, AttributionMethod::Average), "2.12500000000000000000");
}

TEST(Attribution, TiesForFirstAndLastGoByArrival) {
    Attribution a;
    a.fold(D("1"), 10, 5);
    a.fold(D("2"), 10, 6); // same time, later arrival: last, not first
    EXPECT_EQ(q(a, AttributionMethod::First), "1");
    EXPECT_EQ(q(a, AttributionMethod::Last), "2");
    a.fold(D("3"), 10, 4); // same time, earlier seq (replayed out of order): the new first
    EXPECT_EQ(q(a, AttributionMethod::First), "3");
    EXPECT_EQ(q(a, AttributionMethod::Last), "2");
}

TEST(Attribution, AverageRoundsHalfAwayFromZeroAt20Digits) {
    Attribution third;
    third.fold(D("1"), 1, 1);
    third.fold(D("0"), 2, 2);
    third.fold(D("0"), 3, 3);
    EXPECT_EQ(q(third, AttributionMethod::Average), "0.33333333333333333333");
    Attribution two_thirds;
    two_thirds.fold(D("2"), 1, 1);
    two_thirds.fold(D("0"), 2, 2);
    two_thirds.fold(D("0"), 3, 3);
    EXPECT_EQ(q(two_thirds, AttributionMethod::Average), "0.66666666666666666667");
    Attribution half;
    half.fold(D("0.00000000000000000001"), 1, 1);
    half.fold(D("0"), 2, 2);
    EXPECT_EQ(q(half, AttributionMethod::Average), "0.00000000000000000001"); // 0.5e-20 rounds up
    Attribution below_half;
    below_half.fold(D("0.00000000000000000001"), 1, 1);
    below_half.fold(D("0"), 2, 2);
    below_half.fold(D("0"), 3, 3);
    EXPECT_EQ(q(below_half, AttributionMethod::Average), "0.00000000000000000000");
}

TEST(Attribution, ExactSums) {
    Attribution a;
    a.fold(D("0.1"), 1, 1);
    a.fold(D("0.2"), 2, 2);
    EXPECT_EQ(a.quantity(AttributionMethod::Sum), D("0.3"));
    EXPECT_EQ(q(a, AttributionMethod::Sum), "0.3");
    EXPECT_EQ(q(a, AttributionMethod::Average), "0.15000000000000000000");
    a.fold(D("9007199254740993"), 3, 3);
    EXPECT_EQ(q(a, AttributionMethod::Sum), "9007199254740993.3");
    EXPECT_EQ(q(a, AttributionMethod::Max), "9007199254740993");
    // Equal values in different spellings: min/max keep the first one seen.
    Attribution b;
    b.fold(D("4"), 1, 1);
    b.fold(D("4.0"), 2, 2);
    EXPECT_EQ(q(b, AttributionMethod::Max), "4");
    EXPECT_EQ(q(b, AttributionMethod::Sum), "8.0");
}

TEST(Attribution, ToJsonFormatAndRoundTrip) {
    Attribution a;
    a.fold(D("3"), 10, 1);
    a.fold(D("1.50"), 5, 2);
    a.fold(D("2"), -20, 3);
    std::string text = a.to_json();
    EXPECT_EQ(text, R"({"n": 3, "sum": 6.50, "min": 1.50, "max": 3, "first": [2, -20, 3], "last": [3, 10, 1]})");
    Attribution back = Attribution::from_json(text);
    EXPECT_EQ(back.to_json(), text);
    for (AttributionMethod m : kAll) EXPECT_EQ(q(back, m), q(a, m));
    // Folding continues identically after a round-trip.
    a.fold(D("7"), 11, 4);
    back.fold(D("7"), 11, 4);
    EXPECT_EQ(back.to_json(), a.to_json());
    EXPECT_EQ(Attribution::from_json("{\"n\": 0}").to_json(), "{\"n\": 0}");
    // jsonb reorders keys.
    Attribution r = Attribution::from_json(
        R"({"last": [3, 10, 1], "first": [2, -20, 3], "max": 3, "min": 1.50, "sum": 6.50, "n": 3})");
    EXPECT_EQ(r.to_json(), text);
}

TEST(Attribution, FromJsonRejectsCorruptState) {
    const char *corrupt = "VALIDATION_ERROR: stored attribution is corrupt";
    EXPECT_EQ(attribution_error("{}"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": "1"})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": 1, "min": 1, "max": 1, "first": [1, 1], "last": [1, 1, 1]})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": 1, "min": 1, "max": 1, "first": [1, 1, 1], "last": {}})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": "1", "min": 1, "max": 1, "first": [1, 1, 1], "last": [1, 1, 1]})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": 1e1000001, "min": 1, "max": 1, "first": [1, 1, 1], "last": [1, 1, 1]})"), corrupt);
    // Non-integers and out-of-range integers are corrupt, not truncated or an internal error.
    EXPECT_EQ(attribution_error(R"({"n": 1.5})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 99999999999999999999})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": 1, "min": 1, "max": 1, "first": [1, 1e30, 1], "last": [1, 1, 1]})"), corrupt);
    EXPECT_EQ(attribution_error(R"({"n": 1, "sum": 1, "min": 1, "max": 1, "first": [1, 1, 1], "last": [1, 1, 0.5]})"), corrupt);
    Thrown t = thrown_by([] { Attribution::from_json(R"({"n": 1, "sum": 1})"); });
    EXPECT_EQ(t.detail, "at \"min\"");
    EXPECT_EQ(attribution_error("["), "VALIDATION_ERROR: malformed JSON, expected a value");
    EXPECT_EQ(Attribution::from_json(R"({"n": 1.0, "sum": 1, "min": 1, "max": 1, "first": [1, 1e2, 1], "last": [1, 100, 1]})").first_at, 100);
}
