#!/usr/bin/env bash
# witn.schedule_settlement() when the cron database wants a password. On a cluster of its own
# (test/cluster.sh, WITN_PORT_BASE 56100) whose pg_hba.conf lets the role witn_cron_job into the
# cron database postgres only over 127.0.0.1 with scram-sha-256, and rejects it on the socket:
#   - without credentials: WT009, the libpq/dblink message in DETAIL, and the hint's statement,
#     run in the cron database with the password, schedules the job;
#   - witn.cron_conninfo without a password: WT009 with "no password supplied"; with one: refused;
#   - the foreign server witn_cron with a user mapping: a job id, the job in cron.job for this
#     database and role, calling again replaces it, unschedule removes it; a wrong password or
#     no user mapping is WT009;
#   - witn installed in the cron database itself schedules there directly.
# (That pg_cron runs a job scheduled this way is checked by cron_settles.sh.)
set -u
export WITN_PORT_BASE=${WITN_CRON_PASSWORD_PORT_BASE:-56100}
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

password=witn-cron-secret
WITN_EXTRA_CONF="listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'" witn_cluster_start || exit 1
# First match wins: witn_cron_job reaches the cron database over TCP with a password only.
witn_as_cluster_user sed -i '1i local postgres witn_cron_job reject\nhost postgres witn_cron_job 127.0.0.1/32 scram-sha-256' \
    "$WITN_CLUSTER_DIR/data/pg_hba.conf"
witn_psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null

db=billing
witn_psql -d postgres -c "CREATE DATABASE $db" >/dev/null
witn_psql -d $db -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn CASCADE" -c "CREATE EXTENSION dblink" >/dev/null || exit 1
witn_psql -d postgres >/dev/null <<SQL || exit 1
CREATE ROLE witn_cron_job LOGIN PASSWORD '$password' IN ROLE witn_operator;
GRANT USAGE ON SCHEMA cron TO witn_cron_job;
GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO witn_cron_job;
SQL
# What a non-superuser needs to schedule (docs/operations.md, pg_cron setup).
witn_psql -d $db -c "GRANT EXECUTE ON FUNCTION witn.schedule_settlement(text), witn.unschedule_settlement(),
    witn.cron_job_name(), witn.cron_settings(), witn.cron_remote_statement(text), witn.cron_call(text) TO witn_cron_job" >/dev/null

as_job() { witn_psql -At -d $db -U witn_cron_job -c "$1" 2>&1; }
su_sql() { witn_psql -At -d $db -c "$1" 2>&1; }
cron_sql() { witn_psql -At -d postgres -c "$1" 2>&1; }
# The cron database as witn_cron_job: over TCP, with its password.
cron_as_job() { PGPASSWORD=$password witn_psql -At -h 127.0.0.1 -d postgres -U witn_cron_job -c "$1" 2>&1; }
job_name="witn-settle:$db"

# Runs a statement as ROLE (user name for psql) and prints "<sqlstate>|<message>|<detail>|<hint>".
error_of() { # role statement [setting]
    witn_psql -At -d $db -U "$1" -c "DO \$\$
         DECLARE state text; message text; detail text; hint text;
         BEGIN
             ${3:-}
             BEGIN
                 $2;
             EXCEPTION WHEN OTHERS THEN
                 GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                         detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
                 RAISE NOTICE 'error_of:%|%|%|%', state, message, detail, hint;
                 RETURN;
             END;
             RAISE NOTICE 'error_of:none';
         END \$\$" 2>&1 | sed -n 's/^NOTICE:  error_of://p'
}
field() { cut -d'|' -f"$1" <<<"$2"; }

check "the password is really needed: the socket is refused for witn_cron_job" "yes" \
    "$(contains "rejects connection" "$(witn_psql -At -d postgres -U witn_cron_job -c 'SELECT 1' 2>&1)")"
check "and TCP without a password is refused too" "yes" \
    "$(contains "no password supplied" "$(PGPASSWORD='' witn_psql -At -h 127.0.0.1 -w -d postgres -U witn_cron_job -c 'SELECT 1' 2>&1)")"

