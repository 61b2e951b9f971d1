// The webhook delivery worker (CONTRACT §21): background workers, part of the extension, that
// POST every queued notification to its endpoint, signed as Standard Webhooks say.
//
// With witn in shared_preload_libraries the postmaster starts the launcher. It connects to no
// database; it starts one delivery worker per database (every 30 seconds it looks for new
// ones, and CREATE EXTENSION witn asks it at once, through witn.webhook_wake()). A worker in a
// database without witn exits and is looked at again later; a worker that stops otherwise is
// started again within seconds. A worker delivers the deliveries of its database: on a single
// node witn.webhook_deliveries, on a Citus node the shards of it that node holds.
//
// A worker reads due deliveries in a short transaction, sends them with libcurl's multi
// interface (several connections per endpoint, kept alive), and writes the outcome of each
// attempt in another short transaction; no transaction is open while HTTP is in flight, so
// ingestion and settlement never wait on a receiver. A crash or a restart loses nothing: the
// queue is a logged table, and a delivery whose answer was not recorded is sent again (at least
// once; receivers deduplicate by webhook-id).
//
// A connection to a database stops DROP DATABASE, CREATE DATABASE ... TEMPLATE it and ALTER
// DATABASE ... RENAME / SET TABLESPACE; the utility hook stops that database's worker first
// and keeps it stopped while the statement runs.
#include "pg/postgres.hpp"

#include "core/webhook.hpp"
#include "pg/settings.hpp"
#include "pg/webhooks.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include <curl/curl.h>
#include <signal.h>
}

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

extern "C" {
PGDLLEXPORT void witn_webhook_launcher_main(Datum arg);
PGDLLEXPORT void witn_webhook_worker_main(Datum arg);
}

namespace witn::pg {

namespace {

// ---- shared memory: the launcher's latch, requests, and one slot per running worker --------

constexpr int kSlots = 256;
constexpr int kRequests = 64;

struct WorkerSlot {
    Oid database;         // InvalidOid: free
    pid_t pid;            // the worker serving it, 0 while none
    bool serving;         // the worker found witn there (a stop is restarted soon)
    TimestampTz paused_until; // the utility hook holds the database (no worker until then)
};

struct Shared {
    slock_t mutex;
    pid_t launcher_pid;
    Latch *launcher_latch;
    int nrequests;
    Oid requests[kRequests];
    WorkerSlot slots[kSlots];
};

Shared *shared = nullptr;
shmem_request_hook_type previous_shmem_request = nullptr;
shmem_startup_hook_type previous_shmem_startup = nullptr;
ProcessUtility_hook_type previous_utility = nullptr;

void shmem_request() {
    if (previous_shmem_request) previous_shmem_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
}

void shmem_startup() {
    if (previous_shmem_startup) previous_shmem_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = static_cast<Shared *>(ShmemInitStruct("witn webhook delivery", sizeof(Shared), &found));
    if (!found) {
        std::memset(static_cast<void *>(shared), 0, sizeof(Shared));
        SpinLockInit(&shared->mutex);
    }
    LWLockRelease(AddinShmemInitLock);
}

// The slot of a database (made when `make`), under the mutex; nullptr when none.
WorkerSlot *slot_of(Oid database, bool make) {
    WorkerSlot *free_slot = nullptr;
    for (WorkerSlot &s : shared->slots) {
        if (s.database == database) return &s;
        if (s.database == InvalidOid && !free_slot) free_slot = &s;
    }
    if (make && free_slot) {
        *free_slot = WorkerSlot{database, 0, false, 0};
        return free_slot;
    }
    return nullptr;
}

// ---- the utility hook: a database the statement needs alone has no worker ------------------

// Stops the worker of database `name` (if any) and keeps it stopped for `hold` seconds, or until
// release(). Waits up to 10 seconds for it to exit.
Oid hold_database(const char *name, int hold) {
    const Oid database = get_database_oid(name, true);
    if (database == InvalidOid || !shared) return InvalidOid;
    // Only for a statement that may succeed: its owner's or a superuser's (anyone else's fails
    // its own permission check, and must not stop the database's deliveries).
    if (!superuser() && !pg_database_ownercheck(database, GetUserId())) return InvalidOid;
    pid_t pid = 0;
    SpinLockAcquire(&shared->mutex);
    if (WorkerSlot *s = slot_of(database, true)) {
        s->paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), hold * 1000);
        pid = s->pid;
    }
    SpinLockRelease(&shared->mutex);
    if (pid == 0) return database;
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000; ++i) {
        SpinLockAcquire(&shared->mutex);
        WorkerSlot *s = slot_of(database, false);
        const bool gone = !s || s->pid == 0;
        SpinLockRelease(&shared->mutex);
        if (gone) break;
        pg_usleep(10000L); // at most 10 s; no interrupt here, the hold is released by the caller
    }
    return database;
}

void release_database(Oid database) {
    if (database == InvalidOid || !shared) return;
    SpinLockAcquire(&shared->mutex);
    if (WorkerSlot *s = slot_of(database, false)) s->paused_until = 0;
    SpinLockRelease(&shared->mutex);
}

// The database a statement needs without other connections, or nullptr.
const char *exclusive_database(Node *parsetree, bool *dropped) {
    *dropped = false;
    switch (nodeTag(parsetree)) {
    case T_DropdbStmt:
        *dropped = true;
        return castNode(DropdbStmt, parsetree)->dbname;
    case T_CreatedbStmt: {
        ListCell *cell;
        foreach (cell, castNode(CreatedbStmt, parsetree)->options) {
            DefElem *option = lfirst_node(DefElem, cell);
            if (strcmp(option->defname, "template") == 0 && option->arg) return defGetString(option);
        }
        return "template1";
    }
    case T_RenameStmt: {
        RenameStmt *stmt = castNode(RenameStmt, parsetree);
        return stmt->renameType == OBJECT_DATABASE ? stmt->subname : nullptr;
    }
    case T_AlterDatabaseStmt: {
        AlterDatabaseStmt *stmt = castNode(AlterDatabaseStmt, parsetree);
        ListCell *cell;
        foreach (cell, stmt->options) {
            if (strcmp(lfirst_node(DefElem, cell)->defname, "tablespace") == 0) return stmt->dbname;
        }
        return nullptr;
    }
    default:
        return nullptr;
    }
}

