// Included first by every file in src/core: the core must stay free of PostgreSQL headers so it
// can be unit-tested and fuzzed on its own.
#pragma once
// The glue (src/pg/postgres.hpp) defines WITN_GLUE before it includes core headers.
#if (defined(POSTGRES_H) || defined(PG_CONFIG_H)) && !defined(WITN_GLUE)
static_assert(false, "src/core must not include PostgreSQL headers");
#endif
