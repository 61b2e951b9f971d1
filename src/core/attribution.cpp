#include "attribution.hpp"

#include "error.hpp"
#include "json.hpp"

namespace witn {

std::optional<AttributionMethod> attribution_method_from_name(std::string_view name) {
    for (const AttributionMethodName &m : kAttributionMethods)
        if (name == m.name) return m.method;
    return std::nullopt;
}

void Attribution::fold(const Decimal &quantity, std::int64_t occurred_at, std::int64_t seq) {
    if (count == 0) {
        sum = min = max = first = last = quantity;
        first_at = last_at = occurred_at;
        first_seq = last_seq = seq;
        count = 1;
        return;
    }
    ++count;
    sum = sum + quantity;
    if (quantity < min) min = quantity;
    if (quantity > max) max = quantity;
    // First and last go by occurred_at, ties by arrival (later arrival is "later").
    if (occurred_at < first_at || (occurred_at == first_at && seq < first_seq)) {
        first = quantity;
        first_at = occurred_at;
        first_seq = seq;
    }
    if (occurred_at > last_at || (occurred_at == last_at && seq > last_seq)) {
        last = quantity;
        last_at = occurred_at;
        last_seq = seq;
    }
}

Decimal Attribution::quantity(AttributionMethod method) const {
    if (count == 0) return *Decimal::parse("1");
    switch (method) {
    case AttributionMethod::Last: return last;
    case AttributionMethod::First: return first;
    case AttributionMethod::Sum: return sum;
    case AttributionMethod::Max: return max;
    case AttributionMethod::Min: return min;
    case AttributionMethod::Average: return sum.divide(count, kAverageScale);
    }
    return last;
}

std::string Attribution::to_json() const {
    if (count == 0) return "{\"n\": 0}";
    auto stamped = [](const Decimal &v, std::int64_t at, std::int64_t seq) {
        return "[" + v.to_string() + ", " + std::to_string(at) + ", " + std::to_string(seq) + "]";
    };
    return "{\"n\": " + std::to_string(count) + ", \"sum\": " + sum.to_string() +
           ", \"min\": " + min.to_string() + ", \"max\": " + max.to_string() +
           ", \"first\": " + stamped(first, first_at, first_seq) +
           ", \"last\": " + stamped(last, last_at, last_seq) + "}";
}

Attribution Attribution::from_json(std::string_view text) {
    json::Value root = json::parse(text);
    auto corrupt = [](const char *what) {
        return Error(Code::ValidationError, "VALIDATION_ERROR: stored attribution is corrupt",
                     std::string("at \"") + what + "\"");
    };
    auto number = [&](const json::Value *v, const char *what) {
        if (!v || v->kind != json::Kind::Number) throw corrupt(what);
        auto d = Decimal::parse(v->text);
        if (!d) throw corrupt(what);
        return *d;
    };
    auto integer = [&](const json::Value *v, const char *what) {
        // Only an int64 integer will do: std::stoll alone would truncate 1.5 and 1e30 and throw
        // std::out_of_range (not a witn::Error) beyond the int64 range.
        static const Decimal lowest = *Decimal::parse("-9223372036854775808");
        static const Decimal highest = *Decimal::parse("9223372036854775807");
        Decimal d = number(v, what);
        if (!d.is_integer() || d < lowest || d > highest) throw corrupt(what);
        return static_cast<std::int64_t>(std::stoll(d.to_string())); // integral: no ".0" digits
    };
    Attribution a;
    a.count = integer(root.find("n"), "n");
    if (a.count == 0) return a;
    a.sum = number(root.find("sum"), "sum");
    a.min = number(root.find("min"), "min");
    a.max = number(root.find("max"), "max");
    auto stamped = [&](const char *what, Decimal &v, std::int64_t &at, std::int64_t &seq) {
        const json::Value *arr = root.find(what);
        if (!arr || arr->kind != json::Kind::Array || arr->items.size() != 3) throw corrupt(what);
        v = number(&arr->items[0], what);
        at = integer(&arr->items[1], what);
        seq = integer(&arr->items[2], what);
    };
    stamped("first", a.first, a.first_at, a.first_seq);
    stamped("last", a.last, a.last_at, a.last_seq);
    return a;
}

} // namespace witn
