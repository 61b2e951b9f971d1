// witn.replay(outcome_id): recompute an outcome from its log with the pure core and compare it
// with what the events trigger stored incrementally. Reads the outcome through its row codec and
// the log through the (customer_key, key, id) index, without SQL.
#include "pg/postgres.hpp"

#include "core/credit.hpp"
#include "core/evaluator.hpp"
#include "core/outcome.hpp"
#include "pg/condition_type.hpp"
#include "pg/event_row.hpp"
#include "pg/event_log.hpp"
#include "pg/outcome_row.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <limits>
#include <optional>
#include <vector>

using namespace witn::pg;

namespace {

std::string status_text(const std::optional<witn::Status> &s) {
    return s ? witn::status_name(*s) : "NULL";
}

std::string time_text(std::int64_t t) {
    char *s = pg([&] { return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t))); });
    std::string out(s);
    pfree(s);
    return out;
}

// replay_on's row: matches NULL when the outcome was not replayed (its events were purged).
Datum replay_result(FunctionCallInfo fcinfo, std::int64_t outcome_id, std::optional<bool> matches,
                    const std::vector<Datum> &items) {
    return pg([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "witn.replay must return a record");
        desc = BlessTupleDesc(desc);
        Datum values[3] = {Int64GetDatum(outcome_id), BoolGetDatum(matches.value_or(false)),
                           PointerGetDatum(construct_array(const_cast<Datum *>(items.data()), static_cast<int>(items.size()),
                                                           TEXTOID, -1, false, TYPALIGN_INT))};
        bool nulls[3] = {false, !matches.has_value(), false};
        return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
}

} // namespace

// witn.replay_on(shard regclass, outcome_id bigint, missing_ok boolean): shard NULL is
// witn.outcomes; on Citus, a shard of it, whose colocated events shard holds the log.
WITN_FUNCTION(witn_replay) {
    require_installed_version();
    if (PG_ARGISNULL(1)) return PointerGetDatum(nullptr);
    const std::int64_t outcome_id = PG_GETARG_INT64(1);
    const bool missing_ok = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
    Placement placement(PG_ARGISNULL(0) ? witn_own_table("outcomes") : PG_GETARG_OID(0), "outcomes");
    // Both reads as of the calling statement's snapshot, so that they agree (verify() replays
    // every outcome in one statement).
    IndexReader outcomes(witn_table("outcomes"), {"id", "customer_key"}, false, IndexReader::Snapshot::Statement);
    const OutcomeRow c(outcomes.desc());
    outcomes.begin({Int64GetDatum(outcome_id)});
    TupleTableSlot *row = outcomes.next();
    if (!row && missing_ok) {
        outcomes.finish();
        PG_RETURN_NULL();
    }
    if (!row)
        throw witn::Error(witn::Code::OutcomeNotFound,
                          "OUTCOME_NOT_FOUND: no outcome " + std::to_string(outcome_id),
                          "outcome_id " + std::to_string(outcome_id));
    // An outcome whose events witn.purge_events deleted has nothing to replay: it is skipped,
    // and says so, rather than reported as different from an empty log.
    const int purged_at = column_of(outcomes.desc(), "outcomes", "events_purged_at");
    if (!column_null(row, purged_at)) {
        const std::string when = time_text(DatumGetTimestampTz(column_value(row, purged_at)));
        outcomes.finish();
        return replay_result(fcinfo, outcome_id, std::nullopt,
                             {text_datum("not replayed: its events were purged at " + when + " (witn.purge_events)")});
    }
    const witn::StoredOutcome stored = c.stored(row);
    const witn::Contract &contract = stored.contract;
    const Datum customer_key = PointerGetDatum(pg([&] { return DatumGetTextPCopy(column_value(row, c.customer_key)); }));
    const Datum key = PointerGetDatum(pg([&] { return DatumGetTextPCopy(column_value(row, c.key)); }));
    std::optional<TimestampTz> resolved_at;
    if (!column_null(row, c.resolved_at)) resolved_at = DatumGetTimestampTz(column_value(row, c.resolved_at));
    const bool reversed_by_condition = !column_null(row, c.reversal_reason) &&
                                       text_value(column_value(row, c.reversal_reason)) == witn::kReversalConditionReason;
    const witn::Decimal stored_quantity = decimal_value(column_value(row, c.quantity));
    const std::string stored_quantity_text = output_text(column_value(row, c.quantity), numeric_out);
    outcomes.finish();

    EventLog events(customer_key, key, IndexReader::Snapshot::Statement);
    std::vector<witn::Event> log;
    while (const witn::Event *e = events.next()) log.push_back(*e);
    events.finish();

    // Accepted events were on time when they arrived (or in a confirmed outcome's reversal
    // window), so nothing is late in a replay.
    std::optional<std::int64_t> resolved;
    if (resolved_at) resolved = *resolved_at;
    const witn::Replay again = witn::replay_log(contract, log, resolved);
    const witn::OutcomeState &replayed = again.state;

    const witn::OutcomeState &s = stored.state;
    std::vector<std::string> differences;
    auto differ = [&](const std::string &what, const std::string &stored_text, const std::string &again) {
        if (stored_text != again) differences.push_back(what + ": stored " + stored_text + ", replayed " + again);
    };
    if (resolved_at) {
        differ("status", witn::status_name(s.status), status_text(again.resolution));
        differ("resolved_at", time_text(*resolved_at), time_text(replayed.settles_at));
    } else {
        differ("status", witn::status_name(s.status), witn::status_name(replayed.status));
    }
    // A reversal by the reversal condition needs the condition to have held in the window; a
    // condition that held there must have reversed the outcome (by it, or by hand before).
    if (reversed_by_condition && !again.reversal_held)
        differences.push_back("reversal: stored reversed by reversal_condition, replayed the condition never held in the reversal window");
    if (again.reversal_held && !s.reversed)
        differences.push_back("reversal: stored not reversed, replayed the reversal condition held in the reversal window");
    differ("scheduled_resolution", status_text(s.scheduled_resolution), status_text(replayed.scheduled_resolution));
    differ("settles_at", time_text(s.settles_at), log.empty() ? "NULL" : time_text(replayed.settles_at));
    differ("accepted_events", std::to_string(s.accepted_events), std::to_string(replayed.accepted_events));
    // The stored state as the core reads it back, not its jsonb text (jsonb reorders keys).
    differ("facts", s.facts.to_json(), replayed.facts.to_json());
    differ("attribution", s.attribution.to_json(), replayed.attribution.to_json());
    witn::Decimal quantity = replayed.attribution.quantity(contract.attribution_method);
    if (stored_quantity != quantity) differ("quantity", stored_quantity_text, quantity.to_string());
    const bool stored_holds = s.condition_holds;
    differ("condition_holds", stored_holds ? "true" : "false", replayed.condition_holds ? "true" : "false");
    // The pure definition over the whole log must agree with the incremental result.
    bool pure = witn::evaluate_log(contract.condition, log);
    differ("evaluate(log)", stored_holds ? "true" : "false", pure ? "true" : "false");

    std::vector<Datum> items;
    for (const std::string &d : differences) items.push_back(text_datum(d));
    return replay_result(fcinfo, outcome_id, items.empty(), items);
}
