#include "facts.hpp"

#include "error.hpp"

namespace witn {

Facts::Facts(const Condition &condition) {
    for (const Leaf &leaf : condition) tracked_.try_emplace(leaf.fact);
}

Facts::Facts(const Condition &condition, const Condition &also) : Facts(condition) {
    for (const Leaf &leaf : also) tracked_.try_emplace(leaf.fact);
}

void Facts::fold(std::string_view action, const Scalar &value, std::int64_t occurred_at,
                 std::int64_t seq) {
    auto it = tracked_.find(action);
    if (it == tracked_.end()) return;
    ActionFact &f = it->second;
    // Latest by occurred_at, ties broken by arrival: a back-dated event counts but does not
    // replace a newer value.
    if (f.count == 0 || occurred_at > f.latest_at ||
        (occurred_at == f.latest_at && seq > f.latest_seq)) {
        f.latest_at = occurred_at;
        f.latest_seq = seq;
        f.latest_value = value;
    }
    ++f.count;
}

const ActionFact *Facts::find(std::string_view action) const {
    auto it = tracked_.find(action);
    return it == tracked_.end() || it->second.count == 0 ? nullptr : &it->second;
}

std::string Facts::to_json() const {
    std::string out = "{";
    bool first = true;
    for (const auto &[action, f] : tracked_) {
        if (f.count == 0) continue;
        if (!first) out += ", ";
        first = false;
        json::append_quoted(out, action);
        out += ": {\"n\": " + std::to_string(f.count) + ", \"at\": " + std::to_string(f.latest_at) +
               ", \"seq\": " + std::to_string(f.latest_seq);
        if (f.latest_value.kind != Scalar::Kind::Absent)
            out += ", \"v\": " + json::write(f.latest_value.to_json());
        out += "}";
    }
    out += "}";
    return out;
}

namespace {
std::int64_t integer_member(const json::Value &obj, std::string_view key) {
    const json::Value *v = obj.find(key);
    // Only an int64 integer will do: std::stoll alone would truncate 1.5 and 1e30 and throw
    // std::out_of_range (not a witn::Error) beyond the int64 range.
    static const Decimal lowest = *Decimal::parse("-9223372036854775808");
    static const Decimal highest = *Decimal::parse("9223372036854775807");
    std::optional<Decimal> d;
    if (v && v->kind == json::Kind::Number) d = Decimal::parse(v->text);
    if (!d || !d->is_integer() || *d < lowest || *d > highest)
        throw Error(Code::ValidationError, "VALIDATION_ERROR: stored facts are corrupt",
                    "missing integer \"" + std::string(key) + "\"");
    return std::stoll(d->to_string()); // integral: digits stop before any ".0"
}
} // namespace

Facts Facts::from_json(const Condition &condition, std::string_view text) {
    return from_json(Facts(condition), text);
}

Facts Facts::from_json(Facts facts, std::string_view text) {
    json::Value root = json::parse(text);
    for (const auto &[action, entry] : root.members) {
        auto it = facts.tracked_.find(action);
        if (it == facts.tracked_.end()) continue;
        ActionFact &f = it->second;
        f.count = integer_member(entry, "n");
        f.latest_at = integer_member(entry, "at");
        f.latest_seq = integer_member(entry, "seq");
        if (const json::Value *v = entry.find("v")) f.latest_value = Scalar::from_json(*v);
    }
    return facts;
}

} // namespace witn
