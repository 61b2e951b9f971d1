// A JSON scalar as a condition or an event's properties.value carries it.
#pragma once
#include "pure.hpp"

#include "decimal.hpp"
#include "json.hpp"

#include <string>

namespace witn {

struct Scalar {
    // Absent: the event has no properties.value. Other: null, an array or an object — present
    // but never equal to or comparable with any condition value.
    enum class Kind { Absent, Other, Bool, Number, String };

    Kind kind = Kind::Absent;
    bool boolean = false;
    Decimal number;
    std::string string;

    static Scalar from_json(const json::Value &v);
    // Absent is written as nothing by callers; Other as null.
    json::Value to_json() const;

    // match: equal by type and value (4 matches 4.0, "4" does not match 4).
    bool matches(const Scalar &other) const;
};

} // namespace witn
