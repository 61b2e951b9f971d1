// Condition parsing, validation errors with exact paths, canonical JSON and describe().
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

const std::string kOps =
    "one of \"seen\", \"not seen\", \"count_gte\", \"count_lte\", \"count_gt\", \"count_lt\", "
    "\"count_eq\", \"match\", \"gte\", \"lte\", \"gt\", \"lt\", \"not gte\", \"not lte\", "
    "\"not gt\", \"not lt\"";

std::string leaf(std::string_view op, std::string_view value_json = {}, std::string_view fact = "x") {
    std::string out = "[{\"fact\": \"" + std::string(fact) + "\", \"operator\": \"" + std::string(op) + "\"";
    if (!value_json.empty()) out += ", \"value\": " + std::string(value_json);
    return out + "}]";
}

const Op kAllOps[] = {Op::Seen,   Op::NotSeen, Op::CountGte, Op::CountLte, Op::CountGt, Op::CountLt,
                      Op::CountEq, Op::Match,  Op::Gte,      Op::Lte,      Op::Gt,      Op::Lt,
                      Op::NotGte, Op::NotLte,  Op::NotGt,    Op::NotLt};

} // namespace

TEST(ConditionOps, NamesLabelsGroups) {
    const char *names[] = {"seen", "not seen", "count_gte", "count_lte", "count_gt", "count_lt",
                           "count_eq", "match", "gte", "lte", "gt", "lt",
                           "not gte", "not lte", "not gt", "not lt"};
    const char *labels[] = {"is seen", "is not seen", "is seen at least N times", "is seen at most N times",
                            "is seen more than N times", "is seen fewer than N times",
                            "is seen exactly N times", "is equal to", "is at least", "is at most",
                            "is greater than", "is less than", "is missing or has value below",
                            "is missing or has value above", "is missing or has value at most",
                            "is missing or has value at least"};
    const OpGroup groups[] = {OpGroup::Occurrence, OpGroup::Occurrence, OpGroup::Count, OpGroup::Count,
                              OpGroup::Count, OpGroup::Count, OpGroup::Count, OpGroup::Comparison,
                              OpGroup::Comparison, OpGroup::Comparison, OpGroup::Comparison,
                              OpGroup::Comparison, OpGroup::MissingAllowed, OpGroup::MissingAllowed,
                              OpGroup::MissingAllowed, OpGroup::MissingAllowed};
    for (std::size_t i = 0; i < 16; ++i) {
        EXPECT_STREQ(op_name(kAllOps[i]), names[i]);
        EXPECT_STREQ(op_label(kAllOps[i]), labels[i]);
        EXPECT_EQ(op_group(kAllOps[i]), groups[i]) << names[i];
    }
}

TEST(ConditionParse, EveryOperator) {
    struct Case {
        const char *op;
        const char *value;
        Op expected;
    };
    const Case cases[] = {
        {"seen", "", Op::Seen},           {"not seen", "", Op::NotSeen},   {"count_gte", "3", Op::CountGte},
        {"count_lte", "3", Op::CountLte}, {"count_gt", "3", Op::CountGt},  {"count_lt", "3", Op::CountLt},
        {"count_eq", "3", Op::CountEq},   {"match", "\"a\"", Op::Match},   {"match", "4", Op::Match},
        {"match", "false", Op::Match},    {"gte", "4", Op::Gte},           {"lte", "4", Op::Lte},
        {"gt", "4", Op::Gt},              {"lt", "4", Op::Lt},             {"not gte", "4", Op::NotGte},
        {"not lte", "4", Op::NotLte},     {"not gt", "4", Op::NotGt},      {"not lt", "4", Op::NotLt},
    };
    for (const Case &c : cases) {
        Condition cond = parse_condition(leaf(c.op, c.value));
        ASSERT_EQ(cond.size(), 1u) << c.op;
        EXPECT_EQ(cond[0].fact, "x");
        EXPECT_EQ(cond[0].op, c.expected) << c.op;
        if (op_group(c.expected) == OpGroup::Count) {
            EXPECT_EQ(cond[0].count, 3);
        }
    }
    Condition m = parse_condition(leaf("match", "\"a\""));
    EXPECT_EQ(m[0].value.kind, Scalar::Kind::String);
    EXPECT_EQ(m[0].value.string, "a");
    Condition b = parse_condition(leaf("match", "false"));
    EXPECT_EQ(b[0].value.kind, Scalar::Kind::Bool);
    EXPECT_FALSE(b[0].value.boolean);
    Condition n = parse_condition(leaf("not lte", "3.5"));
    EXPECT_EQ(n[0].value.kind, Scalar::Kind::Number);
    EXPECT_EQ(n[0].value.number, D("3.5"));
}

