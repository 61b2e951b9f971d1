// The write path: the statement trigger that validates a statement's events and folds them into
// their outcomes in the inserting transaction. One path for every statement, one row or ten
// million:
//  1. the rows are read once from the transition table and checked;
//  2. rows with an idempotency key are decided duplicate or not (idempotency.cpp);
//  3. all rows, sorted by outcome in (customer_key, key) byte order within work_mem
//     (statement_rows.cpp), are walked outcome by outcome: each outcome is found and locked (or
//     opened under its terms), its events folded by the core (StatementFold) and written back
//     once, through the executor's row-level calls and without SQL (table_writer.cpp).
// Outcomes are locked in the same global order in every session, so concurrent statements
// cannot deadlock; memory is bounded by work_mem and one outcome's state.
#include "pg/postgres.hpp"

#include "core/statement_fold.hpp"
#include "pg/contract_terms.hpp"
#include "pg/event_row.hpp"
#include "pg/idempotency.hpp"
#include "pg/outcome_row.hpp"
#include "pg/statement_rows.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <memory>
#include <optional>
#include <vector>

using namespace witn::pg;

// CHECK (witn.event_keys_fit(...)) on witn.events: rejects an empty or over-long key row by row,
// before the row reaches the indexes (whose own size limit would fail with an internal-looking
// error).
WITN_FUNCTION(witn_event_keys_fit) {
    static const char *const names[] = {"customer_key", "key", "action", "agent_key", "idempotency_key"};
    for (int i = 0; i < 5; ++i) {
        if (PG_ARGISNULL(i)) continue; // a missing required key is the NOT NULL constraint's
        text *t = pg([&] { return PG_GETARG_TEXT_PP(i); });
        check_key(names[i], VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    }
    return BoolGetDatum(true);
}

namespace {

// What reading the transition table found.
struct StatementRead {
    std::int64_t rows = 0, restored = 0;
    IdempotencyLocks locks;
};

// Reads the statement's rows once, checks what needs no lookup, and sorts them: rows with an
// idempotency key into by_key, the others straight into by_outcome.
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
    MemoryContext per_row = pg([] {
        return AllocSetContextCreate(CurrentMemoryContext, "witn statement row", ALLOCSET_DEFAULT_SIZES);
    });
    StatementRead read;
    pg([&] { tuplestore_rescan(store); });
    while (pg([&] { return tuplestore_gettupleslot(store, true, false, in); })) {
        MemoryContext outer = MemoryContextSwitchTo(per_row);
        pg([&] { slot_getallattrs(in); });
        ++read.rows;
        auto text_of = [&](int attnum) { return std::string(text_bytes(in, attnum)); };
        const TimestampTz occurred = DatumGetTimestampTz(column_value(in, occurred_at));
        if (TIMESTAMP_NOT_FINITE(occurred))
            throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: occurred_at must be a finite timestamp",
                              "event " + text_of(key) + ": occurred_at is infinite");
        if (DatumGetTimestampTz(column_value(in, received_at)) != now) ++read.restored;
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
        MemoryContextSwitchTo(outer);
        pg([&] { MemoryContextReset(per_row); });
    }
    pg([&] {
        ExecDropSingleTupleTableSlot(in);
        ExecDropSingleTupleTableSlot(out);
        MemoryContextDelete(per_row);
    });
    return read;
}

// A statement row as the core sees it.
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

// The accepted events an outcome already has in witn.events, in id order, for a replay. The
// statement's rows are in the table too: those before the replay started (duplicates, as the
// table does not show yet) are left out here, the later ones the core skips.
class EventLog final : public witn::History {
public:
    EventLog(Datum customer_key, Datum key, const std::vector<std::int64_t> &skip)
        : customer_key_(customer_key), key_(key), skip_(skip) {}
    ~EventLog() override = default;
    const witn::Event *next() override {
        if (!reader_) {
            reader_ = std::make_unique<IndexReader>(witn_table("events"), std::initializer_list<const char *>{"customer_key", "key", "id"});
            id_ = reader_->column("id");
            action_ = reader_->column("action");
            properties_ = reader_->column("properties");
            occurred_at_ = reader_->column("occurred_at");
            late_ = reader_->column("late");
            duplicate_ = reader_->column("duplicate_of");
            reader_->begin({customer_key_, key_});
        }
        while (TupleTableSlot *e = reader_->next()) {
            const std::int64_t id = DatumGetInt64(column_value(e, id_));
            if (DatumGetBool(column_value(e, late_)) || !column_null(e, duplicate_)) continue;
            if (std::find(skip_.begin(), skip_.end(), id) != skip_.end()) continue;
            Jsonb *properties = pg([&] { return DatumGetJsonbP(column_value(e, properties_)); });
            event_ = event_from_properties(text_value(column_value(e, action_)), &properties->root,
                                           DatumGetTimestampTz(column_value(e, occurred_at_)), id, "properties");
            return &event_;
        }
        return nullptr;
    }
    void finish() {
        if (reader_) reader_->finish();
    }

private:
    Datum customer_key_, key_;
    const std::vector<std::int64_t> &skip_;
    std::unique_ptr<IndexReader> reader_;
    int id_ = 0, action_ = 0, properties_ = 0, occurred_at_ = 0, late_ = 0, duplicate_ = 0;
    witn::Event event_;
};

