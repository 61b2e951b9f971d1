// Included first by every file in src/core: the core must stay free of PostgreSQL headers so it
// can be unit-tested and fuzzed on its own.
#pragma once
#if defined(POSTGRES_H) || defined(PG_CONFIG_H)
static_assert(false, "src/core must not include PostgreSQL headers");
#endif
