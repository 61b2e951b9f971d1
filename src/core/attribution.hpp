// The billing quantity, kept incrementally from properties.attribution of every accepted event.
#pragma once
#include "pure.hpp"

#include "decimal.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace witn {

enum class AttributionMethod { Last, First, Sum, Max, Min, Average };

// The one list of attribution methods and their names (CONTRACT §13), in documentation order.
struct AttributionMethodName {
    AttributionMethod method;
    const char *name;
};
inline constexpr AttributionMethodName kAttributionMethods[] = {
    {AttributionMethod::Last, "last"}, {AttributionMethod::First, "first"},   {AttributionMethod::Sum, "sum"},
    {AttributionMethod::Max, "max"},   {AttributionMethod::Min, "min"},       {AttributionMethod::Average, "average"},
};

// nullopt for an unknown name.
std::optional<AttributionMethod> attribution_method_from_name(std::string_view name);

constexpr int kAverageScale = 20;

struct Attribution {
    std::int64_t count = 0;
    Decimal sum, min, max;
    Decimal first, last;
    std::int64_t first_at = 0, first_seq = 0, last_at = 0, last_seq = 0;

    void fold(const Decimal &quantity, std::int64_t occurred_at, std::int64_t seq);

    // The quantity to bill; 1 when no event carried an attribution. Average is sum / count
    // rounded half away from zero to kAverageScale fractional digits.
    Decimal quantity(AttributionMethod method) const;

    // {"n": 2, "sum": 3.5, "min": ..., "max": ..., "first": [v, at, seq], "last": [v, at, seq]}
    std::string to_json() const;
    static Attribution from_json(std::string_view text);
};

} // namespace witn
