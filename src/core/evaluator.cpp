#include "evaluator.hpp"

namespace witn {

namespace {

// The latest value compared with the leaf's threshold; nullopt when it is not a number.
std::optional<std::strong_ordering> compare_latest(const Leaf &leaf, const ActionFact &fact) {
    if (fact.latest_value.kind != Scalar::Kind::Number) return std::nullopt;
    return fact.latest_value.number <=> leaf.value.number;
}

} // namespace

bool leaf_holds(const Leaf &leaf, const ActionFact *fact) {
    std::int64_t n = fact ? fact->count : 0;
    switch (leaf.op) {
    case Op::Seen: return n > 0;
    case Op::NotSeen: return n == 0;
    case Op::CountGte: return n >= leaf.count;
    case Op::CountLte: return n <= leaf.count;
    case Op::CountGt: return n > leaf.count;
    case Op::CountLt: return n < leaf.count;
    case Op::CountEq: return n == leaf.count;
    case Op::Match: return fact && fact->latest_value.matches(leaf.value);
    default: break;
    }
    // Comparison and missing-value-allowed groups.
    if (!fact) return op_group(leaf.op) == OpGroup::MissingAllowed;
    auto cmp = compare_latest(leaf, *fact);
    if (!cmp) return false; // present without a usable number: never qualifies
    switch (leaf.op) {
    case Op::Gte: return *cmp >= 0;
    case Op::Lte: return *cmp <= 0;
    case Op::Gt: return *cmp > 0;
    case Op::Lt: return *cmp < 0;
    case Op::NotGte: return *cmp < 0;
    case Op::NotLte: return *cmp > 0;
    case Op::NotGt: return *cmp <= 0;
    case Op::NotLt: return *cmp >= 0;
    default: return false;
    }
}

bool evaluate(const Condition &condition, const Facts &facts) {
    for (const Leaf &leaf : condition)
        if (!leaf_holds(leaf, facts.find(leaf.fact))) return false;
    return true;
}

bool evaluate_log(const Condition &condition, const std::vector<Event> &events) {
    Facts facts(condition);
    for (const Event &e : events) facts.fold(e.action, e.value, e.occurred_at, e.seq);
    return evaluate(condition, facts);
}

std::vector<LeafExplanation> explain(const Condition &condition, const Facts &facts) {
    std::vector<LeafExplanation> out;
    out.reserve(condition.size());
    for (const Leaf &leaf : condition) {
        const ActionFact *fact = facts.find(leaf.fact);
        out.push_back({&leaf, fact, leaf_holds(leaf, fact)});
    }
    return out;
}

} // namespace witn
