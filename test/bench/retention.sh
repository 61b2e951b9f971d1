#!/usr/bin/env bash
# Retention (CONTRACT §25): witn.purge_events over a settled history, alone and while events are
# ingested, on a throwaway cluster (test/cluster.sh). See docs/performance.md.
#
#   test/bench/retention.sh           full scale (about a minute and a half on 2 cores)
#   test/bench/retention.sh --smoke   about 8 seconds (the test run; 1/100 scale, batches too)
#
# WITN_EXTRA_CONF="shared_buffers = 1GB" test/bench/retention.sh runs it with more shared buffers
# than witn.events' 308 MB (test/cluster.sh keeps PostgreSQL's default, 128 MB).
#
# The history: 1,000,000 [10,000] events over 200,000 [2,000] outcomes for four customers, five
# events each (an outcome's events spread over the table as a day's traffic spreads them), in
# three cohorts resolved one after the other: A (80,000 [800] outcomes), B (20,000 [200]),
# C (100,000 [1,000]). Every 10th outcome is of an agent with a 30-day reversal period: its
# confirmed outcomes are not purgeable yet, its failed ones are. Phases, each timed:
#   1. purge throughput: cohort A in batches of 10,000 [100] outcomes, cohort B in batches of
#      1,000 [10], alone, until witn.purge_events returns 0: events and outcomes per second, and
#      the WAL written per event;
#   2. ingestion alone: one session, statements of 1,000 [100] events opening 200 [20] new
#      outcomes, each its own transaction, for about as long as phase 3 will take;
#   3. the same ingestion while another session purges cohort C in batches of 10,000 [100], from
#      the purge's first batch to its last; a third session sends a late event for a random
#      outcome of cohort C every 20 ms (each may wait for the purge batch that holds its outcome);
#      ingestion's events/s and its longest statement, against phase 2; the share of its time
#      each backend was on a CPU (/proc/self/stat), events per CPU-second of the ingestion's
#      backend, how busy the machine's cores were (/proc/stat); what the ingestion and late
#      sessions wait for, sampled every 10 ms (pg_stat_activity);
#   4. the size of witn.events before the purge of cohorts A and B, after it, after VACUUM (run
#      twice, as autovacuum would), and after phase 2's ingestion (between phases 1 and 2): the
#      freed space is reused, the files do not shrink.
# Checks, fatal at any scale: the outcomes purged are exactly the eligible ones (counted from the
# history's construction, and by witn.retention_backlog); the others keep all their events; no
# event of a purged outcome remains but late ones sent during or after its purge; those sent
# after it all remain and change no outcome; every call's count adds up to the events deleted;
# the invoice lines (count and sum) are the same before and after; witn.verify() returns no row;
# the ingestion session is never seen waiting for a lock but a relation extension one.
# Needs root (the cluster runs as postgres) and witn 0.8.0 installed (this builds nothing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if ((SMOKE)); then SCALE=100; else SCALE=1; fi
A=$((80000 / SCALE)) B=$((20000 / SCALE)) C=$((100000 / SCALE))
BATCH=$((10000 / SCALE)) SMALL_BATCH=$((1000 / SCALE)) PER_STATEMENT=$((SMOKE ? 20 : 200))
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"
witn_cluster_start >/dev/null
witn_fresh_db bench_retention >/dev/null
export PGDATABASE=bench_retention
sql() { "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1048576 }'; }
# The machine's busy and total CPU time so far (/proc/stat, all cores), and how many cores were
# busy on average between two such readings.
machine() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
cores_busy() { # "BUSY0 TOTAL0" "BUSY1 TOTAL1"
    awk -v a="$1" -v b="$2" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%.2f", n * (y[1] - x[1]) / (y[2] - x[2] > 0 ? y[2] - x[2] : 1) }'
}

# ---- the history ---------------------------------------------------------------------------------
sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('usd', 'USD');
     INSERT INTO witn.customers (key, rate_card_key) VALUES
         ('acme', 'usd'), ('globex', 'usd'), ('initech', 'usd'), ('umbrella', 'usd');
     INSERT INTO witn.agents (key, condition, settlement_period) VALUES
         ('support', '[{\"fact\": \"agent_replied\", \"operator\": \"seen\"}, {\"fact\": \"reopened\", \"operator\": \"not seen\"}]', '1 second');
     INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
         ('refundable', '[{\"fact\": \"agent_replied\", \"operator\": \"seen\"}, {\"fact\": \"reopened\", \"operator\": \"not seen\"}]', '1 second',
          '[{\"fact\": \"refunded\", \"operator\": \"seen\"}]', '30 days');
     INSERT INTO witn.rate_card_prices VALUES ('usd', 'support', 2.50), ('usd', 'refundable', 4.00)" >/dev/null
# bench.events: five events each for outcomes PREFIX || FIRST..LAST, occurring at OCCURRED, interleaved
# (every outcome's first event, then every second one, ...). Outcome g is of agent refundable
# when g % 10 = 0, and fails when g % 7 = 0 (a reopen). bench.ingest and bench.purge run the
# timed loops, one transaction per statement, and keep each statement's time.
sql "CREATE SCHEMA bench;
CREATE FUNCTION bench.customer(g bigint) RETURNS text IMMUTABLE LANGUAGE sql
    RETURN (ARRAY['acme', 'globex', 'initech', 'umbrella'])[g % 4 + 1];
CREATE PROCEDURE bench.events(prefix text, first bigint, last bigint, occurred timestamptz) LANGUAGE sql AS \$\$
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    SELECT bench.customer(g), prefix || g,
           CASE j WHEN 1 THEN 'ticket_opened' WHEN 2 THEN 'agent_replied'
                  WHEN 3 THEN CASE WHEN g % 7 = 0 THEN 'reopened' ELSE 'customer_replied' END
                  WHEN 4 THEN 'note' ELSE 'csat' END,
           CASE WHEN j = 1 THEN CASE WHEN g % 10 = 0 THEN 'refundable' ELSE 'support' END END,
           CASE WHEN j = 5 THEN jsonb_build_object('value', g % 5 + 1)
                ELSE jsonb_build_object('channel', 'email', 'message_id', md5(prefix || g || j)) END,
           occurred + j * interval '1 millisecond', prefix || g || '/' || j
      FROM generate_series(1, 5) j, generate_series(first, last) g
     ORDER BY j, g
\$\$;
CREATE TABLE bench.state (running boolean NOT NULL, done boolean NOT NULL);
INSERT INTO bench.state VALUES (false, false);
CREATE TABLE bench.statements (phase text, n integer, started timestamptz, seconds float8, events bigint, purged_at timestamptz);
-- A loop's wall and CPU time (its backend's utime + stime, in clock ticks of 10 ms).
CREATE TABLE bench.sessions (phase text, wall float8, cpu float8);
CREATE FUNCTION bench.cpu() RETURNS float8 LANGUAGE sql RETURN
    (SELECT (f[12]::bigint + f[13]::bigint) / 100.0
       FROM regexp_split_to_array(substring(pg_read_file('/proc/self/stat') FROM '\) (.*)\$'), ' ') f);
