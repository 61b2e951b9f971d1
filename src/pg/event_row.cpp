#include "pg/event_row.hpp"

#include "core/outcome.hpp"
#include "core/timestamp.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
}

namespace witn::pg {

namespace {

std::string numeric_text(Numeric n) {
    char *s = pg([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))); });
    std::string out(s);
    pfree(s);
    return out;
}

bool find_key(JsonbContainer *container, const char *key, JsonbValue *out) {
    return pg([&] {
        return getKeyJsonValueFromContainer(container, key, static_cast<int>(strlen(key)), out) !=
               nullptr;
    });
}

} // namespace

witn::Scalar scalar_from_jsonb(const JsonbValue &v) {
    witn::Scalar s;
    switch (v.type) {
    case jbvBool:
        s.kind = witn::Scalar::Kind::Bool;
        s.boolean = v.val.boolean;
        break;
    case jbvString:
        s.kind = witn::Scalar::Kind::String;
        s.string.assign(v.val.string.val, static_cast<std::size_t>(v.val.string.len));
        break;
    case jbvNumeric:
        if (auto d = witn::Decimal::parse(numeric_text(v.val.numeric))) {
            s.kind = witn::Scalar::Kind::Number;
            s.number = *d;
        } else {
            s.kind = witn::Scalar::Kind::Other; // NaN and infinities never compare
        }
        break;
    default:
        s.kind = witn::Scalar::Kind::Other;
    }
    return s;
}

witn::Event event_from_properties(std::string action, JsonbContainer *properties,
                                  std::int64_t occurred_at, std::int64_t seq,
                                  const std::string &where, bool with_timer) {
    witn::Event e;
    e.action = std::move(action);
    e.occurred_at = occurred_at;
    e.seq = seq;
    if (properties) {
        if (!JsonContainerIsObject(properties) || JsonContainerIsScalar(properties))
            witn::fail_validation(where, "a JSON object");
        JsonbValue v;
        if (find_key(properties, "value", &v)) e.value = scalar_from_jsonb(v);
        if (find_key(properties, "attribution", &v)) {
            witn::Scalar a = scalar_from_jsonb(v);
            if (a.kind != witn::Scalar::Kind::Number)
                witn::fail_validation(where + ".attribution",
                                      "a non-negative number (the billing quantity)");
            e.attribution = a.number;
        }
        if (with_timer && find_key(properties, "settles_at", &v)) {
            std::optional<std::int64_t> at;
            if (v.type == jbvString)
                at = witn::parse_iso8601(std::string_view(v.val.string.val, static_cast<std::size_t>(v.val.string.len)));
            if (!at)
                witn::fail_validation(where + ".settles_at",
                                      "an ISO 8601 timestamp with a UTC offset (e.g. \"2026-11-23T10:00:00Z\")");
            e.settles_at = at;
        }
    }
    witn::validate_event(e, where);
    return e;
}

void check_key(const char *what, const char *value, std::size_t length) {
    if (length == 0)
        throw witn::Error(witn::Code::ValidationError,
                          std::string("VALIDATION_ERROR: ") + what + " must not be empty",
                          std::string("column ") + what,
                          std::string("Set ") + what + " to a string of 1 to 255 characters.");
    if (length <= kMaxKeyLength) return; // at most 255 bytes is at most 255 characters
    int chars = pg([&] { return pg_mbstrlen_with_len(value, static_cast<int>(length)); });
    if (static_cast<std::size_t>(chars) > kMaxKeyLength)
        throw witn::Error(witn::Code::PayloadTooLarge,
                          std::string("PAYLOAD_TOO_LARGE: ") + what + " is longer than 255 characters",
                          std::string("column ") + what + " has " + std::to_string(chars) + " characters",
                          std::string("Shorten ") + what + " to at most 255 characters.");
}

} // namespace witn::pg

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
