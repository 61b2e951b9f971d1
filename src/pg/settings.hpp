// The library's settings (GUCs), defined when it is loaded.
#pragma once

#include <string>

namespace witn::pg {

// witn.pg_notify: how settlement signals its notifications.
enum class PgNotify { Each, Wake };
extern int pg_notify_mode;

// Webhook delivery (CONTRACT §21), read by the delivery worker; all set in postgresql.conf
// (PGC_SIGHUP).
extern int webhook_timeout_ms;         // witn.webhook_timeout
extern char *webhook_retry_schedule;   // witn.webhook_retry_schedule
extern char *webhook_allowed_hosts;    // witn.webhook_allowed_hosts ('' = every host)
extern int webhook_max_connections;    // witn.webhook_max_connections, per endpoint
extern bool webhook_delivery;          // witn.webhook_delivery (also per database)
inline std::string webhook_allowed_hosts_text() { return webhook_allowed_hosts ? webhook_allowed_hosts : ""; }

} // namespace witn::pg
