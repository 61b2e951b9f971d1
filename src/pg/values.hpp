// Moving values between Datums and the core's C++ types: text, type output, jsonb, numeric and
// the settlement period. The one place each conversion is written.
#pragma once

#include "pg/postgres.hpp"

#include "core/decimal.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

#include <cstdint>
#include <string>
#include <vector>

namespace witn::pg {

// A text (or text-stored, e.g. witn.condition) value, and a text Datum (palloc'd).
std::string text_value(Datum d);
Datum text_datum(const std::string &s);
// A value's text through its type's output function (e.g. interval_out, enum_out).
std::string output_text(Datum d, PGFunction out);
// jsonb to and from JSON text.
std::string jsonb_text(Datum d);
Datum jsonb_datum(const std::string &json);
// numeric to and from the core's exact decimal (finite values only: prices and quantities).
witn::Decimal decimal_value(Datum numeric);
Datum numeric_datum(const witn::Decimal &d);

// An interval in microseconds, the core's scale for the settlement period: as PostgreSQL's
// extract(epoch FROM ...) counts it, a year of months is 365.25 days and other months 30 days.
std::int64_t interval_micros(const Interval *i);

// A by-reference Datum's bytes copied into C++ memory, to reuse across outcomes (the terms a
// statement's new outcomes are opened under) without a palloc per use.
class OwnedDatum {
public:
    OwnedDatum() = default;
    // Copies a varlena (detoasted) value.
    static OwnedDatum varlena(Datum d);
    static OwnedDatum text(const std::string &s);
    Datum datum() const { return PointerGetDatum(bytes_.data()); }

private:
    // new[]-allocated storage is aligned for any varlena header.
    std::vector<char> bytes_;
};

} // namespace witn::pg
