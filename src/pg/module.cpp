// The library's entry: its magic block and its settings.
#include "pg/postgres.hpp"

#include "core/webhook.hpp"
#include "pg/settings.hpp"
#include "pg/webhooks.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace witn::pg {

int pg_notify_mode = static_cast<int>(PgNotify::Each);
int webhook_timeout_ms = 15000;
char *webhook_retry_schedule = nullptr;
char *webhook_allowed_hosts = nullptr;
int webhook_max_connections = 8;
bool webhook_delivery = true;

namespace {

// GUC check hooks run the core's parsers; a bad value is refused with the core's message.
template <typename Parse>
bool check_with(const char *name, char **value, Parse &&parse) {
    try {
        parse(std::string_view(*value ? *value : ""));
        return true;
    } catch (const witn::Error &e) {
        GUC_check_errmsg("%s: %s", name, e.what());
        if (!e.hint().empty()) GUC_check_errhint("%s", e.hint().c_str());
        return false;
    } catch (...) {
        GUC_check_errmsg("witn: could not check the value");
        return false;
    }
}

bool check_retry_schedule(char **value, void **, GucSource) {
    return check_with("witn.webhook_retry_schedule", value, [](std::string_view v) { witn::parse_retry_schedule(v); });
}

bool check_allowed_hosts(char **value, void **, GucSource) {
    return check_with("witn.webhook_allowed_hosts", value, [](std::string_view v) { witn::parse_allowed_hosts(v); });
}

} // namespace

} // namespace witn::pg

void _PG_init(void) {
    static const struct config_enum_entry modes[] = {
        {"each", static_cast<int>(witn::pg::PgNotify::Each), false},
        {"wake", static_cast<int>(witn::pg::PgNotify::Wake), false},
        {nullptr, 0, false},
    };
    DefineCustomEnumVariable(
        "witn.pg_notify",
        "How settlement signals the notifications it writes on channel witn_outcomes.",
        "each: one pg_notify per notification, its payload the notification body. wake: one "
        "pg_notify per settling transaction, {\"type\": \"notifications\", \"count\": n}; read the "
        "bodies from witn.notifications. PostgreSQL keeps every pending payload in memory until "
        "commit, so wake bounds the memory of settling a large backlog.",
        &witn::pg::pg_notify_mode, static_cast<int>(witn::pg::PgNotify::Each), modes, PGC_USERSET, 0,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "witn.webhook_timeout", "How long a webhook delivery attempt may take, connecting and answering.",
        "An answer that is not a 2xx within it is a failed attempt, retried on witn.webhook_retry_schedule.",
        &witn::pg::webhook_timeout_ms, 15000, 100, 300000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "witn.webhook_retry_schedule", "The waits between webhook delivery attempts, then failed.",
        "A comma-separated list of waits (s, min, h, d), each spread by up to 10% either way.",
        &witn::pg::webhook_retry_schedule, "5s,5min,30min,2h,5h,10h,10h", PGC_SIGHUP, 0,
        witn::pg::check_retry_schedule, nullptr, nullptr);
    DefineCustomStringVariable(
        "witn.webhook_allowed_hosts", "The hosts webhook endpoints may be on ('' allows every host).",
        "A comma-separated list of host names or addresses; *.example.com for every name under example.com.",
        &witn::pg::webhook_allowed_hosts, "", PGC_SIGHUP, 0, witn::pg::check_allowed_hosts, nullptr, nullptr);
    DefineCustomIntVariable(
        "witn.webhook_max_connections", "Connections the delivery worker of a database keeps to each webhook endpoint.",
        "Deliveries to one endpoint are sent in parallel over at most this many kept-alive connections.",
        &witn::pg::webhook_max_connections, 8, 1, 64, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "witn.webhook_delivery", "Whether the delivery worker sends webhooks (off: deliveries wait, nothing is sent).",
        "Set it in postgresql.conf for the whole server, or for one database with ALTER DATABASE ... SET "
        "witn.webhook_delivery = off (a copy, a staging restore); the worker sees a change within 10 seconds.",
        &witn::pg::webhook_delivery, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    // Read by witn.cron_call() (sql/install/35_cron.sql) with current_setting(); it lives here
    // because the witn. prefix is reserved. Every user of the database can read it, so it may
    // not hold a password (the foreign server witn_cron with a user mapping is the way for one).
    static char *cron_conninfo = nullptr;
    DefineCustomStringVariable(
        "witn.cron_conninfo", "How witn reaches pg_cron's database through dblink ('' : the server's socket, as the caller).",
        "A libpq connection string, without a password (every user can read this setting). The foreign server "
        "witn_cron, with a user mapping, takes precedence and is the way to give a password.",
        &cron_conninfo, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("witn");
    if (process_shared_preload_libraries_in_progress) witn::pg::register_webhook_launcher();
}
