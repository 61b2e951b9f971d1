// The library's version and the stamp of the SQL objects it runs against: the events trigger
// and witn.settle() pass the version of the install or upgrade script that created them, so a
// library and a schema of different versions refuse to write anything, with a clear error.
#pragma once

#include "pg/postgres.hpp"

namespace witn::pg {

// Raises 55000 unless `schema_version` (null: older than stamping) is this library's version.
void require_schema_version(const char *schema_version);

} // namespace witn::pg
