#include "pg/version.hpp"

#include <cctype>
#include <cstdlib>
#include <cstring>

#ifndef WITN_VERSION
#error "WITN_VERSION must be defined by the build"
#endif

namespace witn::pg {

namespace {

// -1, 0, 1 as dotted version a is older, equal or newer than b ("0.10.0" is newer than "0.9.1").
int compare_versions(const char *a, const char *b) {
    while (*a || *b) {
        long x = std::strtol(a, const_cast<char **>(&a), 10), y = std::strtol(b, const_cast<char **>(&b), 10);
        if (x != y) return x < y ? -1 : 1;
        if (*a == '.') ++a;
        if (*b == '.') ++b;
        if ((*a && !std::isdigit(static_cast<unsigned char>(*a))) || (*b && !std::isdigit(static_cast<unsigned char>(*b)))) {
            const int c = std::strcmp(a, b); // a suffix such as "beta": compared as text
            return (c > 0) - (c < 0);
        }
    }
    return 0;
}

} // namespace

void require_schema_version(const char *schema_version) {
    if (schema_version && std::strcmp(schema_version, WITN_VERSION) == 0) return;
    const char *schema = schema_version ? schema_version : "0.2.0 or older";
    pg([&] {
        if (!schema_version || compare_versions(schema_version, WITN_VERSION) < 0)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("witn's SQL objects in this database are older than its installed library"),
                            errdetail("The SQL objects are witn %s; the library is witn %s.", schema, WITN_VERSION),
                            errhint("Run ALTER EXTENSION witn UPDATE in this database.")));
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("this session runs an older witn library than the database's SQL objects"),
                        errdetail("The SQL objects are witn %s; the library loaded by this session is witn %s.", schema,
                                  WITN_VERSION),
                        errhint("Reconnect: a new session loads the installed library. If it is still older, install witn %s.",
                                schema)));
    });
}

} // namespace witn::pg

using namespace witn::pg;

// The 0.1.0 and 0.2.0 install scripts declare witn.fold_existing, which the multi-outcome path
// of those versions called; PostgreSQL checks that the symbol exists when the function is
// created (installing an old version to upgrade from it), so it stays, and says what to do.
WITN_FUNCTION(witn_fold_existing) {
    (void)fcinfo;
    pg([] {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("witn.fold_existing was removed in witn 0.3.0"),
                        errhint("Run ALTER EXTENSION witn UPDATE in this database.")));
    });
    return Datum(0);
}
