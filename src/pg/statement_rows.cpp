#include "pg/statement_rows.hpp"

extern "C" {
#include "access/tupdesc.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"
}

namespace witn::pg {

TupleDesc statement_row_desc() {
    static TupleDesc desc = nullptr;
    if (desc) return desc;
    desc = pg([] {
        MemoryContext saved = MemoryContextSwitchTo(TopMemoryContext);
        TupleDesc d = CreateTemplateTupleDesc(kStatementColumns);
        TupleDescInitEntry(d, kCustomerKey, "customer_key", TEXTOID, -1, 0);
        TupleDescInitEntry(d, kKey, "key", TEXTOID, -1, 0);
        TupleDescInitEntry(d, kId, "id", INT8OID, -1, 0);
        TupleDescInitEntry(d, kIdempotencyKey, "idempotency_key", TEXTOID, -1, 0);
        TupleDescInitEntry(d, kAction, "action", TEXTOID, -1, 0);
        TupleDescInitEntry(d, kAgentKey, "agent_key", TEXTOID, -1, 0);
        TupleDescInitEntry(d, kProperties, "properties", JSONBOID, -1, 0);
        TupleDescInitEntry(d, kOccurredAt, "occurred_at", TIMESTAMPTZOID, -1, 0);
        TupleDescInitEntry(d, kGivenLate, "given_late", BOOLOID, -1, 0);
        TupleDescInitEntry(d, kGivenDuplicate, "given_duplicate_of", INT8OID, -1, 0);
        TupleDescInitEntry(d, kDuplicateOf, "duplicate_of", INT8OID, -1, 0);
        MemoryContextSwitchTo(saved);
        return d;
    });
    return desc;
}

std::string_view text_bytes(TupleTableSlot *row, int attnum) {
    text *t = reinterpret_cast<text *>(DatumGetPointer(row->tts_values[attnum - 1]));
    // Sort tuples hold their text inline and untoasted (the transition table's were detoasted
    // when the rows were put), possibly with a short header.
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

RowSort::RowSort(Order order, bool rewindable)
    : order_(order), rewindable_(rewindable), memory_(CurrentMemoryContext) {}

void RowSort::begin_sort() {
    pg([&] {
        // Keys compared in byte order (collation "C"): the same order in every session and on
        // every node, whatever the database's collation.
        AttrNumber columns[3] = {kCustomerKey, order_ == Order::ByIdempotencyKey ? AttrNumber(kIdempotencyKey) : AttrNumber(kKey),
                                 kId};
        Oid text_lt = lookup_type_cache(TEXTOID, TYPECACHE_LT_OPR)->lt_opr;
        Oid int8_lt = lookup_type_cache(INT8OID, TYPECACHE_LT_OPR)->lt_opr;
        Oid operators[3] = {text_lt, text_lt, int8_lt};
        Oid collations[3] = {C_COLLATION_OID, C_COLLATION_OID, InvalidOid};
        bool nulls_first[3] = {false, false, false};
        sort_ = tuplesort_begin_heap(statement_row_desc(), 3, columns, operators, collations, nulls_first,
                                     work_mem, nullptr, rewindable_ ? TUPLESORT_RANDOMACCESS : TUPLESORT_NONE);
    });
}

void RowSort::put(TupleTableSlot *row) {
    ++size_;
    // Whatever context the caller works in (a row's), the sort lives as long as this.
    InContext in(memory_);
    pg([&] {
        if (size_ == 1) {
            single_ = MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsMinimalTuple);
            ExecCopySlot(single_, row);
            return;
        }
        if (!sort_) {
            begin_sort();
            tuplesort_puttupleslot(sort_, single_);
            ExecDropSingleTupleTableSlot(single_);
            single_ = nullptr;
        }
        tuplesort_puttupleslot(sort_, row);
    });
}

void RowSort::sort() {
    if (sort_) pg([&] { tuplesort_performsort(sort_); });
}

bool RowSort::next(TupleTableSlot *into) {
    // The copy belongs to the slot (freed when it takes the next row), not to the caller's
    // context, which may be reset while the slot still holds the row.
    InContext in(memory_);
    if (!sort_) {
        if (!single_ || single_read_) {
            ExecClearTuple(into);
            return false;
        }
        single_read_ = true;
        pg([&] { ExecCopySlot(into, single_); });
        return true;
    }
    return pg([&] { return tuplesort_gettupleslot(sort_, true, true, into, nullptr); });
}

void RowSort::mark() {
    if (sort_) pg([&] { tuplesort_markpos(sort_); });
    else single_mark_ = single_read_;
}

void RowSort::restore() {
    if (sort_) pg([&] { tuplesort_restorepos(sort_); });
    else single_read_ = single_mark_;
}

void RowSort::end() {
    pg([&] {
        if (sort_) tuplesort_end(sort_);
        if (single_) ExecDropSingleTupleTableSlot(single_);
    });
    sort_ = nullptr;
    single_ = nullptr;
}

} // namespace witn::pg