TEST(ConditionParse, EmptyAndWhitespace) {
    EXPECT_TRUE(parse_condition("[]").empty());
    EXPECT_TRUE(parse_condition(" \n[ ]\t").empty());
    EXPECT_EQ(canonical("  [ ]  "), "[]");
}

TEST(ConditionParse, Counts) {
    EXPECT_EQ(parse_condition(leaf("count_eq", "0"))[0].count, 0);
    EXPECT_EQ(parse_condition(leaf("count_eq", "-0"))[0].count, 0); // -0 is zero, not negative
    EXPECT_EQ(parse_condition(leaf("count_eq", "4.0"))[0].count, 4);
    EXPECT_EQ(parse_condition(leaf("count_eq", "30e-1"))[0].count, 3);
    EXPECT_EQ(parse_condition(leaf("count_eq", "0.3e1"))[0].count, 3);
    EXPECT_EQ(parse_condition(leaf("count_eq", "1e1"))[0].count, 10);
    EXPECT_EQ(parse_condition(leaf("count_eq", "1e18"))[0].count, 1000000000000000000LL);
    EXPECT_EQ(parse_condition(leaf("count_eq", "9223372036854775807"))[0].count, INT64_MAX);
    EXPECT_EQ(parse_condition(leaf("count_eq", "9223372036854775807.000"))[0].count, INT64_MAX);
}

TEST(ConditionParse, FactLimits) {
    EXPECT_NO_THROW(parse_condition(leaf("seen", "", std::string(255, 'a'))));
    std::string e_acute;
    for (int i = 0; i < 127; ++i) e_acute += "\xC3\xA9"; // 254 bytes
    EXPECT_NO_THROW(parse_condition(leaf("seen", "", e_acute)));
    EXPECT_EQ(condition_error(leaf("seen", "", e_acute + "\xC3\xA9")),
              "VALIDATION_ERROR: [0].fact must be a string of at most 255 bytes");
    EXPECT_EQ(condition_error(leaf("seen", "", std::string(256, 'a'))),
              "VALIDATION_ERROR: [0].fact must be a string of at most 255 bytes");
    // Escapes are decoded before the length check: 255 × "\u0061" is 255 bytes.
    std::string escaped;
    for (int i = 0; i < 255; ++i) escaped += "\\u0061";
    EXPECT_EQ(parse_condition(leaf("seen", "", escaped))[0].fact, std::string(255, 'a'));
}