// C: it runs PostgreSQL's own utility code, which may raise errors (PG_FINALLY releases).
void utility_hook(PlannedStmt *pstmt, const char *query, bool readonly_tree, ProcessUtilityContext context,
                  ParamListInfo params, QueryEnvironment *env, DestReceiver *dest, QueryCompletion *qc) {
    bool drop = false;
    const char *name = shared ? exclusive_database(pstmt->utilityStmt, &drop) : nullptr;
    volatile const bool dropped = drop;
    volatile const Oid held = name ? hold_database(name, drop ? 60 : 600) : InvalidOid;
    PG_TRY();
    {
        if (previous_utility)
            previous_utility(pstmt, query, readonly_tree, context, params, env, dest, qc);
        else
            standard_ProcessUtility(pstmt, query, readonly_tree, context, params, env, dest, qc);
    }
    PG_CATCH();
    {
        release_database(held); // the statement failed: the database is served again
        PG_RE_THROW();
    }
    PG_END_TRY();
    // A dropped database stays held until its slot is freed; the others are served again.
    if (!dropped) release_database(held);
}

// ---- requests from CREATE EXTENSION (witn.webhook_wake()) ------------------------------------

bool wake_registered = false;
bool wake_pending = false; // witn.webhook_wake() ran in the current transaction

void wake_at_commit(XactEvent event, void *) {
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) wake_pending = false;
    if (event != XACT_EVENT_COMMIT || !wake_pending || !shared) return;
    wake_pending = false;
    SpinLockAcquire(&shared->mutex);
    bool listed = false;
    for (int i = 0; i < shared->nrequests; ++i) listed = listed || shared->requests[i] == MyDatabaseId;
    if (!listed && shared->nrequests < kRequests) shared->requests[shared->nrequests++] = MyDatabaseId;
    Latch *latch = shared->launcher_latch;
    SpinLockRelease(&shared->mutex);
    if (latch) SetLatch(latch);
}

// ---- signals --------------------------------------------------------------------------------

volatile sig_atomic_t got_sigterm = 0;
Oid my_database = InvalidOid; // the database a worker serves

void on_sigterm(SIGNAL_ARGS) {
    const int saved = errno;
    got_sigterm = 1;
    SetLatch(MyLatch);
    errno = saved;
}

void clear_launcher(int, Datum) {
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    if (shared->launcher_pid == MyProcPid) {
        shared->launcher_pid = 0;
        shared->launcher_latch = nullptr;
    }
    SpinLockRelease(&shared->mutex);
}

void clear_slot(int, Datum) {
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    if (WorkerSlot *s = slot_of(my_database, false)) {
        if (s->pid == MyProcPid) s->pid = 0;
    }
    SpinLockRelease(&shared->mutex);
}

// ---- the launcher ---------------------------------------------------------------------------

struct Launched {
    BackgroundWorkerHandle *handle = nullptr;
    TimestampTz next_start = 0; // when to start it again once stopped
};

bool start_worker(Oid database, BackgroundWorkerHandle **handle) {
    BackgroundWorker worker;
    std::memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "witn");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "witn_webhook_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "witn webhook worker for database %u", database);
    snprintf(worker.bgw_type, BGW_MAXLEN, "witn webhook worker");
    worker.bgw_main_arg = ObjectIdGetDatum(database);
    worker.bgw_notify_pid = MyProcPid;
    return RegisterDynamicBackgroundWorker(&worker, handle);
}

// The databases a worker may serve: connectable, not templates.
std::vector<Oid> list_databases() {
    std::vector<Oid> found;
    Oid *oids = nullptr;
    int n = 0;
    pg([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        Relation rel = table_open(DatabaseRelationId, AccessShareLock);
        TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
        int capacity = 16;
        oids = static_cast<Oid *>(MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * capacity));
        HeapTuple tuple;
        while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
            Form_pg_database db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
            if (!db->datallowconn || db->datistemplate || db->datconnlimit == -2) continue;
            if (n == capacity) {
                capacity *= 2;
                oids = static_cast<Oid *>(repalloc(oids, sizeof(Oid) * capacity));
            }
            oids[n++] = db->oid;
        }
        table_endscan(scan);
        table_close(rel, AccessShareLock);
        CommitTransactionCommand();
    });
    found.assign(oids, oids + n);
    pfree(oids);
    return found;
}

