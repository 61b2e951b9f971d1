#include "pg/table_writer.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/relscan.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_index.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/nodeModifyTable.h"
#include "nodes/makefuncs.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace witn::pg {

TableWriter::TableWriter(Oid relid, bool new_command) {
    pg([&] {
        if (new_command) CommandCounterIncrement();
        rel_ = table_open(relid, RowExclusiveLock);
        estate_ = CreateExecutorState();
        RangeTblEntry *rte = makeNode(RangeTblEntry);
        rte->rtekind = RTE_RELATION;
        rte->relid = relid;
        rte->relkind = rel_->rd_rel->relkind;
        rte->rellockmode = RowExclusiveLock;
        ExecInitRangeTable(estate_, list_make1(rte));
        info_ = makeNode(ResultRelInfo);
        InitResultRelInfo(info_, rel_, 1, nullptr, 0);
        // Where ExecGetTriggerResultRel() looks; the relation is closed by finish(), not by
        // the executor.
        estate_->es_opened_result_relations = lappend(estate_->es_opened_result_relations, info_);
        estate_->es_output_cid = GetCurrentCommandId(true);
        estate_->es_snapshot = GetActiveSnapshot();
        ExecOpenIndices(info_, false);
        EvalPlanQualInit(&epq_, estate_, nullptr, NIL, -1);
        AfterTriggerBeginQuery();
    });
}

int column_of(TupleDesc d, const char *table, const char *name) {
    // Every statement looks up the same columns: remember where each was (by the table's row
    // type and the name's address, a literal) and check that it is still there.
    static std::unordered_map<std::uint64_t, int> seen;
    const std::uint64_t key = (static_cast<std::uint64_t>(d->tdtypeid) << 32) ^ reinterpret_cast<std::uintptr_t>(name);
    auto it = seen.find(key);
    if (it != seen.end() && it->second <= d->natts) {
        Form_pg_attribute a = TupleDescAttr(d, it->second - 1);
        if (!a->attisdropped && std::strcmp(NameStr(a->attname), name) == 0) return it->second;
    }
    for (int i = 0; i < d->natts; ++i) {
        Form_pg_attribute a = TupleDescAttr(d, i);
        if (!a->attisdropped && std::strcmp(NameStr(a->attname), name) == 0) {
            if (seen.size() > 4096) seen.clear();
            seen[key] = i + 1;
            return i + 1;
        }
    }
    throw std::runtime_error(std::string("witn: ") + table + " has no column " + name +
                             " (is the extension's SQL up to date? ALTER EXTENSION witn UPDATE)");
}

int column_of(Relation rel, const char *name) {
    return column_of(RelationGetDescr(rel), RelationGetRelationName(rel), name);
}

int TableWriter::column(const char *name) const { return column_of(rel_, name); }

namespace {

// Whether an index's key is exactly the columns `attnums` (of its table), in that order, with no
// expressions, and partial or not.
bool index_is_on(Relation index, const int *attnums, int n, bool partial) {
    const Form_pg_index form = index->rd_index;
    if (form->indnkeyatts != n || !heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, nullptr) ||
        heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, nullptr) == partial)
        return false;
    for (int k = 0; k < n; ++k)
        if (form->indkey.values[k] != attnums[k]) return false;
    return true;
}

[[noreturn]] void no_index(Relation rel) {
    throw std::runtime_error(std::string("witn: ") + RelationGetRelationName(rel) +
                             " has no index for the lookup (is the extension's SQL up to date? ALTER EXTENSION witn UPDATE)");
}

} // namespace

Relation TableWriter::index_on(std::initializer_list<int> columns, bool partial) const {
    for (int i = 0; i < info_->ri_NumIndices; ++i)
        if (index_is_on(info_->ri_IndexRelationDescs[i], columns.begin(), static_cast<int>(columns.size()), partial))
            return info_->ri_IndexRelationDescs[i];
    no_index(rel_);
}

namespace {

void init_key(ScanKeyData *key, Relation index, int column, StrategyNumber strategy, Datum value) {
    Oid op = get_opfamily_member(index->rd_opfamily[column], index->rd_opcintype[column],
                                 index->rd_opcintype[column], strategy);
    ScanKeyInit(key, column + 1, strategy, get_opcode(op), value);
    key->sk_collation = index->rd_indcollation[column];
}

// Equality scan keys on an index's leading columns, one per value.
void equality_keys(ScanKeyData *keys, Relation index, std::initializer_list<Datum> values) {
    int k = 0;
    for (Datum v : values) {
        init_key(&keys[k], index, k, BTEqualStrategyNumber, v);
        ++k;
    }
}

} // namespace

