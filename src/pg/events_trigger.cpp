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
#include "pg/placement.hpp"
#include "pg/statement_rows.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
#include "miscadmin.h"
}

using namespace witn::pg;

// AFTER INSERT ... FOR EACH STATEMENT REFERENCING NEW TABLE on witn.events; its argument is the
// version of the SQL objects that created it.
WITN_FUNCTION(witn_events_apply) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw std::runtime_error("witn_events_apply must be called as a trigger");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!trigger->tg_newtable) return PointerGetDatum(nullptr);
    // witn.events itself, or on Citus the shard the rows went to: every table below is then
    // the shard colocated with it (placement.hpp).
    Placement placement(RelationGetRelid(trigger->tg_relation), "events");
    TimestampTz now = GetCurrentTransactionStartTimestamp();

    RowSort by_key(RowSort::Order::ByIdempotencyKey, true);
    RowSort by_outcome(RowSort::Order::ByOutcome, true);
    StatementRead read = read_statement(trigger, now, by_key, by_outcome);

    if (placement.on_shard()) {
        // Rows reach a shard from the node that received them (the coordinator, or a worker's
        // own witn.events), which stamped received_at with its transaction's start: that is
        // when they were received. One statement's rows carry one stamp.
        if (read.received_varies)
            throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: events of one statement carry different received_at",
                              "received_at is set by witn from the receiving transaction's start",
                              "Omit received_at. To restore a dump, load it with session_replication_role = replica.");
        now = read.received;
        require_node_id_range();
    } else if (read.restored) {
        // Restoring a dump is explicit: it runs with session_replication_role = replica, under
        // which this trigger does not fire and the rows, with their outcomes, are stored as
        // they are. A row that brings its own received_at otherwise is refused.
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: received_at is set by witn",
                          "an inserted event carries its own received_at",
                          "Omit received_at. To restore a dump (events with their outcomes), load it as a superuser "
                          "with session_replication_role = replica.");
    }

    // Applying events needs the library and the SQL objects to agree.
    require_schema_version(trigger->tg_trigger->tgnargs > 0 ? trigger->tg_trigger->tgargs[0] : nullptr);
    if (!read.locks.empty()) read.locks.lock_all(placement.shard_id());
    if (by_key.size()) resolve_idempotency(by_key, by_outcome);
    else by_key.end();
    by_outcome.sort();
    apply_to_outcomes(by_outcome, now);
    by_outcome.end();
    return PointerGetDatum(nullptr);
}

