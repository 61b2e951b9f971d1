#include "condition.hpp"

#include "error.hpp"

#include <array>
#include <limits>

namespace witn {

namespace {

struct OpInfo {
    Op op;
    const char *name;
    const char *label;
    OpGroup group;
};

constexpr std::array<OpInfo, 16> kOps{{
    {Op::Seen, "seen", "is seen", OpGroup::Occurrence},
    {Op::NotSeen, "not seen", "is not seen", OpGroup::Occurrence},
    {Op::CountGte, "count_gte", "is seen at least N times", OpGroup::Count},
    {Op::CountLte, "count_lte", "is seen at most N times", OpGroup::Count},
    {Op::CountGt, "count_gt", "is seen more than N times", OpGroup::Count},
    {Op::CountLt, "count_lt", "is seen fewer than N times", OpGroup::Count},
    {Op::CountEq, "count_eq", "is seen exactly N times", OpGroup::Count},
    {Op::Match, "match", "is equal to", OpGroup::Comparison},
    {Op::Gte, "gte", "is at least", OpGroup::Comparison},
    {Op::Lte, "lte", "is at most", OpGroup::Comparison},
    {Op::Gt, "gt", "is greater than", OpGroup::Comparison},
    {Op::Lt, "lt", "is less than", OpGroup::Comparison},
    {Op::NotGte, "not gte", "is missing or has value below", OpGroup::MissingAllowed},
    {Op::NotLte, "not lte", "is missing or has value above", OpGroup::MissingAllowed},
    {Op::NotGt, "not gt", "is missing or has value at most", OpGroup::MissingAllowed},
    {Op::NotLt, "not lt", "is missing or has value at least", OpGroup::MissingAllowed},
}};

const OpInfo &info(Op op) { return kOps[static_cast<std::size_t>(op)]; }

const char *kOperatorList =
    "one of \"seen\", \"not seen\", \"count_gte\", \"count_lte\", \"count_gt\", \"count_lt\", "
    "\"count_eq\", \"match\", \"gte\", \"lte\", \"gt\", \"lt\", \"not gte\", \"not lte\", "
    "\"not gt\", \"not lt\"";

constexpr const char *kLeafHint =
    "A condition is a JSON array of leaves {\"fact\": <event action>, \"operator\": <operator>, "
    "\"value\": <count, number or scalar>}; seen and not seen take no value.";

[[noreturn]] void fail_leaf(const std::string &path, const std::string &expected) {
    fail_validation(path, expected, kLeafHint);
}

// Validation limit on a condition's numbers, in plain-notation digits.
constexpr std::size_t kMaxNumberDigits = 1000;

// ".type" for a plain key, "[\"a b\"]" (JSON-quoted) for anything else, so paths stay unambiguous.
std::string member_path(const std::string &key) {
    bool plain = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
    for (char c : key)
        plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    if (plain) return "." + key;
    std::string quoted = "[";
    json::append_quoted(quoted, key);
    return quoted + "]";
}

Decimal number_at(const json::Value &v, const std::string &path, const char *expected) {
    if (v.kind != json::Kind::Number) fail_leaf(path, expected);
    auto d = Decimal::parse(v.text);
    if (!d || d->plain_length() > kMaxNumberDigits)
        fail_leaf(path, "a number of at most 1000 digits");
    return *d;
}

Leaf leaf_from_json(const json::Value &v, const std::string &path) {
    if (v.kind != json::Kind::Object)
        fail_leaf(path, "an object {\"fact\", \"operator\", \"value\"?}");
    for (const auto &[key, _] : v.members)
        if (key != "fact" && key != "operator" && key != "value")
            fail_leaf(path + member_path(key), "absent: a leaf has only the keys \"fact\", "
                                                 "\"operator\" and \"value\"");
    const json::Value *fact = v.find("fact");
    const json::Value *op = v.find("operator");
    const json::Value *value = v.find("value");
    if (!fact) fail_leaf(path + ".fact", "present: a non-empty string (the event action)");
    if (fact->kind != json::Kind::String || fact->text.empty())
        fail_leaf(path + ".fact", "a non-empty string (the event action)");
    if (fact->text.size() > kMaxFactLength)
        fail_leaf(path + ".fact", "a string of at most 255 bytes");
    if (!op) fail_leaf(path + ".operator", std::string("present: ") + kOperatorList);
    if (op->kind != json::Kind::String) fail_leaf(path + ".operator", kOperatorList);

    Leaf leaf;
    leaf.fact = fact->text;
    const OpInfo *found = nullptr;
    for (const auto &o : kOps)
        if (op->text == o.name) found = &o;
    if (!found) fail_leaf(path + ".operator", kOperatorList);
    leaf.op = found->op;

    const std::string value_path = path + ".value";
    switch (found->group) {
    case OpGroup::Occurrence:
        if (value)
            fail_leaf(value_path, std::string("absent: \"") + found->name +
                                            "\" takes no value");
        break;
    case OpGroup::Count: {
        const char *expected = "a non-negative integer (a count)";
        if (!value) fail_leaf(value_path, std::string("present: ") + expected);
        Decimal d = number_at(*value, value_path, expected);
        if (d.is_negative() || !d.is_integer()) fail_leaf(value_path, expected);
        static const Decimal max_count =
            *Decimal::parse(std::to_string(std::numeric_limits<std::int64_t>::max()));
        if (d > max_count) fail_leaf(value_path, "a count of at most 9223372036854775807");
        leaf.count = std::stoll(d.to_string()); // integral: digits stop before any ".0"
        break;
    }
    case OpGroup::Comparison:
    case OpGroup::MissingAllowed: {
        bool is_match = found->op == Op::Match;
        const char *expected = is_match ? "a string, number or boolean" : "a number";
        if (!value) fail_leaf(value_path, std::string("present: ") + expected);
        if (is_match && (value->kind == json::Kind::String || value->kind == json::Kind::Bool)) {
            leaf.value = Scalar::from_json(*value);
        } else {
            leaf.value.kind = Scalar::Kind::Number;
            leaf.value.number = number_at(*value, value_path, expected);
        }
        break;
    }
    }
    return leaf;
}

} // namespace

OpGroup op_group(Op op) noexcept { return info(op).group; }
const char *op_name(Op op) noexcept { return info(op).name; }
const char *op_label(Op op) noexcept { return info(op).label; }

Condition condition_from_json(const json::Value &v) {
    if (v.kind != json::Kind::Array)
        fail_leaf("", "an array of leaves ([] for a condition that always holds)");
    if (v.items.size() > kMaxLeaves) fail_leaf("", "an array of at most 256 leaves");
    Condition c;
    c.reserve(v.items.size());
    for (std::size_t i = 0; i < v.items.size(); ++i)
        c.push_back(leaf_from_json(v.items[i], "[" + std::to_string(i) + "]"));
    // Stored conditions are canonical text read back through parse_condition, so the canonical
    // form must fit its limit too (numbers like 1e999 grow to 1000 digits).
    if (condition_to_json(c).size() > kMaxConditionText)
        fail_validation("", "at most 64 KiB of JSON in canonical form");
    return c;
}

Condition parse_condition(std::string_view text) {
    if (text.size() > kMaxConditionText) fail_validation("", "at most 64 KiB of JSON");
    return condition_from_json(json::parse(text, 8));
}

std::string condition_to_json(const Condition &c) {
    std::string out = "[";
    for (std::size_t i = 0; i < c.size(); ++i) {
        const Leaf &leaf = c[i];
        if (i) out += ", ";
        out += "{\"fact\": ";
        json::append_quoted(out, leaf.fact);
        out += ", \"operator\": ";
        json::append_quoted(out, op_name(leaf.op));
        if (op_group(leaf.op) == OpGroup::Count) {
            out += ", \"value\": " + std::to_string(leaf.count);
        } else if (op_group(leaf.op) != OpGroup::Occurrence) {
            out += ", \"value\": ";
            out += json::write(leaf.value.to_json());
        }
        out += "}";
    }
    out += "]";
    return out;
}

std::string describe(const Leaf &leaf) {
    std::string out = leaf.fact + " ";
    std::string label = op_label(leaf.op);
    switch (op_group(leaf.op)) {
    case OpGroup::Occurrence:
        out += label;
        break;
    case OpGroup::Count: {
        // "is seen at least N times" with N filled in ("1 time", not "1 times").
        std::size_t n = label.find('N');
        std::string rest = label.substr(n + 1);
        if (leaf.count == 1) rest = " time";
        out += label.substr(0, n) + std::to_string(leaf.count) + rest;
        break;
    }
    default:
        out += label + " " + json::write(leaf.value.to_json());
    }
    return out;
}

std::string describe(const Condition &c) {
    if (c.empty()) return "always (no leaves)";
    std::string out;
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (i) out += " AND ";
        out += describe(c[i]);
    }
    return out;
}

} // namespace witn
