#!/usr/bin/env bash
# witn on Citus against a single node, in one run: ingestion (single-row INSERTs from pgbench,
# multi-row INSERT ... SELECT statements, COPY) and settlement, on a throwaway Citus cluster of
# one coordinator and two workers (test/citus/cluster.sh, 127.0.0.1 only) and, for the single
# node, in a database of the same coordinator where witn is installed but not distributed (as
# test/citus/same_as_single_node.sh does). See docs/scale-out.md and docs/performance.md.
#
#   test/bench/citus.sh            full scale (about 4 to 5 minutes on 2 cores)
#   test/bench/citus.sh --smoke    tiny scale, a few seconds per phase (the test run)
# Options: --out DIR (keep logs, the workload files, the servers' logs and results.txt in DIR;
# by default they go to a temp directory removed at exit).
# Needs root (the nodes run as postgres through test/cluster.sh's helpers), Citus 12.1 and witn
# 0.4.0 installed into PostgreSQL 15 (this script builds and installs nothing). Ports from
# WITN_CITUS_PORT_BASE (default 56500). Leaves nothing behind: the cluster is stopped and its
# directory removed on exit, also on failure or interrupt.
#
# Phases (sizes at full scale; --smoke in brackets), each on both setups:
#   1. pgbench -n -M prepared -c 4 -j 2 -T 30 [3]: one single-row INSERT per transaction, on
#      20,000 [2,000] random outcomes of 100 customers (opened by their first event, updated by
#      the next ones): events/s;
#   2. 50 [5] INSERT ... SELECT statements of 1,000 events each, every statement over all 100
#      customers and 1,000 outcomes (10 events per outcome in all), then one COPY (psql \copy)
#      of 100,000 [5,000] rows, 10 per outcome: events/s of each; then, on Citus only, the same
#      statements once more with citus.max_adaptive_executor_pool_size = 1 (by default Citus
#      opens up to 16 new connections per worker for each multi-shard statement, each a new
#      backend whose witn starts cold; this shows what that costs);
#   3. 50,000 [2,000] open outcomes, one event each with occurred_at in January 2026, all due:
#      SELECT * FROM witn.settle(timestamptz '2026-02-01') timed: outcomes settled/s;
#   4. the per-event cost Citus adds, from (1): with C clients each waiting for its own
#      transaction, an event takes C / rate seconds of a client's time, so Citus adds
#      (1/citus_rate - 1/single_rate) * 1e6 * C microseconds to every single-row event; the same
#      for (2) with C = 1 (one session).
# Checks, fatal at any scale (the script exits 1 after printing the figures): after (1), in each
# setup, as many events as pgbench committed transactions, as many outcomes as outcome keys
# among them, accepted_events adding up to the events, nothing late or duplicated, no invoice
# line (a fixed-duration run commits a different number of events in each setup, so the two
# are not compared with each other); after (2) and (3), the same events, outcomes (and their
# status, quantity and counters), invoice lines (and amounts), notifications and settle()
# counts in both setups, nothing left due, no settlement error; after every phase
# SELECT count(*) FROM witn.verify() = 0 in both. Tables are emptied between phases.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0 OUT=""
while (($#)); do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# ---- scale -----------------------------------------------------------------------------------
if ((SMOKE)); then
    P1_SECONDS=3 P1_OUTCOMES=2000 B_STATEMENTS=5 COPY_ROWS=5000 SETTLE_N=2000 MODE="smoke scale"
else
    P1_SECONDS=30 P1_OUTCOMES=20000 B_STATEMENTS=50 COPY_ROWS=100000 SETTLE_N=50000 MODE="full scale"
fi
CLIENTS=4 THREADS=2 CUSTOMERS=100 B_PER=1000
B_EVENTS=$((B_STATEMENTS * B_PER))
B_OUTCOMES=$((B_EVENTS / 10 > B_PER ? B_EVENTS / 10 : B_PER))   # every statement: 1,000 outcomes
COPY_OUTCOMES=$((COPY_ROWS / 10))
SETTLE_CHUNK=10000                                                # events per loading statement

[ "$(id -u)" = 0 ] || { echo "citus.sh needs root: its nodes run as postgres" >&2; exit 2; }
export WITN_CITUS_PORT_BASE=${WITN_CITUS_PORT_BASE:-56500}
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"
# shellcheck source=test/citus/cluster.sh
. "$ROOT/test/citus/cluster.sh"
witn_citus_available || { echo "citus.sh: Citus is not installed into PostgreSQL $WITN_PG_VERSION" >&2; exit 2; }
[ -f "$("$WITN_PG_CONFIG" --sharedir)/extension/witn.control" ] ||
    { echo "citus.sh: witn is not installed into PostgreSQL $WITN_PG_VERSION (make install)" >&2; exit 2; }
PGBENCH=$WITN_PG_BIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench) || { echo "citus.sh: pgbench not found" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/witn-citus-bench.XXXXXX")
# shellcheck disable=SC2317 # exit hooks, called through witn_on_exit
cleanup_work() {
    if [ -n "$OUT" ]; then
        mkdir -p "$OUT"
        cp -r "$WORK"/. "$OUT"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
# shellcheck disable=SC2317
save_server_logs() { # before witn_citus_stop removes them (exit hooks run in order)
    local n
    [ -n "$OUT" ] && [ -n "$WITN_CITUS_DIR" ] || return 0
    for n in "$WITN_CITUS_DIR"/node*; do cp "$n/server.log" "$WORK/server-$(basename "$n").log" 2>/dev/null || true; done
}
witn_on_exit save_server_logs
witn_on_exit cleanup_work   # then witn_citus_stop, which witn_citus_start registers

CITUS=bench_citus SINGLE=bench_single
witn_citus_start >"$WORK/start.log" 2>&1 || { cat "$WORK/start.log" >&2; exit 1; }
witn_citus_db "$CITUS" >"$WORK/db.log" 2>&1 || { cat "$WORK/db.log" >&2; exit 1; }
witn_psql -d postgres -c "CREATE DATABASE $SINGLE" >/dev/null
witn_psql -d "$SINGLE" -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn" >/dev/null

q() { witn_psql -At -d "$1" -c "$2"; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }
FAIL=0
check() { # WHAT EXPECTED GOT
    if [ "$2" = "$3" ]; then
        echo "  ok - $1"
    else
        echo "  NOT OK - $1: expected [$2], got [$3]"
        FAIL=1
    fi
}
check_both() { # WHAT SQL: the same result in both setups
    local s c
    s=$(q "$SINGLE" "$2") c=$(q "$CITUS" "$2")
    check "$1 (single node: ${s:0:60})" "$s" "$c"
}
check_verify() {
    check "witn.verify() is empty on the single node" 0 "$(q "$SINGLE" "SELECT count(*) FROM witn.verify()")"
    check "witn.verify() is empty on Citus" 0 "$(q "$CITUS" "SELECT count(*) FROM witn.verify()")"
}
reset() { # empties witn's per-customer tables in both setups
    local db
    for db in "$SINGLE" "$CITUS"; do
        q "$db" "TRUNCATE witn.events, witn.outcomes, witn.invoice_lines, witn.notifications, witn.settlement_errors" >/dev/null
    done
}
MAXLOAD=0
note_load() {
    local l
    l=$(cut -d' ' -f1 /proc/loadavg)
    if awk "BEGIN { exit !($l > $MAXLOAD) }"; then MAXLOAD=$l; fi
}
# timed DB LOG PSQL_ARGS...: runs psql with \timing on in one session; SECS = the sum of its
# statements' times as psql reports them (the connection not included).
timed() {
    local db=$1 log=$2
    shift 2
    note_load
    witn_psql -d "$db" -c CHECKPOINT >/dev/null
    witn_psql -d "$db" -v ON_ERROR_STOP=1 -c '\timing on' "$@" >"$log" 2>&1 ||
        { echo "citus.sh: failed (log $log):" >&2; tail -n 20 "$log" >&2; exit 1; }
    SECS=$(awk '/^Time:/ { s += $2 } END { printf "%.3f", s / 1000 }' "$log")
}

setup=$(cat <<'SQL'
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 100) g;
INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
VALUES ('support', '[{"fact": "replied", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}]', 'sum', '1 day');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 0.10);
SQL
)
q "$SINGLE" "$setup" >/dev/null
q "$CITUS" "$setup" >/dev/null
SHARDS=$(q "$CITUS" "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'witn.events'::regclass")
echo "witn on Citus vs a single node, $MODE; Citus nodes ${WITN_CITUS_PORTS[*]} (coordinator first)"
check "witn is distributed in $CITUS and not in $SINGLE" "t f" "$(q "$CITUS" "SELECT witn.distributed()") $(q "$SINGLE" "SELECT witn.distributed()")"

declare -A RATE
# ---- 1. single-row INSERTs through pgbench ---------------------------------------------------
echo "1. pgbench: one single-row INSERT per transaction, $CLIENTS clients, ${P1_SECONDS}s, $P1_OUTCOMES outcomes of $CUSTOMERS customers"
cat >"$WORK/single_row.pgbench" <<'EOF'
-- One event for a random outcome: its first event opens it, the next ones update it.
\set o random(1, :outcomes)
\set c 1 + :o % 100
\set a random(1, 10)
INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
VALUES ('c' || :c, 'p-' || :o, CASE WHEN :a = 10 THEN 'reopened' ELSE 'replied' END, 'support',
        jsonb_build_object('attribution', 1 + :a % 3, 'channel', 'chat'));
EOF
for setup in single citus; do
    db=$SINGLE; [ $setup = citus ] && db=$CITUS
    log=$WORK/1.$setup.pgbench.log
    witn_psql -d "$db" -c CHECKPOINT >/dev/null
    note_load
    if ! "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$THREADS" -T "$P1_SECONDS" -D outcomes="$P1_OUTCOMES" \
            -f "$WORK/single_row.pgbench" "$db" >"$log" 2>&1; then
        echo "citus.sh: pgbench failed on $setup:" >&2; tail -n 20 "$log" >&2; exit 1
    fi
    tps=$(awk '/^tps = / { print $3 }' "$log")
    done_tx=$(awk -F': ' '/^number of transactions actually processed/ { print $2 }' "$log" | cut -d/ -f1)
    failed_tx=$(awk -F': ' '/^number of failed transactions/ { print $2 + 0 }' "$log")
    RATE[1.$setup]=$tps
    printf '  %-12s %8s transactions committed, %s failed, %.0f tps\n' "$setup" "$done_tx" "${failed_tx:-0}" "$tps"
    check "$setup: no failed transaction" 0 "${failed_tx:-0}"
    check "$setup: one event per committed transaction" "$done_tx" "$(q "$db" "SELECT count(*) FROM witn.events")"
    # (Separate queries: Citus pushes no subquery down from a target list with aggregates.)
    got="$(q "$db" "SELECT count(*) || ' ' || coalesce(sum(accepted_events), 0) || ' ' || coalesce(sum(late_events), 0) FROM witn.outcomes")"
    got+=" $(q "$db" "SELECT count(*) FROM witn.events WHERE duplicate_of IS NOT NULL OR late") $(q "$db" "SELECT count(*) FROM witn.invoice_lines")"
    check "$setup: one outcome per outcome key, its events adding up, nothing late or duplicated, no invoice line" \
        "$(q "$db" "SELECT count(*) FROM (SELECT DISTINCT customer_key, key FROM witn.events) k") $done_tx 0 0 0" "$got"
done
check_verify

# ---- 2. batched: INSERT ... SELECT statements of 1,000 events, and one COPY ------------------
echo "2. batched: $B_STATEMENTS INSERT ... SELECT statements of $B_PER events over $CUSTOMERS customers ($B_OUTCOMES outcomes), then COPY of $COPY_ROWS rows ($COPY_OUTCOMES outcomes)"
reset
# Statement i carries events j = i * 1000 .. i * 1000 + 999; event j is for outcome j mod
# B_OUTCOMES, of customer 1 + (outcome mod 100): 1,000 outcomes, 10 per customer, per statement.
for ((i = 0; i < B_STATEMENTS; i++)); do
    echo "INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
SELECT 'c' || (1 + (j % $B_OUTCOMES) % $CUSTOMERS), 'b-' || (j % $B_OUTCOMES),
       CASE WHEN j % 17 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
       jsonb_build_object('attribution', 1 + j % 3, 'channel', 'chat')
  FROM generate_series($((i * B_PER)), $((i * B_PER + B_PER - 1))) j;"
done >"$WORK/batched.sql"
# The COPY rows, 10 per outcome, the outcomes' events spread over the whole file.
witn_psql -At -d "$SINGLE" -c "COPY (SELECT 'c' || (1 + (j % $COPY_OUTCOMES) % $CUSTOMERS), 'k-' || (j % $COPY_OUTCOMES),
        CASE WHEN j % 17 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
        jsonb_build_object('attribution', 1 + j % 3, 'channel', 'chat')
   FROM generate_series(0, $((COPY_ROWS - 1))) j) TO STDOUT WITH (FORMAT csv)" >"$WORK/copy.csv"
