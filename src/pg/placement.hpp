// Where witn's tables are for the work at hand.
//
// On a single node, and for a Citus coordinator's own tables, each witn table is itself. Once
// witn.distribute() has run, a customer's rows live in shards on the workers: the events trigger
// fires per shard (on the worker, for the shard the rows went to) and settlement runs per
// shard. There every per-customer table is the shard colocated with the one the work started
// from (same hash range, found in Citus's metadata, pg_dist_shard), and every lookup table is
// its reference-table shard (a full copy on every node). Work on a shard never reads or writes
// a distributed table, so never another node, and never another shard's customers.
//
// A Placement made from the relation the work starts from (the trigger's table, the outcomes
// shard settlement was given) is current for its scope; witn_table() answers through it.
#pragma once
#include "pg/postgres.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace witn::pg {

class Placement {
public:
    // `anchor` is witn.<table> itself or one of its Citus shards, witn.<table>_<shardid>;
    // anything else is an error that names the relation (FEATURE_NOT_SUPPORTED, with a hint).
    // `expected` is the logical table the work must start from ("events", "outcomes").
    Placement(Oid anchor, const char *expected);
    ~Placement();
    Placement(const Placement &) = delete;
    Placement &operator=(const Placement &) = delete;

    bool on_shard() const { return shard_id_ != 0; }
    // The anchor's Citus shard id; 0 for the table itself.
    std::int64_t shard_id() const { return shard_id_; }
    // The relation to read and write for witn table `name` under this placement.
    Oid table(const char *name);

private:
    Placement *outer_;
    std::int64_t shard_id_ = 0;
    std::string min_value_;               // the anchor shard's hash range start (distributed tables)
    std::map<std::string, Oid> resolved_; // table name -> local relation
};

// The OID of witn table `name`: under the current Placement, the relation standing for it there
// (itself, or its colocated or reference shard); else the table itself.
Oid witn_table(const char *name);
// The table itself, whatever the placement (its defaults, identity sequence, privileges).
Oid witn_own_table(const char *name);
// A relation's name, "?" when there is none.
std::string rel_name(Oid relid);
// The witn table a relation stands for: itself, or the table a shard belongs to (by name:
// witn.<table>_<shardid>); InvalidOid when it is neither.
Oid witn_table_of(Oid relid);

// On a Citus node: the node's group id (0 on the coordinator) from pg_dist_local_group; -1 when
// Citus is not installed in this database.
std::int32_t citus_local_group();
// witn's ids are made on every node from that node's own sequences; witn.distribute() gives
// each node its own range of 2^48 ids (group g: [g * 2^48 + 1, (g + 1) * 2^48)). Throws
// (55000, saying to run witn.distribute()) when this node's sequences were not given theirs.
void require_node_id_range();

} // namespace witn::pg