void launcher_loop() {
    std::map<Oid, Launched> launched;
    TimestampTz next_scan = 0;
    std::vector<Oid> databases;
    while (!got_sigterm) {
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            pg([&] { ProcessConfigFile(PGC_SIGHUP); });
        }
        const TimestampTz now = GetCurrentTimestamp();
        std::set<Oid> wanted;
        const bool scanned = now >= next_scan;
        if (scanned) {
            databases = list_databases();
            next_scan = TimestampTzPlusMilliseconds(now, 30000);
            wanted.insert(databases.begin(), databases.end());
        }
        // Requests (CREATE EXTENSION witn) start at once; so do databases whose worker served
        // and stopped (after a short wait), and new databases found by the scan.
        std::vector<Oid> requested;
        SpinLockAcquire(&shared->mutex);
        requested.assign(shared->requests, shared->requests + shared->nrequests);
        shared->nrequests = 0;
        SpinLockRelease(&shared->mutex);
        for (auto &[database, l] : launched) {
            if (!l.handle) continue;
            pid_t pid;
            const BgwHandleStatus status = pg([&] { return GetBackgroundWorkerPid(l.handle, &pid); });
            if (status != BGWH_STOPPED) continue;
            pfree(l.handle);
            l.handle = nullptr;
            bool served = false;
            SpinLockAcquire(&shared->mutex);
            if (WorkerSlot *s = slot_of(database, false)) served = s->serving;
            SpinLockRelease(&shared->mutex);
            // Served and stopped (an error, a crash, a held database): again in 5 seconds.
            // Never served (no witn there): at the next scan, or when asked.
            l.next_start = served ? TimestampTzPlusMilliseconds(now, 5000) : 0;
        }
        // Slots of databases with no worker (stopped, dropped, held by a statement that is over)
        // are freed, so that a cluster that makes many databases does not run out of them.
        SpinLockAcquire(&shared->mutex);
        for (WorkerSlot &s : shared->slots) {
            if (s.database == InvalidOid || s.pid != 0 || s.paused_until > now) continue;
            auto it = launched.find(s.database);
            if (it == launched.end() || !it->second.handle) s = WorkerSlot{InvalidOid, 0, false, 0};
        }
        SpinLockRelease(&shared->mutex);
        for (auto &[database, l] : launched)
            if (!l.handle && l.next_start != 0 && now >= l.next_start) wanted.insert(database);
        for (Oid database : requested) {
            wanted.insert(database);
            launched[database].next_start = 0;
        }
        for (Oid database : wanted) {
            Launched &l = launched[database];
            if (l.handle) continue;
            bool paused = false;
            pid_t serving = 0;
            SpinLockAcquire(&shared->mutex);
            if (WorkerSlot *s = slot_of(database, false)) {
                paused = s->paused_until > now;
                serving = s->pid;
            }
            SpinLockRelease(&shared->mutex);
            // A worker this launcher did not start (its predecessor's) still serves: leave it.
            if (serving != 0 && kill(serving, 0) == 0) {
                l.next_start = TimestampTzPlusMilliseconds(now, 5000);
                continue;
            }
            if (paused) {
                l.next_start = TimestampTzPlusMilliseconds(now, 1000);
                continue;
            }
            BackgroundWorkerHandle *handle = nullptr;
            if (pg([&] { return start_worker(database, &handle); })) {
                l.handle = handle;
                l.next_start = 0;
            } else {
                l.next_start = TimestampTzPlusMilliseconds(now, 5000);
                ereport(LOG, (errmsg("witn: no background worker slot for the webhook worker of database %u", database),
                              errhint("Raise max_worker_processes (each database with witn needs one, besides the launcher).")));
            }
        }
        // Databases gone from the catalog (as the scan just read it) are forgotten once their
        // worker stopped.
        if (scanned) {
            for (auto it = launched.begin(); it != launched.end();) {
                if (!it->second.handle && std::find(databases.begin(), databases.end(), it->first) == databases.end())
                    it = launched.erase(it);
                else
                    ++it;
            }
        }
        pg([&] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        });
    }
}

} // namespace

void register_webhook_launcher() {
    previous_shmem_request = shmem_request_hook;
    shmem_request_hook = shmem_request;
    previous_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = shmem_startup;
    previous_utility = ProcessUtility_hook;
    ProcessUtility_hook = utility_hook;

    BackgroundWorker worker;
    std::memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "witn");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "witn_webhook_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "witn webhook launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "witn webhook launcher");
    RegisterBackgroundWorker(&worker);
}

bool request_webhook_worker() {
    if (!shared) return false;
    if (!wake_registered) {
        pg([&] { RegisterXactCallback(wake_at_commit, nullptr); });
        wake_registered = true;
    }
    wake_pending = true;
    SpinLockAcquire(&shared->mutex);
    const bool running = shared->launcher_pid != 0;
    SpinLockRelease(&shared->mutex);
    return running;
}

namespace {

// ---- the delivery worker: the database side ---------------------------------------------------

// One queue: a deliveries table with its notifications and endpoints (the tables themselves,
// or on a Citus node one deliveries shard, its colocated notifications shard and the node's
// endpoints shard).
struct Queue {
    std::string deliveries, notifications, endpoints;
    bool shard = false;
};

struct EndpointRow {
    std::int64_t id;
    std::string url, secret;
};

// A delivery belongs to its queue by the queue's deliveries relation (the list of queues is read
// again every 10 seconds and may change: a shard moved, witn.distribute()).
struct Due {
    std::string queue;
    std::int64_t id;
    std::string customer_key;
    std::int64_t endpoint_id;
    int attempts;
    std::string webhook_id, body;
    std::string fetched_next; // next_attempt_at when fetched (text): the record is only for that
};

struct Attempt {
    std::string queue;
    std::int64_t id;
    std::string customer_key;
    const char *status; // pending (retry), delivered, failed
    int attempts;
    std::optional<TimestampTz> next_attempt_at;
    TimestampTz at;
    std::optional<int> code;
    std::optional<std::string> error;
    std::string fetched_next;
};

// Rows of an SPI query, copied out as text (nullptr for NULL) in the caller's context.
struct TextRows {
    int nrows = 0, ncols = 0;
    char **values = nullptr; // row-major
    const char *at(int r, int c) const { return values[r * ncols + c]; }
};

// C side: runs `sql` with `nargs` arguments and copies the result as text.
TextRows spi_rows(const char *sql, int nargs, Oid *types, Datum *values) {
    TextRows rows;
    const int rc = SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0);
    if (rc < 0) elog(ERROR, "witn webhook worker: SPI_execute_with_args failed (%d) for: %s", rc, sql);
    if (SPI_tuptable) {
        rows.nrows = static_cast<int>(SPI_processed);
        rows.ncols = SPI_tuptable->tupdesc->natts;
        rows.values = static_cast<char **>(SPI_palloc(sizeof(char *) * (rows.nrows * rows.ncols + 1)));
        for (int r = 0; r < rows.nrows; ++r)
            for (int c = 0; c < rows.ncols; ++c) {
                char *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
                rows.values[r * rows.ncols + c] = v ? static_cast<char *>(SPI_palloc(strlen(v) + 1)) : nullptr;
                if (v) strcpy(rows.values[r * rows.ncols + c], v);
            }
    }
    return rows;
}

