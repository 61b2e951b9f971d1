// The library's settings (GUCs), defined when it is loaded.
#pragma once

namespace witn::pg {

// witn.pg_notify: how settlement signals its notifications.
enum class PgNotify { Each, Wake };
extern int pg_notify_mode;

} // namespace witn::pg