-- From the purge's first batch to its last, every 10 ms: what the ingestion and late sessions wait for.
CREATE TABLE bench.waits (session text, wait text, samples bigint);
CREATE PROCEDURE bench.watch() LANGUAGE plpgsql AS \$\$
BEGIN
    CREATE TEMP TABLE seen (session text, wait text);
    WHILE NOT (SELECT running OR done FROM bench.state) LOOP PERFORM pg_sleep(0.005); END LOOP;
    WHILE NOT (SELECT done FROM bench.state) LOOP
        -- pg_stat_activity's rows are otherwise those of the transaction's first look.
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO seen SELECT application_name, coalesce(wait_event_type || ':' || wait_event, 'running')
          FROM pg_stat_activity WHERE application_name IN ('bench_retention_ingest', 'bench_retention_late') AND state = 'active';
        PERFORM pg_sleep(0.01);
    END LOOP;
    INSERT INTO bench.waits SELECT session, wait, count(*) FROM seen GROUP BY 1, 2;
END \$\$;
-- Statements of PER outcomes (5 events each), new outcomes PHASE || i || '-' || g, for SECONDS,
-- or (SECONDS NULL) from the purge's first batch to its last.
CREATE PROCEDURE bench.ingest(phase text, per integer, seconds float8) LANGUAGE plpgsql AS \$\$
DECLARE
    i integer := 0; t0 timestamptz; took float8[] := '{}'; starts timestamptz[] := '{}'; until timestamptz;
    wall0 timestamptz; cpu0 float8;