// Walks the statement's rows by outcome and writes each outcome once.
class OutcomeWriter {
public:
    OutcomeWriter(RowSort &rows, TimestampTz now) : rows_(rows), now_(now), statement_memory_(CurrentMemoryContext) {
        open_writers();
        row_ = pg([] { return MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsMinimalTuple); });
        first_ = pg([] { return MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsMinimalTuple); });
        per_outcome_ = pg([] {
            return AllocSetContextCreate(CurrentMemoryContext, "witn outcome", ALLOCSET_DEFAULT_SIZES);
        });
    }

    void run() {
        bool have = rows_.next(row_);
        while (have) {
            MemoryContext outer = MemoryContextSwitchTo(per_outcome_);
            pg([&] {
                ExecCopySlot(first_, row_);
                slot_getallattrs(first_);
            });
            rows_.mark();
            if (!apply(false, have)) {
                // A concurrent transaction opened the outcome first; ours applies on top of its
                // row (under REPEATABLE READ or SERIALIZABLE, whose snapshot cannot see that row,
                // find_locked asks the client to retry, as PostgreSQL does for any such
                // conflict). What this statement wrote so far becomes visible first.
                close_writers();
                open_writers();
                rows_.restore();
                if (!apply(true, have)) {
                    const std::string customer(text_bytes(first_, kCustomerKey)), key(text_bytes(first_, kKey));
                    pg([&] {
                        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                                        errmsg("could not serialize access due to a concurrently opened outcome"),
                                        errdetail("customer %s, key %s", customer.c_str(), key.c_str()),
                                        errhint("Retry the transaction.")));
                    });
                }
            }
            MemoryContextSwitchTo(outer);
            pg([&] { MemoryContextReset(per_outcome_); });
        }
    }

    void finish() {
        close_writers();
        pg([&] {
            ExecDropSingleTupleTableSlot(row_);
            ExecDropSingleTupleTableSlot(first_);
            MemoryContextDelete(per_outcome_);
        });
    }

private:
    // Writers live for the statement (or until a retry), not in an outcome's memory.
    void open_writers() {
        InContext in(statement_memory_);
        outcomes_ = std::make_unique<TableWriter>(witn_table("outcomes"));
        columns_.emplace(*outcomes_);
    }
    void close_writers() {
        if (events_) events_->finish();
        events_.reset();
        outcomes_->finish();
        outcomes_.reset();
    }

    // Writes an event's disposition where it differs from the row (as inserted, or as written
    // by a first attempt when `recheck`).
    void record(TupleTableSlot *row, witn::Disposition d, bool recheck) {
        const bool late = d == witn::Disposition::Late;
        const bool duplicate = d == witn::Disposition::Duplicate;
        const bool given_late = DatumGetBool(column_value(row, kGivenLate));
        const bool given_duplicate = !column_null(row, kGivenDuplicate);
        const bool same_original = duplicate == given_duplicate &&
                                   (!duplicate || DatumGetInt64(column_value(row, kGivenDuplicate)) ==
                                                      DatumGetInt64(column_value(row, kDuplicateOf)));
        if (!recheck && late == given_late && same_original) return;
        if (!events_) {
            InContext in(statement_memory_);
            events_ = std::make_unique<TableWriter>(witn_table("events"), false);
            events_customer_ = events_->column("customer_key");
            events_id_ = events_->column("id");
            events_late_ = events_->column("late");
            events_duplicate_ = events_->column("duplicate_of");
        }
        TupleTableSlot *stored = events_->find_locked({events_customer_, events_id_},
                                                      {column_value(row, kCustomerKey), column_value(row, kId)});
        if (!stored) throw std::runtime_error("witn: an event of this statement is missing from witn.events");
        const bool stored_late = DatumGetBool(column_value(stored, events_late_));
        const bool stored_duplicate = !column_null(stored, events_duplicate_);
        if (recheck && stored_late == late && stored_duplicate == duplicate &&
            (!duplicate || DatumGetInt64(column_value(stored, events_duplicate_)) ==
                               DatumGetInt64(column_value(row, kDuplicateOf))))
            return;
        TupleTableSlot *next = events_->new_row_from(stored);
        put_column(next, events_late_, BoolGetDatum(late));
        put_column(next, events_duplicate_, duplicate ? column_value(row, kDuplicateOf) : Datum(0), !duplicate);
        events_->update(stored, next);
    }

    // Applies one outcome's rows, from first_ on; `have` tells whether a row follows (in row_).
    // False when the outcome turned out to be opened concurrently (nothing of it written).
    bool apply(bool retry, bool &have) {
        const Datum customer = column_value(first_, kCustomerKey), key = column_value(first_, kKey);
        const std::string customer_text(text_bytes(first_, kCustomerKey)), key_text(text_bytes(first_, kKey));
        const OutcomeRow &c = *columns_;
        TupleTableSlot *locked = outcomes_->find_locked({c.customer_key, c.key}, {customer, key});
        if (retry && !locked) return false;
        std::optional<witn::StoredOutcome> stored;
        if (locked) stored = c.stored(locked);
        const Terms *terms = nullptr;
        skip_.clear();
        EventLog history(customer, key, skip_);
        witn::StatementFold fold(
            customer_text, key_text, std::move(stored), now_,
            [&](const std::string &agent) {
                terms = &terms_.get(customer_text, agent);
                return terms->contract;
            },
            history);
        TupleTableSlot *r = first_;
        bool accepted_yet = false;
        for (;;) {
            const witn::Disposition d = fold.add(statement_event(r));
            if (d == witn::Disposition::Accepted) accepted_yet = true;
            else if (!accepted_yet) skip_.push_back(DatumGetInt64(column_value(r, kId)));
            record(r, d, retry);
            if (!(have = rows_.next(row_))) break;
            pg([&] { slot_getallattrs(row_); });
            if (text_bytes(row_, kCustomerKey) != customer_text || text_bytes(row_, kKey) != key_text) break;
            r = row_;
        }
        fold.finish();
        history.finish();
        if (locked) {
            TupleTableSlot *next = outcomes_->new_row_from(locked);
            c.put_updated_at(next, now_);
            c.put_state(next, fold);
            outcomes_->update(locked, next);
            return true;
        }
        TupleTableSlot *row = outcomes_->new_row();
        c.put_state(row, fold);
        c.put_opening(row, customer, key, *terms, fold.state().settles_at);
        return outcomes_->insert_if_absent(row, {c.customer_key, c.key});
    }

    RowSort &rows_;
    TimestampTz now_;
    MemoryContext statement_memory_;
    std::unique_ptr<TableWriter> outcomes_, events_;
    std::optional<OutcomeRow> columns_;
    int events_customer_ = 0, events_id_ = 0, events_late_ = 0, events_duplicate_ = 0;
    TermsCache terms_;
    TupleTableSlot *row_ = nullptr, *first_ = nullptr;
    MemoryContext per_outcome_ = nullptr;
    std::vector<std::int64_t> skip_;
};

