#!/usr/bin/env bash
# DROP EXTENSION witn leaves nothing of witn in the database (CONTRACT §26), on a cluster of its
# own (test/cluster.sh; roles are cluster-wide, so they are dropped here only), pg_cron in
# database postgres, witn in database billing only:
#   - a table of yours in schema witn: DROP EXTENSION is refused, and nothing is removed, not
#     even a pg_cron job; rolled back, a DROP ... CASCADE leaves everything as it was;
#   - then: no schema witn or witn_api, no event trigger, no pg_cron job named witn-... for this
#     database (other jobs stay), nothing in pg_shdepend for the witn_* roles, and DROP ROLE of
#     each witn role works;
#   - CREATE EXTENSION witn works again, DROP ... CASCADE drops a table of yours in schema witn,
#     DROP SCHEMA witn CASCADE removes the jobs too;
#   - under session_replication_role = replica the event trigger does not fire (documented);
#   - pg_cron out of reach (no dblink): DROP EXTENSION warns, with what to run, and goes on.
set -u
export WITN_PORT_BASE=${WITN_REMOVAL_PORT_BASE:-56150}
# shellcheck source=test/cluster.sh
. "$(dirname "$0")/../cluster.sh"

failures=0
check() { # description expected actual
    if [[ "$2" == "$3" ]]; then
        echo "ok - $1"
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#        got: $3"
        failures=$((failures + 1))
    fi
}
contains() { [[ "$2" == *"$1"* ]] && echo yes || echo "no: $2"; }

witn_cluster_start || exit 1
db=billing
sql() { witn_psql -At -d $db -c "$1" 2>&1; }
cron_sql() { witn_psql -At -d postgres -c "$1" 2>&1; }
install() { witn_psql -d $db -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn CASCADE" -c "CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null; }
# "<jobs of billing named witn-...>|<other jobs>"
jobs() { cron_sql "SELECT count(*) FILTER (WHERE database = '$db' AND jobname LIKE 'witn-%') || '|' || count(*) FILTER (WHERE NOT (database = '$db' AND jobname LIKE 'witn-%')) FROM cron.job"; }
# What of witn is left in billing: "<schemas witn, witn_api>|<extension>|<event triggers>|<pg_shdepend rows for witn_* roles>"
leftovers() {
    sql "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname IN ('witn', 'witn_api')) || '|' ||
                (SELECT count(*) FROM pg_extension WHERE extname = 'witn') || '|' ||
                (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'witn%') || '|' ||
                (SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
                  WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND r.rolname LIKE 'witn\_%')"
}

witn_psql -d postgres -c "CREATE DATABASE $db" >/dev/null
install || exit 1
sql "SELECT witn.schedule_settlement()" >/dev/null
# A retention job named as the docs name them, one of the user's, one of another database.
cron_sql "SELECT cron.schedule_in_database('witn-purge:$db', '0 3 * * *', 'SELECT 1', '$db'),
                 cron.schedule_in_database('mine', '0 4 * * *', 'SELECT 1', '$db'),
                 cron.schedule_in_database('witn-settle:elsewhere', '* * * * *', 'SELECT 1', 'postgres')" >/dev/null
check "installed: the schemas, the extension, its event trigger, grants to the witn roles" "yes" \
    "$(l=$(leftovers); [[ $l =~ ^2\|1\|1\|[1-9][0-9]*$ ]] && echo yes || echo "no: $l")"
check "two witn jobs of billing, two others" "2|2" "$(jobs)"
witn_psql -q -d postgres -c "CREATE ROLE witn_removal_user LOGIN" >/dev/null
witn_psql -q -d $db -c "GRANT CREATE ON DATABASE $db TO witn_removal_user" >/dev/null
check "the event trigger does not get in the way of others' DROP SCHEMA (a non-superuser's own)" "ok" \
    "$(witn_psql -q -d $db -U witn_removal_user -c "CREATE SCHEMA scratch" -c "DROP SCHEMA scratch" 2>&1 && echo ok)"
witn_psql -q -d $db -c "REVOKE CREATE ON DATABASE $db FROM witn_removal_user" -c "DROP ROLE witn_removal_user" >/dev/null

