// SQL face of the condition model: the witn.condition type's I/O, witn.evaluate,
// witn.describe and the per-leaf explanation behind witn.explain.
#include "pg/condition_type.hpp"

#include "core/condition.hpp"
#include "core/evaluator.hpp"
#include "core/timestamp.hpp"
#include "pg/event_row.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <unordered_map>
#include <vector>

namespace witn::pg {

// Stored conditions are canonical JSON text in a varlena; reading one back cannot fail
// validation, since only validated text is ever stored.
witn::Condition condition_arg(FunctionCallInfo fcinfo, int n) {
    text *t = pg([&] { return PG_GETARG_TEXT_PP(n); });
    return witn::parse_condition(from_text(t));
}

const witn::Condition &cached_condition(const std::string &canonical_text) {
    // Outcomes share few distinct contracts; bound the cache anyway.
    static std::unordered_map<std::string, witn::Condition> cache;
    auto it = cache.find(canonical_text);
    if (it != cache.end()) return it->second;
    if (cache.size() >= 1024) cache.clear();
    return cache.emplace(canonical_text, witn::parse_condition(canonical_text)).first->second;
}

} // namespace witn::pg

using namespace witn::pg;

namespace {

// Binary format: a version byte, then the canonical JSON text.
constexpr char kBinaryVersion = 1;

Datum condition_datum(const witn::Condition &c) {
    return PointerGetDatum(to_text(witn::condition_to_json(c)));
}

} // namespace

WITN_FUNCTION(witn_condition_in) {
    const char *input = PG_GETARG_CSTRING(0);
    return condition_datum(witn::parse_condition(input));
}

WITN_FUNCTION(witn_condition_out) {
    text *t = pg([&] { return PG_GETARG_TEXT_PP(0); });
    return CStringGetDatum(to_cstring(from_text(t)));
}

WITN_FUNCTION(witn_condition_recv) {
    StringInfo buf = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
    int version = pg([&] { return pq_getmsgbyte(buf); });
    if (version != kBinaryVersion)
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: unsupported binary condition format",
                          "version byte " + std::to_string(version) + ", expected 1");
    // pq_getmsgtext converts from the client encoding and rejects invalid byte sequences.
    int len = 0;
    char *converted = pg([&] { return pq_getmsgtext(buf, buf->len - buf->cursor, &len); });
    std::string json(converted, static_cast<std::size_t>(len));
    pfree(converted);
    return condition_datum(witn::parse_condition(json));
}

WITN_FUNCTION(witn_condition_send) {
    text *t = pg([&] { return PG_GETARG_TEXT_PP(0); });
    return pg([&] {
        StringInfoData buf;
        pq_begintypsend(&buf);
        pq_sendbyte(&buf, kBinaryVersion);
        pq_sendtext(&buf, VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t)));
        return PointerGetDatum(pq_endtypsend(&buf));
    });
}

WITN_FUNCTION(witn_describe) {
    return PointerGetDatum(to_text(witn::describe(condition_arg(fcinfo, 0))));
}

// evaluate(condition, events jsonb): events is an array of {"action", "properties",
// "occurred_at"} in arrival order.
WITN_FUNCTION(witn_evaluate) {
    witn::Condition condition = condition_arg(fcinfo, 0);
    Jsonb *log = pg([&] { return PG_GETARG_JSONB_P(1); });
    if (!JB_ROOT_IS_ARRAY(log) || JB_ROOT_IS_SCALAR(log))
        witn::fail_validation("events", "a JSON array of event payloads");
    std::uint32_t n = JB_ROOT_COUNT(log);
    std::vector<witn::Event> events;
    events.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        std::string at = "[" + std::to_string(i) + "]";
        JsonbValue *item = pg([&] { return getIthJsonbValueFromContainer(&log->root, i); });
        if (item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
            witn::fail_validation(at, "an event object {\"action\", \"properties\", \"occurred_at\"}");
        JsonbContainer *obj = item->val.binary.data;
        JsonbValue v;
        auto find = [&](const char *key) {
            return pg([&] { return getKeyJsonValueFromContainer(obj, key, static_cast<int>(strlen(key)), &v) != nullptr; });
        };
        if (!find("action") || v.type != jbvString || v.val.string.len == 0)
            witn::fail_validation(at + ".action", "a non-empty string");
        std::string action(v.val.string.val, static_cast<std::size_t>(v.val.string.len));
        // Without occurred_at every event has the same time, so arrival order decides.
        std::int64_t occurred_at = 0;
        if (find("occurred_at")) {
            std::optional<std::int64_t> parsed;
            if (v.type == jbvString)
                parsed = witn::parse_iso8601(std::string_view(v.val.string.val, static_cast<std::size_t>(v.val.string.len)));
            if (!parsed)
                witn::fail_validation(at + ".occurred_at",
                                      "an ISO 8601 timestamp with a UTC offset (e.g. \"2026-11-23T10:00:00Z\")");
            occurred_at = *parsed;
        }
        JsonbContainer *properties = nullptr;
        if (find("properties")) {
            if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
                witn::fail_validation(at + ".properties", "a JSON object");
            properties = v.val.binary.data;
        }
        events.push_back(event_from_properties(std::move(action), properties, occurred_at, i,
                                               at + ".properties", false));
    }
    return BoolGetDatum(witn::evaluate_log(condition, events));
}

// explain_facts(condition, facts jsonb): one row per leaf with the fact it saw.
WITN_FUNCTION(witn_explain_facts) {
    witn::Condition condition = condition_arg(fcinfo, 0);
    Jsonb *facts_jsonb = pg([&] { return PG_GETARG_JSONB_P(1); });
    char *facts_text = pg([&] { return JsonbToCString(nullptr, &facts_jsonb->root, VARSIZE(facts_jsonb)); });
    witn::Facts facts = witn::Facts::from_json(condition, facts_text);
    std::vector<witn::LeafExplanation> rows = witn::explain(condition, facts);

    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    pg([&] { InitMaterializedSRF(fcinfo, 0); });
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const witn::LeafExplanation &r = rows[i];
        std::string description = witn::describe(*r.leaf);
        std::string latest_value;
        bool has_value = r.fact && r.fact->latest_value.kind != witn::Scalar::Kind::Absent;
        if (has_value) latest_value = witn::json::write(r.fact->latest_value.to_json());
        Datum values[8];
        bool nulls[8] = {};
        values[0] = Int32GetDatum(static_cast<int>(i));
        values[1] = PointerGetDatum(to_text(r.leaf->fact));
        values[2] = PointerGetDatum(to_text(witn::op_name(r.leaf->op)));
        values[3] = PointerGetDatum(to_text(description));
        values[4] = Int64GetDatum(r.fact ? r.fact->count : 0);
        if (has_value)
            values[5] = pg([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(latest_value.c_str())); });
        else
            nulls[5] = true;
        if (r.fact)
            values[6] = TimestampTzGetDatum(r.fact->latest_at);
        else
            nulls[6] = true;
        values[7] = BoolGetDatum(r.passes);
        pg([&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
    }
    return static_cast<Datum>(0);
}
