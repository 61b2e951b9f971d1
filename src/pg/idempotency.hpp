// Idempotency keys (CONTRACT §12): an event whose idempotency_key was already accepted for its
// customer is a duplicate of that original and is not applied; the same key with another
// payload is IDEMPOTENCY_CONFLICT.
#pragma once

#include "pg/postgres.hpp"

#include <bitset>
#include <string_view>

namespace witn::pg {

class RowSort;

// Keys are serialized through a fixed set of advisory locks, a hash bucket per (customer, key):
// the same bucket in every session for the same key, and never more than kLockBuckets locks per
// statement however many keys it carries (each lock takes a lock-table slot).
class IdempotencyLocks {
public:
    static constexpr std::size_t kLockBuckets = 256;
    void add(std::string_view customer_key, std::string_view idempotency_key);
    bool empty() const { return buckets_.none(); }
    // Takes every bucket added, in ascending order (the same order in every session: no
    // deadlock), held to the end of the transaction. `shard` is the Citus shard the rows are
    // in (0: the table itself): a statement through the coordinator writes several shards of
    // one node in one distributed transaction, from different sessions, and a customer's keys
    // are all in one shard, so each shard has buckets of its own.
    void lock_all(std::int64_t shard) const;

private:
    std::bitset<kLockBuckets> buckets_;
};

// Walks the statement's keyed rows (by_key, sorted by customer, idempotency key and id), decides
// each one's duplicate_of, and puts it into by_outcome. Call with the locks held.
void resolve_idempotency(RowSort &by_key, RowSort &by_outcome);

} // namespace witn::pg
