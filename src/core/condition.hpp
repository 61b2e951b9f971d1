// The billable condition: a flat list of leaves joined by AND. Parsing validates completely, so
// a Condition value is always valid.
#pragma once
#include "pure.hpp"

#include "json.hpp"
#include "scalar.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace witn {

enum class Op {
    Seen, NotSeen,
    CountGte, CountLte, CountGt, CountLt, CountEq,
    Match, Gte, Lte, Gt, Lt,
    NotGte, NotLte, NotGt, NotLt,
};

enum class OpGroup { Occurrence, Count, Comparison, MissingAllowed };

OpGroup op_group(Op op) noexcept;
const char *op_name(Op op) noexcept;  // "not lte"
const char *op_label(Op op) noexcept; // dashboard label: "is missing or has value above"

struct Leaf {
    std::string fact;
    Op op = Op::Seen;
    // Count group: the count. Comparison groups: the threshold (Number; String/Bool for match).
    std::int64_t count = 0;
    Scalar value;
};

using Condition = std::vector<Leaf>;

// Upper bounds that keep a condition a small lookup structure.
constexpr std::size_t kMaxLeaves = 256;
constexpr std::size_t kMaxFactLength = 255;
constexpr std::size_t kMaxConditionText = 64 * 1024;

// Validates per CONTRACT §7; throws Error(ValidationError) naming the path ("[1].value") and
// what was expected there.
Condition parse_condition(std::string_view text);
Condition condition_from_json(const json::Value &v);

// Canonical JSON: [{"fact": "csat", "operator": "not lte", "value": 3}], keys in that order.
std::string condition_to_json(const Condition &c);

// The condition in words: "csat is missing or has value above 3 AND escalated is not seen".
std::string describe(const Condition &c);
std::string describe(const Leaf &leaf);

} // namespace witn