# ---------------------------------------------------------------------------------------------
# Refused or rolled back: nothing changes.
# ---------------------------------------------------------------------------------------------
sql "CREATE TABLE witn.mine (x int)" >/dev/null
out=$(sql "DROP EXTENSION witn")
check "a table of yours in schema witn: DROP EXTENSION is refused with PostgreSQL's usual error" "yes|yes" \
    "$(contains "cannot drop extension witn because other objects depend on it" "$out")|$(contains "table witn.mine depends on schema witn" "$out")"
check "and the jobs stay" "2|2" "$(jobs)"
check "BEGIN; DROP EXTENSION witn CASCADE; ROLLBACK leaves witn, its jobs and the table" "2|1|1|2|2|1" \
    "$(witn_psql -q -d $db -c "BEGIN" -c "DROP EXTENSION witn CASCADE" -c "ROLLBACK" >/dev/null 2>&1
       l=$(leftovers); echo "${l%|*}|$(jobs)|$(sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'witn' AND tablename = 'mine'")")"
check "so does a DROP in a savepoint rolled back to, in a transaction that commits" "2|1|1|2|2" \
    "$(witn_psql -q -d $db -c "BEGIN" -c "SAVEPOINT s" -c "DROP EXTENSION witn CASCADE" -c "ROLLBACK TO SAVEPOINT s" -c "COMMIT" >/dev/null 2>&1
       l=$(leftovers); echo "${l%|*}|$(jobs)")"
extension_oid=$(sql "SELECT oid FROM pg_extension WHERE extname = 'witn'")
check "and a DROP followed by CREATE EXTENSION witn in one transaction keeps the jobs (witn is back)" "new|2|2" \
    "$(witn_psql -q -d $db -c "SET client_min_messages = warning" -c "BEGIN" -c "DROP EXTENSION witn CASCADE" \
           -c "CREATE EXTENSION witn" -c "COMMIT" >/dev/null 2>&1
       [[ $(sql "SELECT oid FROM pg_extension WHERE extname = 'witn'") != "$extension_oid" ]] && echo -n new; echo "|$(jobs)")"
out=$(witn_psql -q -d $db -c "BEGIN" -c "DROP EXTENSION witn CASCADE" -c "DROP EXTENSION dblink" -c "COMMIT" 2>&1)
check "a removal that fails at commit (dblink dropped in between) fails the commit with WT009" "yes|yes" \
    "$(contains "CRON_NOT_AVAILABLE: could not remove witn's pg_cron jobs of this database in database postgres; nothing was dropped" "$out")|$(contains "HINT:  Make pg_cron reachable" "$out")"
check "and nothing was dropped: witn, dblink and the jobs are there" "2|1|1|1|2|2" \
    "$(l=$(leftovers); echo "${l%|*}|$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'dblink'")|$(jobs)")"
sql "CREATE TABLE IF NOT EXISTS witn.mine (x int)" >/dev/null

# ---------------------------------------------------------------------------------------------
# Dropped: nothing left.
# ---------------------------------------------------------------------------------------------
sql "DROP TABLE witn.mine" >/dev/null
out=$(witn_psql -d $db -c "DROP EXTENSION witn" 2>&1)
check "DROP EXTENSION witn says it removed the jobs" "yes" \
    "$(contains "removed 2 pg_cron job(s) of database billing from pg_cron in database postgres" "$out")"
check "no schema witn or witn_api, no extension, no event trigger, no grants to the witn roles" "0|0|0|0" "$(leftovers)"
check "no witn job of billing left in pg_cron; the others stay" "0|2" "$(jobs)"
check "the witn roles can then be dropped" "ok" \
    "$(witn_psql -q -d postgres -c "DROP ROLE witn_admin, witn_ingest, witn_reader, witn_customer, witn_operator" 2>&1 && echo ok)"

# ---------------------------------------------------------------------------------------------
# Again, with CASCADE and with DROP SCHEMA.
# ---------------------------------------------------------------------------------------------
check "CREATE EXTENSION witn after a drop works (and creates the roles again)" "5" \
    "$(install; sql "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'witn\_%'")"
