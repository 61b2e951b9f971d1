#include "pg/version.hpp"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
}

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

// Whether this process got the library from the server process (shared_preload_libraries lists
// witn): then a new session runs the same library, and only a restart loads the installed one.
bool preloaded() {
    const char *list = GetConfigOption("shared_preload_libraries", true, false);
    std::string_view rest(list ? list : "");
    while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        while (!item.empty() && (std::isspace(static_cast<unsigned char>(item.front())) || item.front() == '"')) item.remove_prefix(1);
        while (!item.empty() && (std::isspace(static_cast<unsigned char>(item.back())) || item.back() == '"')) item.remove_suffix(1);
        if (const std::size_t slash = item.rfind('/'); slash != std::string_view::npos) item.remove_prefix(slash + 1);
        if (item.size() > 3 && item.substr(item.size() - 3) == ".so") item.remove_suffix(3);
        if (item == "witn") return true;
    }
    return false;
}

} // namespace

std::string version_hint(const char *schema_version) {
    if (!schema_version || compare_versions(schema_version, WITN_VERSION) < 0)
        return "Run ALTER EXTENSION witn UPDATE in this database.";
    const std::string newer = std::string("If it is still older, install witn ") + schema_version + ".";
    if (preloaded())
        return "Restart the server: witn is in shared_preload_libraries, so every session runs the library the server "
               "started with. " + newer;
    return "Reconnect: a new session loads the installed library. " + newer;
}

void require_schema_version(const char *schema_version) {
    if (schema_version && std::strcmp(schema_version, WITN_VERSION) == 0) return;
    const char *schema = schema_version ? schema_version : "0.2.0 or older";
    const std::string hint = version_hint(schema_version);
    pg([&] {
        if (!schema_version || compare_versions(schema_version, WITN_VERSION) < 0)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("witn's SQL objects in this database are older than its installed library"),
                            errdetail("The SQL objects are witn %s; the library is witn %s.", schema, WITN_VERSION),
                            errhint("%s", hint.c_str())));
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("this session runs an older witn library than the database's SQL objects"),
                        errdetail("The SQL objects are witn %s; the library loaded by this session is witn %s.", schema,
                                  WITN_VERSION),
                        errhint("%s", hint.c_str())));
    });
}

void require_installed_version() {
    // Checked once per command of a transaction: a function called for every row reads the
    // catalog once, and an ALTER EXTENSION earlier in the same transaction is seen.
    static LocalTransactionId checked_lxid = InvalidLocalTransactionId;
    static CommandId checked_cid = InvalidCommandId;
    const LocalTransactionId lxid = MyProc->lxid;
    const CommandId cid = GetCurrentCommandId(false);
    if (lxid == checked_lxid && cid == checked_cid) return;
    bool found = false, building = false;
    char *version = nullptr;
    pg([&] {
        Relation rel = table_open(ExtensionRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("witn"));
        SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
        if (HeapTuple tuple = systable_getnext(scan); HeapTupleIsValid(tuple)) {
            bool isnull = true;
            const Datum v = heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
            found = true;
            if (!isnull) version = TextDatumGetCString(v);
            building = creating_extension && CurrentExtensionObject == reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->oid;
        }
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
    });
    // CREATE or ALTER EXTENSION running witn's own scripts: those objects are whatever version
    // the script builds, and their stamped entry points check for themselves.
    if (found && !building) require_schema_version(version);
    checked_lxid = lxid;
    checked_cid = cid;
}

} // namespace witn::pg

using namespace witn::pg;

// witn.library_version(): the version of the library this session has loaded (the SQL objects'
// version is pg_extension.extversion). An upgrade script can create it first: a session that
// still holds a library without it fails there, before anything is changed.
WITN_FUNCTION(witn_library_version) {
    (void)fcinfo;
    PG_RETURN_TEXT_P(cstring_to_text(WITN_VERSION));
}

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
