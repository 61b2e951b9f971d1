#include "pg/placement.hpp"

#include "pg/table_writer.hpp"
#include "pg/statement_rows.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_sequence.h"
#include "catalog/dependency.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
}

#include <cstring>
#include <stdexcept>

namespace witn::pg {

// The string is made outside the PostgreSQL call.
std::string rel_name(Oid relid) {
    const char *name = pg([&] { return get_rel_name(relid); });
    return name ? std::string(name) : std::string("?");
}

namespace {

Placement *current = nullptr;

Oid witn_namespace() { return pg([] { return get_namespace_oid("witn", false); }); }

// Citus's shard metadata, pg_catalog.pg_dist_shard; InvalidOid without Citus.
Oid dist_shard_table() { return pg([] { return get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE); }); }

[[noreturn]] void not_a_witn_table(Oid relid, const char *expected) {
    const std::string name = rel_name(relid);
    pg([&] {
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("witn cannot work on table witn.%s", name.c_str()),
                 errdetail("witn's trigger and settlement work on witn.%s and, on Citus, on its shards; witn.%s is "
                           "neither.",
                           expected, name.c_str()),
                 errhint("Do not attach witn's functions to other tables; on Citus, distribute witn's tables with "
                         "SELECT witn.distribute() on the coordinator.")));
    });
    throw std::logic_error("unreachable");
}

} // namespace

Oid witn_own_table(const char *name) {
    const Oid ns = witn_namespace();
    return pg([&] { return get_relname_relid(name, ns); });
}

Oid witn_table(const char *name) { return current ? current->table(name) : witn_own_table(name); }

Oid witn_table_of(Oid relid) {
    const Oid ns = witn_namespace();
    const char *raw = pg([&] { return get_rel_namespace(relid) == ns ? get_rel_name(relid) : nullptr; });
    if (!raw) return InvalidOid;
    const std::string name(raw);
    // A shard is named <table>_<shardid>; no witn table has such a name.
    const auto cut = name.rfind('_');
    bool shard_name = cut != std::string::npos && cut + 1 < name.size();
    for (std::size_t i = cut + 1; shard_name && i < name.size(); ++i) shard_name = name[i] >= '0' && name[i] <= '9';
    if (shard_name) {
        const std::string table = name.substr(0, cut);
        if (const Oid base = pg([&] { return get_relname_relid(table.c_str(), ns); }); base != InvalidOid) return base;
    }
    return relid;
}

Placement::Placement(Oid anchor, const char *expected) : outer_(current) {
    const Oid own = witn_own_table(expected);
    if (anchor == own) {
        current = this;
        return;
    }
    if (witn_table_of(anchor) != own || own == InvalidOid) not_a_witn_table(anchor, expected);
    const std::string name = rel_name(anchor);
    shard_id_ = std::stoll(name.substr(name.rfind('_') + 1));
    const Oid shards = dist_shard_table();
    if (shards == InvalidOid) not_a_witn_table(anchor, expected);
    IndexReader by_id(shards, {"shardid"}, false, IndexReader::Snapshot::Latest);
    TupleTableSlot *row = by_id.find({Int64GetDatum(shard_id_)});
    const int logicalrelid = by_id.column("logicalrelid"), minvalue = by_id.column("shardminvalue");
    if (!row || DatumGetObjectId(column_value(row, logicalrelid)) != own) {
        by_id.finish();
        not_a_witn_table(anchor, expected);
    }
    min_value_ = column_null(row, minvalue) ? std::string() : std::string(text_bytes(row, minvalue));
    by_id.finish();
    resolved_[expected] = anchor;
    current = this;
}

Placement::~Placement() { current = outer_; }

Oid Placement::table(const char *name) {
    if (!on_shard()) return witn_own_table(name);
    if (auto found = resolved_.find(name); found != resolved_.end()) return found->second;
    const Oid own = witn_own_table(name);
    if (own == InvalidOid) throw std::runtime_error(std::string("witn: table witn.") + name + " is missing");
    // The shard of `name` colocated with the anchor: same hash range start; a reference table
    // has one shard, with no range.
    IndexReader shards(dist_shard_table(), {"logicalrelid"}, false, IndexReader::Snapshot::Latest);
    const int shardid = shards.column("shardid"), minvalue = shards.column("shardminvalue");
    std::int64_t match = 0;
    shards.begin({ObjectIdGetDatum(own)});
    while (TupleTableSlot *row = shards.next()) {
        const bool reference = column_null(row, minvalue);
        if (reference || std::string(text_bytes(row, minvalue)) == min_value_) {
            match = DatumGetInt64(column_value(row, shardid));
            break;
        }
    }
    shards.finish();
    if (match == 0)
        pg([&] {
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("witn.%s is not distributed with witn's other tables", name),
                            errdetail("No shard of witn.%s is colocated with shard %lld.", name,
                                      static_cast<long long>(shard_id_)),
                            errhint("Run SELECT witn.distribute() on the coordinator.")));
        });
    const std::string shard_name = std::string(name) + "_" + std::to_string(match);
    const Oid ns = witn_namespace();
    const Oid local = pg([&] { return get_relname_relid(shard_name.c_str(), ns); });
    if (local == InvalidOid)
        pg([&] {
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("shard witn.%s is not on this node", shard_name.c_str()),
                            errdetail("It is colocated with shard %lld, which is.", static_cast<long long>(shard_id_)),
                            errhint("Colocated shards must stay together: move them with citus_move_shard_placement "
                                    "or citus_rebalance_start, which keep colocation.")));
        });
    resolved_[name] = local;
    return local;
}

std::int32_t citus_local_group() {
    const Oid group = pg([] { return get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE); });
    if (group == InvalidOid) return -1;
    return pg([&] {
        std::int32_t id = -1;
        Relation rel = table_open(group, AccessShareLock);
        TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
        if (HeapTuple tuple = heap_getnext(scan, ForwardScanDirection)) {
            bool isnull;
            Datum value = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);
            if (!isnull) id = DatumGetInt32(value);
        }
        table_endscan(scan);
        table_close(rel, AccessShareLock);
        return id;
    });
}

void require_node_id_range() {
    static bool checked = false; // a node's range never changes once set
    if (checked) return;
    const std::int32_t group = citus_local_group();
    if (group <= 0) {
        checked = group == 0;
        return;
    }
    const std::int64_t low = static_cast<std::int64_t>(group) << 48;
    for (const char *name : {"events", "outcomes", "invoice_lines", "notifications", "settlement_errors", "credit_lines",
                             "webhook_deliveries"}) {
        const Oid table = witn_own_table(name);
        if (table == InvalidOid) continue;
        const std::int64_t seqmin = pg([&] {
            Oid seq = getIdentitySequence(table, 1, true);
            if (seq == InvalidOid) return static_cast<std::int64_t>(0);
            HeapTuple tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
            if (!HeapTupleIsValid(tuple)) return static_cast<std::int64_t>(0);
            const std::int64_t min = reinterpret_cast<Form_pg_sequence>(GETSTRUCT(tuple))->seqmin;
            ReleaseSysCache(tuple);
            return min;
        });
        if (seqmin <= low)
            pg([&] {
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("witn's ids are not set up on this node"),
                                errdetail("witn.%s ids on Citus node group %d would start at %lld, which other nodes use "
                                          "too.",
                                          name, group, static_cast<long long>(seqmin)),
                                errhint("Run SELECT witn.distribute() on the coordinator; run it again after adding a "
                                        "node.")));
            });
    }
    checked = true;
}

} // namespace witn::pg
