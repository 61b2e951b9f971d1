// The library's entry: its magic block and its settings.
#include "pg/postgres.hpp"

#include "pg/settings.hpp"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace witn::pg {

int pg_notify_mode = static_cast<int>(PgNotify::Each);

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
    MarkGUCPrefixReserved("witn");
}
