// Thin, guarded access to SPI: plans prepared once per backend and kept, execution and column
// reads that turn PostgreSQL errors into PgError.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "executor/spi.h"
}

#include <optional>
#include <string>
#include <vector>

namespace witn::pg {

// A setting applied for the duration of one execution (e.g. {"work_mem", "64MB"}).
struct Setting {
    const char *name;
    const char *value;
};

// A statement prepared on first use and kept for the life of the backend, with a generic plan.
// The plan is built on the first execution with sequential scans, hash and merge joins
// disabled: the statements are keyed lookups and key-driven writes, and a plan built while a
// table is still small must not scan it once it has grown.
class KeptPlan {
public:
    KeptPlan(const char *sql, std::initializer_list<Oid> types);
    // Runs the plan; returns the number of rows processed. nulls: ' ' or 'n' per argument.
    std::uint64_t run(const Datum *values, const char *nulls, long limit = 0,
                      std::initializer_list<Setting> settings = {});

private:
    const char *sql_;
    Oid types_[32];
    int nargs_;
    SPIPlanPtr plan_ = nullptr;
    bool planned_ = false;
};

// Column reads from SPI_tuptable's row `row` (columns are 1-based).
std::optional<std::string> spi_text(std::uint64_t row, int col);
std::optional<Datum> spi_datum(std::uint64_t row, int col);
std::int64_t spi_int64(std::uint64_t row, int col);

// SPI_connect / SPI_finish. Every path out of a glue function either finishes SPI or raises an
// error, and the error's transaction abort releases SPI.
void spi_connect();
void spi_finish();

Datum text_datum(const std::string &s);

// A one-dimensional array of `element` from datums (nulls where null[i]).
Datum array_datum(const std::vector<Datum> &values, const std::vector<bool> &null, Oid element);

} // namespace witn::pg
