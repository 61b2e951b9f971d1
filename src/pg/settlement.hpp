// One settlement pass (witn.settle_batch, behind witn.settle()), also used by the events trigger
// to settle a due outcome before an event that its reversal window takes (CONTRACT §20).
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

#include <cstdint>
#include <optional>

namespace witn::pg {

struct SettleCounts {
    std::int64_t confirmed = 0, failed = 0;
};

// Settles the outcomes of `anchor` (witn.outcomes or, on Citus, one of its shards on this node)
// due at `as_of`: at most `limit`, or only the outcome `only`. `notify`: send pg_notify (not from
// a Citus shard inside a distributed transaction, which its node commits with PREPARE
// TRANSACTION; the notifications are written either way).
SettleCounts settle_pass(TimestampTz as_of, std::optional<std::int64_t> limit, std::optional<std::int64_t> only,
                         Oid anchor, bool notify);

} // namespace witn::pg