TEST(ConditionValidation, ExactMessagesAndPaths) {
    struct Case {
        std::string text;
        std::string message; // after "VALIDATION_ERROR: "
        std::string detail;
    };
    const std::string not_array = "the input must be an array of leaves ([] for a condition that always holds)";
    const std::string not_object = "[0] must be an object {\"fact\", \"operator\", \"value\"?}";
    const std::string bad_fact = "[0].fact must be a non-empty string (the event action)";
    const std::string bad_op = "[0].operator must be " + kOps;
    const std::string count = "[0].value must be a non-negative integer (a count)";
    const std::string digits = "[0].value must be a number of at most 1000 digits";
    const std::string number = "[0].value must be a number";
    const std::string scalar = "[0].value must be a string, number or boolean";
    auto unknown = [](const std::string &path) {
        return path + " must be absent: a leaf has only the keys \"fact\", \"operator\" and \"value\"";
    };
    const std::vector<Case> cases = {
        // Not an array of objects.
        {"{}", not_array, "at the top level"},
        {"null", not_array, "at the top level"},
        {"\"[]\"", not_array, "at the top level"},
        {"1", not_array, "at the top level"},
        {"true", not_array, "at the top level"},
        {R"({"fact": "a", "operator": "seen"})", not_array, "at the top level"},
        {"[1]", not_object, "at [0]"},
        {"[null]", not_object, "at [0]"},
        {"[[]]", not_object, "at [0]"},
        {"[\"seen\"]", not_object, "at [0]"},
        {R"([{"fact": "a", "operator": "seen"}, []])",
         "[1] must be an object {\"fact\", \"operator\", \"value\"?}", "at [1]"},
        // Unknown keys: reported at the key's own path.
        {R"([{"type": "signed", "operator": "seen"}])", unknown("[0].type"), "at [0].type"},
        {R"([{"fact": "a", "operator": "seen", "Value": 1}])", unknown("[0].Value"), "at [0].Value"},
        {R"([{"x": 1}])", unknown("[0].x"), "at [0].x"}, // before the missing fact
        {R"([{"fact": "ok", "operator": "seen"}, {"fact": "a", "operator": "seen", "extra": 1}])",
         unknown("[1].extra"), "at [1].extra"},
        // fact.
        {R"([{"operator": "seen"}])", "[0].fact must be present: a non-empty string (the event action)", "at [0].fact"},
        {R"([{}])", "[0].fact must be present: a non-empty string (the event action)", "at [0].fact"},
        {R"([{"fact": "done", "operator": "seen"}, {"operator": "seen"}])",
         "[1].fact must be present: a non-empty string (the event action)", "at [1].fact"},
        {R"([{"fact": 1, "operator": "seen"}])", bad_fact, "at [0].fact"},
        {R"([{"fact": "", "operator": "seen"}])", bad_fact, "at [0].fact"},
        {R"([{"fact": null, "operator": "seen"}])", bad_fact, "at [0].fact"},
        {R"([{"fact": ["a"], "operator": "seen"}])", bad_fact, "at [0].fact"},
        {R"([{"fact": true, "operator": "seen"}])", bad_fact, "at [0].fact"},
        {R"([{"fact": "", "operator": "bogus"}])", bad_fact, "at [0].fact"}, // fact before operator
        // operator.
        {R"([{"fact": "a"}])", "[0].operator must be present: " + kOps, "at [0].operator"},
        {R"([{"fact": "a", "value": 1}])", "[0].operator must be present: " + kOps, "at [0].operator"},
        {R"([{"fact": "a", "operator": 1}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": null}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "SEEN"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": ""}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "not  seen"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "notseen"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": " seen"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "eq"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "not_lte"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "not match"}])", bad_op, "at [0].operator"},
        {R"([{"fact": "a", "operator": "bogus", "value": {}}])", bad_op, "at [0].operator"}, // before value
        // Occurrence operators take no value.
        {R"([{"fact": "a", "operator": "seen", "value": null}])", "[0].value must be absent: \"seen\" takes no value", "at [0].value"},
        {R"([{"fact": "a", "operator": "seen", "value": true}])", "[0].value must be absent: \"seen\" takes no value", "at [0].value"},
        {R"([{"fact": "a", "operator": "not seen", "value": 1}])", "[0].value must be absent: \"not seen\" takes no value", "at [0].value"},
        // Counts.
        {R"([{"fact": "a", "operator": "count_gte"}])", "[0].value must be present: a non-negative integer (a count)", "at [0].value"},
        {R"([{"fact": "a", "operator": "count_eq", "value": -1}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_lt", "value": -1e0}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gt", "value": 1.5}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_lte", "value": 0.5}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 3.5e0}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 1e-1}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 3.000000000000000000001}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": "3"}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": null}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": true}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": [3]}])", count, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 9223372036854775808}])",
         "[0].value must be a count of at most 9223372036854775807", "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 1e19}])",
         "[0].value must be a count of at most 9223372036854775807", "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 1e1000}])", digits, "at [0].value"},
        {R"([{"fact": "a", "operator": "count_gte", "value": 1e1000001}])", digits, "at [0].value"},
        // match.
        {R"([{"fact": "a", "operator": "match"}])", "[0].value must be present: a string, number or boolean", "at [0].value"},
        {R"([{"fact": "a", "operator": "match", "value": null}])", scalar, "at [0].value"},
        {R"([{"fact": "a", "operator": "match", "value": []}])", scalar, "at [0].value"},
        {R"([{"fact": "a", "operator": "match", "value": [1]}])", scalar, "at [0].value"},
        {R"([{"fact": "a", "operator": "match", "value": {}}])", scalar, "at [0].value"},
        {R"([{"fact": "a", "operator": "match", "value": 1e1000}])", digits, "at [0].value"},
        // Numeric comparisons.
        {R"([{"fact": "a", "operator": "gte"}])", "[0].value must be present: a number", "at [0].value"},
        {R"([{"fact": "a", "operator": "not lte"}])", "[0].value must be present: a number", "at [0].value"},
        {R"([{"fact": "a", "operator": "gte", "value": "4"}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "lte", "value": true}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "gt", "value": null}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "lt", "value": [4]}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "not gte", "value": {}}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "not lte", "value": "3"}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "not gt", "value": false}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "not lt", "value": null}])", number, "at [0].value"},
        {R"([{"fact": "a", "operator": "gte", "value": 1e1000}])", digits, "at [0].value"},
        {R"([{"fact": "a", "operator": "gte", "value": -1e1000}])", digits, "at [0].value"},
        {R"([{"fact": "a", "operator": "gte", "value": 1e-1000}])", digits, "at [0].value"},
        {R"([{"fact": "a", "operator": "lt", "value": 1e1000001}])", digits, "at [0].value"},
        {R"([{"fact": "done", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": "4"}])",
         "[1].value must be a number", "at [1].value"},
        {R"([{"fact": "a", "operator": "seen"}, {"fact": "b", "operator": "seen"}, {"fact": "c", "operator": "lt", "value": "x"}])",
         "[2].value must be a number", "at [2].value"},
        // Only the first bad leaf is reported.
        {R"([{"fact": "a", "operator": "gte", "value": "x"}, {"fact": ""}])", number, "at [0].value"},
        // Malformed JSON and duplicate keys.
        {"[", "malformed JSON, expected a value", "at byte 1 of the input"},
        {"", "malformed JSON, expected a value", "at byte 0 of the input"},
        {R"([{"fact":"a","operator":"seen"})", "malformed JSON, expected ',' or ']'", "at byte 31 of the input"},
        {R"([{"fact":"a","fact":"b","operator":"seen"}])", "malformed JSON, expected no duplicate keys", "at byte 13 of the input"},
        {R"([{"fact":"a","operator":"seen","operator":"seen"}])", "malformed JSON, expected no duplicate keys", "at byte 31 of the input"},
        {R"([{"fact":"a","operator":"match","value":[[[[[[[[1]]]]]]]]}])",
         "malformed JSON, expected less deeply nested input", "at byte 47 of the input"},
    };
    for (const Case &c : cases) {
        EXPECT_EQ(condition_error(c.text), "VALIDATION_ERROR: " + c.message) << c.text;
        EXPECT_EQ(condition_detail(c.text), c.detail) << c.text;
    }
}