COPY_CMD="\\copy witn.events (customer_key, key, action, agent_key, properties) FROM '$WORK/copy.csv' WITH (FORMAT csv)"
for setup in single citus; do
    db=$SINGLE; [ $setup = citus ] && db=$CITUS
    timed "$db" "$WORK/2.$setup.insert.log" -f "$WORK/batched.sql"
    RATE[2i.$setup]=$(calc "$B_EVENTS / $SECS")
    printf '  %-12s INSERT ... SELECT %8s events in %7.3f s\n' "$setup" "$B_EVENTS" "$SECS"
    q "$db" "VACUUM ANALYZE witn.events, witn.outcomes" >/dev/null
    timed "$db" "$WORK/2.$setup.copy.log" -c "$COPY_CMD"
    [ "$SECS" != 0.000 ] || { echo "citus.sh: psql printed no time for \\copy" >&2; exit 1; }
    RATE[2c.$setup]=$(calc "$COPY_ROWS / $SECS")
    printf '  %-12s COPY              %8s rows   in %7.3f s\n' "$setup" "$COPY_ROWS" "$SECS"
done
check_both "the same events" "SELECT count(*) || ' ' || count(*) FILTER (WHERE late OR duplicate_of IS NOT NULL) FROM witn.events"
check "as many events as sent" "$((B_EVENTS + COPY_ROWS))" "$(q "$CITUS" "SELECT count(*) FROM witn.events")"
check_both "the same outcomes, by status" \
    "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM witn.outcomes GROUP BY 1) s"
