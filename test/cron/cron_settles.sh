#!/usr/bin/env bash
# End to end with the real pg_cron, which lives in database postgres (cron.database_name) while
# witn lives in the test database:
#   - CREATE EXTENSION witn needs no pg_cron in its database;
#   - without dblink, witn.schedule_settlement() raises WT009 whose hint is the statement to run
#     in the cron database, and that statement works;
#   - with dblink and the foreign server witn_cron, it schedules "witn-settle:<db>" as the role
#     of the caller's user mapping (a witn_operator, not a superuser), calling it again replaces
#     the schedule;
#   - due outcomes settle with nobody calling witn.settle(): CONFIRMED/FAILED with their invoice
#     line and notification, and cron.job_run_details shows a succeeded run;
#   - witn.unschedule_settlement() removes the job.
#
# Needs PGHOST PGPORT PGUSER (superuser) PGDATABASE; the cluster must preload pg_cron with
# cron.database_name = 'postgres', cron.use_background_workers = on, enough
# max_worker_processes, and CREATE EXTENSION pg_cron in database postgres.
# Waits up to WITN_CRON_WAIT_SECONDS (default 130) for the job to run.
set -u

wait_seconds=${WITN_CRON_WAIT_SECONDS:-130}
db=${PGDATABASE:?PGDATABASE must name the test database}
job_name="witn-settle:$db"
scratch_db="witn_cron_nocron_$$"
job_role="witn_cron_runner_$$"
failures=0

sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
cron_sql() { psql -X -qAt -v ON_ERROR_STOP=1 -d postgres -c "$1"; }

cleanup() {
    cron_sql "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = '$job_name'" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $scratch_db" >/dev/null 2>&1
    sql "DROP SERVER IF EXISTS witn_cron CASCADE" >/dev/null 2>&1
    psql -X -q -d postgres -c "REVOKE ALL ON SCHEMA cron FROM $job_role" \
        -c "REVOKE ALL ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) FROM $job_role" \
        -c "DROP ROLE IF EXISTS $job_role" >/dev/null 2>&1
}
trap cleanup EXIT

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

# Runs a statement and prints "<sqlstate>|<hint>" of the error it raises ("none" if it does not).
error_of() {
    sql "DO \$\$
         DECLARE state text; hint text;
         BEGIN
             BEGIN
                 $1;
             EXCEPTION WHEN OTHERS THEN
                 GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, hint = PG_EXCEPTION_HINT;
                 RAISE NOTICE 'error_of:%|%', state, hint;
                 RETURN;
             END;
             RAISE NOTICE 'error_of:none';
         END \$\$" 2>&1 | sed -n 's/^NOTICE:  error_of://p'
}

if [[ $(cron_sql "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'" 2>/dev/null) != 1 ]]; then
    echo "not ok - pg_cron is not installed in database postgres"
    exit 1
fi

# ---------------------------------------------------------------------------------------------
# witn installs without pg_cron in its database.
# ---------------------------------------------------------------------------------------------
check "the test database has no pg_cron" "0" "$(sql "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")"
psql -X -q -d postgres -c "CREATE DATABASE $scratch_db" >/dev/null
check "CREATE EXTENSION witn CASCADE works in a database without pg_cron" "witn" \
    "$(psql -X -qAt -v ON_ERROR_STOP=1 -d "$scratch_db" -c "CREATE EXTENSION witn CASCADE" \
        -c "SELECT extname FROM pg_extension WHERE extname = 'witn'" 2>&1)"
psql -X -q -d postgres -c "DROP DATABASE $scratch_db" >/dev/null