TEST(ConditionValidation, NumberDigitLimitIsInclusive) {
    EXPECT_NO_THROW(parse_condition(leaf("gte", "1e999")));
    EXPECT_NO_THROW(parse_condition(leaf("gte", "-1e999")));
    EXPECT_NO_THROW(parse_condition(leaf("gte", "1e-999")));
    EXPECT_NO_THROW(parse_condition(leaf("match", "0e-999")));
    EXPECT_EQ(condition_error(leaf("match", "0e-1000")), "VALIDATION_ERROR: [0].value must be a number of at most 1000 digits");
}

TEST(ConditionValidation, SizeLimits) {
    // Exactly 64 KiB is accepted, one byte more is not.
    std::string text = "[]" + std::string(kMaxConditionText - 2, ' ');
    ASSERT_EQ(text.size(), 65536u);
    EXPECT_NO_THROW(parse_condition(text));
    text.push_back(' ');
    EXPECT_EQ(condition_error(text), "VALIDATION_ERROR: the input must be at most 64 KiB of JSON");
    EXPECT_EQ(condition_detail(text), "at the top level");

    // 256 leaves are accepted, 257 are not.
    std::string leaves = "[";
    for (int i = 0; i < 256; ++i) leaves += std::string(i ? "," : "") + R"({"fact":"a","operator":"seen"})";
    EXPECT_EQ(parse_condition(leaves + "]").size(), 256u);
    leaves += R"(,{"fact":"a","operator":"seen"}])";
    EXPECT_EQ(condition_error(leaves), "VALIDATION_ERROR: the input must be an array of at most 256 leaves");
}

TEST(ConditionValidation, CanonicalFormMustFitTheLimitToo) {
    // 1e999 is 5 bytes of input but 1000 digits of canonical text: a condition whose canonical
    // form would exceed 64 KiB could be stored but never read back, so it is rejected.
    auto many = [](int n) {
        std::string t = "[";
        for (int i = 0; i < n; ++i) t += std::string(i ? "," : "") + R"({"fact":"a","operator":"gte","value":1e999})";
        return t + "]";
    };
    Condition ok = parse_condition(many(60));
    std::string canon = condition_to_json(ok);
    EXPECT_LE(canon.size(), kMaxConditionText);
    EXPECT_TRUE(same_condition(parse_condition(canon), ok));
    EXPECT_LT(many(70).size(), 4096u);
    EXPECT_EQ(condition_error(many(70)), "VALIDATION_ERROR: the input must be at most 64 KiB of JSON in canonical form");
}

