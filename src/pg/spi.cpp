#include "pg/spi.hpp"

#include <iterator>
#include <stdexcept>

extern "C" {
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

namespace witn::pg {

KeptPlan::KeptPlan(const char *sql, std::initializer_list<Oid> types)
    : sql_(sql), nargs_(static_cast<int>(types.size())) {
    if (types.size() > std::size(types_)) throw std::logic_error("witn: too many plan arguments");
    int i = 0;
    for (Oid t : types) types_[i++] = t;
}

std::uint64_t KeptPlan::run(const Datum *values, const char *nulls, long limit,
                           std::initializer_list<Setting> settings) {
    static const Setting planning[] = {
        {"enable_seqscan", "off"}, {"enable_hashjoin", "off"}, {"enable_mergejoin", "off"}};
    bool first = !planned_;
    std::uint64_t processed = pg([&] {
        if (!plan_) {
            // Generic plans: the statements are keyed lookups and array-driven writes whose best
            // plan does not depend on parameter values; replanning per call would dominate.
            SPIPlanPtr p = SPI_prepare_cursor(sql_, nargs_, types_, CURSOR_OPT_GENERIC_PLAN);
            if (!p) elog(ERROR, "witn: SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql_);
            SPI_keepplan(p);
            plan_ = p;
        }
        // Settings live in a GUC nest level of their own, undone right after (or by the
        // transaction abort when the statement fails).
        int nest = -1;
        if (first || settings.size()) {
            nest = NewGUCNestLevel();
            if (first)
                for (const Setting &s : planning)
                    set_config_option(s.name, s.value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
            for (const Setting &s : settings)
                set_config_option(s.name, s.value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
        }
        int rc = SPI_execute_plan(plan_, const_cast<Datum *>(values), nulls, false, limit);
        if (rc < 0) elog(ERROR, "witn: SPI_execute_plan failed (%s) for: %s", SPI_result_code_string(rc), sql_);
        if (nest >= 0) AtEOXact_GUC(true, nest);
        return SPI_processed;
    });
    planned_ = true;
    return processed;
}

std::optional<std::string> spi_text(std::uint64_t row, int col) {
    char *s = pg([&] { return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col); });
    if (!s) return std::nullopt;
    std::string out(s);
    pfree(s);
    return out;
}

std::optional<Datum> spi_datum(std::uint64_t row, int col) {
    bool isnull = false;
    Datum d = pg([&] { return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull); });
    if (isnull) return std::nullopt;
    return d;
}

std::int64_t spi_int64(std::uint64_t row, int col) {
    std::optional<Datum> d = spi_datum(row, col);
    return d ? DatumGetInt64(*d) : 0;
}

void spi_connect() {
    pg([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "witn: SPI_connect failed");
    });
}

void spi_finish() {
    pg([] { SPI_finish(); });
}

Datum text_datum(const std::string &s) { return PointerGetDatum(to_text(s)); }

// A one-dimensional array of `element` from datums (nulls where null[i]).
Datum array_datum(const std::vector<Datum> &values, const std::vector<bool> &null, Oid element) {
    return pg([&] {
        int16 len;
        bool byval;
        char align;
        get_typlenbyvalalign(element, &len, &byval, &align);
        int dims[1] = {static_cast<int>(values.size())};
        int lbs[1] = {1};
        bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * (values.size() + 1)));
        for (std::size_t i = 0; i < values.size(); ++i) nulls[i] = null[i];
        return PointerGetDatum(construct_md_array(const_cast<Datum *>(values.data()), nulls, 1, dims,
                                                  lbs, element, len, byval, align));
    });
}


} // namespace witn::pg