# ---------------------------------------------------------------------------------------------
# No credentials: WT009 with the reason, and a hint that works.
# ---------------------------------------------------------------------------------------------
result=$(error_of witn_cron_job "PERFORM witn.schedule_settlement()")
check "a role that may not read cron.database_name: WT009 that says so" "WT009|yes" \
    "$(field 1 "$result")|$(contains "may not read cron.database_name" "$(field 2 "$result")")"
check "and the hint still holds the statement to run" "yes" \
    "$(contains "SELECT cron.schedule_in_database('$job_name', '* * * * *', 'SELECT witn.settle()', '$db');" "$(field 4 "$result")")"
witn_psql -d postgres -c "GRANT pg_read_all_settings TO witn_cron_job" >/dev/null
result=$(error_of witn_cron_job "PERFORM witn.schedule_settlement()")
check "without credentials, schedule_settlement() raises WT009" "WT009" "$(field 1 "$result")"
check "the message says it could not get through dblink" "yes" "$(contains "through dblink" "$(field 2 "$result")")"
check "the detail carries dblink's reason (a non-superuser needs a password)" "yes" \
    "$(contains "password is required" "$(field 3 "$result")")"
hint=$(field 4 "$result")
check "the hint names the foreign server witn_cron" "yes" "$(contains "witn_cron" "$hint")"
statement=$(sed -n 's/.*\(SELECT cron\.schedule_in_database(.*)\);$/\1/p' <<<"$hint")
check "the hint's statement, run in the cron database as witn_cron_job, schedules the job" \
    "$db|witn_cron_job|SELECT witn.settle()" \
    "$(cron_as_job "$statement" >/dev/null; cron_sql "SELECT database || '|' || username || '|' || command FROM cron.job WHERE jobname = '$job_name'")"
cron_sql "SELECT cron.unschedule('$job_name')" >/dev/null
check "unschedule_settlement() without credentials is WT009 too" "WT009" \
    "$(field 1 "$(error_of witn_cron_job "PERFORM witn.unschedule_settlement()")")"
# From here on, witn_cron_job finds pg_cron through the foreign server witn_cron only.
witn_psql -d postgres -c "REVOKE pg_read_all_settings FROM witn_cron_job" >/dev/null

# ---------------------------------------------------------------------------------------------
# witn.cron_conninfo: where to connect, never a password.
# ---------------------------------------------------------------------------------------------
conninfo="host=127.0.0.1 port=$PGPORT dbname=postgres user=witn_cron_job"
result=$(error_of postgres "PERFORM witn.schedule_settlement()" "SET witn.cron_conninfo = '$conninfo';")
check "witn.cron_conninfo without a password: WT009" "WT009" "$(field 1 "$result")"
check "the detail is libpq's message" "yes" "$(contains "fe_sendauth: no password supplied" "$(field 3 "$result")")"
result=$(error_of postgres "PERFORM witn.schedule_settlement()" "SET witn.cron_conninfo = '$conninfo password=x';")
check "a witn.cron_conninfo holding a password is refused" "WT009|CRON_NOT_AVAILABLE: witn.cron_conninfo holds a password" \
    "$(field 1-2 "$result")"
check "so is a URI with a password" "WT009" \
    "$(field 1 "$(error_of postgres "PERFORM witn.schedule_settlement()" "SET witn.cron_conninfo = 'postgresql://witn_cron_job:x@127.0.0.1/postgres';")")"

# ---------------------------------------------------------------------------------------------
# The foreign server witn_cron and a user mapping: the recommended way.
# ---------------------------------------------------------------------------------------------
su_sql "CREATE SERVER witn_cron FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '127.0.0.1', port '$PGPORT', dbname 'postgres');
        GRANT USAGE ON FOREIGN SERVER witn_cron TO witn_cron_job;
        CREATE USER MAPPING FOR witn_cron_job SERVER witn_cron OPTIONS (user 'witn_cron_job', password 'wrong')" >/dev/null
result=$(error_of witn_cron_job "PERFORM witn.schedule_settlement()")
check "a wrong password in the user mapping: WT009 with the server's answer" "WT009|yes" \
    "$(field 1 "$result")|$(contains "password authentication failed" "$(field 3 "$result")")"