TEST(ConditionValidation, ErrorsCarryTheValidationCodeAndAHint) {
    Thrown t = thrown_by([] { parse_condition(R"([{"type":"signed","operator":"seen"}])"); });
    ASSERT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::ValidationError);
    EXPECT_STREQ(code_name(t.code), "VALIDATION_ERROR");
    EXPECT_EQ(t.detail, "at [0].type");
    EXPECT_NE(t.hint, "");
    for (const char *bad : {"{}", "[1]", R"([{"fact": ""}])", R"([{"fact": "a", "operator": "x"}])",
                            R"([{"fact": "a", "operator": "gte", "value": "4"}])"})
        EXPECT_NE(thrown_by([&] { parse_condition(bad); }).hint, "") << bad;
}

TEST(ConditionValidation, UnusualUnknownKeysAreRejectedWithAnUnambiguousPath) {
    // A plain key reads as a member (.FACT); one that would be ambiguous in a path (quotes,
    // dots, empty) is JSON-quoted in brackets.
    const std::pair<const char *, const char *> cases[] = {
        {R"([{"fact": "a", "operator": "seen", "a\"b": 1}])", R"(at [0]["a\"b"])"},
        {R"([{"fact": "a", "operator": "seen", "": 1}])", R"(at [0][""])"},
        {R"([{"fact": "a", "operator": "seen", "fact.x": 1}])", R"(at [0]["fact.x"])"},
        {R"([{"fact": "a", "operator": "seen", "FACT": 1}])", "at [0].FACT"}};
    for (const auto &[text, detail] : cases) {
        Thrown t = thrown_by([&] { parse_condition(text); });
        ASSERT_TRUE(t.thrown) << text;
        EXPECT_EQ(t.code, Code::ValidationError) << text;
        EXPECT_EQ(t.message.rfind("VALIDATION_ERROR: [0]", 0), 0u) << t.message;
        EXPECT_EQ(t.detail, detail) << text;
    }
}

TEST(ConditionCanonical, Form) {
    EXPECT_EQ(canonical(R"([{"fact":"csat","operator":"not lte","value":3}])"),
              R"([{"fact": "csat", "operator": "not lte", "value": 3}])");
    EXPECT_EQ(canonical(R"([{"value":3,"operator":"not lte","fact":"csat"},{"operator":"not seen","fact":"escalated"}])"),
              R"([{"fact": "csat", "operator": "not lte", "value": 3}, {"fact": "escalated", "operator": "not seen"}])");
    EXPECT_EQ(canonical(leaf("count_gte", "4.0")), R"([{"fact": "x", "operator": "count_gte", "value": 4}])");
    EXPECT_EQ(canonical(leaf("count_gte", "1e1")), R"([{"fact": "x", "operator": "count_gte", "value": 10}])");
    EXPECT_EQ(canonical(leaf("count_gte", "-0")), R"([{"fact": "x", "operator": "count_gte", "value": 0}])");
    EXPECT_EQ(canonical(leaf("match", "\"pass\"")), R"([{"fact": "x", "operator": "match", "value": "pass"}])");
    EXPECT_EQ(canonical(leaf("match", "true")), R"([{"fact": "x", "operator": "match", "value": true}])");
    EXPECT_EQ(canonical(leaf("match", "4.0")), R"([{"fact": "x", "operator": "match", "value": 4.0}])");
    EXPECT_EQ(canonical(leaf("match", "40e-1")), R"([{"fact": "x", "operator": "match", "value": 4.0}])");
    EXPECT_EQ(canonical(leaf("gte", "1e3")), R"([{"fact": "x", "operator": "gte", "value": 1000}])");
    EXPECT_EQ(canonical(leaf("gte", "-0")), R"([{"fact": "x", "operator": "gte", "value": 0}])");
    EXPECT_EQ(canonical(leaf("gte", "-0.0")), R"([{"fact": "x", "operator": "gte", "value": 0.0}])");
    EXPECT_EQ(canonical(leaf("lt", "-12.50e-1")), R"([{"fact": "x", "operator": "lt", "value": -1.250}])");
    EXPECT_EQ(canonical(leaf("gte", "699.99999999999999999999")),
              R"([{"fact": "x", "operator": "gte", "value": 699.99999999999999999999}])");
    EXPECT_EQ(canonical(R"([{"fact":"caf\u00e9 \/ \"q\"\t","operator":"match","value":"a\u0001b"}])"),
              "[{\"fact\": \"caf\xC3\xA9 / \\\"q\\\"\\t\", \"operator\": \"match\", \"value\": \"a\\u0001b\"}]");
}

