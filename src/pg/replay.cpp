// witn.replay(outcome_id): recompute an outcome from its log with the pure core and compare it
// with what the events trigger stored incrementally.
#include "pg/postgres.hpp"

#include "core/evaluator.hpp"
#include "core/outcome.hpp"
#include "pg/condition_type.hpp"
#include "pg/event_row.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <limits>
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

} // namespace

WITN_FUNCTION(witn_replay) {
    std::int64_t outcome_id = PG_GETARG_INT64(0);
    spi_connect();
    static KeptPlan load(
        "SELECT customer_key, key, status::text, scheduled_resolution::text, settles_at,"
        "       resolved_at, accepted_events, facts::text, attribution::text, quantity::text,"
        "       condition_holds, condition::text,"
        "       (extract(epoch FROM settlement_period) * 1000000)::bigint, attribution_method"
        "  FROM witn.outcomes WHERE id = $1",
        {INT8OID});
    Datum id_value = Int64GetDatum(outcome_id);
    if (load.run(&id_value, nullptr, 1) == 0)
        throw witn::Error(witn::Code::OutcomeNotFound,
                          "OUTCOME_NOT_FOUND: no outcome " + std::to_string(outcome_id),
                          "outcome_id " + std::to_string(outcome_id));
    std::string customer_key = *spi_text(0, 1), key = *spi_text(0, 2);
    witn::Status stored_status = *witn::status_from_name(*spi_text(0, 3));
    std::optional<witn::Status> stored_scheduled;
    if (auto s = spi_text(0, 4)) stored_scheduled = witn::status_from_name(*s);
    std::int64_t stored_settles_at = spi_int64(0, 5);
    std::optional<Datum> resolved_at = spi_datum(0, 6);
    std::int64_t stored_accepted = spi_int64(0, 7);
    std::string stored_facts = *spi_text(0, 8), stored_attribution = *spi_text(0, 9);
    std::string stored_quantity = *spi_text(0, 10);
    bool stored_holds = DatumGetBool(*spi_datum(0, 11));
    witn::Contract contract;
    contract.condition = cached_condition(*spi_text(0, 12));
    contract.settlement_period = spi_int64(0, 13);
    contract.attribution_method = *witn::attribution_method_from_name(*spi_text(0, 14));

    static KeptPlan events(
        "SELECT id, action, properties, occurred_at FROM witn.events"
        " WHERE customer_key = $1 AND key = $2 AND NOT late AND duplicate_of IS NULL ORDER BY id",
        {TEXTOID, TEXTOID});
    Datum keys[2] = {text_datum(customer_key), text_datum(key)};
    std::uint64_t n = events.run(keys, nullptr);
    std::vector<witn::Event> log = events_from_spi(n);

    // Accepted events were on time when they arrived, so nothing is late in a replay.
    witn::OutcomeState replayed = witn::OutcomeState::open(contract);
    for (const witn::Event &e : log)
        witn::apply_event(replayed, contract, e, std::numeric_limits<std::int64_t>::min());

    std::vector<std::string> differences;
    auto differ = [&](const std::string &what, const std::string &stored, const std::string &again) {
        if (stored != again) differences.push_back(what + ": stored " + stored + ", replayed " + again);
    };
    if (resolved_at) {
        differ("status", witn::status_name(stored_status),
               status_text(witn::settle(replayed, DatumGetTimestampTz(*resolved_at))));
        differ("resolved_at", time_text(DatumGetTimestampTz(*resolved_at)), time_text(replayed.settles_at));
    } else {
        differ("status", witn::status_name(stored_status), witn::status_name(replayed.status));
    }
    differ("scheduled_resolution", status_text(stored_scheduled), status_text(replayed.scheduled_resolution));
    differ("settles_at", time_text(stored_settles_at), log.empty() ? "NULL" : time_text(replayed.settles_at));
    differ("accepted_events", std::to_string(stored_accepted), std::to_string(replayed.accepted_events));
    // jsonb reorders keys: compare the stored state re-read by the core, not its text.
    differ("facts", witn::Facts::from_json(contract.condition, stored_facts).to_json(),
           replayed.facts.to_json());
    differ("attribution", witn::Attribution::from_json(stored_attribution).to_json(),
           replayed.attribution.to_json());
    witn::Decimal quantity = replayed.attribution.quantity(contract.attribution_method);
    if (witn::Decimal::parse(stored_quantity) != quantity)
        differ("quantity", stored_quantity, quantity.to_string());
    differ("condition_holds", stored_holds ? "true" : "false", replayed.condition_holds ? "true" : "false");
    // The pure definition over the whole log must agree with the incremental result.
    bool pure = witn::evaluate_log(contract.condition, log);
    differ("evaluate(log)", stored_holds ? "true" : "false", pure ? "true" : "false");

    std::vector<Datum> items;
    for (const std::string &d : differences) items.push_back(text_datum(d));
    spi_finish();
    return pg([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "witn.replay must return a record");
        desc = BlessTupleDesc(desc);
        Datum values[3] = {Int64GetDatum(outcome_id), BoolGetDatum(items.empty()),
                           PointerGetDatum(construct_array(items.data(), static_cast<int>(items.size()),
                                                           TEXTOID, -1, false, TYPALIGN_INT))};
        bool nulls[3] = {false, false, false};
        return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
}