check "a caller without a user mapping: WT009" "WT009|yes" \
    "$(result=$(error_of postgres "PERFORM witn.schedule_settlement()"); echo "$(field 1 "$result")|$(contains "user mapping not found" "$(field 3 "$result")")")"
su_sql "ALTER USER MAPPING FOR witn_cron_job SERVER witn_cron OPTIONS (SET password '$password')" >/dev/null
check "the password is not readable by other users of the database" "0" \
    "$(witn_psql -At -d $db -c "CREATE ROLE witn_cron_nosy LOGIN" -c "GRANT USAGE ON FOREIGN SERVER witn_cron TO witn_cron_nosy" >/dev/null;
       witn_psql -At -d $db -U witn_cron_nosy -c "SELECT count(*) FROM pg_user_mappings WHERE umoptions::text LIKE '%$password%'" 2>&1)"
job_id=$(as_job "SELECT witn.schedule_settlement('*/5 * * * *')")
check "with the user mapping, schedule_settlement() returns the job id" "$job_id" \
    "$(cron_sql "SELECT jobid FROM cron.job WHERE jobname = '$job_name'")"
check "the job is in cron.job for this database, as the mapped role" "$db|witn_cron_job|*/5 * * * *|SELECT witn.settle()" \
    "$(cron_sql "SELECT database || '|' || username || '|' || schedule || '|' || command FROM cron.job WHERE jobid = ${job_id:-0}")"
check "calling again replaces it: same job, new schedule, still one" "$job_id|* * * * *|1" \
    "$(as_job "SELECT witn.schedule_settlement()" >/dev/null; cron_sql "SELECT jobid || '|' || schedule || '|' || count(*) OVER () FROM cron.job WHERE jobname = '$job_name'")"
check "unschedule_settlement() removes it" "t|0" \
    "$(as_job "SELECT witn.unschedule_settlement()")|$(cron_sql "SELECT count(*) FROM cron.job WHERE jobname = '$job_name'")"
check "and returns false when there is nothing left" "f" "$(as_job "SELECT witn.unschedule_settlement()")"
check "a bad schedule is WT001, with pg_cron's reason" "WT001|yes" \
    "$(result=$(error_of witn_cron_job "PERFORM witn.schedule_settlement('every day')"); echo "$(field 1 "$result")|$(contains "invalid schedule" "$(field 2 "$result")")")"

# ---------------------------------------------------------------------------------------------
# The default route (the unix socket) for a superuser, and pg_cron in witn's own database.
# ---------------------------------------------------------------------------------------------
su_sql "DROP SERVER witn_cron CASCADE" >/dev/null
check "without witn_cron, a superuser goes over the socket (trust)" "postgres" \
    "$(su_sql "SELECT witn.schedule_settlement()" >/dev/null; cron_sql "SELECT username FROM cron.job WHERE jobname = '$job_name'")"
su_sql "SELECT witn.unschedule_settlement()" >/dev/null
witn_psql -d postgres -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn" >/dev/null
check "witn in the cron database itself schedules there directly, without dblink" "postgres|SELECT witn.settle()" \
    "$(cron_sql "SELECT witn.schedule_settlement()" >/dev/null; cron_sql "SELECT database || '|' || command FROM cron.job WHERE jobname = 'witn-settle:postgres'")"
check "and unschedules there" "t|0" \
    "$(cron_sql "SELECT witn.unschedule_settlement()")|$(cron_sql "SELECT count(*) FROM cron.job WHERE jobname = 'witn-settle:postgres'")"
cron_sql "SELECT witn.schedule_settlement()" >/dev/null
check "DROP EXTENSION witn there removes its job too (locally)" "0|0" \
    "$(cron_sql "DROP EXTENSION witn" >/dev/null; cron_sql "SELECT count(*) FROM cron.job WHERE jobname = 'witn-settle:postgres'")|$(cron_sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'witn'")"

if ((failures)); then
    echo "cron_password: $failures check(s) failed"
    exit 1
fi
echo "cron_password: all checks passed"