// A short transaction around f (SPI connected, a snapshot pushed), in `memory`, which holds
// what f copied out until the caller resets it.
template <typename F>
void in_transaction(MemoryContext memory, F &&f) {
    pg([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        MemoryContextSwitchTo(memory);
        SPI_connect();
        PushActiveSnapshot(GetTransactionSnapshot());
        pgstat_report_activity(STATE_RUNNING, "witn webhook delivery");
    });
    f();
    pg([&] {
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        MemoryContextSwitchTo(memory);
        pgstat_report_stat(false);
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

std::string quote(const std::string &ident) {
    return pg([&] { return pstrdup(quote_identifier(ident.c_str())); });
}

Datum int8_array(const std::vector<std::int64_t> &v) {
    return pg([&] {
        Datum *items = static_cast<Datum *>(palloc(sizeof(Datum) * (v.size() + 1)));
        for (std::size_t i = 0; i < v.size(); ++i) items[i] = Int64GetDatum(v[i]);
        return PointerGetDatum(construct_array(items, static_cast<int>(v.size()), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
    });
}
Datum int4_array(const std::vector<int> &v, const std::vector<bool> *nulls = nullptr) {
    return pg([&] {
        Datum *items = static_cast<Datum *>(palloc(sizeof(Datum) * (v.size() + 1)));
        bool *isnull = static_cast<bool *>(palloc0(sizeof(bool) * (v.size() + 1)));
        for (std::size_t i = 0; i < v.size(); ++i) {
            items[i] = Int32GetDatum(v[i]);
            if (nulls) isnull[i] = (*nulls)[i];
        }
        int dims[1] = {static_cast<int>(v.size())}, lbs[1] = {1};
        return PointerGetDatum(construct_md_array(items, isnull, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
    });
}
Datum timestamptz_array(const std::vector<TimestampTz> &v, const std::vector<bool> &nulls) {
    return pg([&] {
        Datum *items = static_cast<Datum *>(palloc(sizeof(Datum) * (v.size() + 1)));
        bool *isnull = static_cast<bool *>(palloc0(sizeof(bool) * (v.size() + 1)));
        for (std::size_t i = 0; i < v.size(); ++i) {
            items[i] = TimestampTzGetDatum(v[i]);
            isnull[i] = nulls[i];
        }
        int dims[1] = {static_cast<int>(v.size())}, lbs[1] = {1};
        return PointerGetDatum(construct_md_array(items, isnull, 1, dims, lbs, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
    });
}
Datum text_array(const std::vector<std::optional<std::string>> &v) {
    return pg([&] {
        Datum *items = static_cast<Datum *>(palloc(sizeof(Datum) * (v.size() + 1)));
        bool *isnull = static_cast<bool *>(palloc0(sizeof(bool) * (v.size() + 1)));
        for (std::size_t i = 0; i < v.size(); ++i) {
            isnull[i] = !v[i].has_value();
            items[i] = isnull[i] ? Datum(0) : PointerGetDatum(cstring_to_text_with_len(v[i]->data(), static_cast<int>(v[i]->size())));
        }
        int dims[1] = {static_cast<int>(v.size())}, lbs[1] = {1};
        return PointerGetDatum(construct_md_array(items, isnull, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
    });
}

class Database {
public:
    Database() : memory_(pg([] { return AllocSetContextCreate(TopMemoryContext, "witn webhook worker", ALLOCSET_DEFAULT_SIZES); })) {}

    // witn's version here, or nullopt when witn is not installed; its schema.
    std::optional<std::string> extension_version() {
        std::optional<std::string> version;
        run([&] {
            TextRows rows = pg([&] {
                // witn.webhook_delivery as ALTER DATABASE set it for this database (read afresh:
                // the worker's own value is the one of its start).
                return spi_rows("SELECT e.extversion, n.nspname, pg_catalog.current_database(), "
                                "       (SELECT pg_catalog.split_part(o, '=', 2) FROM pg_catalog.pg_db_role_setting r, "
                                "               pg_catalog.unnest(r.setconfig) o "
                                "         WHERE r.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) "
                                "           AND r.setrole = 0 AND o LIKE 'witn.webhook\\_delivery=%' LIMIT 1), "
                                "       (SELECT f.setting FROM pg_catalog.pg_file_settings f "
                                "         WHERE f.name = 'witn.webhook_delivery' AND f.applied ORDER BY f.seqno DESC LIMIT 1) "
                                "  FROM pg_catalog.pg_extension e "
                                "  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'witn'",
                                0, nullptr, nullptr);
            });
            if (rows.nrows == 1) {
                version = rows.at(0, 0);
                schema_ = rows.at(0, 1);
                name_ = rows.at(0, 2);
                database_delivery_.reset();
                server_delivery_ = true;
                if (const char *v = rows.at(0, 3)) {
                    bool on = true;
                    if (parse_bool(v, &on)) database_delivery_ = on;
                }
                if (const char *v = rows.at(0, 4)) {
                    bool on = true;
                    if (parse_bool(v, &on)) server_delivery_ = on;
                }
            }
        });
        return version;
    }

    // The queues of this node.
    std::vector<Queue> queues() {
        std::vector<Queue> found;
        const std::string s = quote(schema_);
        run([&] {
            TextRows citus = pg([&] {
                return spi_rows("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL", 0, nullptr, nullptr);
            });
            bool distributed = false;
            citus_ = strcmp(citus.at(0, 0), "t") == 0;
            if (citus_) {
                const std::string sql = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = '" + s +
                                        ".webhook_deliveries'::regclass)";
                TextRows rows = pg([&] { return spi_rows(sql.c_str(), 0, nullptr, nullptr); });
                distributed = strcmp(rows.at(0, 0), "t") == 0;
            }
            if (!distributed) {
                found.push_back({s + ".webhook_deliveries", s + ".notifications", s + ".webhook_endpoints", false});
                return;
            }
            const std::string sql =
                "SELECT pg_catalog.format('%I.%I', $1::text, 'webhook_deliveries_' || d.shardid), "
                "       pg_catalog.format('%I.%I', $1::text, 'notifications_' || n.shardid), "
                "       pg_catalog.format('%I.%I', $1::text, 'webhook_endpoints_' || e.shardid) "
                "  FROM pg_catalog.pg_dist_shard d "
                "  JOIN pg_catalog.pg_dist_placement p ON p.shardid = d.shardid "
                "  JOIN pg_catalog.pg_dist_shard n ON n.logicalrelid = pg_catalog.format('%I.notifications', $1::text)::regclass "
                "   AND n.shardminvalue = d.shardminvalue "
                "  JOIN pg_catalog.pg_dist_shard e ON e.logicalrelid = pg_catalog.format('%I.webhook_endpoints', $1::text)::regclass "
                " WHERE d.logicalrelid = pg_catalog.format('%I.webhook_deliveries', $1::text)::regclass "
                "   AND p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group) "
                "   AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, 'webhook_deliveries_' || d.shardid)) IS NOT NULL "
                "   AND pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, 'webhook_endpoints_' || e.shardid)) IS NOT NULL "
                " ORDER BY d.shardid";
            Oid types[1] = {TEXTOID};
            Datum values[1] = {PointerGetDatum(to_text(schema_))};
            TextRows rows = pg([&] { return spi_rows(sql.c_str(), 1, types, values); });
            for (int r = 0; r < rows.nrows; ++r) found.push_back({rows.at(r, 0), rows.at(r, 1), rows.at(r, 2), true});
        });
        return found;
    }

    // The enabled endpoints (of the first queue: every node has one copy of them).
    std::vector<EndpointRow> endpoints(const Queue &q) {
        std::vector<EndpointRow> found;
        const std::string sql = "SELECT id, url, secret FROM " + q.endpoints + " WHERE enabled ORDER BY id";
        run([&] {
            TextRows rows = pg([&] { return spi_rows(sql.c_str(), 0, nullptr, nullptr); });
            for (int r = 0; r < rows.nrows; ++r) found.push_back({std::stoll(rows.at(r, 0)), rows.at(r, 1), rows.at(r, 2)});
        });
        return found;
    }

    // Up to room[i] due deliveries of endpoint ids[i] in queue `qi`, oldest due first, none of
    // `busy` (those being sent or waiting to be recorded).
    std::vector<Due> due(const Queue &q, const std::vector<std::int64_t> &ids, const std::vector<int> &room,
                         const std::vector<std::int64_t> &busy) {
        std::vector<Due> found;
        const std::string sql =
            "SELECT d.id, d.customer_key, d.endpoint_id, d.attempts, n.payload ->> 'id', n.payload::text, "
            "       d.next_attempt_at::text "
            "  FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::integer[])) AS want(endpoint_id, room) "
            " CROSS JOIN LATERAL (SELECT w.id, w.customer_key, w.endpoint_id, w.attempts, w.notification_id, w.next_attempt_at "
            "                       FROM " + q.deliveries + " w "
            "                      WHERE w.endpoint_id = want.endpoint_id AND w.status = 'pending' "
            "                        AND w.next_attempt_at <= pg_catalog.now() AND w.id <> ALL ($3::bigint[]) "
            "                      ORDER BY w.next_attempt_at LIMIT want.room) d "
            "  JOIN " + q.notifications + " n ON n.customer_key = d.customer_key AND n.id = d.notification_id";
        run([&] {
            Oid types[3] = {INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID};
            Datum values[3] = {int8_array(ids), int4_array(room), int8_array(busy)};
            TextRows rows = pg([&] { return spi_rows(sql.c_str(), 3, types, values); });
            for (int r = 0; r < rows.nrows; ++r)
                found.push_back({q.deliveries, std::stoll(rows.at(r, 0)), rows.at(r, 1), std::stoll(rows.at(r, 2)),
                                 std::stoi(rows.at(r, 3)), rows.at(r, 4) ? rows.at(r, 4) : "", rows.at(r, 5), rows.at(r, 6)});
        });
        return found;
    }

    // Records attempts (of one queue).
    void record(const Queue &q, const std::vector<Attempt> &attempts) {
        std::vector<std::int64_t> ids;
        std::vector<std::optional<std::string>> customers, statuses, errors, fetched;
        std::vector<int> counts, codes;
        std::vector<bool> code_nulls, next_nulls, at_nulls;
        std::vector<TimestampTz> nexts, ats;
        for (const Attempt &a : attempts) {
            ids.push_back(a.id);
            customers.emplace_back(a.customer_key);
            statuses.emplace_back(std::string(a.status));
            counts.push_back(a.attempts);
            nexts.push_back(a.next_attempt_at.value_or(0));
            next_nulls.push_back(!a.next_attempt_at);
            ats.push_back(a.at);
            at_nulls.push_back(false);
            codes.push_back(a.code.value_or(0));
            code_nulls.push_back(!a.code);
            errors.push_back(a.error);
            fetched.emplace_back(a.fetched_next);
        }
        const std::string sql =
            "UPDATE " + q.deliveries + " d SET status = r.status, attempts = r.attempts, next_attempt_at = r.next_at, "
            "       last_attempt_at = r.at, last_response_code = r.code, last_error = r.error, "
            "       delivered_at = CASE WHEN r.status = 'delivered' THEN r.at END "
            "  FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]), "
            "                 pg_catalog.unnest($4::integer[]), pg_catalog.unnest($5::timestamptz[]), "
            "                 pg_catalog.unnest($6::timestamptz[]), pg_catalog.unnest($7::integer[]), pg_catalog.unnest($8::text[]), "
            "                 pg_catalog.unnest($9::timestamptz[])) "
            "       AS r(id, customer_key, status, attempts, next_at, at, code, error, fetched_next) "
            // As it was fetched: a witn.redeliver() meanwhile (next_attempt_at made now) wins, and
            // the delivery is sent again.
            " WHERE d.customer_key = r.customer_key AND d.id = r.id AND d.status = 'pending' "
            "   AND d.attempts = r.attempts - 1 AND d.next_attempt_at = r.fetched_next";
        run([&] {
            if (q.shard) pg([&] { (void)spi_rows("SET LOCAL citus.enable_manual_changes_to_shards = on", 0, nullptr, nullptr); });
            Oid types[9] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID,
                            TIMESTAMPTZARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
            Datum values[9] = {int8_array(ids), text_array(customers), text_array(statuses), int4_array(counts),
                               timestamptz_array(nexts, next_nulls), timestamptz_array(ats, at_nulls),
                               int4_array(codes, &code_nulls), text_array(errors), text_array(fetched)};
            pg([&] { (void)spi_rows(sql.c_str(), 9, types, values); });
        });
    }

private:
    template <typename F>
    void run(F &&f) {
        in_transaction(memory_, f);
        pg([&] { MemoryContextReset(memory_); });
    }

    MemoryContext memory_;
    std::string schema_ = "witn";
    std::string name_;
    bool citus_ = false;

public:
    const std::string &name() const { return name_; }
    // Citus is installed here (its tables may become distributed at any moment).
    bool citus() const { return citus_; }
    // witn.webhook_delivery for this database: ALTER DATABASE ... SET, else postgresql.conf.
    // (This worker's own value would keep a database setting of its start.)
    bool delivery_on() const { return database_delivery_.value_or(server_delivery_); }

private:
    std::optional<bool> database_delivery_;
    bool server_delivery_ = true;
};

// ---- the delivery worker: HTTP ----------------------------------------------------------------

constexpr std::size_t kBodyCap = 64 * 1024; // what is read of a response, at most
constexpr std::size_t kSnippet = 200;       // what of it is kept in last_error

struct Transfer {
    Due due;
    std::string url, secret;
    CURL *easy = nullptr;
    curl_slist *headers = nullptr;
    char error[CURL_ERROR_SIZE] = {};
    std::string snippet;
    std::size_t received = 0;
    bool capped = false;
    TimestampTz started = 0;
    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        if (headers) curl_slist_free_all(headers);
    }
};

std::size_t on_body(char *data, std::size_t size, std::size_t n, void *user) {
    Transfer *t = static_cast<Transfer *>(user);
    const std::size_t bytes = size * n;
    if (t->snippet.size() < kSnippet) t->snippet.append(data, std::min(bytes, kSnippet - t->snippet.size()));
    t->received += bytes;
    if (t->received > kBodyCap) {
        t->capped = true;
        return 0; // stop reading: the answer's status is what counts
    }
    return bytes;
}

// Printable ASCII only: last_error must be valid text in any database encoding.
std::string printable(const std::string &s) {
    std::string out;
    for (unsigned char c : s) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : ' ';
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

class Deliverer {
public:
    Deliverer() {
        multi_ = curl_multi_init();
        if (!multi_) throw std::runtime_error("curl_multi_init failed");
        configure();
    }
    ~Deliverer() {
        for (auto &[easy, t] : running_) curl_multi_remove_handle(multi_, easy);
        running_.clear();
        if (multi_) curl_multi_cleanup(multi_);
    }
    Deliverer(const Deliverer &) = delete;
    Deliverer &operator=(const Deliverer &) = delete;

    void configure() {
        max_connections_ = std::max(1, webhook_max_connections);
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(max_connections_ * 16));
        schedule_ = witn::parse_retry_schedule(webhook_retry_schedule ? webhook_retry_schedule : "");
        allowed_ = witn::parse_allowed_hosts(webhook_allowed_hosts_text());
    }
    int max_connections() const { return max_connections_; }
    std::size_t running() const { return running_.size(); }
    int running_for(std::int64_t endpoint) const {
        auto it = per_endpoint_.find(endpoint);
        return it == per_endpoint_.end() ? 0 : it->second;
    }

    // Starts sending `due` to the endpoint; an attempt that cannot start is finished at once.
    void start(Due due, const EndpointRow &endpoint) {
        auto t = std::make_unique<Transfer>();
        t->due = std::move(due);
        t->url = endpoint.url;
        t->secret = endpoint.secret;
        t->started = GetCurrentTimestamp();
        std::string host;
        try {
            host = witn::webhook_url_host(t->url);
        } catch (const witn::Error &e) {
            finish(*t, std::nullopt, std::string("the endpoint's URL is not valid: ") + e.what());
            return;
        }
        if (!witn::host_allowed(host, allowed_)) {
            finish(*t, std::nullopt, "host " + host + " is not in witn.webhook_allowed_hosts");
            return;
        }
        std::string signature;
        const std::int64_t timestamp = static_cast<std::int64_t>(time(nullptr));
        try {
            signature = witn::webhook_signature(t->secret, t->due.webhook_id, timestamp, t->due.body);
        } catch (const witn::Error &e) {
            finish(*t, std::nullopt, std::string("the endpoint's secret is not valid: ") + e.what());
            return;
        }
        t->easy = curl_easy_init();
        if (!t->easy) throw std::runtime_error("curl_easy_init failed");
        const std::string headers[] = {
            "Content-Type: application/json",
            "webhook-id: " + t->due.webhook_id,
            "webhook-timestamp: " + std::to_string(timestamp),
            "webhook-signature: " + signature,
            "Expect:",
        };
        for (const std::string &h : headers) t->headers = curl_slist_append(t->headers, h.c_str());
        CURL *e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, t->url.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->due.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->due.body.size()));
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "witn/" WITN_VERSION);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(webhook_timeout_ms));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(webhook_timeout_ms, 10000)));
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_PROXY, ""); // no proxy from the server's environment
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
        if (curl_multi_add_handle(multi_, e) != CURLM_OK) throw std::runtime_error("curl_multi_add_handle failed");
        ++per_endpoint_[t->due.endpoint_id];
        running_.emplace(e, std::move(t));
    }

    // Moves transfers along for up to `wait_ms`; finished attempts go to done().
    void step(int wait_ms) {
        int still = 0;
        curl_multi_perform(multi_, &still);
        if (!running_.empty()) {
            int fds = 0;
            curl_multi_poll(multi_, nullptr, 0, wait_ms, &fds);
            curl_multi_perform(multi_, &still);
        }
        int left = 0;
        while (CURLMsg *m = curl_multi_info_read(multi_, &left)) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            const CURLcode result = m->data.result;
            auto it = running_.find(e);
            if (it == running_.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            running_.erase(it);
            curl_multi_remove_handle(multi_, e);
            --per_endpoint_[t->due.endpoint_id];
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            const bool answered = code > 0 && (result == CURLE_OK || (result == CURLE_WRITE_ERROR && t->capped));
            if (answered) {
                std::optional<std::string> error;
                if (code < 200 || code > 299) {
                    std::string what = "HTTP " + std::to_string(code);
                    if (code >= 300 && code < 400) what += " (redirects are not followed)";
                    const std::string body = printable(t->snippet);
                    if (!body.empty()) what += ": " + body;
                    error = what;
                } else if (t->capped) {
                    error = "response body over 64 KiB, not read to the end";
                }
                finish(*t, static_cast<int>(code), error, code >= 200 && code <= 299);
            } else {
                std::string what = curl_easy_strerror(result);
                if (t->error[0]) what += std::string(": ") + t->error;
                finish(*t, code > 0 ? std::optional<int>(static_cast<int>(code)) : std::nullopt, what);
            }
        }
    }

    std::vector<Attempt> take_done() {
        std::vector<Attempt> out;
        out.swap(done_);
        return out;
    }
    bool has_done() const { return !done_.empty(); }
    std::size_t done_count() const { return done_.size(); }
    TimestampTz oldest_done() const { return oldest_done_; }
    // Ids of deliveries being sent (queue, id).
    void busy(std::map<std::string, std::set<std::int64_t>> &ids) const {
        for (const auto &[e, t] : running_) ids[t->due.queue].insert(t->due.id);
        for (const Attempt &a : done_) ids[a.queue].insert(a.id);
    }

private:
    void finish(const Transfer &t, std::optional<int> code, std::optional<std::string> error, bool succeeded = false) {
        const int attempt = t.due.attempts + 1;
        const TimestampTz now = GetCurrentTimestamp();
        const witn::AttemptDecision d = witn::decide_after_attempt(attempt, succeeded, schedule_, now, jitter_(random_));
        Attempt a{t.due.queue, t.due.id, t.due.customer_key, "failed", attempt, std::nullopt, t.started, code,
                  error ? std::optional<std::string>(error->substr(0, 1000)) : std::nullopt, t.due.fetched_next};
        if (d.next == witn::AttemptDecision::Next::Delivered) a.status = "delivered";
        else if (d.next == witn::AttemptDecision::Next::Retry) {
            a.status = "pending";
            a.next_attempt_at = d.next_attempt_at;
        }
        if (done_.empty()) oldest_done_ = now;
        done_.push_back(std::move(a));
    }

    CURLM *multi_ = nullptr;
    int max_connections_ = 1;
    std::vector<std::int64_t> schedule_;
    std::vector<std::string> allowed_;
    std::map<CURL *, std::unique_ptr<Transfer>> running_;
    std::map<std::int64_t, int> per_endpoint_;
    std::vector<Attempt> done_;
    TimestampTz oldest_done_ = 0;
    std::mt19937_64 random_{std::random_device{}()};
    std::uniform_real_distribution<double> jitter_{0.0, 1.0};
};

void wait_latch(long ms) {
    pg([&] {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    });
}

void set_serving(bool serving) {
    SpinLockAcquire(&shared->mutex);
    if (WorkerSlot *s = slot_of(my_database, false)) s->serving = serving;
    SpinLockRelease(&shared->mutex);
}

// Records attempts in their queues; those of a queue that is gone (a shard moved away) are
// dropped: their deliveries are sent again from where the shard is now.
void record_all(Database &db, const std::vector<Queue> &queues, std::vector<Attempt> done) {
    std::map<std::string, std::vector<Attempt>> per;
    for (Attempt &a : done) per[a.queue].push_back(std::move(a));
    for (const Queue &q : queues) {
        auto it = per.find(q.deliveries);
        if (it != per.end()) db.record(q, it->second);
    }
}

void worker_loop() {
    Database db;
    // witn here, at this library's version; else nothing to do (or wait for the update).
    for (bool said = false;;) {
        const std::optional<std::string> version = db.extension_version();
        if (!version) {
            set_serving(false);
            return;
        }
        if (*version == WITN_VERSION) break;
        set_serving(true);
        if (!said)
            ereport(LOG, (errmsg("witn: webhook delivery waits: the SQL objects of database \"%s\" are witn %s, the library is witn %s",
                                 db.name().c_str(), version->c_str(), WITN_VERSION),
                          errhint("%s", witn::pg::version_hint(version->c_str()).c_str())));
        said = true;
        wait_latch(10000);
        if (got_sigterm) return;
    }
    set_serving(true);
    Deliverer http;
    std::vector<Queue> queues;
    std::vector<EndpointRow> endpoints;
    std::map<std::int64_t, std::deque<Due>> waiting;
    TimestampTz next_queues = 0, next_fetch = 0;
    while (!got_sigterm) {
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            pg([&] { ProcessConfigFile(PGC_SIGHUP); });
            http.configure();
        }
        TimestampTz now = GetCurrentTimestamp();
        // On a Citus node whose tables are not distributed yet, witn.distribute() may make them
        // so at any moment, after which only the shards may be read here (a distributed table
        // is the coordinator's to plan): look again before every fetch.
        const bool undistributed = db.citus() && !queues.empty() && !queues.front().shard;
        if (now >= next_queues || (undistributed && now >= next_fetch)) {
            // DROP EXTENSION witn, or ALTER EXTENSION witn UPDATE (this library no longer fits the
            // schema: stop, and wait with a log line in the next worker).
            const std::optional<std::string> version = db.extension_version();
            if (!version || *version != WITN_VERSION) break;
            queues = db.queues();
            next_queues = TimestampTzPlusMilliseconds(now, 10000);
        }
        // witn.webhook_delivery = off: nothing new is sent (what is in flight finishes).
        if (!db.delivery_on()) {
            waiting.clear();
            next_fetch = TimestampTzPlusMilliseconds(now, 1000);
        }
        // Room: per endpoint, up to four times its connections sent or waiting.
        if (now >= next_fetch && !queues.empty()) {
            endpoints = db.endpoints(queues.front());
            std::map<std::string, std::set<std::int64_t>> busy;
            http.busy(busy);
            for (const auto &[endpoint, list] : waiting)
                for (const Due &d : list) busy[d.queue].insert(d.id);
            bool full = false;
            for (std::size_t qi = 0; qi < queues.size(); ++qi) {
                std::vector<std::int64_t> ids;
                std::vector<int> room;
                for (const EndpointRow &e : endpoints) {
                    const int have = http.running_for(e.id) + static_cast<int>(waiting[e.id].size());
                    const int want = 4 * http.max_connections() - have;
                    if (want > 0) {
                        ids.push_back(e.id);
                        room.push_back(want);
                    }
                }
                // Every endpoint has all it can take (none at all: nothing to fetch).
                if (ids.empty()) {
                    full = !endpoints.empty();
                    break;
                }
                const std::set<std::int64_t> &busy_here = busy[queues[qi].deliveries];
                std::vector<std::int64_t> skip(busy_here.begin(), busy_here.end());
                std::vector<Due> found = db.due(queues[qi], ids, room, skip);
                std::map<std::int64_t, int> per;
                for (Due &d : found) {
                    ++per[d.endpoint_id];
                    waiting[d.endpoint_id].push_back(std::move(d));
                }
                for (std::size_t i = 0; i < ids.size(); ++i) full = full || per[ids[i]] >= room[i];
            }
            // More is due: fetch again soon; else look again in a second.
            next_fetch = TimestampTzPlusMilliseconds(now, full ? 20 : 1000);
        }
        // Start what each endpoint has room for (a disabled or deleted endpoint's waiting
        // deliveries are dropped from memory: they stay pending in the table).
        for (auto it = waiting.begin(); it != waiting.end();) {
            const auto e = std::find_if(endpoints.begin(), endpoints.end(), [&](const EndpointRow &r) { return r.id == it->first; });
            if (e == endpoints.end()) {
                it = waiting.erase(it);
                continue;
            }
            while (!it->second.empty() && http.running_for(e->id) < http.max_connections()) {
                http.start(std::move(it->second.front()), *e);
                it->second.pop_front();
            }
            ++it;
        }
        if (http.running() > 0) {
            http.step(50);
            pg([&] { ResetLatch(MyLatch); });
        } else if (!http.has_done()) {
            now = GetCurrentTimestamp();
            long ms = next_fetch > now ? static_cast<long>((next_fetch - now) / 1000) : 0;
            if (ms > 0) wait_latch(std::min(ms, 1000L));
        }
        pg([&] { CHECK_FOR_INTERRUPTS(); });
        // Record attempts in batches: 500 of them, or the oldest 100 ms old, or when idle.
        now = GetCurrentTimestamp();
        if (http.has_done() && (http.done_count() >= 500 || http.running() == 0 || now - http.oldest_done() >= 100000))
            record_all(db, queues, http.take_done());
        if (queues.empty() && !got_sigterm) wait_latch(1000);
    }
    // Stopping: what has been answered is recorded; what is in flight is sent again later.
    if (http.has_done()) record_all(db, queues, http.take_done());
}

// An error while aborting ends the worker (FATAL: no handler is set here), which is restarted.
void abort_transaction() { AbortCurrentTransaction(); }

// A PostgreSQL error's SQLSTATE and text, copied out of the transaction that raised it (its
// ErrorData lives in that transaction's memory, freed by the abort).
struct WorkerError {
    int sqlstate;
    std::string message, detail;
};

// The worker's loop; an error because DROP EXTENSION witn removed the tables under it ends the
// worker quietly.
void worker_body() {
    std::optional<WorkerError> failed;
    try {
        worker_loop();
    } catch (const PgError &e) {
        const ErrorData *d = e.data();
        failed = WorkerError{d->sqlerrcode, d->message ? d->message : "", d->detail ? d->detail : ""};
    }
    if (!failed) return;
    abort_transaction();
    Database db;
    if (!db.extension_version()) return;
    throw *failed;
}

// Runs a worker's body behind the barrier: C++ objects are gone before a PostgreSQL error is
// raised again (as FATAL: a background worker has no outer handler), so its destructors run.
void run_behind_barrier(void (*body)()) {
    ErrorData *pg_error = nullptr;
    std::string message, detail;
    int code = ERRCODE_INTERNAL_ERROR;
    try {
        body();
    } catch (const PgError &e) {
        pg_error = e.data();
    } catch (const WorkerError &e) {
        code = e.sqlstate;
        message = e.message;
        detail = e.detail;
    } catch (const std::exception &e) {
        message = e.what();
    } catch (...) {
        message = "unknown exception";
    }
    if (pg_error) ReThrowError(pg_error);
    if (!message.empty())
        ereport(ERROR, (errcode(code), errmsg("witn webhook delivery: %s", message.c_str()),
                        detail.empty() ? 0 : errdetail("%s", detail.c_str())));
}

} // namespace

} // namespace witn::pg

