#!/usr/bin/env bash
# ALTER EXTENSION witn UPDATE on a distributed database: Citus does not apply an extension
# script's changes to distributed tables' shards, so the update from 0.5.0 refuses with a clear
# error (0A000) before it changes anything, on the coordinator and on the workers; the database
# stays at 0.5.0, distributed as it was. (docs/scale-out.md, Limits.)
# Needs PGHOST/PGPORT (the coordinator), WITN_CITUS_PORTS (coordinator, then workers).
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
read -ra ports <<<"$WITN_CITUS_PORTS"
db=witn_citus_upgrade_from_050
on() { local p=$1; shift; psql -X -At -h 127.0.0.1 -p "$p" "$@"; }
cleanup() { for p in "${ports[@]}"; do on "$p" -d postgres -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
cleanup
for p in "${ports[@]}"; do
    on "$p" -d postgres -q -c "CREATE DATABASE $db" >/dev/null
    on "$p" -d "$db" -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null
done
on "${ports[0]}" -d "$db" -q -c "SELECT citus_set_coordinator_host('127.0.0.1', ${ports[0]})" >/dev/null
for p in "${ports[@]:1}"; do on "${ports[0]}" -d "$db" -q -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null; done
on "${ports[0]}" -d "$db" -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn VERSION '0.5.0' CASCADE" \
    -c "SELECT witn.distribute()" >/dev/null
out=$(on "${ports[0]}" -d "$db" -c '\set VERBOSITY verbose' -c "ALTER EXTENSION witn UPDATE" 2>&1 || true)
check "ALTER EXTENSION witn UPDATE is refused with 0A000 and says why" "yes" \
    "$(grep -q 'ERROR:  0A000: witn: ALTER EXTENSION witn UPDATE is not supported on a distributed database' <<<"$out" && echo yes || echo "$out")"
for p in "${ports[@]}"; do
    check "node $p stays at 0.5.0" "0.5.0" "$(on "$p" -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"
done
check "nothing of 0.6.0 was made (no credit_lines, no new columns)" "0 0" \
    "$(on "${ports[0]}" -d "$db" -c "SELECT (SELECT count(*) FROM pg_class WHERE relname = 'credit_lines') || ' ' || (SELECT count(*) FROM pg_attribute WHERE attrelid = 'witn.events'::regclass AND attname = 'after_resolution')")"
check "witn's 11 tables (0.5.0) are still distributed" "11" "$(on "${ports[0]}" -d "$db" -c "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'witn.%'")"
exit $fail
