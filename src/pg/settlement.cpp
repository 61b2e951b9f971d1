// witn.settle_batch(): one settlement pass, behind witn.settle(). Walks the due index, locks
// each due outcome (skipping those another session holds) and carries out what the core's
// decide_settlement() says: resolve it and write its invoice line, its notification and the
// pg_notify, all in the caller's transaction, row by row through TableWriter without SQL; or
// re-arm it (check_at = settles_at) when later events moved its deadline.
#include "pg/postgres.hpp"

#include "core/settlement.hpp"
#include "pg/billing_period.hpp"
#include "pg/settlement.hpp"
#include "pg/outcome_row.hpp"
#include "pg/settings.hpp"
#include "pg/statement_rows.hpp"
#include "pg/table_writer.hpp"
#include "pg/webhooks.hpp"
#include "pg/values.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "catalog/pg_collation.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "access/htup_details.h"
}

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

using namespace witn::pg;

namespace {

// The notification body (CONTRACT §15) as jsonb values, the way jsonb_build_object() converts
// text, numeric and timestamptz.
JsonbValue json_string(const char *s, std::size_t n) {
    JsonbValue v;
    v.type = jbvString;
    v.val.string.val = const_cast<char *>(s);
    v.val.string.len = static_cast<int>(n);
    return v;
}
JsonbValue json_string(const char *s) { return json_string(s, std::strlen(s)); }
JsonbValue json_text(Datum d) {
    text *t = DatumGetTextPP(d);
    return json_string(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}
JsonbValue json_time(Datum t) { return json_string(JsonEncodeDateTime(nullptr, t, TIMESTAMPTZOID, nullptr)); }
JsonbValue json_numeric(Numeric n) {
    JsonbValue v;
    v.type = jbvNumeric;
    v.val.numeric = n;
    return v;
}
JsonbValue json_null() {
    JsonbValue v;
    v.type = jbvNull;
    return v;
}
// An object whose pairs are already in jsonb's key order (shorter keys first, then bytewise),
// so that it needs no sorting.
template <std::size_t N>
JsonbValue json_object(JsonbPair (&pairs)[N]) {
    for (std::size_t i = 0; i < N; ++i) pairs[i].order = static_cast<uint32>(i);
    JsonbValue v;
    v.type = jbvObject;
    v.val.object.nPairs = static_cast<int>(N);
    v.val.object.pairs = pairs;
    return v;
}

struct LineColumns {
    int customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount, currency,
        resolved_at, billing_period;
};

struct NoteColumns {
    int customer_key, outcome_id, kind, payload, id;
};

} // namespace

namespace witn::pg {

// One settlement pass (settlement.hpp).
SettleCounts settle_pass(TimestampTz as_of, std::optional<std::int64_t> limit, std::optional<std::int64_t> only,
                         Oid anchor, bool notify) {
    const bool limited = limit.has_value(), one_outcome = only.has_value();
    const TimestampTz now = GetCurrentTransactionStartTimestamp();
    Placement placement(anchor, "outcomes");
    if (placement.on_shard()) require_node_id_range();

    TableWriter outcomes(witn_table("outcomes"));
    TableWriter lines(witn_table("invoice_lines"), false);
    TableWriter notes(witn_table("notifications"), false);
    const OutcomeRow o(outcomes);
    // id and created_at are left to the tables' defaults (identity, now()).
    const LineColumns l{lines.column("customer_key"), lines.column("outcome_id"),
                        lines.column("outcome_key"), lines.column("agent_key"), lines.column("quantity"),
                        lines.column("unit_price"), lines.column("amount"), lines.column("currency"),
                        lines.column("resolved_at"), lines.column("billing_period")};
    CustomerBilling billing;
    const NoteColumns n{notes.column("customer_key"), notes.column("outcome_id"), notes.column("kind"),
                        notes.column("payload"), notes.column("id")};
    WebhookQueue webhooks;

    const bool each = notify && pg_notify_mode == static_cast<int>(PgNotify::Each);
    // Settles (or re-arms) the outcome at tid, as the core decides on its locked version (which
    // may be newer than the one the index pointed to).
    std::int64_t confirmed_count = 0, failed_count = 0;
    auto settle_one = [&](ItemPointerData tid) {
        TupleTableSlot *row = outcomes.lock_skip(tid);
        if (!row) return; // another session holds it, or it is gone
        const witn::SettlementDecision d = witn::decide_settlement(o.due(row), as_of);
        if (d.action == witn::SettlementDecision::Action::Skip) return;
        TupleTableSlot *next = outcomes.new_row_from(row);
        auto value = [&](int attnum) { return next->tts_values[attnum - 1]; };
        if (d.action == witn::SettlementDecision::Action::Rearm) {
            o.put_check_at(next, d.check_at);
            outcomes.update(row, next);
            return;
        }
        o.put_resolution(next, d.resolution, now);
        outcomes.update(row, next);
        const bool is_confirmed = d.resolution == witn::Status::Confirmed;
        if (is_confirmed) ++confirmed_count;
        else ++failed_count;

        const std::int64_t outcome_id = DatumGetInt64(value(o.id));
        Numeric quantity = pg([&] { return DatumGetNumeric(value(o.quantity)); });
        Numeric unit_price = pg([&] { return DatumGetNumeric(value(o.unit_price)); });
        Numeric amount = d.amount ? DatumGetNumeric(numeric_datum(*d.amount)) : nullptr;
        if (amount) {
            TupleTableSlot *line = lines.new_row();
            put_column(line, l.customer_key, value(o.customer_key));
            put_column(line, l.outcome_id, value(o.id));
            put_column(line, l.outcome_key, value(o.key));
            put_column(line, l.agent_key, value(o.agent_key));
            put_column(line, l.quantity, NumericGetDatum(quantity));
            put_column(line, l.unit_price, NumericGetDatum(unit_price));
            put_column(line, l.amount, NumericGetDatum(amount));
            put_column(line, l.currency, value(o.currency));
            put_column(line, l.resolved_at, value(o.resolved_at));
            put_column(line, l.billing_period,
                       billing.period_of(value(o.customer_key), DatumGetTimestampTz(value(o.resolved_at))));
            lines.insert(line);
        }
        const char *kind = d.notification_kind;
        const char *status = witn::status_name(d.resolution);
        TupleTableSlot *note = notes.new_row();
        char *message = pg([&] {
            char id_text[32];
            snprintf(id_text, sizeof id_text, "ntf_" INT64_FORMAT, outcome_id);
            JsonbPair data[] = {
                {json_string("amount"), amount ? json_numeric(amount) : json_null(), 0},
                {json_string("status"), json_string(status), 0},
                {json_string("currency"), json_text(value(o.currency)), 0},
                {json_string("quantity"), json_numeric(quantity), 0},
                {json_string("agent_key"), json_text(value(o.agent_key)), 0},
                {json_string("outcome_id"), json_numeric(int64_to_numeric(outcome_id)), 0},
                {json_string("settles_at"), json_time(value(o.settles_at)), 0},
                {json_string("unit_price"), json_numeric(unit_price), 0},
                {json_string("outcome_key"), json_text(value(o.key)), 0},
                {json_string("resolved_at"), json_time(value(o.resolved_at)), 0},
                {json_string("customer_key"), json_text(value(o.customer_key)), 0},
            };
            JsonbPair body[] = {
                {json_string("id"), json_string(id_text), 0},
                {json_string("data"), json_object(data), 0},
                {json_string("type"), json_string(kind), 0},
                {json_string("created_at"), json_time(TimestampTzGetDatum(now)), 0},
            };
            JsonbValue root = json_object(body);
            Jsonb *payload = JsonbValueToJsonb(&root);
            put_column(note, n.customer_key, value(o.customer_key));
            put_column(note, n.outcome_id, value(o.id));
            put_column(note, n.kind, CStringGetTextDatum(kind));
            put_column(note, n.payload, JsonbPGetDatum(payload));
            return each ? JsonbToCString(nullptr, &payload->root, VARSIZE(payload)) : nullptr;
        });
        notes.insert(note);
        webhooks.queue(value(o.customer_key), kind, DatumGetInt64(column_value(note, n.id)));
        if (each) pg([&] { Async_Notify("witn_outcomes", message); });
    };

    ItemMemory per_outcome("witn settle outcome");
    // Due outcomes in check_at order; one outcome (the row-by-row retry) by its id.
    if (one_outcome) outcomes.scan({o.id, o.customer_key}, false, BTEqualStrategyNumber, Int64GetDatum(*only));
    else outcomes.scan({o.check_at}, true, BTLessEqualStrategyNumber, TimestampTzGetDatum(as_of));
    ItemPointerData tid;
    while ((!limited || confirmed_count + failed_count < *limit) && outcomes.next(&tid)) {
        // Everything one outcome allocates, the writes included, goes in its own context.
        per_outcome.run([&] { settle_one(tid); });
    }
    per_outcome.finish();
    outcomes.end_scan();
    if (notify && !each && confirmed_count + failed_count > 0) {
        const std::string wake = "{\"type\": \"notifications\", \"count\": " +
                                 std::to_string(confirmed_count + failed_count) + "}";
        pg([&] { Async_Notify("witn_outcomes", wake.c_str()); });
    }
    billing.finish();
    webhooks.finish();
    notes.finish();
    lines.finish();
    outcomes.finish();
    return SettleCounts{confirmed_count, failed_count};
}

} // namespace witn::pg

// witn.settle_batch(as_of, max_outcomes, only_outcome, schema_version, shard) -> (confirmed,
// failed); shard NULL is witn.outcomes, else (Citus) one of its shards on this node, settled
// with the colocated shards of the lines, notifications and errors.
WITN_FUNCTION(witn_settle_batch) {
    require_schema_version(PG_NARGS() > 3 && !PG_ARGISNULL(3) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : nullptr);
    if (PG_ARGISNULL(0))
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: as_of must not be null", "witn.settle_batch");
    std::optional<std::int64_t> limit, only;
    if (!PG_ARGISNULL(1)) limit = PG_GETARG_INT32(1);
    if (!PG_ARGISNULL(2)) only = PG_GETARG_INT64(2);
    const SettleCounts counts =
        settle_pass(PG_GETARG_TIMESTAMPTZ(0), limit, only,
                    PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_OID(4) : witn_own_table("outcomes"), true);
    return pg([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "witn.settle_batch must return a record");
        desc = BlessTupleDesc(desc);
        Datum values[2] = {Int64GetDatum(counts.confirmed), Int64GetDatum(counts.failed)};
        bool nulls[2] = {false, false};
        return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
}

// witn.line_amount(unit_price, quantity): an invoice line's amount as settlement computes it,
// for witn.notification_payload() and anyone checking a line.
WITN_FUNCTION(witn_line_amount) {
    const witn::Decimal amount = witn::line_amount(decimal_value(PG_GETARG_DATUM(0)), decimal_value(PG_GETARG_DATUM(1)));
    return numeric_datum(amount);
}

// witn.shard_of(name text, shard regclass) -> regclass: the relation standing for witn table
// `name` beside `shard` (placement.hpp).
WITN_FUNCTION(witn_shard_of) {
    require_installed_version();
    const std::string name = from_text(PG_GETARG_TEXT_PP(0));
    const Oid anchor = PG_GETARG_OID(1);
    const Oid of = witn_table_of(anchor);
    const std::string anchor_table = of == InvalidOid ? std::string("outcomes")
                                                      : rel_name(of);
    Placement placement(anchor, anchor_table.c_str());
    const Oid found = placement.table(name.c_str());
    if (found == InvalidOid)
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: witn has no table " + name, "witn.shard_of");
    return ObjectIdGetDatum(found);
}
