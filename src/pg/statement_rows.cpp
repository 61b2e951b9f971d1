#include "pg/statement_rows.hpp"

#include "pg/event_row.hpp"
#include "pg/table_writer.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/tupdesc.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
}

#include <string>

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
        pg([&] {
            ExecCopySlot(into, single_);
            slot_getallattrs(into);
        });
        return true;
    }
    return pg([&] {
        if (!tuplesort_gettupleslot(sort_, true, true, into, nullptr)) return false;
        slot_getallattrs(into);
        return true;
    });
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

StatementRead read_statement(TriggerData *trigger, TimestampTz now, RowSort &by_key, RowSort &by_outcome) {
    Relation events = trigger->tg_relation;
    const int id = column_of(events, "id"), customer_key = column_of(events, "customer_key"),
              key = column_of(events, "key"), action = column_of(events, "action"),
              agent_key = column_of(events, "agent_key"), properties = column_of(events, "properties"),
              occurred_at = column_of(events, "occurred_at"), idempotency_key = column_of(events, "idempotency_key"),
              received_at = column_of(events, "received_at"), late = column_of(events, "late"),
              duplicate_of = column_of(events, "duplicate_of");
    Tuplestorestate *store = trigger->tg_newtable;
    TupleTableSlot *in = pg([&] { return MakeSingleTupleTableSlot(RelationGetDescr(events), &TTSOpsMinimalTuple); });
    TupleTableSlot *out = pg([&] { return MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsVirtual); });
    ItemMemory per_row("witn statement row");
    StatementRead read;
    pg([&] { tuplestore_rescan(store); });
    while (pg([&] { return tuplestore_gettupleslot(store, true, false, in); })) per_row.run([&] {
        pg([&] { slot_getallattrs(in); });
        ++read.rows;
        auto text_of = [&](int attnum) { return std::string(text_bytes(in, attnum)); };
        const TimestampTz occurred = DatumGetTimestampTz(column_value(in, occurred_at));
        if (TIMESTAMP_NOT_FINITE(occurred))
            throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: occurred_at must be a finite timestamp",
                              "event " + text_of(key) + ": occurred_at is infinite");
        const TimestampTz received = DatumGetTimestampTz(column_value(in, received_at));
        if (read.rows == 1) read.received = received;
        else if (received != read.received) read.received_varies = true;
        if (received != now) ++read.restored;
        const Datum raw_properties = column_value(in, properties);
        const std::size_t size = pg([&] { return toast_raw_datum_size(raw_properties); });
        if (size > kMaxPropertiesBytes)
            throw witn::Error(witn::Code::PayloadTooLarge, "PAYLOAD_TOO_LARGE: properties is larger than 256 KiB",
                              "event " + text_of(key) + ": properties has " + std::to_string(size) + " bytes",
                              "Keep event properties under 256 KiB; store large documents elsewhere.");
        pg([&] {
            ExecClearTuple(out);
            auto copy = [&](int to, int from) {
                out->tts_isnull[to - 1] = in->tts_isnull[from - 1];
                out->tts_values[to - 1] = in->tts_values[from - 1];
            };
            copy(kCustomerKey, customer_key);
            copy(kKey, key);
            copy(kId, id);
            copy(kIdempotencyKey, idempotency_key);
            copy(kAction, action);
            copy(kAgentKey, agent_key);
            copy(kProperties, properties);
            copy(kOccurredAt, occurred_at);
            copy(kGivenLate, late);
            copy(kGivenDuplicate, duplicate_of);
            out->tts_isnull[kDuplicateOf - 1] = true;
            // Keys are compared as bytes from here on: never compressed or out of line.
            for (int k : {kCustomerKey, kKey, kIdempotencyKey, kAction, kAgentKey})
                if (!out->tts_isnull[k - 1])
                    out->tts_values[k - 1] = PointerGetDatum(PG_DETOAST_DATUM_PACKED(out->tts_values[k - 1]));
            ExecStoreVirtualTuple(out);
        });
        if (column_null(out, kIdempotencyKey)) {
            by_outcome.put(out);
        } else {
            read.locks.add(text_bytes(out, kCustomerKey), text_bytes(out, kIdempotencyKey));
            by_key.put(out);
        }
    });
    per_row.finish();
    pg([&] {
        ExecDropSingleTupleTableSlot(in);
        ExecDropSingleTupleTableSlot(out);
    });
    return read;
}

witn::StatementEvent statement_event(TupleTableSlot *row) {
    witn::StatementEvent e;
    Jsonb *properties = pg([&] { return DatumGetJsonbP(column_value(row, kProperties)); });
    e.event = event_from_properties(std::string(text_bytes(row, kAction)), &properties->root,
                                    DatumGetTimestampTz(column_value(row, kOccurredAt)),
                                    DatumGetInt64(column_value(row, kId)), "properties");
    if (!column_null(row, kAgentKey)) e.agent_key = std::string(text_bytes(row, kAgentKey));
    e.duplicate = !column_null(row, kDuplicateOf);
    return e;
}

} // namespace witn::pg