BEGIN
    IF seconds IS NULL THEN
        WHILE NOT (SELECT running OR done FROM bench.state) LOOP PERFORM pg_sleep(0.005); END LOOP;
    ELSE
        until := clock_timestamp() + seconds * interval '1 second';
    END IF;
    wall0 := clock_timestamp(); cpu0 := bench.cpu();
    LOOP
        EXIT WHEN CASE WHEN seconds IS NULL THEN (SELECT done FROM bench.state) ELSE clock_timestamp() >= until END;
        t0 := clock_timestamp();
        CALL bench.events(phase || i || '-', 1, per, t0);
        COMMIT;
        took := took || extract(epoch FROM clock_timestamp() - t0)::float8;
        starts := starts || t0;
        i := i + 1;
    END LOOP;
    INSERT INTO bench.sessions VALUES (phase, extract(epoch FROM clock_timestamp() - wall0), bench.cpu() - cpu0);
    INSERT INTO bench.statements SELECT phase, n, s, t, 5 * per FROM unnest(starts, took) WITH ORDINALITY u(s, t, n);
END \$\$;
-- From the purge's first batch to its last: every 20 ms a late event (action late_note) for a
-- random outcome 'c' || g of cohort C (G outcomes).
CREATE PROCEDURE bench.late(g integer) LANGUAGE plpgsql AS \$\$
DECLARE
    i integer := 0; k bigint; t0 timestamptz; took float8[] := '{}'; starts timestamptz[] := '{}';
BEGIN
    WHILE NOT (SELECT running OR done FROM bench.state) LOOP PERFORM pg_sleep(0.005); END LOOP;
    WHILE NOT (SELECT done FROM bench.state) LOOP
        k := 1 + floor(random() * g)::bigint;
        t0 := clock_timestamp();
        INSERT INTO witn.events (customer_key, key, action, properties)
        VALUES (bench.customer(k), 'c' || k, 'late_note', '{\"sent\": \"during the purge\"}');
        COMMIT;
        took := took || extract(epoch FROM clock_timestamp() - t0)::float8;
        starts := starts || t0;
        i := i + 1;
        PERFORM pg_sleep(0.02);
    END LOOP;
    INSERT INTO bench.statements SELECT 'late', n, s, t, 1 FROM unnest(starts, took) WITH ORDINALITY u(s, t, n);
END \$\$;
-- witn.purge_events(BEFORE, BATCH) until it returns 0, each call in a transaction of its own;
-- a batch's outcomes are the ones whose events_purged_at is its transaction's now().
CREATE PROCEDURE bench.purge(phase text, before timestamptz, batch integer) LANGUAGE plpgsql AS \$\$
DECLARE
    i integer := 0; t0 timestamptz; n bigint; took float8[] := '{}'; starts timestamptz[] := '{}'; got bigint[] := '{}';
    xact timestamptz[] := '{}'; wall0 timestamptz; cpu0 float8;
BEGIN
    UPDATE bench.state SET running = true, done = false;
    COMMIT;
    wall0 := clock_timestamp(); cpu0 := bench.cpu();
    LOOP
        t0 := clock_timestamp();
        xact := xact || now();
        n := witn.purge_events(before, batch);
        COMMIT;
        took := took || extract(epoch FROM clock_timestamp() - t0)::float8;
        starts := starts || t0;
        got := got || n;
        i := i + 1;
        EXIT WHEN n = 0;
    END LOOP;
    UPDATE bench.state SET running = false, done = true;
    INSERT INTO bench.sessions VALUES (phase, extract(epoch FROM clock_timestamp() - wall0), bench.cpu() - cpu0);
    INSERT INTO bench.statements SELECT phase, k, s, t, e, x FROM unnest(starts, took, got, xact) WITH ORDINALITY u(s, t, e, x, k);
