// DROP EXTENSION witn leaves nothing of witn in the database (CONTRACT §26). The event trigger
// witn_removal (sql/install/60_removal.sql) runs this at the start of DROP EXTENSION witn and
// DROP SCHEMA witn:
//  * the schema witn becomes a member of the extension, for this drop only, so that PostgreSQL
//    drops it (and the grants on it) with the extension. PostgreSQL creates a control file's
//    schema at CREATE EXTENSION without making it a member; making it one at install time would
//    keep pg_dump from dumping CREATE SCHEMA witn, which a restore needs.
//  * witn's pg_cron jobs of this database (named "witn-...") are removed when the transaction
//    commits, wherever pg_cron lives: at XACT_EVENT_PRE_COMMIT, so a DROP that fails (objects of
//    yours depend on witn) or is rolled back keeps them. The statement to run then is made now,
//    by witn.cron_removal_statement(), while witn's functions still exist.
#include "pg/postgres.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include <cstring>

namespace {

// The removal to run at commit (TopMemoryContext), and the subtransaction that asked for it.
struct PendingRemoval {
    char *statement;      // runs in this database; returns how many jobs it removed
    char *cron_statement; // the same, to run by hand in the cron database
    char *cron_database;
};
PendingRemoval *pending = nullptr;
SubTransactionId pending_subxact = InvalidSubTransactionId;
bool callbacks_registered = false;

void forget_pending() {
    if (pending == nullptr) return;
    pfree(pending->statement);
    pfree(pending->cron_statement);
    pfree(pending->cron_database);
    pfree(pending);
    pending = nullptr;
    pending_subxact = InvalidSubTransactionId;
}

// At commit: removes the jobs, unless witn was created again in the same transaction (its jobs
// then work again). A failure fails the commit: the DROP is rolled back and the jobs stay.
void remove_jobs_at_commit() {
    PendingRemoval *removal = pending;
    pending = nullptr;
    if (OidIsValid(get_extension_oid("witn", true))) {
        pending = removal;
        forget_pending();
        return;
    }
    MemoryContext context = CurrentMemoryContext;
    char *removed = nullptr;
    PG_TRY();
    {
        SPI_connect();
        PushActiveSnapshot(GetTransactionSnapshot());
        if (SPI_execute(removal->statement, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
            elog(ERROR, "witn: the statement removing pg_cron jobs returned no row");
        char *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        removed = MemoryContextStrdup(context, value != nullptr ? value : "0");
        PopActiveSnapshot();
        SPI_finish();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        ErrorData *error = CopyErrorData();
        FlushErrorState();
        char *cron_database = pstrdup(removal->cron_database);
        char *cron_statement = pstrdup(removal->cron_statement);
        pending = removal;
        forget_pending();
        ereport(ERROR,
                (errcode(MAKE_SQLSTATE('W', 'T', '0', '0', '9')),
                 errmsg("CRON_NOT_AVAILABLE: could not remove witn's pg_cron jobs of this database "
                        "in database %s; nothing was dropped",
                        cron_database),
                 errdetail("%s", error->message),
                 errhint("Make pg_cron reachable and drop again, or run in database %s: %s; then "
                         "ALTER EVENT TRIGGER witn_removal DISABLE and drop again.",
                         cron_database, cron_statement)));
    }
    PG_END_TRY();
    if (std::strcmp(removed, "0") != 0)
        ereport(NOTICE, (errmsg("witn: removed %s pg_cron job(s) of database %s from pg_cron in database %s",
                                removed, get_database_name(MyDatabaseId), removal->cron_database)));
    pending = removal;
    forget_pending();
}

void on_xact(XactEvent event, void *) {
    if (pending == nullptr) return;
    switch (event) {
    case XACT_EVENT_PRE_COMMIT: remove_jobs_at_commit(); break;
    case XACT_EVENT_PRE_PREPARE:
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that drops witn"),
                        errhint("Drop witn in a transaction of its own: it removes its pg_cron jobs when it commits.")));
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE: forget_pending(); break;
    default: break;
    }
}

void on_subxact(SubXactEvent event, SubTransactionId subxact, SubTransactionId parent, void *) {
    if (pending == nullptr || subxact != pending_subxact) return;
    if (event == SUBXACT_EVENT_ABORT_SUB)
        forget_pending();
    else if (event == SUBXACT_EVENT_COMMIT_SUB)
        pending_subxact = parent;
}

// Does this DROP name witn (DROP EXTENSION witn, DROP SCHEMA witn)?
bool names_witn(const DropStmt *drop, const char *schema) {
    const char *name = drop->removeType == OBJECT_EXTENSION ? "witn" : schema;
    ListCell *cell;
    foreach (cell, drop->objects) {
        Node *object = static_cast<Node *>(lfirst(cell));
        if (IsA(object, String) && std::strcmp(strVal(object), name) == 0) return true;
    }
    return false;
}

// Makes schema `schema_oid` a member of extension `extension_oid` for the rest of this
// transaction (a DROP that fails rolls it back with the rest).
void make_schema_member(Oid schema_oid, Oid extension_oid) {
    if (getExtensionOfObject(NamespaceRelationId, schema_oid) == extension_oid) return;
    ObjectAddress schema, extension;
    ObjectAddressSet(schema, NamespaceRelationId, schema_oid);
    ObjectAddressSet(extension, ExtensionRelationId, extension_oid);
    recordDependencyOn(&schema, &extension, DEPENDENCY_EXTENSION);
    CommandCounterIncrement();
}

// witn.cron_removal_statement(): {statement, cron statement, cron database}, or NULL when there
// is no job to remove (or pg_cron could not be reached: it has warned).
void plan_removal(const char *schema) {
    SPI_connect();
    const char *query = psprintf("SELECT %s.cron_removal_statement()", quote_identifier(schema));
    if (SPI_execute(query, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "witn: %s returned no row", query);
    bool isnull;
    Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    if (!isnull) {
        Datum *items;
        bool *nulls;
        int n;
        deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
        if (n != 3 || nulls[0] || nulls[1] || nulls[2])
            elog(ERROR, "witn: cron_removal_statement() must return three texts");
        PendingRemoval *removal = static_cast<PendingRemoval *>(MemoryContextAllocZero(TopMemoryContext, sizeof(PendingRemoval)));
        removal->statement = MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(items[0]));
        removal->cron_statement = MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(items[1]));
        removal->cron_database = MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(items[2]));
        forget_pending();
        pending = removal;
        pending_subxact = GetCurrentSubTransactionId();
        if (!callbacks_registered) {
            RegisterXactCallback(on_xact, nullptr);
            RegisterSubXactCallback(on_subxact, nullptr);
            callbacks_registered = true;
        }
    }
    SPI_finish();
}

} // namespace

WITN_FUNCTION(witn_removal_trigger) {
    return witn::pg::pg([&] {
        if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
            ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                            errmsg("witn.removal_trigger() is an event trigger function")));
        const EventTriggerData *data = reinterpret_cast<EventTriggerData *>(fcinfo->context);
        if (!IsA(data->parsetree, DropStmt)) return PointerGetDatum(nullptr);
        const DropStmt *drop = reinterpret_cast<DropStmt *>(data->parsetree);
        const Oid extension_oid = get_extension_oid("witn", true);
        // The trigger function lives in witn's schema.
        const Oid schema_oid = get_func_namespace(fcinfo->flinfo->fn_oid);
        const char *schema = get_namespace_name(schema_oid);
        if (!OidIsValid(extension_oid) || schema == nullptr) return PointerGetDatum(nullptr);
        if ((drop->removeType != OBJECT_EXTENSION && drop->removeType != OBJECT_SCHEMA) || !names_witn(drop, schema))
            return PointerGetDatum(nullptr);
        if (drop->removeType == OBJECT_EXTENSION) make_schema_member(schema_oid, extension_oid);
        plan_removal(schema);
        return PointerGetDatum(nullptr);
    });
}
