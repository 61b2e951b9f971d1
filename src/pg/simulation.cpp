// witn.simulate_on (CONTRACT §22): every outcome of an agent opened in a range, replayed from its
// log under draft terms by the core (simulate_outcome), beside what actually happened. Reads the
// outcomes with a heap scan and each log through the (customer_key, key, id) index, as of the
// statement's snapshot, without locks; one outcome's memory at a time; rows into a tuplestore
// (which spills to disk), so memory is bounded whatever the range.
#include "pg/postgres.hpp"

#include "core/simulation.hpp"
#include "pg/condition_type.hpp"
#include "pg/event_log.hpp"
#include "pg/outcome_row.hpp"
#include "pg/placement.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <optional>
#include <string>
#include <vector>

using namespace witn::pg;

namespace {

witn::DraftTerms draft_of(FunctionCallInfo fcinfo) {
    witn::DraftTerms d;
    if (!PG_ARGISNULL(4)) d.condition = cached_condition(text_value(PG_GETARG_DATUM(4)));
    if (!PG_ARGISNULL(5)) {
        // Months count as 30 days, as for an agent's settlement_period.
        d.settlement_period = interval_micros(pg([&] { return PG_GETARG_INTERVAL_P(5); }));
    }
    if (!PG_ARGISNULL(6)) {
        const std::string name = text_value(PG_GETARG_DATUM(6));
        d.attribution_method = witn::attribution_method_from_name(name);
        if (!d.attribution_method) {
            std::string names;
            for (const auto &m : witn::kAttributionMethods) names += std::string(names.empty() ? "" : ", ") + m.name;
            witn::fail_validation("attribution_method", "one of " + names,
                                  "Leave attribution_method NULL for each outcome's own.");
        }
    }
    if (!PG_ARGISNULL(7)) {
        const bool nan = pg([&] { return numeric_is_nan(PG_GETARG_NUMERIC(7)) || numeric_is_inf(PG_GETARG_NUMERIC(7)); });
        if (nan) witn::fail_validation("price_per_unit", "a number", "Give the price per unit to try, or NULL.");
        d.price_per_unit = decimal_value(PG_GETARG_DATUM(7));
    }
    witn::validate_draft(d);
    return d;
}

} // namespace

// witn.simulate_on(shard regclass, agent_key, opened_from, opened_to, condition, settlement_period,
// attribution_method, price_per_unit): shard NULL is witn.outcomes; on Citus one shard of it.
WITN_FUNCTION(witn_simulate) {
    require_installed_version();
    for (int i = 1; i <= 3; ++i)
        if (PG_ARGISNULL(i))
            witn::fail_validation(i == 1 ? "agent_key" : i == 2 ? "opened_from" : "opened_to", "present (not NULL)",
                                  "witn.simulate(agent_key, opened_from, opened_to, ...): name the agent and the range of opened_at.");
    const witn::DraftTerms draft = draft_of(fcinfo);
    const std::string agent = text_value(PG_GETARG_DATUM(1));
    const TimestampTz from = PG_GETARG_TIMESTAMPTZ(2), to = PG_GETARG_TIMESTAMPTZ(3);
    const TimestampTz now = GetCurrentTransactionStartTimestamp();

    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    pg([&] { InitMaterializedSRF(fcinfo, 0); });
    Placement placement(PG_ARGISNULL(0) ? witn_own_table("outcomes") : PG_GETARG_OID(0), "outcomes");

    const Oid outcomes_oid = witn_table("outcomes");
    Relation rel = pg([&] { return table_open(outcomes_oid, AccessShareLock); });
    const OutcomeRow c(RelationGetDescr(rel));
    const int opened_at = column_of(RelationGetDescr(rel), "outcomes", "opened_at");
    const int purged_at = column_of(RelationGetDescr(rel), "outcomes", "events_purged_at");
    IndexReader lines(witn_table("invoice_lines"), {"customer_key", "outcome_id"}, false, IndexReader::Snapshot::Statement);
    const int line_amount = lines.column("amount");
    Snapshot snapshot = pg([&] { return RegisterSnapshot(GetActiveSnapshot()); });
    TableScanDesc scan = pg([&] { return table_beginscan(rel, snapshot, 0, nullptr); });
    TupleTableSlot *slot = pg([&] { return table_slot_create(rel, nullptr); });
    ItemMemory per_outcome("witn simulate outcome");
    while (pg([&] { return table_scan_getnextslot(scan, ForwardScanDirection, slot); })) {
        pg([&] { slot_getallattrs(slot); });
        if (text_value(column_value(slot, c.agent_key)) != agent) continue;
        const TimestampTz opened = DatumGetTimestampTz(column_value(slot, opened_at));
        if (opened < from || opened >= to) continue;
        // Its events were purged (witn.purge_events): nothing to replay; witn.simulate says how
        // many it skipped.
        if (!column_null(slot, purged_at)) continue;
        per_outcome.run([&] {
            const witn::StoredOutcome stored = c.stored(slot);
            const Datum customer_key = column_value(slot, c.customer_key), key = column_value(slot, c.key);
            const std::int64_t id = DatumGetInt64(column_value(slot, c.id));
            std::vector<witn::Event> log;
            EventLog events(customer_key, key, IndexReader::Snapshot::Statement, nullptr, true);
            while (const witn::Event *e = events.next()) log.push_back(*e);
            events.finish();
            const witn::Contract contract = witn::draft_contract(stored.contract, draft);
            const witn::Decimal price = draft.price_per_unit ? *draft.price_per_unit : decimal_value(column_value(slot, c.unit_price));
            const witn::Simulated sim = witn::simulate_outcome(contract, price, log, now);

            std::optional<Datum> amount;
            if (TupleTableSlot *line = lines.find({customer_key, Int64GetDatum(id)})) {
                if (!column_null(line, line_amount)) amount = pg([&] { return datumCopy(column_value(line, line_amount), false, -1); });
            }
            // The walk lives in this outcome's memory, reset after it.
            lines.end_walk();
            Datum values[8] = {Int64GetDatum(id), customer_key, key, text_datum(witn::status_name(stored.state.status)),
                               text_datum(witn::status_name(sim.status)), amount.value_or(Datum(0)),
                               sim.amount ? numeric_datum(*sim.amount) : Datum(0), column_value(slot, c.currency)};
            bool nulls[8] = {false, false, false, false, false, !amount.has_value(), !sim.amount.has_value(), false};
            pg([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
        });
    }
    per_outcome.finish();
    lines.finish();
    pg([&] {
        ExecDropSingleTupleTableSlot(slot);
        table_endscan(scan);
        UnregisterSnapshot(snapshot);
        table_close(rel, AccessShareLock);
    });
    return PointerGetDatum(nullptr);
}
