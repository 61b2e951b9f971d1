#include "pg/values.hpp"

extern "C" {
#include "access/detoast.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include <cstring>
#include <stdexcept>

namespace witn::pg {

std::string text_value(Datum d) {
    text *t = pg([&] { return DatumGetTextPP(d); });
    return from_text(t);
}

Datum text_datum(const std::string &s) { return PointerGetDatum(to_text(s)); }

std::string output_text(Datum d, PGFunction out) {
    char *c = pg([&] { return DatumGetCString(DirectFunctionCall1(out, d)); });
    std::string text(c);
    pfree(c);
    return text;
}

std::string jsonb_text(Datum d) {
    char *s = pg([&] {
        Jsonb *j = DatumGetJsonbP(d);
        return JsonbToCString(nullptr, &j->root, VARSIZE(j));
    });
    std::string out(s);
    pfree(s);
    return out;
}

Datum jsonb_datum(const std::string &json) {
    return pg([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
}

witn::Decimal decimal_value(Datum numeric) {
    const std::string text = output_text(numeric, numeric_out);
    auto d = witn::Decimal::parse(text);
    if (!d)
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: a price or quantity must be a finite number",
                          "the value is " + text);
    return *d;
}

Datum numeric_datum(const witn::Decimal &d) {
    const std::string text = d.to_string();
    return pg([&] {
        return DirectFunctionCall3(numeric_in, CStringGetDatum(text.c_str()), ObjectIdGetDatum(InvalidOid),
                                   Int32GetDatum(-1));
    });
}

std::int64_t interval_micros(const Interval *i) {
    return i->time + i->day * USECS_PER_DAY + (i->month / MONTHS_PER_YEAR) * (USECS_PER_DAY * 1461 / 4) +
           (i->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * USECS_PER_DAY;
}

OwnedDatum OwnedDatum::varlena(Datum d) {
    OwnedDatum o;
    struct varlena *v = pg([&] { return PG_DETOAST_DATUM_PACKED(d); });
    const std::size_t size = VARSIZE_ANY(v);
    o.bytes_.assign(reinterpret_cast<const char *>(v), reinterpret_cast<const char *>(v) + size);
    return o;
}

OwnedDatum OwnedDatum::text(const std::string &s) {
    OwnedDatum o;
    o.bytes_.resize(VARHDRSZ + s.size());
    SET_VARSIZE(o.bytes_.data(), VARHDRSZ + s.size());
    std::memcpy(o.bytes_.data() + VARHDRSZ, s.data(), s.size());
    return o;
}

} // namespace witn::pg