check "as many outcomes as outcome keys sent" "$((B_OUTCOMES + COPY_OUTCOMES))" "$(q "$CITUS" "SELECT count(*) FROM witn.outcomes")"
check_both "every outcome's status, quantity, counters and condition the same (md5)" \
    "SELECT md5(string_agg(concat_ws(',', customer_key, key, status, scheduled_resolution, quantity, condition_holds,
                                     accepted_events, late_events), ';' ORDER BY customer_key, key)) FROM witn.outcomes"
check_both "the same invoice lines (none yet)" "SELECT count(*) FROM witn.invoice_lines"
check_verify
# The INSERT ... SELECT statements again on Citus, each on one cached connection per worker.
OUTCOMES_B="SELECT count(*) || ' ' || md5(string_agg(concat_ws(',', customer_key, key, status, scheduled_resolution, quantity,
                condition_holds, accepted_events, late_events), ';' ORDER BY customer_key, key)) FROM witn.outcomes WHERE key LIKE 'b-%'"
q "$CITUS" "TRUNCATE witn.events, witn.outcomes, witn.invoice_lines, witn.notifications, witn.settlement_errors" >/dev/null
PGOPTIONS="-c citus.max_adaptive_executor_pool_size=1" timed "$CITUS" "$WORK/2.citus.insert_pool1.log" -f "$WORK/batched.sql"
RATE[2p.citus]=$(calc "$B_EVENTS / $SECS")
printf '  %-12s INSERT ... SELECT %8s events in %7.3f s with citus.max_adaptive_executor_pool_size = 1\n' citus "$B_EVENTS" "$SECS"
check "with one connection per worker: the same outcomes as the single node's" "$(q "$SINGLE" "$OUTCOMES_B")" "$(q "$CITUS" "$OUTCOMES_B")"
check "with one connection per worker: witn.verify() is empty on Citus" 0 "$(q "$CITUS" "SELECT count(*) FROM witn.verify()")"