void witn_webhook_launcher_main(Datum) {
    using namespace witn::pg;
    pqsignal(SIGTERM, on_sigterm);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    SpinLockAcquire(&shared->mutex);
    shared->launcher_pid = MyProcPid;
    shared->launcher_latch = &MyProc->procLatch;
    SpinLockRelease(&shared->mutex);
    before_shmem_exit(clear_launcher, 0);
    run_behind_barrier(launcher_loop);
    // Exit code 1, also when terminated: the postmaster starts it again (code 0 would unregister
    // it); it does not while shutting down.
    proc_exit(1);
}

void witn_webhook_worker_main(Datum arg) {
    using namespace witn::pg;
    const Oid database = DatumGetObjectId(arg);
    pqsignal(SIGTERM, on_sigterm);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    // Registered before connecting: the utility hook finds (and stops) a worker that is still
    // connecting to a database it needs alone.
    // One worker per database: a live pid in the slot is the one (a launcher started again
    // after an error does not know the workers its predecessor started).
    SpinLockAcquire(&shared->mutex);
    WorkerSlot *slot = slot_of(database, true);
    const bool held = slot && slot->paused_until > GetCurrentTimestamp();
    const bool other = slot && slot->pid != 0 && slot->pid != MyProcPid && kill(slot->pid, 0) == 0;
    if (slot && !held && !other) slot->pid = MyProcPid;
    SpinLockRelease(&shared->mutex);
    if (!slot) {
        ereport(LOG, (errmsg("witn: too many databases for webhook delivery (at most %d)", kSlots)));
        proc_exit(0);
    }
    if (held || other) proc_exit(0); // a statement needs the database alone, or it is served
    my_database = database;
    before_shmem_exit(clear_slot, 0);
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
    pgstat_report_appname("witn webhook worker");
    // Its queries name everything by schema; waits are bounded so that a stop request (the
    // utility hook's, a shutdown's) is seen within seconds.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("statement_timeout", "60s", PGC_SUSET, PGC_S_OVERRIDE);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) ereport(ERROR, (errmsg("witn: curl_global_init failed")));
    run_behind_barrier(worker_body);
    proc_exit(0);
}