END \$\$;" >/dev/null

t0=$(date +%s.%N)
slice=$((20000 / SCALE))
# COUNT outcomes PREFIX || g, in statements of 20,000 [200] outcomes (each statement's events
# arrive at once: none is late); resolved a second after their last event. Then, once every
# outcome of the cohort is resolved, the time before which the purge of that cohort takes them.
cohort() { # PREFIX COUNT
    local first
    for ((first = 1; first <= $2; first += slice)); do
        sql "CALL bench.events('$1', $first, $((first + slice - 1 < $2 ? first + slice - 1 : $2)), now())" >/dev/null
    done
    sleep 1.1
    sql "SELECT now()"
}
cut_a=$(cohort a "$A")
cut_b=$(cohort b "$B")
cut_c=$(cohort c "$C")
sql "SELECT * FROM witn.settle()" >/dev/null
build_s=$(awk "BEGIN { printf \"%.0f\", $(date +%s.%N) - $t0 }")
sql "VACUUM ANALYZE witn.events, witn.outcomes, witn.invoice_lines" >/dev/null
read -r events outcomes resolved <<<"$(sql "SELECT (SELECT count(*) FROM witn.events), count(*), count(resolved_at) FROM witn.outcomes" | tr '|' ' ')"
echo "history: $events events over $outcomes outcomes ($resolved resolved; cohorts A, B and C of $A, $B and $C, resolved one after the other), built and settled in ${build_s}s; shared_buffers $(sql "SHOW shared_buffers")"
check "the whole history is settled" "$outcomes" "$resolved"
# Eligible: every outcome but the confirmed ones of refundable (g % 10 = 0, g % 7 <> 0).
eligible() { sql "SELECT count(*) FROM generate_series(1, $1) g WHERE NOT (g % 10 = 0 AND g % 7 <> 0)"; }
eligible_a=$(eligible "$A") eligible_b=$(eligible "$B") eligible_c=$(eligible "$C")
check "witn.retention_backlog counts the eligible outcomes" "$((eligible_a + eligible_b + eligible_c))" \
    "$(sql "SELECT outcomes_with_events FROM witn.retention_backlog")"
lines="SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines"
lines_before=$(sql "$lines")
size() { sql "SELECT total_bytes || ' ' || pg_relation_size('witn.events') FROM witn.storage WHERE table_name = 'events'"; }
read -r size0 heap0 <<<"$(size)"
echo "witn.events before the purge: $(mb "$size0") ($(mb "$heap0") heap), $((size0 / events)) bytes per event with its indexes"

