// The rows of one INSERT or COPY into witn.events, read once from the statement's transition
// table and brought into the orders the write path walks: by idempotency key, and by outcome in
// (customer_key, key) byte order, ids ascending. The orders come from PostgreSQL's own sort,
// within work_mem and spilling to disk beyond it, so a statement of ten million rows needs no
// more memory than one of ten thousand.
#pragma once

#include "pg/postgres.hpp"

#include "core/statement_fold.hpp"
#include "pg/idempotency.hpp"

extern "C" {
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "utils/tuplesort.h"
}

#include <cstdint>
#include <string_view>

namespace witn::pg {

// The columns of a statement row as the sorts carry it (attribute numbers).
enum StatementColumn : int {
    kCustomerKey = 1,
    kKey,
    kId,
    kIdempotencyKey,
    kAction,
    kAgentKey,
    kProperties,
    kOccurredAt,
    kGivenLate,      // late and duplicate_of as inserted (normally false and null)
    kGivenDuplicate,
    kDuplicateOf,    // decided by idempotency: the original's id, or null
    kStatementColumns = kDuplicateOf
};

// The tuple descriptor of statement rows (built once per backend, in TopMemoryContext).
TupleDesc statement_row_desc();

// A text column of a deformed row, as bytes (no copy; valid while the row is).
std::string_view text_bytes(TupleTableSlot *row, int attnum);

// Statement rows in one order. A single row is kept as it is, without a sort. Memory: work_mem,
// plus one row. Call end() when done (a transaction abort frees everything otherwise).
class RowSort {
public:
    enum class Order { ByIdempotencyKey, ByOutcome };
    // rewindable: mark() and restore() can go back to a row (costs an extra pass when the sort
    // spills).
    RowSort(Order order, bool rewindable);
    RowSort(const RowSort &) = delete;
    RowSort &operator=(const RowSort &) = delete;

    void put(TupleTableSlot *row);
    std::int64_t size() const { return size_; }
    // After the last put: sorts.
    void sort();
    // The next row into `into` (a slot of statement_row_desc()), deformed; false at the end.
    bool next(TupleTableSlot *into);
    // Remembers the position after the row next() gave last, and goes back to it.
    void mark();
    void restore();
    void end();

private:
    void begin_sort();

    Order order_;
    bool rewindable_;
    MemoryContext memory_;
    std::int64_t size_ = 0;
    Tuplesortstate *sort_ = nullptr;
    TupleTableSlot *single_ = nullptr; // the only row, while there is one
    bool single_read_ = false, single_mark_ = false;
};

// What reading the transition table found.
struct StatementRead {
    std::int64_t rows = 0, restored = 0; // restored: rows whose received_at is not `now`
    TimestampTz received = 0;            // the first row's received_at
    bool received_varies = false;        // whether another row has a different one
    IdempotencyLocks locks;
};

// Reads the statement's rows once from the trigger's transition table, checks what needs no
// lookup (occurred_at finite, properties at most 256 KiB), and sorts them: rows with an
// idempotency key into by_key, the others straight into by_outcome. `now` is the transaction's
// start (received_at of every new row).
StatementRead read_statement(TriggerData *trigger, TimestampTz now, RowSort &by_key, RowSort &by_outcome);

// A statement row as the core sees it (its properties validated).
witn::StatementEvent statement_event(TupleTableSlot *row);

} // namespace witn::pg