# ---- 3. settlement -----------------------------------------------------------------------------
echo "3. settlement: $SETTLE_N due outcomes (one event each, occurred_at in January 2026), witn.settle(timestamptz '2026-02-01')"
reset
# Outcome j: customer 1 + j mod 100; every 5th only 'reopened' (stays OPEN, settles FAILED), the
# others 'replied' (PENDING, settles CONFIRMED with an invoice line); due from 2026-01-02 on.
for setup in single citus; do
    db=$SINGLE; [ $setup = citus ] && db=$CITUS
    for ((i = 0; i < SETTLE_N; i += SETTLE_CHUNK)); do
        end=$((i + SETTLE_CHUNK)); ((end <= SETTLE_N)) || end=$SETTLE_N
        q "$db" "INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
                 SELECT 'c' || (1 + j % $CUSTOMERS), 's-' || j, CASE WHEN j % 5 = 0 THEN 'reopened' ELSE 'replied' END,
                        'support', jsonb_build_object('attribution', 1 + j % 3),
                        timestamptz '2026-01-01' + make_interval(secs => j)
                   FROM generate_series($i, $((end - 1))) j" >/dev/null
    done
    q "$db" "VACUUM ANALYZE witn.events, witn.outcomes, witn.invoice_lines, witn.notifications" >/dev/null
done
check_both "the same open outcomes before settlement" \
    "SELECT count(*) || ' ' || count(*) FILTER (WHERE resolved_at IS NULL AND settles_at <= timestamptz '2026-02-01') FROM witn.outcomes"
