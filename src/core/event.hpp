// An event as the core sees it, already extracted from its row or JSON payload.
#pragma once
#include "pure.hpp"

#include "decimal.hpp"
#include "scalar.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace witn {

constexpr std::int64_t kMicrosPerHour = 3600LL * 1000000LL;
constexpr std::int64_t kMaxSettlementPeriod = 180LL * 24 * kMicrosPerHour;

struct Event {
    std::string action;
    Scalar value;                           // properties.value (Absent when missing)
    std::optional<Decimal> attribution;     // properties.attribution
    std::optional<std::int64_t> settles_at; // properties.settles_at
    std::int64_t occurred_at = 0;           // microseconds, PostgreSQL timestamptz scale
    std::int64_t seq = 0;                   // arrival order (witn.events.id)
    std::int64_t received_at = 0;           // when witn received it (witn.events.received_at); 0 when unknown
    bool after_resolution = false;          // accepted in a confirmed outcome's reversal window
};

} // namespace witn
