// The JSON reader and writer: exact number text, strings, errors with byte offsets, nesting.
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

std::string json_error(std::string_view text, int max_depth = 64) {
    return validation_message([&] { json::parse(text, max_depth); });
}
std::string json_detail(std::string_view text, int max_depth = 64) {
    return thrown_by([&] { json::parse(text, max_depth); }).detail;
}
std::string rewrite(std::string_view text) { return json::write(json::parse(text)); }

} // namespace

TEST(JsonParse, Scalars) {
    EXPECT_EQ(json::parse("null").kind, json::Kind::Null);
    json::Value t = json::parse("true");
    EXPECT_EQ(t.kind, json::Kind::Bool);
    EXPECT_TRUE(t.boolean);
    json::Value f = json::parse(" false ");
    EXPECT_EQ(f.kind, json::Kind::Bool);
    EXPECT_FALSE(f.boolean);
    json::Value n = json::parse("-12.50e3");
    EXPECT_EQ(n.kind, json::Kind::Number);
    EXPECT_EQ(n.text, "-12.50e3"); // kept exactly as written
    json::Value s = json::parse("\"pass\"");
    EXPECT_EQ(s.kind, json::Kind::String);
    EXPECT_EQ(s.text, "pass");
}

TEST(JsonParse, NumbersKeepTheirText) {
    for (const char *t : {"0", "-0", "4.0", "40e-1", "1E+3", "699.99999999999999999999", "9007199254740993",
                          "1e1000001" /* syntactically fine; Decimal rejects it later */})
        EXPECT_EQ(json::parse(t).text, t);
}