# ---- 1. purge throughput, alone -------------------------------------------------------------------
# PHASE: calls, events, outcomes, seconds, and the slowest call.
purge_figures() {
    sql "SELECT count(*), sum(s.events), (SELECT count(*) FROM witn.outcomes o WHERE o.events_purged_at IN
                (SELECT purged_at FROM bench.statements WHERE phase = '$1')),
            extract(epoch FROM max(s.started + s.seconds * interval '1 second') - min(s.started)), max(s.seconds)
       FROM bench.statements s WHERE s.phase = '$1'" | tr '|' ' '
}
report_purge() { # LABEL PHASE BATCH
    local calls n o secs slowest
    read -r calls n o secs slowest <<<"$(purge_figures "$2")"
    awk -v l="$1" -v c="$calls" -v n="$n" -v o="$o" -v s="$secs" -v m="$slowest" -v b="$3" 'BEGIN {
        printf "%s, batches of %d outcomes: %d events of %d outcomes in %d calls, %.2f s = %.0f events/s, %.0f outcomes/s; slowest call %.0f ms\n",
               l, b, n, o, c, s, n / s, o / s, m * 1000 }'
}
wal0=$(sql "SELECT pg_current_wal_lsn()")
sql "CALL bench.purge('purge_a', '$cut_a', $BATCH)" >/dev/null
report_purge "purge alone (cohort A)" purge_a "$BATCH"
echo "WAL written by the purge of cohort A: $(sql "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0') / sum(events)) FROM bench.statements WHERE phase = 'purge_a'") bytes per event deleted (full_page_writes is off here)"
sql "CALL bench.purge('purge_b', '$cut_b', $SMALL_BATCH)" >/dev/null
report_purge "purge alone (cohort B)" purge_b "$SMALL_BATCH"
check "cohort A: the eligible outcomes are purged, in calls until one returns 0" "$eligible_a $((5 * eligible_a)) 0" \
    "$(sql "SELECT (SELECT count(*) FROM witn.outcomes WHERE key LIKE 'a%' AND events_purged_at IS NOT NULL), sum(events),
                   (SELECT events FROM bench.statements WHERE phase = 'purge_a' ORDER BY n DESC LIMIT 1)
              FROM bench.statements WHERE phase = 'purge_a'" | tr '|' ' ')"
check "cohort B: the eligible outcomes are purged, nothing of cohort C" "$eligible_b $((5 * eligible_b)) 0" \
    "$(sql "SELECT (SELECT count(*) FROM witn.outcomes WHERE key LIKE 'b%' AND events_purged_at IS NOT NULL), sum(events),
                   (SELECT count(*) FROM witn.outcomes WHERE key LIKE 'c%' AND events_purged_at IS NOT NULL)
              FROM bench.statements WHERE phase = 'purge_b'" | tr '|' ' ')"

# ---- 4. space: what the purge of cohorts A and B freed, reused by phase 2's ingestion -------------
read -r size1 heap1 <<<"$(size)"
# Twice, as autovacuum would: the index pages the first VACUUM deletes are recycled by the next
# one (once no snapshot can still see them: after a transaction in between).
sql "VACUUM witn.events" >/dev/null
sql "SELECT txid_current()" >/dev/null
sql "VACUUM witn.events" >/dev/null
read -r size2 heap2 <<<"$(size)"

