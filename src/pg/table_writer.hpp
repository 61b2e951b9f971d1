// Writing witn's own tables without SQL: find and lock a row through a unique index, update
// it, insert rows — the executor's relation-level calls, as logical replication's apply worker
// makes them. For the hot paths (one event, one settled outcome), where planning and starting
// an SQL statement would cost more than the write itself.
//
// It bypasses privileges and row security: only for witn's own tables, from code that already
// runs with the extension's rights. Indexes, constraints and row triggers are maintained as an
// UPDATE or INSERT would.
#pragma once

#include "pg/placement.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "access/genam.h"
#include "access/skey.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "utils/rel.h"
}

#include <initializer_list>

namespace witn::pg {

class TableWriter {
public:
    // Opens the table (RowExclusiveLock) and its indexes for writes in the current command.
    // With new_command, a new command starts first: what the transaction wrote before is
    // visible and lockable, and the rows written now are not seen by this command's scans.
    // Writers that work together open the first with a new command, the others in it. Call
    // finish() when done (in reverse order); on an error the transaction's abort releases
    // everything.
    explicit TableWriter(Oid relid, bool new_command = true);
    TableWriter(const TableWriter &) = delete;
    TableWriter &operator=(const TableWriter &) = delete;

    TupleDesc desc() const { return RelationGetDescr(rel_); }
    // The attribute number of a column (1-based); throws when there is none.
    int column(const char *name) const;

    // Finds the live row whose unique, non-partial index over exactly `key_columns` holds
    // `key_values`, and locks it FOR NO KEY UPDATE, waiting for concurrent writers and
    // following their updates to the latest version. nullptr when there is no such row (one
    // that another transaction is inserting and has not committed is not seen: inserting it
    // with insert_if_absent waits for that transaction). Under
    // REPEATABLE READ or SERIALIZABLE, a row the transaction's snapshot cannot see raises a
    // serialization failure, as an UPDATE would.
    TupleTableSlot *find_locked(std::initializer_list<int> key_columns,
                                std::initializer_list<Datum> key_values);

    // Walks, in index order, the rows an index over `columns` (its first key column compared
    // with `value` by `strategy`, e.g. BTLessEqualStrategyNumber) points to, as of the latest
    // snapshot. next() gives the next row's tid.
    void scan(std::initializer_list<int> columns, bool partial, StrategyNumber strategy, Datum value);
    bool next(ItemPointerData *tid);
    void end_scan();

    // Locks the row at tid FOR NO KEY UPDATE SKIP LOCKED, following updates to its latest
    // version; nullptr when another transaction holds it or it is gone. Same serialization
    // rule as find_locked.
    TupleTableSlot *lock_skip(ItemPointerData tid);

    // A virtual row of the table, all null, to fill and pass to update() or insert(); the same
    // slot each time, so fill it only after the previous row was written.
    TupleTableSlot *new_row();
    // The same slot holding a copy of `locked`'s columns, to change and pass to update().
    TupleTableSlot *new_row_from(TupleTableSlot *locked);
    // Replaces the row `locked` (from find_locked) with `row`.
    void update(TupleTableSlot *locked, TupleTableSlot *row);
    // Inserts `row`; columns left null get their default (identity, now(), a default a DBA
    // gave a column of their own), as an INSERT naming only the set columns would.
    void insert(TupleTableSlot *row);
    // The same as INSERT ... ON CONFLICT (key_columns) DO NOTHING: false, and nothing written,
    // when a row with the same key exists or is being inserted by a transaction that then
    // commits (waited for, as PostgreSQL's speculative insertion does). For a key the caller
    // has just looked up with find_locked and not found.
    bool insert_if_absent(TupleTableSlot *row, std::initializer_list<int> key_columns);

    void finish();

private:
    void apply_defaults(TupleTableSlot *row);
    Relation index_on(std::initializer_list<int> columns, bool partial) const;
    TupleTableSlot *locked(TupleTableSlot *slot);
    TupleTableSlot *slot_for_table();

    Relation rel_ = nullptr;
    EState *estate_ = nullptr;
    ResultRelInfo *info_ = nullptr;
    EPQState epq_{};
    IndexScanDesc scan_ = nullptr;
    TupleTableSlot *scan_slot_ = nullptr;
    TupleTableSlot *lock_slot_ = nullptr;
    TupleTableSlot *row_slot_ = nullptr;
    TupleTableSlot *found_slot_ = nullptr; // find_locked's row
    // Column defaults, prepared on the first insert: attnum and expression state, `ndefaults_`
    // of them (in the executor's memory).
    struct Default {
        int attnum;
        ExprState *expr;
    };
    Default *defaults_ = nullptr;
    int ndefaults_ = -1;
    bool speculative_ready_ = false;
    ScanKeyData scan_key_{};
};

// Walks, in index order and without locking, the rows whose leading index columns equal the
// given values: an outcome's events by (customer_key, key, id), events by idempotency key, an
// outcome by id. Call finish() when done.
class IndexReader {
public:
    enum class Snapshot {
        Latest,      // what has committed by now, and this transaction's earlier commands (writes)
        Statement,   // the calling statement's snapshot (reads that must agree with each other)
        Transaction, // a new one under READ COMMITTED, the transaction's under REPEATABLE READ
                     // (the lookup tables a new outcome's terms come from, as a query reads them)
    };
    // The table and its index over exactly `index_columns` (attribute numbers of the table,
    // looked up by name), partial or not.
    IndexReader(Oid relid, std::initializer_list<const char *> index_columns, bool partial = false,
                Snapshot snapshot = Snapshot::Latest);
    IndexReader(const IndexReader &) = delete;
    IndexReader &operator=(const IndexReader &) = delete;

    int column(const char *name) const;
    TupleDesc desc() const { return RelationGetDescr(rel_); }
    // Starts a walk over the rows whose first values.size() index columns equal `values`.
    void begin(std::initializer_list<Datum> values);
    // The next row (deformed, valid until the next call), or nullptr at the end.
    TupleTableSlot *next();
    // The first row whose leading index columns equal `values` (a key lookup), or nullptr.
    TupleTableSlot *find(std::initializer_list<Datum> values);
    // Ends the walk (begin() does too); call it before freeing the memory begin() ran in.
    void end_walk();
    void finish();

private:

    Relation rel_ = nullptr;
    Relation index_ = nullptr;
    TupleTableSlot *slot_ = nullptr;
    IndexScanDesc scan_ = nullptr;
    ::Snapshot snapshot_ = nullptr;
    Snapshot which_;
    ScanKeyData keys_[INDEX_MAX_KEYS];
};


// The attribute number of a table's column (1-based); throws when there is none.
int column_of(Relation rel, const char *name);
int column_of(TupleDesc desc, const char *table, const char *name);

// A column's value in a row read by TableWriter (the row's attributes are deformed).
inline bool column_null(TupleTableSlot *slot, int attnum) { return slot->tts_isnull[attnum - 1]; }
inline Datum column_value(TupleTableSlot *slot, int attnum) { return slot->tts_values[attnum - 1]; }
// Sets a column of a row being built (from new_row or new_row_from).
inline void put_column(TupleTableSlot *slot, int attnum, Datum value, bool isnull = false) {
    slot->tts_values[attnum - 1] = value;
    slot->tts_isnull[attnum - 1] = isnull;
}

// The OID of a label of an enum type (cached per type).
Oid enum_label(Oid enum_type, const char *label);

} // namespace witn::pg