TEST(JsonParse, StringEscapes) {
    EXPECT_EQ(json::parse(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").text, "a\"b\\c/d\be\ff\ng\rh\ti");
    EXPECT_EQ(json::parse(R"("\u0041\u00e9\u20AC")").text, "A\xC3\xA9\xE2\x82\xAC");
    EXPECT_EQ(json::parse(R"("\ud83d\ude00")").text, "\xF0\x9F\x98\x80");
    EXPECT_EQ(json::parse(R"("\uDBFF\uDFFF")").text, "\xF4\x8F\xBF\xBF");
    EXPECT_EQ(json::parse("\"caf\xC3\xA9\"").text, "caf\xC3\xA9"); // raw UTF-8 passes through
    EXPECT_EQ(json::parse(R"("\u007f")").text, "\x7f");
    EXPECT_EQ(json::parse(R"("\u0001")").text, "\x01");
    EXPECT_EQ(json::parse(R"("")").text, "");
}

TEST(JsonParse, ContainersInSourceOrder) {
    json::Value v = json::parse(R"( { "b" : [1, "x", true, null, {}, []], "a": {"c": -1} } )");
    ASSERT_EQ(v.kind, json::Kind::Object);
    ASSERT_EQ(v.members.size(), 2u);
    EXPECT_EQ(v.members[0].first, "b");
    EXPECT_EQ(v.members[1].first, "a");
    const json::Value *b = v.find("b");
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(b->items.size(), 6u);
    EXPECT_EQ(b->items[0].text, "1");
    EXPECT_EQ(b->items[1].text, "x");
    EXPECT_EQ(b->items[4].kind, json::Kind::Object);
    EXPECT_EQ(b->items[5].kind, json::Kind::Array);
    EXPECT_EQ(v.find("a")->find("c")->text, "-1");
    EXPECT_EQ(v.find("z"), nullptr);
    EXPECT_EQ(b->find("b"), nullptr); // find on a non-object finds nothing
}

TEST(JsonParse, WhitespaceIsTheFourJsonCharacters) {
    EXPECT_EQ(rewrite(" \t\r\n[ 1 ,\n2 ] \t"), "[1, 2]");
    EXPECT_EQ(json_error("\v1"), "VALIDATION_ERROR: malformed JSON, expected a value");
    EXPECT_EQ(json_error("\xC2\xA0" "1"), "VALIDATION_ERROR: malformed JSON, expected a value");
}

TEST(JsonParse, ErrorsNameWhatWasExpectedAndWhere) {
    struct Case {
        const char *text;
        const char *expected;
        const char *detail;
    };
    const Case cases[] = {
        {"", "a value", "at byte 0 of the input"},
        {"   ", "a value", "at byte 3 of the input"},
        {"[1,]", "a value", "at byte 3 of the input"},
        {"[1 2]", "',' or ']'", "at byte 3 of the input"},
        {"[1", "',' or ']'", "at byte 2 of the input"},
        {"{", "a string key", "at byte 1 of the input"},
        {"{1: 2}", "a string key", "at byte 1 of the input"},
        {"{\"a\" 1}", "':'", "at byte 5 of the input"},
        {"{\"a\": 1,}", "a string key", "at byte 8 of the input"},
        {"{\"a\": 1 \"b\": 2}", "',' or '}'", "at byte 8 of the input"},
        {"{\"a\":1,\"a\":2}", "no duplicate keys", "at byte 7 of the input"},
        {"{\"a\":1,\"\\u0061\":2}", "no duplicate keys", "at byte 7 of the input"},
        {"1 2", "end of input", "at byte 2 of the input"},
        {"tru", "a value", "at byte 0 of the input"},
        {"nul", "a value", "at byte 0 of the input"},
        {"True", "a value", "at byte 0 of the input"},
        {"01", "a valid number", "at byte 0 of the input"},
        {"[-]", "a valid number", "at byte 1 of the input"},
        {"1.", "a valid number", "at byte 0 of the input"},
        {"1e", "a valid number", "at byte 0 of the input"},
        {"1e+", "a valid number", "at byte 0 of the input"},
        {"1-2", "a valid number", "at byte 0 of the input"},
        {"+1", "a value", "at byte 0 of the input"},
        {".5", "a value", "at byte 0 of the input"},
        {"NaN", "a value", "at byte 0 of the input"},
        {"Infinity", "a value", "at byte 0 of the input"},
        {"\"abc", "a closing '\"'", "at byte 4 of the input"},
        {"\"a\nb\"", "no control characters in strings", "at byte 3 of the input"},
        {"\"a\\x\"", "a valid escape", "at byte 4 of the input"},
        {"\"a\\", "an escape", "at byte 3 of the input"},
        {"\"\\u12\"", "four hex digits", "at byte 3 of the input"},
        {"\"\\u12", "four hex digits", "at byte 3 of the input"},
        {"\"\\u0000\"", "no \\u0000 in strings", "at byte 7 of the input"},
        {"\"\\udc00\"", "a high surrogate first", "at byte 7 of the input"},
        {"\"\\ud800\"", "a low surrogate", "at byte 7 of the input"},
        {"\"\\ud800\\u0041\"", "a low surrogate", "at byte 13 of the input"},
        {"\"\\ud800x\"", "a low surrogate", "at byte 7 of the input"},
    };
    for (const Case &c : cases) {
        EXPECT_EQ(json_error(c.text), std::string("VALIDATION_ERROR: malformed JSON, expected ") + c.expected)
            << c.text;
        EXPECT_EQ(json_detail(c.text), c.detail) << c.text;
    }
}

TEST(JsonParse, DepthLimit) {
    // Depth counts values: the top level is depth 0.
    EXPECT_NO_THROW(json::parse("[[1]]", 2));
    EXPECT_NO_THROW(json::parse("[[[]]]", 2));
    EXPECT_EQ(json_error("[[[1]]]", 2), "VALIDATION_ERROR: malformed JSON, expected less deeply nested input");
    EXPECT_EQ(json_error("{\"a\": {\"b\": {\"c\": 1}}}", 2),
              "VALIDATION_ERROR: malformed JSON, expected less deeply nested input");
    EXPECT_NO_THROW(json::parse(std::string(65, '[') + std::string(65, ']')));
    EXPECT_EQ(json_error(std::string(66, '[') + std::string(66, ']')),
              "VALIDATION_ERROR: malformed JSON, expected less deeply nested input");
    // Far beyond the limit: rejected early, no stack exhaustion.
    EXPECT_EQ(json_error(std::string(1000000, '[')),
              "VALIDATION_ERROR: malformed JSON, expected less deeply nested input");
}

TEST(JsonWrite, JsonbStyle) {
    EXPECT_EQ(rewrite(R"({"a":[1,2.50,"x",true,false,null],"b":{},"c":[]})"),
              R"({"a": [1, 2.50, "x", true, false, null], "b": {}, "c": []})");
    EXPECT_EQ(rewrite("1E+3"), "1E+3");
    EXPECT_EQ(rewrite(R"("\u0041")"), R"("A")");
    EXPECT_EQ(rewrite(R"("\/")"), R"("/")");
}

TEST(JsonWrite, QuotingEscapes) {
    std::string out;
    json::append_quoted(out, std::string("q\"b\\\b\f\n\r\t\x01\x1f\x7f caf\xC3\xA9", 18));
    EXPECT_EQ(out, "\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f caf\xC3\xA9\"");
    out.clear();
    json::append_quoted(out, "");
    EXPECT_EQ(out, "\"\"");
    // Every control character round-trips.
    for (int c = 1; c < 0x20; ++c) {
        std::string s(1, char(c));
        std::string q;
        json::append_quoted(q, s);
        EXPECT_EQ(json::parse(q).text, s) << c;
    }
}

TEST(JsonWrite, RoundTripIsIdempotent) {
    for (const char *t : {"null", "[]", "{}", R"({"a": 1})", R"([{"fact":"x","operator":"seen"}])",
                          R"({"k\n": ["\u00e9", -0.0, 1e-7, {"z": [[], {}]}]})", R"("\ud83d\ude00")"}) {
        std::string once = rewrite(t);
        EXPECT_EQ(rewrite(once), once) << t;
    }
}

TEST(JsonKindName, AllKinds) {
    EXPECT_STREQ(json::kind_name(json::Kind::Null), "null");
    EXPECT_STREQ(json::kind_name(json::Kind::Bool), "a boolean");
    EXPECT_STREQ(json::kind_name(json::Kind::Number), "a number");
    EXPECT_STREQ(json::kind_name(json::Kind::String), "a string");
    EXPECT_STREQ(json::kind_name(json::Kind::Array), "an array");
    EXPECT_STREQ(json::kind_name(json::Kind::Object), "an object");
}

TEST(Scalar, FromJsonAndMatches) {
    auto sc = [](const char *t) { return Scalar::from_json(json::parse(t)); };
    EXPECT_EQ(sc("true").kind, Scalar::Kind::Bool);
    EXPECT_EQ(sc("4.0").kind, Scalar::Kind::Number);
    EXPECT_EQ(sc("\"4\"").kind, Scalar::Kind::String);
    EXPECT_EQ(sc("null").kind, Scalar::Kind::Other);
    EXPECT_EQ(sc("[]").kind, Scalar::Kind::Other);
    EXPECT_EQ(sc("{}").kind, Scalar::Kind::Other);
    EXPECT_EQ(sc("1e1000001").kind, Scalar::Kind::Other); // beyond Decimal's range: never comparable
    EXPECT_TRUE(sc("4").matches(sc("4.0")));
    EXPECT_TRUE(sc("4").matches(sc("40e-1")));
    EXPECT_FALSE(sc("4").matches(sc("\"4\"")));
    EXPECT_FALSE(sc("\"4\"").matches(sc("4")));
    EXPECT_TRUE(sc("true").matches(sc("true")));
    EXPECT_FALSE(sc("true").matches(sc("1")));
    EXPECT_FALSE(sc("true").matches(sc("false")));
    EXPECT_FALSE(sc("true").matches(sc("\"true\"")));
    EXPECT_FALSE(sc("null").matches(sc("null")));
    EXPECT_FALSE(absent().matches(absent()));
    EXPECT_TRUE(sc("\"pass\"").matches(str("pass")));
    EXPECT_FALSE(sc("\"pass\"").matches(str("Pass")));
}

TEST(Scalar, ToJson) {
    EXPECT_EQ(json::write(num("40e-1").to_json()), "4.0");
    EXPECT_EQ(json::write(str("a\"b").to_json()), R"("a\"b")");
    EXPECT_EQ(json::write(boolean(false).to_json()), "false");
    EXPECT_EQ(json::write(other().to_json()), "null");
    EXPECT_EQ(json::write(absent().to_json()), "null");
}