# ---------------------------------------------------------------------------------------------
# Without dblink: WT009, and the hint is the statement to run in the cron database.
# ---------------------------------------------------------------------------------------------
sql "DROP EXTENSION IF EXISTS dblink" >/dev/null 2>&1
result=$(error_of "PERFORM witn.schedule_settlement()")
check "without dblink, schedule_settlement() raises WT009" "WT009" "${result%%|*}"
hint=${result#*|}
check "the hint names cron.schedule_in_database" "yes" "$([[ $hint == *cron.schedule_in_database* ]] && echo yes || echo "no: $hint")"
check "without dblink, unschedule_settlement() raises WT009 too" "WT009" \
    "$(error_of "PERFORM witn.unschedule_settlement()" | cut -d'|' -f1)"
statement=$(sed -n 's/.*\(SELECT cron\.schedule_in_database(.*)\);\{0,1\}$/\1/p' <<<"$hint")
check "the hint's statement, run in database postgres, schedules the job for this database" "$db|SELECT witn.settle()" \
    "$(cron_sql "$statement" >/dev/null 2>&1; cron_sql "SELECT database || '|' || command FROM cron.job WHERE jobname = '$job_name'")"
cron_sql "SELECT cron.unschedule('$job_name')" >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
# With dblink: schedule, replace, and let pg_cron settle.
# ---------------------------------------------------------------------------------------------
# The job runs as the role of the caller's user mapping for the foreign server witn_cron: a
# witn_operator allowed to schedule in the cron database.
sql "CREATE EXTENSION dblink" >/dev/null
cron_sql "CREATE ROLE $job_role LOGIN IN ROLE witn_operator;
          GRANT USAGE ON SCHEMA cron TO $job_role;
          GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO $job_role" >/dev/null
sql "CREATE SERVER witn_cron FOREIGN DATA WRAPPER dblink_fdw OPTIONS (dbname 'postgres', host '$PGHOST', port '$PGPORT');
     CREATE USER MAPPING FOR CURRENT_USER SERVER witn_cron OPTIONS (user '$job_role')" >/dev/null
job_id=$(sql "SELECT witn.schedule_settlement('*/5 * * * *')")
check "schedule_settlement returns the job id" "$job_id" \
    "$(cron_sql "SELECT jobid FROM cron.job WHERE jobname = '$job_name'")"
check "calling it again replaces the schedule: same job, new schedule" "$job_id|* * * * *" \
    "$(sql "SELECT witn.schedule_settlement()" >/dev/null; cron_sql "SELECT jobid || '|' || schedule FROM cron.job WHERE jobname = '$job_name'")"
check "one job, in this database, running witn.settle() as the mapped role" "1|$db|SELECT witn.settle()|true|$job_role" \
    "$(cron_sql "SELECT count(*) OVER () || '|' || database || '|' || command || '|' || active || '|' || username FROM cron.job WHERE jobname = '$job_name'")"

# Outcomes whose window has already passed, and one that passes in a few seconds.
sql "
INSERT INTO witn.rate_cards (key, currency) VALUES ('standard', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'standard');
INSERT INTO witn.agents (key, condition, settlement_period)
    VALUES ('quick', '[{\"fact\": \"done\", \"operator\": \"seen\"}]', '1 second');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('standard', 'quick', 4.5);
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES
    ('acme', 'passed', 'done', 'quick', now() - interval '5 seconds'),
    ('acme', 'missed', 'opened', 'quick', now() - interval '5 seconds');
INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
    VALUES ('acme', 'explicit', 'done', 'quick',
            jsonb_build_object('settles_at', now() + interval '3 seconds'));
" >/dev/null || { echo "not ok - setup"; exit 1; }
check "before the job runs, nothing is settled" "0" \
    "$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL")"

echo "# waiting up to ${wait_seconds}s for pg_cron to run witn.settle() (job $job_id)"
deadline=$((SECONDS + wait_seconds))
until [[ $(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL") == 3 ]] || ((SECONDS > deadline)); do
    sleep 2
done
echo "# waited $((SECONDS - deadline + wait_seconds))s"
if [[ $(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL") != 0 ]]; then
    echo "# not settled in time; cron.use_background_workers = $(cron_sql "SHOW cron.use_background_workers"),"
    echo "# latest runs of job $job_id:"
    cron_sql "SELECT status || ' ' || coalesce(return_message, '') FROM cron.job_run_details
               WHERE jobid = $job_id ORDER BY runid DESC LIMIT 3" | sed 's/^/#   /'
fi
check "pg_cron settled the outcomes: CONFIRMED, FAILED, and the one with properties.settles_at" \
    "explicit|CONFIRMED missed|FAILED passed|CONFIRMED " \
    "$(sql "SELECT key || '|' || status FROM witn.outcomes ORDER BY key" | tr '\n' ' ')"
check "resolved_at = settles_at" "0" \
    "$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS DISTINCT FROM settles_at")"
check "invoice lines for the confirmed ones" "explicit|4.5 passed|4.5 " \
    "$(sql "SELECT outcome_key || '|' || amount FROM witn.invoice_lines ORDER BY outcome_key" | tr '\n' ' ')"
check "a notification for each" "3" "$(sql "SELECT count(*) FROM witn.notifications")"
check "no settlement error" "0" "$(sql "SELECT count(*) FROM witn.settlement_errors")"

# The run's status is written once its transaction has finished.
until [[ $(cron_sql "SELECT count(*) FROM cron.job_run_details WHERE jobid = $job_id AND status = 'succeeded'") != 0 ]] \
    || ((SECONDS > deadline + 10)); do
    sleep 1
done
check "cron.job_run_details has a succeeded run of the job, in this database" "yes" \
    "$(cron_sql "SELECT 'yes' FROM cron.job_run_details WHERE jobid = $job_id AND status = 'succeeded'
                    AND database = '$db' AND command = 'SELECT witn.settle()' LIMIT 1")"
check "and no failed run" "0" \
    "$(cron_sql "SELECT count(*) FROM cron.job_run_details WHERE jobid = $job_id AND status = 'failed'")"

# ---------------------------------------------------------------------------------------------
# Unschedule.
# ---------------------------------------------------------------------------------------------
check "unschedule_settlement() returns true" "t" "$(sql "SELECT witn.unschedule_settlement()")"
check "the job is gone" "0" "$(cron_sql "SELECT count(*) FROM cron.job WHERE jobname = '$job_name'")"
check "unscheduling again, with nothing scheduled, returns false" "f" \
    "$(sql "SELECT witn.unschedule_settlement()" 2>&1 | head -1)"

if ((failures)); then
    echo "cron_settles: $failures check(s) failed"
    exit 1
fi
echo "cron_settles: all checks passed"