// Restoring a dump (events with their original received_at) is for superusers only.
bool may_restore() { return superuser_arg(GetOuterUserId()); }

} // namespace

// AFTER INSERT ... FOR EACH STATEMENT REFERENCING NEW TABLE on witn.events; its argument is the
// version of the SQL objects that created it.
WITN_FUNCTION(witn_events_apply) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw std::runtime_error("witn_events_apply must be called as a trigger");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!trigger->tg_newtable) return PointerGetDatum(nullptr);
    const TimestampTz now = GetCurrentTransactionStartTimestamp();

    RowSort by_key(RowSort::Order::ByIdempotencyKey, true);
    RowSort by_outcome(RowSort::Order::ByOutcome, true);
    StatementRead read = read_statement(trigger, now, by_key, by_outcome);

    // Rows that bring their own received_at are restored rows (pg_dump/pg_restore): they are
    // history already reflected in witn.outcomes and are stored as they are.
    if (read.restored) {
        if (!may_restore())
            throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: received_at is set by witn",
                              "an inserted event carries its own received_at",
                              "Omit received_at; only a superuser restoring a dump may supply it.");
        if (read.restored != read.rows)
            throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: restored and new events in one statement",
                              "some rows carry received_at and some do not",
                              "Insert new events without received_at, in their own statement.");
        by_key.end();
        by_outcome.end();
        return PointerGetDatum(nullptr);
    }

    // Restored rows are stored as they are, whatever the versions; applying events needs the
    // library and the SQL objects to agree.
    require_schema_version(trigger->tg_trigger->tgnargs > 0 ? trigger->tg_trigger->tgargs[0] : nullptr);
    if (!read.locks.empty()) read.locks.lock_all();
    if (by_key.size()) resolve_idempotency(by_key, by_outcome);
    else by_key.end();
    by_outcome.sort();
    OutcomeWriter writer(by_outcome, now);
    writer.run();
    writer.finish();
    by_outcome.end();
    return PointerGetDatum(nullptr);
}

// The 0.1.0 and 0.2.0 install scripts declare witn.fold_existing, which the multi-outcome path
// of those versions called; PostgreSQL checks that the symbol exists when the function is
// created (installing an old version to upgrade from it), so it stays, and says what to do.
WITN_FUNCTION(witn_fold_existing) {
    (void)fcinfo;
    pg([] {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("witn.fold_existing was removed in witn 0.3.0"),
                        errhint("Run ALTER EXTENSION witn UPDATE in this database.")));
    });
    return Datum(0);
}
