// The outcome row codec: the one place that knows witn.outcomes' columns. It reads a row into
// the core's StoredOutcome (events) or DueOutcome (settlement) and writes what the core decided
// back into a row being built.
#pragma once

#include "pg/postgres.hpp"

#include "core/settlement.hpp"
#include "core/statement_fold.hpp"
#include "pg/contract_terms.hpp"

extern "C" {
#include "executor/tuptable.h"
#include "utils/rel.h"
}

namespace witn::pg {

class TableWriter;

class OutcomeRow {
public:
    // The column numbers of witn.outcomes as `desc` has them (a DBA may have added columns).
    explicit OutcomeRow(TupleDesc desc);
    explicit OutcomeRow(const TableWriter &outcomes);

    // Reads a row (deformed).
    witn::StoredOutcome stored(TupleTableSlot *row) const;
    witn::DueOutcome due(TupleTableSlot *row) const;

    // The state an event fold decided: status, scheduled resolution, settles_at, quantity,
    // counters, facts, attribution and the last applied event id.
    void put_state(TupleTableSlot *row, const witn::StatementFold &fold) const;
    // A new outcome's identity and terms; check_at starts at settles_at.
    void put_opening(TupleTableSlot *row, Datum customer_key, Datum key, const Terms &terms,
                     TimestampTz settles_at) const;
    void put_updated_at(TupleTableSlot *row, TimestampTz now) const;
    // Settlement: the resolution (resolved_at = settles_at), or a new check_at.
    void put_resolution(TupleTableSlot *row, witn::Status resolution, TimestampTz now) const;
    void put_check_at(TupleTableSlot *row, TimestampTz check_at) const;
    // A reversal (CONTRACT §19): reversed_at and reversal_reason.
    void put_reversal(TupleTableSlot *row, TimestampTz now, Datum reason) const;

    Oid status_oid(witn::Status s) const;
    witn::Status status_of(Datum enum_value) const;

    int id, customer_key, key, agent_key, status, scheduled, settles_at, resolved_at, check_at,
        condition, period, method, version, unit_price, currency, quantity, holds, accepted, late,
        facts, attribution, last_id, updated_at, reversal_condition, reversal_period, reversed_at,
        reversal_reason;

private:
    Oid status_type_;
    Oid status_oids_[4];
};

} // namespace witn::pg
