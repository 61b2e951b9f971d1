// witn.timezone_is_known(text): whether a name is one of PostgreSQL's IANA time zones (the names
// pg_timezone_names lists), for the check on witn.customers.timezone. The names are read from
// the time zone directory once per session (pg_timezone_names reads it on every call).
#include "pg/postgres.hpp"

extern "C" {
#include "pgtime.h"
#include "utils/builtins.h"
}

#include <string>
#include <unordered_set>

using namespace witn::pg;

namespace {

const std::unordered_set<std::string> &known_zones() {
    static std::unordered_set<std::string> zones;
    if (zones.empty()) {
        std::unordered_set<std::string> found;
        pg_tzenum *dir = pg([] { return pg_tzenumerate_start(); });
        while (pg_tz *tz = pg([&] { return pg_tzenumerate_next(dir); }))
            found.emplace(pg([&] { return pg_get_timezone_name(tz); }));
        pg([&] { pg_tzenumerate_end(dir); });
        zones.swap(found);
    }
    return zones;
}

} // namespace

// Raises VALIDATION_ERROR (WT001) for an unknown name instead of answering false, so that the
// CHECK it backs fails with that message.
WITN_FUNCTION(witn_timezone_is_known) {
    if (PG_ARGISNULL(0))
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: a customer's timezone must not be null",
                          "timezone is NULL", "Leave it out for UTC, or name an IANA time zone such as Europe/Berlin.");
    const std::string name = from_text(PG_GETARG_TEXT_PP(0));
    if (!known_zones().count(name))
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: unknown time zone " + name,
                          "A customer's timezone is an IANA time zone name, such as Europe/Berlin or America/New_York.",
                          "SELECT name FROM pg_timezone_names lists them.");
    PG_RETURN_BOOL(true);
}
