// Reading an event's properties (jsonb) into the core's Event: the reserved properties value,
// attribution and settles_at.
#pragma once

#include "pg/postgres.hpp"

#include "core/event.hpp"

extern "C" {
#include "utils/jsonb.h"
}

#include <string>
#include <vector>

namespace witn::pg {

// Largest accepted properties document (CONTRACT §16).
constexpr std::size_t kMaxPropertiesBytes = 256 * 1024;
// Longest accepted outcome key, action, customer, agent or idempotency key.
constexpr std::size_t kMaxKeyLength = 255; // characters

// properties may be nullptr (no properties). `where` is the error path of the properties
// ("properties" for a row, "[3].properties" for witn.evaluate). Throws
// witn::Error(ValidationError) for a non-object, a bad attribution or a bad settles_at.
// Without `with_timer`, properties.settles_at is ignored (witn.evaluate has no timer).
witn::Event event_from_properties(std::string action, JsonbContainer *properties,
                                  std::int64_t occurred_at, std::int64_t seq,
                                  const std::string &where, bool with_timer = true);

// A JSON scalar from jsonb (objects and arrays become Scalar::Kind::Other).
witn::Scalar scalar_from_jsonb(const JsonbValue &v);

// Rejects an empty or over-long key (more than 255 characters); `length` is in bytes, `what`
// names the column in the error.
void check_key(const char *what, const char *value, std::size_t length);


} // namespace witn::pg
