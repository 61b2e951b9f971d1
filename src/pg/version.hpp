// The library's version and the stamp of the SQL objects it runs against: the events trigger,
// the credit_lines trigger and witn.settle() pass the version of the install or upgrade script
// that created them, and the other entry points that read or write witn's tables compare
// pg_extension's version, so a library and a schema of different versions refuse to write or
// read anything, with a clear error.
#pragma once

#include "pg/postgres.hpp"

#include <string>

namespace witn::pg {

// What to do when the SQL objects are `schema_version` (null: older than stamping) and the
// library is this one: ALTER EXTENSION witn UPDATE, reconnect, or (witn preloaded) restart.
std::string version_hint(const char *schema_version);

// Raises 55000 unless `schema_version` (null: older than stamping) is this library's version.
void require_schema_version(const char *schema_version);

// The same for an entry point without a stamp (readers such as replay_on and simulate_on): the
// version in pg_extension, read once per command. Not for type I/O and pure functions, which
// work with any schema (pg_dump, the upgrade scripts themselves).
void require_installed_version();

} // namespace witn::pg
