// The reference evaluator the unit tests and the fuzz target check the core against: straight
// from the definitions (CONTRACT §3-6), over the whole log, with no Facts involved.
#pragma once

#include "core/condition.hpp"
#include "core/event.hpp"

#include <vector>

namespace witn::testing {

inline bool reference_leaf(const Leaf &leaf, const std::vector<Event> &log) {
    std::int64_t n = 0;
    const Event *latest = nullptr;
    for (const Event &e : log) {
        if (e.action != leaf.fact) continue;
        ++n;
        if (!latest || e.occurred_at > latest->occurred_at ||
            (e.occurred_at == latest->occurred_at && e.seq > latest->seq))
            latest = &e;
    }
    const bool missing_allowed =
        leaf.op == Op::NotGte || leaf.op == Op::NotLte || leaf.op == Op::NotGt || leaf.op == Op::NotLt;
    switch (leaf.op) {
    case Op::Seen: return n > 0;
    case Op::NotSeen: return n == 0;
    case Op::CountGte: return n >= leaf.count;
    case Op::CountLte: return n <= leaf.count;
    case Op::CountGt: return n > leaf.count;
    case Op::CountLt: return n < leaf.count;
    case Op::CountEq: return n == leaf.count;
    case Op::Match: {
        if (!latest) return false;
        const Scalar &v = latest->value, &t = leaf.value;
        if (v.kind != t.kind) return false;
        if (v.kind == Scalar::Kind::String) return v.string == t.string;
        if (v.kind == Scalar::Kind::Bool) return v.boolean == t.boolean;
        if (v.kind == Scalar::Kind::Number) return v.number == t.number;
        return false;
    }
    default: break;
    }
    if (!latest) return missing_allowed;
    if (latest->value.kind != Scalar::Kind::Number) return false;
    const Decimal &v = latest->value.number, &t = leaf.value.number;
    switch (leaf.op) {
    case Op::Gte: return v >= t;
    case Op::Lte: return v <= t;
    case Op::Gt: return v > t;
    case Op::Lt: return v < t;
    case Op::NotGte: return v < t;
    case Op::NotLte: return v > t;
    case Op::NotGt: return v <= t;
    case Op::NotLt: return v >= t;
    default: return false;
    }
}


} // namespace witn::testing
