// The write path: the statement trigger that validates a statement's events and folds them into
// their outcomes in the inserting transaction. One path for every statement, one row or ten
// million:
//  1. the rows are read once from the transition table and checked;
//  2. rows with an idempotency key are decided duplicate or not (idempotency.cpp);
//  3. all rows, sorted by outcome in (customer_key, key) byte order within work_mem
//     (statement_rows.cpp), are walked outcome by outcome (outcome_writer.cpp): each outcome is
//     found and locked (or opened under its terms), its events folded by the core
//     (StatementFold) and written back once, through the executor's row-level calls and without
//     SQL (table_writer.cpp).
// Outcomes are locked in the same global order in every session, so concurrent statements
// cannot deadlock; memory is bounded by work_mem and one outcome's state.
#include "pg/postgres.hpp"

#include "pg/idempotency.hpp"
#include "pg/outcome_writer.hpp"
#include "pg/statement_rows.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
#include "miscadmin.h"
}

using namespace witn::pg;

namespace {

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
    apply_to_outcomes(by_outcome, now);
    by_outcome.end();
    return PointerGetDatum(nullptr);
}