// Slots live as long as the writer, whatever context the caller works in.
TupleTableSlot *TableWriter::slot_for_table() {
    MemoryContext saved = MemoryContextSwitchTo(estate_->es_query_cxt);
    TupleTableSlot *slot = table_slot_create(rel_, &estate_->es_tupleTable);
    MemoryContextSwitchTo(saved);
    return slot;
}

// The slot's row, locked: checked against the transaction snapshot where the isolation level
// demands it, and deformed.
TupleTableSlot *TableWriter::locked(TupleTableSlot *slot) {
    if (IsolationUsesXactSnapshot() && !table_tuple_satisfies_snapshot(rel_, slot, GetTransactionSnapshot()))
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not serialize access due to concurrent update"),
                        errdetail("A row of %s changed after this transaction's snapshot was taken.",
                                  RelationGetRelationName(rel_)),
                        errhint("Retry the transaction.")));
    slot_getallattrs(slot);
    return slot;
}

TupleTableSlot *TableWriter::find_locked(std::initializer_list<int> key_columns,
                                         std::initializer_list<Datum> key_values) {
    Relation index = index_on(key_columns, false);
    if (!index->rd_index->indisunique) throw std::runtime_error("witn: the lookup index is not unique");
    const int nkeys = static_cast<int>(key_columns.size());
    ScanKeyData keys[INDEX_MAX_KEYS];
    return pg([&]() -> TupleTableSlot * {
        equality_keys(keys, index, key_values);
        if (!found_slot_) found_slot_ = slot_for_table();
        TupleTableSlot *slot = found_slot_;
        // An MVCC snapshot, not a dirty one: a btree scan reads a leaf page's matches at once,
        // so with a dirty snapshot a version whose updater commits between that read and the
        // heap visit is invisible while its successor's index entry was not on the page yet,
        // and a live row is missed. Every version the snapshot sees has its index entry; the
        // lock then follows later updates to the latest version.
        bool found = false;
        for (;;) {
            Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
            IndexScanDesc scan = index_beginscan(rel_, index, snapshot, nkeys, 0);
            index_rescan(scan, keys, nkeys, nullptr, 0);
            found = index_getnext_slot(scan, ForwardScanDirection, slot);
            index_endscan(scan);
            TM_Result r = TM_Ok;
            if (found) {
                TM_FailureData failure;
                r = table_tuple_lock(rel_, &slot->tts_tid, snapshot, slot, GetCurrentCommandId(false),
                                     LockTupleNoKeyExclusive, LockWaitBlock,
                                     TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
            }
            UnregisterSnapshot(snapshot);
            if (r == TM_Ok) break;
            if (r == TM_Deleted || r == TM_Updated) continue; // gone meanwhile: look again
            elog(ERROR, "witn: unexpected result %d locking a row of %s", static_cast<int>(r),
                 RelationGetRelationName(rel_));
        }
        return found ? locked(slot) : nullptr;
    });
}

void TableWriter::scan(std::initializer_list<int> columns, bool partial, StrategyNumber strategy, Datum value) {
    Relation index = index_on(columns, partial);
    pg([&] {
        init_key(&scan_key_, index, 0, strategy, value);
        scan_slot_ = slot_for_table();
        lock_slot_ = slot_for_table();
        scan_ = index_beginscan(rel_, index, RegisterSnapshot(GetLatestSnapshot()), 1, 0);
        index_rescan(scan_, &scan_key_, 1, nullptr, 0);
    });
}

bool TableWriter::next(ItemPointerData *tid) {
    return pg([&] {
        if (!index_getnext_slot(scan_, ForwardScanDirection, scan_slot_)) return false;
        *tid = scan_slot_->tts_tid;
        return true;
    });
}

void TableWriter::end_scan() {
    pg([&] {
        Snapshot snapshot = scan_->xs_snapshot;
        index_endscan(scan_);
        UnregisterSnapshot(snapshot);
    });
    scan_ = nullptr;
}

TupleTableSlot *TableWriter::lock_skip(ItemPointerData tid) {
    return pg([&]() -> TupleTableSlot * {
        TM_FailureData failure;
        TM_Result r = table_tuple_lock(rel_, &tid, GetLatestSnapshot(), lock_slot_,
                                       GetCurrentCommandId(false), LockTupleNoKeyExclusive,
                                       LockWaitSkip, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
        if (r == TM_WouldBlock || r == TM_Deleted || r == TM_Updated) return nullptr;
        if (r != TM_Ok)
            elog(ERROR, "witn: unexpected result %d locking a row of %s", static_cast<int>(r),
                 RelationGetRelationName(rel_));
        return locked(lock_slot_);
    });
}

TupleTableSlot *TableWriter::new_row() {
    return pg([&] {
        if (!row_slot_) {
            MemoryContext saved = MemoryContextSwitchTo(estate_->es_query_cxt);
            row_slot_ = ExecInitExtraTupleSlot(estate_, RelationGetDescr(rel_), &TTSOpsVirtual);
            MemoryContextSwitchTo(saved);
        }
        TupleTableSlot *slot = row_slot_;
        ExecClearTuple(slot);
        for (int i = 0; i < slot->tts_tupleDescriptor->natts; ++i) {
            slot->tts_values[i] = Datum(0);
            slot->tts_isnull[i] = true;
        }
        return slot;
    });
}

TupleTableSlot *TableWriter::new_row_from(TupleTableSlot *locked) {
    TupleTableSlot *row = new_row();
    const int natts = row->tts_tupleDescriptor->natts;
    std::memcpy(row->tts_values, locked->tts_values, sizeof(Datum) * natts);
    std::memcpy(row->tts_isnull, locked->tts_isnull, sizeof(bool) * natts);
    return row;
}

void TableWriter::update(TupleTableSlot *locked, TupleTableSlot *row) {
    pg([&] {
        ExecStoreVirtualTuple(row);
        ExecSimpleRelationUpdate(info_, estate_, &epq_, locked, row);
    });
}

void TableWriter::apply_defaults(TupleTableSlot *row) {
    pg([&] {
        TupleDesc d = RelationGetDescr(rel_);
        if (ndefaults_ < 0) {
            MemoryContext saved = MemoryContextSwitchTo(estate_->es_query_cxt);
            defaults_ = static_cast<Default *>(palloc(sizeof(Default) * d->natts));
            ndefaults_ = 0;
            // A Citus shard has no defaults of its own (its identity comes from nowhere): they
            // are the table's, column by column, on this node (whose sequences
            // witn.distribute() gave ids no other node makes).
            const Oid own = witn_table_of(RelationGetRelid(rel_));
            Relation source = own != InvalidOid && own != RelationGetRelid(rel_) ? table_open(own, AccessShareLock) : rel_;
            for (int i = 0; i < d->natts; ++i) {
                if (TupleDescAttr(d, i)->attisdropped || TupleDescAttr(d, i)->attgenerated) continue;
                int at = i + 1;
                if (source != rel_) {
                    at = get_attnum(RelationGetRelid(source), NameStr(TupleDescAttr(d, i)->attname));
                    if (at == InvalidAttrNumber) continue;
                }
                Node *expr = build_column_default(source, at);
                if (expr) defaults_[ndefaults_++] = {i + 1, ExecPrepareExpr(reinterpret_cast<Expr *>(expr), estate_)};
            }
            if (source != rel_) table_close(source, AccessShareLock);
            MemoryContextSwitchTo(saved);
        }
        ExprContext *context = GetPerTupleExprContext(estate_);
        for (int i = 0; i < ndefaults_; ++i) {
            const int at = defaults_[i].attnum - 1;
            if (row->tts_isnull[at]) row->tts_values[at] = ExecEvalExpr(defaults_[i].expr, context, &row->tts_isnull[at]);
        }
        ExecStoreVirtualTuple(row);
    });
}

void TableWriter::insert(TupleTableSlot *row) {
    apply_defaults(row);
    pg([&] {
        ExecSimpleRelationInsert(info_, estate_, row);
        ResetPerTupleExprContext(estate_);
    });
}

bool TableWriter::insert_if_absent(TupleTableSlot *row, std::initializer_list<int> key_columns) {
    Relation key_index = index_on(key_columns, false);
    if (!key_index->rd_index->indisunique) throw std::runtime_error("witn: the insert's key index is not unique");
    apply_defaults(row);
    return pg([&] {
        // What ExecInsert does for INSERT ... ON CONFLICT (key columns) DO NOTHING.
        if (!speculative_ready_) {
            // Kept as long as the writer, whatever context the caller works in.
            MemoryContext saved = MemoryContextSwitchTo(estate_->es_query_cxt);
            for (int i = 0; i < info_->ri_NumIndices; ++i)
                if (info_->ri_IndexRelationDescs[i] == key_index)
                    BuildSpeculativeIndexInfo(info_->ri_IndexRelationDescs[i], info_->ri_IndexRelationInfo[i]);
            MemoryContextSwitchTo(saved);
            speculative_ready_ = true;
        }
        List *arbiter = list_make1_oid(RelationGetRelid(key_index));
        if (info_->ri_TrigDesc && info_->ri_TrigDesc->trig_insert_before_row &&
            !ExecBRInsertTriggers(estate_, info_, row))
            return false;
        if (rel_->rd_att->constr && rel_->rd_att->constr->has_generated_stored)
            ExecComputeStoredGenerated(info_, estate_, row, CMD_INSERT);
        if (rel_->rd_att->constr) ExecConstraints(info_, row, estate_);
        // The caller has just looked the key up, so the first attempt skips the pre-check (it
        // only saves a doomed insertion; the speculative insertion itself detects conflicts).
        for (bool first = true;; first = false) {
            ItemPointerData conflict;
            if (!first && !ExecCheckIndexConstraints(info_, row, estate_, &conflict, arbiter)) {
                ResetPerTupleExprContext(estate_);
                return false;
            }
            uint32 token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
            table_tuple_insert_speculative(rel_, row, estate_->es_output_cid, 0, nullptr, token);
            bool conflicted = false;
            List *recheck = ExecInsertIndexTuples(info_, row, estate_, false, true, &conflicted, arbiter);
            table_tuple_complete_speculative(rel_, row, token, !conflicted);
            SpeculativeInsertionLockRelease(GetCurrentTransactionId());
            if (conflicted) {
                // Another transaction inserted the key meanwhile: check again (and wait for it).
                list_free(recheck);
                continue;
            }
            ExecARInsertTriggers(estate_, info_, row, recheck, nullptr);
            list_free(recheck);
            ResetPerTupleExprContext(estate_);
            return true;
        }
    });
}

IndexReader::IndexReader(Oid relid, std::initializer_list<const char *> index_columns, bool partial,
                         Snapshot snapshot)
    : which_(snapshot) {
    pg([&] { rel_ = table_open(relid, AccessShareLock); });
    int attnums[INDEX_MAX_KEYS];
    const int n = static_cast<int>(index_columns.size());
    int k = 0;
    for (const char *name : index_columns) attnums[k++] = column_of(rel_, name);
    List *indexes = pg([&] { return RelationGetIndexList(rel_); });
    ListCell *lc;
    foreach (lc, indexes) {
        Relation index = pg([&] { return index_open(lfirst_oid(lc), AccessShareLock); });
        if (index_is_on(index, attnums, n, partial)) {
            index_ = index;
            break;
        }
        pg([&] { index_close(index, AccessShareLock); });
    }
    if (!index_) no_index(rel_);
    slot_ = pg([&] { return table_slot_create(rel_, nullptr); });
}

int IndexReader::column(const char *name) const { return column_of(rel_, name); }

void IndexReader::begin(std::initializer_list<Datum> values) {
    end_walk();
    const int nkeys = static_cast<int>(values.size());
    pg([&] {
        equality_keys(keys_, index_, values);
        snapshot_ = RegisterSnapshot(which_ == Snapshot::Latest      ? GetLatestSnapshot()
                                     : which_ == Snapshot::Statement ? GetActiveSnapshot()
                                                                     : GetTransactionSnapshot());
        scan_ = index_beginscan(rel_, index_, snapshot_, nkeys, 0);
        index_rescan(scan_, keys_, nkeys, nullptr, 0);
    });
}

TupleTableSlot *IndexReader::next() {
    return pg([&]() -> TupleTableSlot * {
        if (!index_getnext_slot(scan_, ForwardScanDirection, slot_)) return nullptr;
        slot_getallattrs(slot_);
        return slot_;
    });
}

TupleTableSlot *IndexReader::find(std::initializer_list<Datum> values) {
    begin(values);
    return next();
}

void IndexReader::end_walk() {
    if (!scan_) return;
    pg([&] {
        index_endscan(scan_);
        UnregisterSnapshot(snapshot_);
    });
    scan_ = nullptr;
    snapshot_ = nullptr;
}

void IndexReader::finish() {
    end_walk();
    pg([&] {
        ExecDropSingleTupleTableSlot(slot_);
        index_close(index_, NoLock);
        table_close(rel_, NoLock);
    });
    rel_ = index_ = nullptr;
    slot_ = nullptr;
}

void TableWriter::finish() {
    pg([&] {
        // Fires the AFTER row triggers queued since the innermost writer opened, for any of the
        // tables (so relations a trigger event needed may have been opened here too).
        AfterTriggerEndQuery(estate_);
        EvalPlanQualEnd(&epq_);
        // Closes this table's indexes and whatever the triggers opened.
        ExecCloseResultRelations(estate_);
        ExecResetTupleTable(estate_->es_tupleTable, false);
        FreeExecutorState(estate_);
        table_close(rel_, NoLock);
    });
    estate_ = nullptr;
    rel_ = nullptr;
}

Oid enum_label(Oid enum_type, const char *label) {
    // Few types and labels; a type recreated with the extension gets a new OID and new entries.
    static std::map<std::pair<Oid, std::string>, Oid> cache;
    auto key = std::make_pair(enum_type, std::string(label));
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    Oid oid = pg([&] {
        return GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(enum_type),
                               CStringGetDatum(label));
    });
    if (!OidIsValid(oid)) throw std::runtime_error(std::string("witn: no enum label ") + label);
    if (cache.size() > 64) cache.clear();
    return cache.emplace(key, oid).first->second;
}

} // namespace witn::pg