declare -A SETTLED
for setup in single citus; do
    db=$SINGLE; [ $setup = citus ] && db=$CITUS
    timed "$db" "$WORK/3.$setup.settle.log" -At -c "SELECT confirmed || ' ' || failed || ' ' || errors FROM witn.settle(timestamptz '2026-02-01')"
    SETTLED[$setup]=$(grep -E '^[0-9]+ [0-9]+ [0-9]+$' "$WORK/3.$setup.settle.log" || true)
    read -r confirmed failed errors <<<"${SETTLED[$setup]:-0 0 0}"
    RATE[3.$setup]=$(calc "($confirmed + $failed) / $SECS")
    printf '  %-12s %8s confirmed, %s failed, %s errors in %7.3f s\n' "$setup" "$confirmed" "$failed" "$errors" "$SECS"
    check "$setup: settle() settled every due outcome, without an error" "$SETTLE_N 0" "$((confirmed + failed)) $errors"
done
check "settle() returned the same counts" "${SETTLED[single]:-}" "${SETTLED[citus]:-}"
check "nothing left unresolved on Citus" 0 "$(q "$CITUS" "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")"
check_both "the same outcomes, by status" \
    "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM witn.outcomes GROUP BY 1) s"
check_both "the same invoice lines (count, total)" "SELECT count(*) || ' ' || coalesce(sum(amount), 0) FROM witn.invoice_lines"
check "one invoice line per confirmed outcome" "$(q "$CITUS" "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'")" \
    "$(q "$CITUS" "SELECT count(*) FROM witn.invoice_lines")"
check_both "the same notifications, one per resolved outcome" "SELECT count(*) FROM witn.notifications"
check_both "the same invoices" "SELECT string_agg(customer_key || ' ' || lines || ' ' || amount, ',' ORDER BY customer_key) FROM witn.invoices"
check_both "no settlement errors" "SELECT count(*) FROM witn.settlement_errors"
check_verify

# ---- report -------------------------------------------------------------------------------------
ratio() { calc "$1 / $2" 2; }
added_us() { calc "(1 / $1 - 1 / $2) * 1000000 * $3" 1; }   # CITUS_RATE SINGLE_RATE CLIENTS
line() { printf '%-22s single node %9.0f %-5s  citus %9.0f %-5s  ratio %s\n' "$1" "$2" "$4" "$3" "$4" "$(ratio "$3" "$2")"; }
{
echo
echo "witn $(q "$CITUS" "SELECT extversion FROM pg_extension WHERE extname = 'witn'") on Citus $(q "$CITUS" "SELECT extversion FROM pg_extension WHERE extname = 'citus'") (1 coordinator + $WITN_CITUS_WORKERS workers, $SHARDS shards per table, all on 127.0.0.1) vs a single node (a database of the coordinator, witn not distributed)"
echo "$MODE; PostgreSQL $(q "$SINGLE" "SHOW server_version" | cut -d' ' -f1) on $(nproc) cores (fsync off, synchronous_commit off, as test/citus/cluster.sh sets); highest 1-min load average before a timed step: $MAXLOAD"
line "ingest single-row" "${RATE[1.single]}" "${RATE[1.citus]}" "ev/s"
line "ingest INSERT..SELECT" "${RATE[2i.single]}" "${RATE[2i.citus]}" "ev/s"
line "ingest INS..SEL pool=1" "${RATE[2i.single]}" "${RATE[2p.citus]}" "ev/s"
line "ingest COPY" "${RATE[2c.single]}" "${RATE[2c.citus]}" "ev/s"
line "settlement" "${RATE[3.single]}" "${RATE[3.citus]}" "oc/s"
echo "added by Citus per event: single-row $(added_us "${RATE[1.citus]}" "${RATE[1.single]}" "$CLIENTS") us" \
     "(= (1/citus - 1/single) * 1e6 * $CLIENTS clients: each client's wait per event)," \
     "in 1000-event statements $(added_us "${RATE[2i.citus]}" "${RATE[2i.single]}" 1) us, in COPY $(added_us "${RATE[2c.citus]}" "${RATE[2c.single]}" 1) us (one session)"
echo "pool=1: Citus with citus.max_adaptive_executor_pool_size = 1 (one cached connection per worker instead of up to 16 new ones per statement)"
echo "(1) pgbench -n -M prepared -c $CLIENTS -j $THREADS -T $P1_SECONDS, $P1_OUTCOMES outcomes; (2) $B_STATEMENTS x $B_PER events, COPY of $COPY_ROWS; (3) $SETTLE_N due outcomes"
if ((FAIL)); then echo "CHECKS FAILED (see NOT OK above)"; else echo "checks: all passed"; fi
} | tee "$WORK/results.txt"
exit "$FAIL"
