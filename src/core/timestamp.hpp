// ISO 8601 timestamps as events carry them (properties.settles_at, occurred_at in
// witn.evaluate): parsed the same way whatever the session's TimeZone or DateStyle.
#pragma once
#include "pure.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace witn {

// "2026-11-23T10:15:00Z", "2026-11-23 10:15:00.123456+01:00", "2026-11-23T10:15+0100":
// date, time (seconds and up to six fractional digits optional) and a mandatory UTC offset.
// Returns microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's timestamptz scale), or
// nullopt for anything else — including words like "now" and timestamps without an offset.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

} // namespace witn