# ---- 2. and 3. ingestion alone, then while cohort C is purged -------------------------------------
# Phase 2 lasts about as long as the purge of cohort C will (at phase 1's rate), so that both
# have about as many statements for their longest one.
ingest_figures() { # PHASE: statements events seconds mean_ms p99_ms max_ms
    sql "SELECT count(*), sum(events), extract(epoch FROM max(started + seconds * interval '1 second') - min(started)),
                round(avg(seconds)::numeric * 1000, 1), round((percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds))::numeric * 1000, 1),
                round(max(seconds)::numeric * 1000, 1)
           FROM bench.statements WHERE phase = '$1'" | tr '|' ' '
}
alone_s=$(sql "SELECT greatest($( ((SMOKE)) && echo 0.2 || echo 1), round($((5 * eligible_c)) / (sum(events) / extract(epoch FROM max(started + seconds * interval '1 second') - min(started))), 1))
                FROM bench.statements WHERE phase = 'purge_a'")
machine_alone0=$(machine)
sql "CALL bench.ingest('alone', $PER_STATEMENT, $alone_s)" >/dev/null
machine_alone1=$(machine)
read -r size3 heap3 <<<"$(size)"
sql "UPDATE bench.state SET running = false, done = false" >/dev/null
work=$(mktemp -d); chmod 755 "$work"; witn_on_exit "rm -rf '$work'"
autovacuums="SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'witn.events'::regclass"
autovacuums0=$(sql "$autovacuums")
PGAPPNAME=bench_retention_ingest "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "CALL bench.ingest('busy', $PER_STATEMENT, NULL)" >"$work/ingest.out" 2>&1 &
ingest_pid=$!
PGAPPNAME=bench_retention_late "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "CALL bench.late($C)" >"$work/late.out" 2>&1 &
late_pid=$!
"$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "CALL bench.watch()" >"$work/watch.out" 2>&1 &
watch_pid=$!
"$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "CALL bench.purge('purge_c', '$cut_c', $BATCH)" >"$work/purge.out" 2>&1 &
purge_pid=$!
machine_busy0=$(machine)
for pid in $purge_pid $ingest_pid $late_pid $watch_pid; do
    wait "$pid" || { cat "$work"/*.out; exit 1; }
done
machine_busy1=$(machine)
report_purge "purge while ingesting (cohort C)" purge_c "$BATCH"
read -r a_n a_events a_s a_mean a_p99 a_max <<<"$(ingest_figures alone)"
read -r b_n b_events b_s b_mean b_p99 b_max <<<"$(ingest_figures busy)"
read -r l_n _ _ l_mean _ l_max <<<"$(ingest_figures late)"
slowest_purge=$(sql "SELECT round(max(seconds)::numeric * 1000) FROM bench.statements WHERE phase = 'purge_c'")
awk -v an="$a_n" -v ae="$a_events" -v as="$a_s" -v am="$a_mean" -v ap="$a_p99" -v ax="$a_max" \
    -v bn="$b_n" -v be="$b_events" -v bs="$b_s" -v bm="$b_mean" -v bp="$b_p99" -v bx="$b_max" -v per="$((5 * PER_STATEMENT))" 'BEGIN {
    printf "ingestion alone: %d statements of %d events, %.0f events/s; per statement %.1f ms mean, %.1f ms p99, %.1f ms max\n", an, per, ae / as, am, ap, ax
    printf "ingestion while purging: %d statements of %d events, %.0f events/s (ratio %.2f); per statement %.1f ms mean, %.1f ms p99, %.1f ms max\n",
           bn, per, be / bs, (be / bs) / (ae / as), bm, bp, bx }'
cpu() { sql "SELECT round((100 * cpu / wall)::numeric) FROM bench.sessions WHERE phase = '$1'"; }
# Events per second of the ingestion backend's own CPU time: what is left once the CPU it got is
# taken out (a ratio near 1: the purge cost it CPU time only, no waits).
per_cpu() { sql "SELECT round(sum(s.events) / max(x.cpu)) FROM bench.statements s, bench.sessions x WHERE s.phase = '$1' AND x.phase = '$1'"; }
echo "CPU: the ingestion backend on CPU $(cpu alone)% of its time alone, $(cpu busy)% while purging; the purge backend $(cpu purge_c)%; the machine's $(nproc) cores: $(cores_busy "$machine_alone0" "$machine_alone1") busy during the ingestion alone, $(cores_busy "$machine_busy0" "$machine_busy1") while purging (everything running on it); autovacuum of witn.events during the purge: $(($(sql "$autovacuums") - autovacuums0))"
echo "ingestion per CPU-second of its backend: $(per_cpu alone) events alone, $(per_cpu busy) while purging (ratio $(awk -v a="$(per_cpu alone)" -v b="$(per_cpu busy)" 'BEGIN { printf "%.2f", b / a }'))"
waits() { sql "SELECT coalesce(string_agg(wait || ' ' || samples, ', ' ORDER BY samples DESC), 'none') FROM bench.waits WHERE session = '$1'"; }
echo "the ingestion session, sampled every 10 ms while the purge ran: $(waits bench_retention_ingest)"
echo "the late session, sampled the same way: $(waits bench_retention_late)"
echo "late events for outcomes of cohort C while it was purged: $l_n, $l_mean ms mean, $l_max ms max (the slowest purge call took $slowest_purge ms)"
alone_events=$(sql "SELECT sum(events) FROM bench.statements WHERE phase = 'alone'")
echo "witn.events: $(mb "$size0") before the purge of cohorts A and B ($(mb "$heap0") heap), $(mb "$size1") after it ($(mb "$heap1")), $(mb "$size2") after VACUUM, twice ($(mb "$heap2")), $(mb "$size3") after the $alone_events events of the ingestion alone ($(mb "$heap3"); at $((size0 / events)) bytes each they would take $(mb $((alone_events * size0 / events))))"
# A relation extension lock (Lock:extend) is not the purge's: ingestion extends the tables.
check "the ingestion session never waited for a lock while the purge ran (samples every 10 ms)" "1 0" \
    "$(sql "SELECT (coalesce(sum(samples), 0) > 0)::int, coalesce(sum(samples) FILTER (WHERE wait LIKE 'Lock:%' AND wait <> 'Lock:extend'), 0)
              FROM bench.waits WHERE session = 'bench_retention_ingest'" | tr '|' ' ')"
check "ingestion statements committed while the purge ran" 1 \
    "$(sql "SELECT (count(*) >= 1)::int FROM bench.statements b WHERE b.phase = 'busy' AND b.started + b.seconds * interval '1 second'
              <= (SELECT max(started + seconds * interval '1 second') FROM bench.statements WHERE phase = 'purge_c')")"

# ---- checks after the purges -----------------------------------------------------------------------
check "cohort C: the eligible outcomes are purged" "$eligible_c" "$(sql "SELECT count(*) FROM witn.outcomes WHERE key LIKE 'c%' AND events_purged_at IS NOT NULL")"
check "nothing is left for witn.retention_backlog" 0 "$(sql "SELECT outcomes_with_events FROM witn.retention_backlog")"
check "the outcomes not eligible (confirmed, reversal period running) keep their five events each" \
    "$(((A + B + C) - (eligible_a + eligible_b + eligible_c))) 0" \
    "$(sql "SELECT count(*), count(*) FILTER (WHERE n <> 5) FROM (
              SELECT o.key, (SELECT count(*) FROM witn.events e WHERE e.customer_key = o.customer_key AND e.key = o.key
                                                                AND e.action <> 'late_note') n
                FROM witn.outcomes o WHERE o.resolved_at IS NOT NULL AND o.events_purged_at IS NULL) t" | tr '|' ' ')"
check "no event of a purged outcome remains but late ones sent during the purge" 0 \
    "$(sql "SELECT count(*) FROM witn.events e JOIN witn.outcomes o USING (customer_key, key)
             WHERE o.events_purged_at IS NOT NULL AND e.action <> 'late_note'")"
check "the calls' counts add up: cohort C's events and the late ones deleted with them" \
    "$(sql "SELECT sum(events) FROM bench.statements WHERE phase = 'purge_c'")" \
    "$(sql "SELECT $((5 * eligible_c)) + (SELECT count(*) FROM bench.statements WHERE phase = 'late')
                 - (SELECT count(*) FROM witn.events WHERE action = 'late_note')")"
# After every purge: a late event for every 10th purged outcome is stored and changes nothing.
purged_state="SELECT md5(string_agg(concat_ws(':', id, status, condition_holds, facts, quantity, unit_price, accepted_events, resolved_at, events_purged_at, reversed_at), ',' ORDER BY id))
                FROM witn.outcomes WHERE events_purged_at IS NOT NULL"
state_before=$(sql "$purged_state")
sent=$(sql "WITH sent AS (
              INSERT INTO witn.events (customer_key, key, action, properties)
              SELECT customer_key, key, 'late_note', '{\"sent\": \"after the purge\"}'
                FROM witn.outcomes WHERE events_purged_at IS NOT NULL AND id % 10 = 0 RETURNING 1)
            SELECT count(*) FROM sent")
check "late events sent after the purge all remain, stored as late" "$sent $sent" \
    "$(sql "SELECT count(*), count(*) FILTER (WHERE late OR after_resolution) FROM witn.events
             WHERE action = 'late_note' AND properties ->> 'sent' = 'after the purge'" | tr '|' ' ')"
check "and change no purged outcome" "$state_before" "$(sql "$purged_state")"
check "every invoice line is still there (count and sum)" "$lines_before" "$(sql "$lines")"
check "witn.verify() returns no row" 0 "$(sql "SET client_min_messages = warning; SELECT count(*) FROM witn.verify()")"

exit $fail
