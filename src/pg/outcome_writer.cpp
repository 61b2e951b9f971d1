#include "pg/outcome_writer.hpp"

#include "core/settlement.hpp"
#include "core/statement_fold.hpp"
#include "pg/contract_terms.hpp"
#include "pg/corrections.hpp"
#include "pg/event_log.hpp"
#include "pg/outcome_row.hpp"
#include "pg/settlement.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"

extern "C" {
#include "utils/memutils.h"
}

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace witn::pg {

namespace {

// Walks the statement's rows by outcome and writes each outcome once.
class OutcomeWriter {
public:
    OutcomeWriter(RowSort &rows, TimestampTz now)
        : rows_(rows), now_(now), statement_memory_(CurrentMemoryContext), per_outcome_("witn outcome") {
        open_writers();
        row_ = pg([] { return MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsMinimalTuple); });
        first_ = pg([] { return MakeSingleTupleTableSlot(statement_row_desc(), &TTSOpsMinimalTuple); });
    }

    void run() {
        bool have = rows_.next(row_);
        while (have) per_outcome_.run([&] {
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
        });
    }

    void finish() {
        close_writers();
        per_outcome_.finish();
        pg([&] {
            ExecDropSingleTupleTableSlot(row_);
            ExecDropSingleTupleTableSlot(first_);
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

    // An event's late / duplicate_of / after_resolution columns.
    struct Mark {
        bool late = false;
        std::optional<std::int64_t> duplicate_of;
        bool after_resolution = false;
        bool operator==(const Mark &) const = default;
        static Mark of(TupleTableSlot *row, int late, int duplicate_of, int after_resolution = 0) {
            Mark m{DatumGetBool(column_value(row, late)), std::nullopt,
                   after_resolution && DatumGetBool(column_value(row, after_resolution))};
            if (!column_null(row, duplicate_of)) m.duplicate_of = DatumGetInt64(column_value(row, duplicate_of));
            return m;
        }
    };

    // Writes an event's disposition where it differs from the row (as inserted, or as written
    // by a first attempt when `recheck`). Rows are inserted with after_resolution false (only
    // witn sets it), so an event in a reversal window is always marked.
    void record(TupleTableSlot *row, witn::Disposition d, bool recheck) {
        Mark decided{d == witn::Disposition::Late, std::nullopt, d == witn::Disposition::InReversalWindow};
        if (d == witn::Disposition::Duplicate) decided.duplicate_of = DatumGetInt64(column_value(row, kDuplicateOf));
        if (!recheck && decided == Mark::of(row, kGivenLate, kGivenDuplicate)) return;
        if (!events_) {
            InContext in(statement_memory_);
            events_ = std::make_unique<TableWriter>(witn_table("events"), false);
            events_customer_ = events_->column("customer_key");
            events_id_ = events_->column("id");
            events_late_ = events_->column("late");
            events_duplicate_ = events_->column("duplicate_of");
            events_after_ = events_->column("after_resolution");
        }
        TupleTableSlot *stored = events_->find_locked({events_customer_, events_id_},
                                                      {column_value(row, kCustomerKey), column_value(row, kId)});
        if (!stored) throw std::runtime_error("witn: an event of this statement is missing from witn.events");
        if (recheck && decided == Mark::of(stored, events_late_, events_duplicate_, events_after_)) return;
        TupleTableSlot *next = events_->new_row_from(stored);
        put_column(next, events_late_, BoolGetDatum(decided.late));
        put_column(next, events_duplicate_, Int64GetDatum(decided.duplicate_of.value_or(0)), !decided.duplicate_of);
        put_column(next, events_after_, BoolGetDatum(decided.after_resolution));
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
        if (stored && witn::settles_before_event(stored->state, stored->contract, now_)) {
            // Due, to be confirmed, and with a reversal window already open (CONTRACT §20): it
            // is settled first, as settlement would (as of its settles_at, with its line and
            // notification), so that this statement's events are taken in the window.
            const std::int64_t outcome_id = DatumGetInt64(column_value(locked, c.id));
            const Oid outcomes_table = witn_table("outcomes");
            close_writers();
            settle_pass(now_, 1, outcome_id, outcomes_table, outcomes_table == witn_own_table("outcomes"));
            open_writers();
            locked = outcomes_->find_locked({c.customer_key, c.key}, {customer, key});
            if (!locked) throw std::runtime_error("witn: an outcome settled before its event is gone");
            stored = c.stored(locked);
        }
        const Terms *terms = nullptr;
        skip_.clear();
        EventLog history(customer, key, IndexReader::Snapshot::Latest, &skip_);
        witn::StatementFold fold(
            customer_text, key_text, std::move(stored), now_,
            [&](const std::string &agent) {
                terms = &terms_.get(customer_text, agent);
                return terms->contract;
            },
            history);
        TupleTableSlot *r = first_;
        // Until the first event that is not a duplicate, the rows seen are duplicates the table
        // does not mark yet, which a replay must leave out; after it, the core skips the rest
        // (or, the first being late, there is no replay).
        bool leading = true;
        for (;;) {
            const witn::Disposition d = fold.add(statement_event(r));
            if (d != witn::Disposition::Duplicate) leading = false;
            else if (leading) skip_.push_back(DatumGetInt64(column_value(r, kId)));
            record(r, d, retry);
            if (!(have = rows_.next(row_))) break;
            if (text_bytes(row_, kCustomerKey) != customer_text || text_bytes(row_, kKey) != key_text) break;
            r = row_;
        }
        fold.finish();
        history.finish();
        if (locked) {
            TupleTableSlot *next = outcomes_->new_row_from(locked);
            c.put_updated_at(next, now_);
            c.put_state(next, fold);
            const std::int64_t outcome_id = DatumGetInt64(column_value(locked, c.id));
            outcomes_->update(locked, next);
            if (fold.reverses()) {
                // The reversal condition of a confirmed outcome now holds (CONTRACT §20): it is
                // reversed in this transaction, by the trigger every credit goes through. The
                // outcomes that follow are written in a command that sees it.
                reverse_by_condition(customer, outcome_id, now_);
                close_writers();
                open_writers();
            }
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
    int events_customer_ = 0, events_id_ = 0, events_late_ = 0, events_duplicate_ = 0, events_after_ = 0;
    TermsCache terms_;
    ItemMemory per_outcome_;
    TupleTableSlot *row_ = nullptr, *first_ = nullptr;
    std::vector<std::int64_t> skip_;
};

} // namespace

void apply_to_outcomes(RowSort &by_outcome, TimestampTz now) {
    OutcomeWriter writer(by_outcome, now);
    writer.run();
    writer.finish();
}

} // namespace witn::pg