sql "SELECT witn.schedule_settlement()" >/dev/null
sql "CREATE TABLE witn.mine (x int)" >/dev/null
check "DROP EXTENSION witn CASCADE drops a table of yours in schema witn too" "0|0|0|0|0|2" \
    "$(sql "DROP EXTENSION witn CASCADE" >/dev/null; echo "$(leftovers)|$(jobs)")"
install
sql "SELECT witn.schedule_settlement()" >/dev/null
check "DROP SCHEMA witn CASCADE removes the jobs too" "0|2" \
    "$(witn_psql -q -d $db -c "SET client_min_messages = warning" -c "DROP SCHEMA witn CASCADE" -c "DROP SCHEMA witn_api CASCADE" >/dev/null 2>&1; jobs)"

install
sql "SELECT witn.schedule_settlement()" >/dev/null
check "under session_replication_role = replica the event trigger does not fire: schema witn and the job stay" "1|1" \
    "$(PGOPTIONS='-c session_replication_role=replica' witn_psql -q -d $db -c "DROP EXTENSION witn" >/dev/null 2>&1
       sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'witn'")|$(jobs | cut -d'|' -f1)"
sql "DROP SCHEMA witn; DROP SCHEMA IF EXISTS witn_api" >/dev/null
cron_sql "SELECT cron.unschedule(jobid) FROM cron.job WHERE database = '$db' AND jobname LIKE 'witn-%'" >/dev/null

# ---------------------------------------------------------------------------------------------
# pg_cron out of reach. Without dblink (witn scheduled nothing from here): a warning with what to
# run for a job made by hand, and the drop goes on. With dblink but no connection: refused (its
# jobs would stay and fail every minute), with the ways out.
# ---------------------------------------------------------------------------------------------
install
sql "SELECT witn.schedule_settlement()" >/dev/null
sql "DROP EXTENSION dblink" >/dev/null
out=$(witn_psql -d $db -c "DROP EXTENSION witn" 2>&1)
check "without dblink, DROP EXTENSION witn warns" "yes" "$(contains "WARNING:  witn: could not look for witn's pg_cron jobs" "$out")"
hint=$(sed -n 's/^HINT:  If you scheduled any by hand, run in database postgres once the drop has committed: \(.*\);$/\1/p' <<<"$out")
check "and goes on" "0|0|0|0" "$(leftovers)"
check "the hint's statement removes the job" "1|0|2" "$(jobs | cut -d'|' -f1)|$(cron_sql "$hint" >/dev/null; jobs)"

install
sql "SELECT witn.schedule_settlement()" >/dev/null
sql "ALTER DATABASE $db SET witn.cron_conninfo = 'host=127.0.0.1 port=1 dbname=postgres'" >/dev/null
out=$(witn_psql -d $db -c "DROP EXTENSION witn" 2>&1)
check "with dblink and pg_cron out of reach, DROP EXTENSION witn is refused with WT009" "yes" \
    "$(contains "ERROR:  CRON_NOT_AVAILABLE: DROP EXTENSION witn cannot reach pg_cron to remove this database's jobs; nothing was dropped" "$out")"
check "and nothing is dropped" "1|1" "$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'witn'")|$(jobs | cut -d'|' -f1)"
unschedule=$(sed -n 's/^HINT:  .* or run in database postgres: \(SELECT cron.unschedule(jobid) [^;]*\); then here: \(.*\)$/\1/p' <<<"$out")
here=$(sed -n 's/^HINT:  .*; then here: \(.*\)$/\1/p' <<<"$out")
cron_sql "$unschedule" >/dev/null
witn_psql -q -d $db -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "$here" >/dev/null 2>&1
check "the hint's other way (unschedule by hand, disable the trigger, drop) leaves nothing" "0|0|0|0" "$(leftovers)"
check "and no job" "0" "$(jobs | cut -d'|' -f1)"
sql "ALTER DATABASE $db RESET witn.cron_conninfo" >/dev/null

if ((failures)); then
    echo "removal: $failures check(s) failed"
    exit 1
fi
echo "removal: all checks passed"