TEST(ConditionCanonical, RoundTripsAndIsIdempotent) {
    const char *texts[] = {
        "[]",
        R"([{"fact":"downloaded","operator":"seen"}])",
        R"([{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}])",
        R"([{"fact":"csat","operator":"gte","value":4}])",
        R"([{"fact":"inspection","operator":"match","value":"pass"}])",
        R"([{"fact":"warning","operator":"count_gte","value":3}])",
        R"([{"fact":"a","operator":"count_lte","value":30e-1},{"fact":"a","operator":"count_gt","value":0},
            {"fact":"a","operator":"count_lt","value":1e2},{"fact":"a","operator":"count_eq","value":7}])",
        R"([{"fact":"v","operator":"match","value":40e-1},{"fact":"v","operator":"match","value":false},
            {"fact":"v","operator":"lte","value":-1.5e-3},{"fact":"v","operator":"gt","value":1e2},
            {"fact":"v","operator":"lt","value":0.000},{"fact":"v","operator":"not gte","value":-0},
            {"fact":"v","operator":"not lte","value":3},{"fact":"v","operator":"not gt","value":9007199254740993},
            {"fact":"v","operator":"not lt","value":1e-999}])",
        R"([{"fact":"\u0001\"\\\/\ud83d\ude00","operator":"match","value":"\n\u001f"}])",
    };
    for (const char *t : texts) {
        Condition c = parse_condition(t);
        std::string once = condition_to_json(c);
        Condition again = parse_condition(once);
        EXPECT_TRUE(same_condition(c, again)) << t;
        EXPECT_EQ(condition_to_json(again), once) << t;
        EXPECT_EQ(describe(again), describe(c)) << t;
    }
}

TEST(ConditionDescribe, EveryOperator) {
    struct Case {
        const char *op;
        const char *value;
        const char *text;
    };
    const Case cases[] = {
        {"seen", "", "x is seen"},
        {"not seen", "", "x is not seen"},
        {"count_gte", "3", "x is seen at least 3 times"},
        {"count_lte", "3", "x is seen at most 3 times"},
        {"count_gt", "3", "x is seen more than 3 times"},
        {"count_lt", "3", "x is seen fewer than 3 times"},
        {"count_eq", "3", "x is seen exactly 3 times"},
        {"count_eq", "0", "x is seen exactly 0 times"},
        {"count_eq", "1", "x is seen exactly 1 time"},
        {"count_gte", "1", "x is seen at least 1 time"},
        {"count_lte", "1", "x is seen at most 1 time"},
        {"count_gt", "1", "x is seen more than 1 time"},
        {"count_lt", "1", "x is seen fewer than 1 time"},
        {"count_gte", "2", "x is seen at least 2 times"},
        {"count_gte", "10", "x is seen at least 10 times"},
        {"count_gte", "11", "x is seen at least 11 times"},
        {"match", "\"pass\"", "x is equal to \"pass\""},
        {"match", "true", "x is equal to true"},
        {"match", "4.0", "x is equal to 4.0"},
        {"gte", "4", "x is at least 4"},
        {"lte", "4", "x is at most 4"},
        {"gt", "4", "x is greater than 4"},
        {"lt", "-0.5", "x is less than -0.5"},
        {"not gte", "4", "x is missing or has value below 4"},
        {"not lte", "3", "x is missing or has value above 3"},
        {"not gt", "4", "x is missing or has value at most 4"},
        {"not lt", "1e2", "x is missing or has value at least 100"},
    };
    for (const Case &c : cases) {
        Condition cond = parse_condition(leaf(c.op, c.value));
        EXPECT_EQ(describe(cond), c.text);
        EXPECT_EQ(describe(cond[0]), c.text);
    }
}

TEST(ConditionDescribe, ContractExampleAndEmpty) {
    EXPECT_EQ(describe(parse_condition(
                  R"([{"fact":"csat","operator":"not lte","value":3},{"fact":"escalated","operator":"not seen"}])")),
              "csat is missing or has value above 3 AND escalated is not seen");
    EXPECT_EQ(describe(parse_condition("[]")), "always (no leaves)");
}
