#!/usr/bin/env bash
# witn benchmarks: event ingestion against a plain INSERT (floor), a naive PL/pgSQL trigger and
# a plain-SQL reference writing the same rows as witn (ref), witn's peak backend memory, and
# settlement at scale, in one run on a throwaway cluster. See docs/performance.md.
#
#   test/bench/run.sh            full scale (14 to 18 minutes on 2 cores)
#   test/bench/run.sh --smoke    1/100 scale, under a minute (CI)
# Options: --perf (perf profiles of witn's steps into the output directory), --keep (keep the
# cluster's directory), --out DIR (where logs, plans and results go; default a new temp dir).
# Exits non-zero when something fails to run or a correctness check fails (naive and witn
# disagree, verify() finds a difference, something due is not settled, the reference's outcome
# count differs from witn's); a MISSed speed or memory target is reported, not fatal.
#
# Scenarios: (a) INSERT ... SELECT, 10 events per outcome; (b) the same, 10,000 per outcome;
# (c) pgbench, one single-row INSERT per transaction; (d) COPY, 10 per outcome; (e) settlement;
# (f) one INSERT ... SELECT opening 1,000,000 outcomes with one event each (sizes at full scale;
# --smoke runs 1/100 of each).
# The reference (ref) of each ingest scenario writes, with nothing evaluated, the event rows into
# bench.floor_events and the outcome rows witn ends with (same columns, facts and attribution
# documents of the same size, counters, settles_at, check_at, last_event_id) into
# bench.ref_outcomes, in one statement: for (a), (b), (f)
#   WITH e AS (INSERT INTO bench.floor_events ... SELECT ... RETURNING ...)
#   INSERT INTO bench.ref_outcomes ... SELECT ... FROM e GROUP BY customer_key, key ON CONFLICT DO UPDATE
# for (c) the same per single-row transaction (ref_state_one.pgbench), and for (d), which cannot
# put COPY in a CTE, COPY into bench.floor_events followed, in the same transaction, by that
# grouped upsert of the outcome rows from the rows just copied. Like witn, whose statement
# trigger sorts within work_mem, the references run with the server's work_mem (4MB).
# Memory: peak private memory (RssAnon) of witn's backend for (a), (d), (f) at 100,000 and at
# 1,000,000 events per statement, and for witn.settle() of 100,000 and of 1,000,000 due outcomes
# (1/100 of those sizes with --smoke).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0 PERF=0 KEEP=0 OUT=""
while (($#)); do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --perf) PERF=1 ;;
        --keep) KEEP=1 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# ---- scale -----------------------------------------------------------------------------------
if ((SMOKE)); then
    A_EVENTS=2000 B_EVENTS=2000 B_PER=100 B_SAMPLE=(25 100)
    C_SECONDS=2 D_EVENTS=10000 D_NAIVE=1000 E_BIG=10000 M_SMALL=1000 M_BIG=10000 MODE="smoke (1/100 scale)"
else
    A_EVENTS=200000 B_EVENTS=200000 B_PER=10000 B_SAMPLE=(200 800)
    C_SECONDS=30 D_EVENTS=1000000 D_NAIVE=100000 E_BIG=1000000 M_SMALL=100000 M_BIG=1000000 MODE="full scale"
fi
# Floor and witn batch steps run REPEAT times; the fastest run counts (the machine may be shared).
REPEAT=$((SMOKE ? 1 : 2))
A_PER=10 D_PER=10 C_CLIENTS=8 C_THREADS=2 C_OUTCOMES=20000 B_OUTCOMES=$((B_EVENTS / B_PER))
# The memory figures' sizes (M_SMALL and M_BIG events per statement, or due outcomes per
# settle()) reuse steps that already have them: (d)'s COPY and (f)'s opening statement are M_BIG
# events, settlement runs on (d)'s M_SMALL outcomes and on (f)'s M_BIG.
if ((D_EVENTS != M_BIG || E_BIG != M_BIG || D_EVENTS / D_PER != M_SMALL)); then
    echo "scale: the memory sizes must be (d)'s and (f)'s" >&2; exit 2
fi

[ "$(id -u)" = 0 ] || { echo "run.sh needs root: it installs packages and runs the cluster as postgres" >&2; exit 2; }

# ---- dependencies, build -----------------------------------------------------------------------
missing=()
for p in postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-client-15 postgresql-contrib g++ make; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((PERF)) && { dpkg -s linux-perf >/dev/null 2>&1 || missing+=(linux-perf); }
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd "$ROOT" && flock /tmp/witn-build.lock make -s install >/dev/null)
PGBIN=$(pg_config --bindir)

# ---- throwaway cluster -----------------------------------------------------------------------
CLUSTER=$(mktemp -d /tmp/witn-bench-cluster.XXXXXX)
OUT=${OUT:-$(mktemp -d /tmp/witn-bench.XXXXXX)}
mkdir -p "$OUT"
chown postgres: "$CLUSTER"
export PGHOST=$CLUSTER PGPORT=5499 PGUSER=postgres PGDATABASE=bench
as_pg() { runuser -u postgres -- "$@"; }
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -m immediate stop >/dev/null 2>&1 || true
    ((KEEP)) || rm -rf "$CLUSTER"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -A trust -U postgres -D "$CLUSTER/data" >/dev/null
# Settings for a 2-core / 24 GiB machine. Durable commits (fsync and synchronous_commit on);
# autovacuum off and JIT off so neither lands inside a timed step (each load is followed by an
# explicit, untimed VACUUM ANALYZE); work_mem stays at its default, as most servers run it.
SETTINGS="shared_buffers=2GB max_wal_size=8GB checkpoint_timeout=30min synchronous_commit=on fsync=on
autovacuum=off jit=off maintenance_work_mem=512MB max_connections=40"
cat >>"$CLUSTER/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$CLUSTER'
port = $PGPORT
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
$(for s in $SETTINGS; do echo "${s%%=*} = '${s#*=}'"; done)
EOF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w start >/dev/null
"$PGBIN/createdb" bench

psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_q -At -c "$1"; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

psql_q -f "$HERE/schema.sql" >/dev/null

declare -A SECS CPU ROWS MEM MEMKB HWM DNF
MAXLOAD=0
# The machine may be shared: note the load before each step, and measure the backend's own CPU
# time beside the wall time.
note_load() {
    local l
    l=$(cut -d' ' -f1 /proc/loadavg)
    if awk "BEGIN { exit !($l > $MAXLOAD) }"; then MAXLOAD=$l; fi
}
# step LABEL ROWS SQL [TIMEOUT_S]: runs SQL in a fresh session after a CHECKPOINT and records the
# wall time of the statements (psql \timing, commit included), the backend's CPU time for them
# (utime + stime), its peak private memory (RssAnon, sampled every 20 ms) and its VmHWM (peak
# resident, shared buffers included). With a timeout, a step that runs out is reported as DNF.
step() {
    local label=$1 rows=$2 body=$3 timeout=${4:-0} pidf="$OUT/$1.pid" memf="$OUT/$1.rss" sampler
    note_load
    rm -f "$pidf" "$memf"
    (
        while [ ! -s "$pidf" ]; do sleep 0.01; done
        pid=$(<"$pidf") max=0
        if ((PERF)) && [[ $label == *witn* || $label == e.* ]]; then
            perf record -q -F 499 -g -p "$pid" -o "$OUT/perf-$label.data" >/dev/null 2>&1 &
        fi
        while [ -r "/proc/$pid/status" ]; do
            while read -r k v _; do
                [ "$k" = RssAnon: ] && ((v > max)) && max=$v
            done <"/proc/$pid/status" 2>/dev/null || true
            echo "$max" >"$memf"
            sleep 0.02
        done
        wait
    ) &
    sampler=$!
    psql_q -v ON_ERROR_STOP=$((timeout == 0)) >"$OUT/$label.log" 2>&1 <<EOF
SELECT pg_backend_pid() AS pid \gset
\o $pidf
\qecho :pid
\o
CHECKPOINT;
SET statement_timeout = '${timeout}s';
SELECT split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint
     + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint AS ticks0 \gset
\timing on
$body
\timing off
SELECT split_part(pg_read_file('/proc/self/stat'), ' ', 14)::bigint
     + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::bigint - :ticks0 AS ticks \gset
\echo CPU :ticks
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1] AS hwm \gset
\echo HWM :hwm
EOF
    wait "$sampler"
    SECS[$label]=$(awk '/^Time:/ { s += $2 } END { printf "%.3f", s / 1000 }' "$OUT/$label.log")
    CPU[$label]=$(awk -v hz="$(getconf CLK_TCK)" '/^CPU/ { printf "%.2f", $2 / hz }' "$OUT/$label.log")
    if grep -q "canceling statement due to statement timeout" "$OUT/$label.log"; then
        DNF[$label]=1 SECS[$label]=$timeout
    elif grep -q "^ERROR" "$OUT/$label.log"; then
        cat "$OUT/$label.log" >&2
        exit 1
    fi
    ROWS[$label]=$rows
    MEMKB[$label]=$(cat "$memf" 2>/dev/null || echo 0)
    MEM[$label]=$(calc "${MEMKB[$label]} / 1024" 0)
    HWM[$label]=$(calc "$(awk '/^HWM/ { print $2 }' "$OUT/$label.log") / 1024" 0)
    if [ -f "$OUT/perf-$label.data" ]; then perf_summary "$OUT/perf-$label"; fi
    printf '  %-16s %10s rows %9.3f s wall %8.2f s cpu%s\n' "$label" "$rows" "${SECS[$label]}" "${CPU[$label]}" \
        "$([ -n "${DNF[$label]:-}" ] && echo "  (did not finish: statement_timeout)")"
}
# perf_summary BASE: the flat profile (self time) and the inclusive one (children) as text.
perf_summary() {
    {
        echo "# self time"
        perf report -i "$1.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -40
        echo "# including callees"
        perf report -i "$1.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -80
    } | sed 's/  */ /g' | cut -c1-160 >"$1.txt" || true
}

reset() {
    case "$1" in
        floor) sql "TRUNCATE bench.floor_events" ;;
        naive) sql "TRUNCATE bench.naive_events, bench.naive_outcomes" ;;
        witn) sql "TRUNCATE witn.events, witn.outcomes, witn.invoice_lines, witn.notifications, witn.settlement_errors" ;;
        ref) sql "TRUNCATE bench.floor_events, bench.ref_outcomes, bench.ref_lines, bench.ref_notifications" ;;
    esac
}
table_of() { case "$1" in floor | ref) echo bench.floor_events ;; naive) echo bench.naive_events ;; witn) echo witn.events ;; esac; }
outcomes_of() { case "$1" in floor) echo NULL ;; naive) echo "'bench.naive_outcomes'" ;; witn) echo "'witn.outcomes'" ;; ref) echo "'bench.ref_outcomes'" ;; esac; }
declare -A FOOT
# footprint LABEL ENGINE: bytes per event of the engine's event table and of its outcomes table.
footprint() {
    sql "VACUUM ANALYZE $(table_of "$2")" >/dev/null
    FOOT[$1]=$(sql "SELECT events_bytes || ' ' || outcomes_bytes FROM bench.footprint('$(table_of "$2")', $(outcomes_of "$2"))")
}
COLS="customer_key, key, action, agent_key, properties, occurred_at"
# best LABEL ENGINE ROWS SQL: the step REPEAT times on an emptied engine; keeps the fastest.
best() {
    local i keep=""
    for ((i = 0; i < REPEAT; i++)); do
        reset "$2"
        step "$1" "$3" "$4"
        if [ -z "$keep" ] || awk "BEGIN { exit !(${SECS[$1]} < ${keep%% *}) }"; then
            keep="${SECS[$1]} ${CPU[$1]} ${MEM[$1]} ${MEMKB[$1]} ${HWM[$1]}"
        fi
    done
    read -r SECS[$1] CPU[$1] MEM[$1] MEMKB[$1] HWM[$1] <<<"$keep"
}
insert_from() { echo "INSERT INTO $(table_of "$1") ($COLS) SELECT $COLS FROM $2;"; }
copy_from() { echo "COPY $(table_of "$1") ($COLS) FROM '$2' WITH (FORMAT csv);"; }
# The reference's outcome rows, one per outcome of the events in ROWS (a CTE or a subquery with
# their id, customer_key, key, agent_key, occurred_at): counters, settles_at and check_at from the
# events, the contract snapshot from witn.agents, the evaluated columns and the facts and
# attribution documents copied from witn's outcome for SCENARIO (bench.ref_docs): nothing
# evaluated. An upsert, as any writer that does not know whether an outcome exists must do.
ref_outcomes_from() { # SCENARIO ROWS
    cat <<EOF
INSERT INTO bench.ref_outcomes AS o (customer_key, key, agent_key, status, scheduled_resolution,
    settles_at, check_at, condition, settlement_period, attribution_method, agent_version,
    unit_price, currency, quantity, condition_holds, accepted_events, facts, attribution, last_event_id)
SELECT g.customer_key, g.key, g.agent_key, d.status, d.scheduled_resolution,
       g.last_at + a.settlement_period, g.last_at + a.settlement_period, a.condition,
       a.settlement_period, a.attribution_method, a.version, 0.99, 'USD', d.quantity,
       d.condition_holds, g.n, d.facts, d.attribution, g.last_id
  FROM (SELECT customer_key, key, min(agent_key) AS agent_key, count(*) AS n,
               max(occurred_at) AS last_at, max(id) AS last_id
          FROM $2 GROUP BY customer_key, key) g
  JOIN witn.agents a ON a.key = g.agent_key
  JOIN bench.ref_docs d ON d.scenario = '$1'
ON CONFLICT (customer_key, key) DO UPDATE
   SET accepted_events = o.accepted_events + excluded.accepted_events,
       settles_at = greatest(o.settles_at, excluded.settles_at), facts = excluded.facts,
       attribution = excluded.attribution, last_event_id = excluded.last_event_id, updated_at = now();
EOF
}
# ref_insert_from SCENARIO SOURCE: the events and their outcome rows in one statement.
ref_insert_from() {
    echo "WITH e AS (INSERT INTO bench.floor_events ($COLS) SELECT $COLS FROM $2"
    echo "           RETURNING id, customer_key, key, agent_key, occurred_at)"
    ref_outcomes_from "$1" e
}
# ref_copy_from SCENARIO FILE: COPY, then in the same transaction the outcome rows of the rows
# just copied (those above the highest id before the COPY).
ref_copy_from() {
    echo "BEGIN;"
    printf '%s\n' "SELECT coalesce(max(id), 0) AS id0 FROM bench.floor_events \gset"
    copy_from ref "$2"
    ref_outcomes_from "$1" "bench.floor_events WHERE id > :id0"
    echo "COMMIT;"
}
declare -A WITN_N REF_CHECK
REF_BAD=0
# ref_check SCENARIO EXPECTED: the reference must have written EXPECTED outcome rows (witn's
# count for the same events) whose accepted_events add up to the events it wrote.
ref_check() {
    local got n acc ev
    got=$(sql "SELECT count(*) || ' ' || coalesce(sum(accepted_events), 0) || ' ' || (SELECT count(*) FROM bench.floor_events)
                 FROM bench.ref_outcomes")
    read -r n acc ev <<<"$got"
    REF_CHECK[$1]="$n/$2"
    if [ "$n" != "$2" ] || [ "$acc" != "$ev" ]; then
        REF_BAD=1 REF_CHECK[$1]+=" MISMATCH (accepted_events $acc of $ev events)"
    fi
}
witn_outcomes() { sql "SELECT count(*) FROM witn.outcomes"; }
without_trigger() { echo "ALTER TABLE witn.events DISABLE TRIGGER events_apply; $1 ALTER TABLE witn.events ENABLE TRIGGER events_apply;"; }

echo "witn benchmark, $MODE; results in $OUT"
echo "generating events"
sql "CREATE TABLE bench.src_a AS SELECT * FROM bench.events($A_EVENTS, $A_PER, 'a-', now() - interval '1 hour')"
sql "CREATE TABLE bench.src_b AS SELECT * FROM bench.events($B_EVENTS, $B_PER, 'b-', now() - interval '1 hour')"
for n in "${B_SAMPLE[@]}"; do
    sql "CREATE TABLE bench.src_b_$n AS SELECT * FROM bench.events($((B_OUTCOMES * n)), $n, 'b-', now() - interval '1 hour')"
done
sql "CREATE TABLE bench.src_e AS SELECT * FROM bench.events($E_BIG, 1, 'e-', now() - interval '1 hour')"
sql "COPY (SELECT * FROM bench.events($D_EVENTS, $D_PER, 'd-', now() - interval '1 hour')) TO '$CLUSTER/d.csv' WITH (FORMAT csv)"
sql "COPY (SELECT * FROM bench.events($D_NAIVE, $D_PER, 'd-', now() - interval '1 hour')) TO '$CLUSTER/d-naive.csv' WITH (FORMAT csv)"
# The memory steps' sources: (a) and (f) at M_SMALL and (a) at M_BIG events, (d) at M_SMALL.
sql "CREATE TABLE bench.src_a_$M_SMALL AS SELECT * FROM bench.events($M_SMALL, $A_PER, 'm-', now() - interval '1 hour')"
sql "CREATE TABLE bench.src_a_$M_BIG AS SELECT * FROM bench.events($M_BIG, $A_PER, 'm-', now() - interval '1 hour')"
sql "CREATE TABLE bench.src_f_$M_SMALL AS SELECT * FROM bench.events($M_SMALL, 1, 'm-', now() - interval '1 hour')"
sql "COPY (SELECT * FROM bench.events($M_SMALL, $D_PER, 'm-', now() - interval '1 hour')) TO '$CLUSTER/d-$M_SMALL.csv' WITH (FORMAT csv)"
# Only the sources: an empty table that was analyzed (reltuples 0) gets seq-scan plans that
# PL/pgSQL's plan cache keeps as the table grows (the naive trigger then slows down 7x at 20,000
# events); a truncated, never-analyzed table is estimated at 10 pages and gets index scans.
sql "VACUUM ANALYZE bench.src_a, bench.src_b, bench.src_e$(printf ', bench.src_b_%s' "${B_SAMPLE[@]}"),
     bench.src_a_$M_SMALL, bench.src_a_$M_BIG, bench.src_f_$M_SMALL" >/dev/null

# ---- (a) INSERT ... SELECT, 10 events per outcome --------------------------------------------
echo "(a) INSERT ... SELECT of $A_EVENTS events, $A_PER per outcome"
for e in floor naive witn; do
    if [ $e = naive ]; then step a.naive "$A_EVENTS" "$(insert_from naive bench.src_a)"; else best "a.$e" "$e" "$A_EVENTS" "$(insert_from $e bench.src_a)"; fi
    footprint "a.$e" "$e"
done
# The naive trigger and witn must agree on every outcome; witn's stored state must match a replay.
MISMATCH=$(sql "SELECT count(*) FROM bench.naive_outcomes n FULL JOIN witn.outcomes w USING (customer_key, key)
                 WHERE (n.status, n.scheduled_resolution, n.condition_holds, n.accepted_events, n.settles_at, n.quantity)
                       IS DISTINCT FROM (w.status::text, w.scheduled_resolution::text, w.condition_holds, w.accepted_events, w.settles_at, w.quantity)")
VERIFY=$(sql "SELECT count(*) FROM witn.verify()")
STATUSES=$(sql "SELECT string_agg(s || ' ' || n, ', ' ORDER BY s) FROM (SELECT status || coalesce('/' || scheduled_resolution, '') s, count(*) n FROM witn.outcomes GROUP BY 1) s")
# The reference: the same events and outcome rows in plain SQL, after witn (whose outcome rows
# give the documents it writes).
WITN_N[a]=$(witn_outcomes)
sql "SELECT bench.ref_sample('a')" >/dev/null
best a.ref ref "$A_EVENTS" "$(ref_insert_from a bench.src_a)"
ref_check a "${WITN_N[a]}"
footprint a.ref ref
reset ref
reset witn
step a.witn_notrigger "$A_EVENTS" "$(without_trigger "$(insert_from witn bench.src_a)")"
reset witn

# ---- (b) the same number of events, 10,000 per outcome -----------------------------------------
echo "(b) INSERT ... SELECT of $B_EVENTS events, $B_PER per outcome ($B_OUTCOMES outcomes)"
best b.floor floor "$B_EVENTS" "$(insert_from floor bench.src_b)"
best b.witn witn "$B_EVENTS" "$(insert_from witn bench.src_b)"
WITN_N[b]=$(witn_outcomes)
sql "SELECT bench.ref_sample('b')" >/dev/null
best b.ref ref "$B_EVENTS" "$(ref_insert_from b bench.src_b)"
ref_check b "${WITN_N[b]}"
reset ref
# The naive trigger re-reads the log on every event: quadratic in events per outcome. It runs two
# samples (n1 and n2 = 4 n1 events per outcome, same outcomes) and extrapolates their CPU times
# with T(n) = a n + b n^2.
for n in "${B_SAMPLE[@]}"; do
    reset naive
    step "b.naive_$n" "$((B_OUTCOMES * n))" "$(insert_from naive "bench.src_b_$n")"
done
n1=${B_SAMPLE[0]} n2=${B_SAMPLE[1]}
t1=${CPU[b.naive_$n1]} t2=${CPU[b.naive_$n2]}
quad=$(calc "($t2 - 4 * $t1) / (12 * $n1 * $n1)" 12)
if awk "BEGIN { exit !($quad > 0) }"; then
    lin=$(calc "($t1 - $quad * $n1 * $n1) / $n1" 12)
    SECS[b.naive]=$(calc "$lin * $B_PER + $quad * $B_PER * $B_PER" 1)
else
    SECS[b.naive]=$(calc "$t2 * $B_PER / $n2" 1)
fi
ROWS[b.naive]=$B_EVENTS MEM[b.naive]=${MEM[b.naive_$n2]} HWM[b.naive]=${HWM[b.naive_$n2]} CPU[b.naive]=${SECS[b.naive]}
for e in floor naive witn; do reset "$e"; done

# ---- (c) single-row INSERTs from 8 clients -----------------------------------------------------
echo "(c) pgbench: one INSERT per transaction, $C_CLIENTS clients, ${C_SECONDS}s"
declare -A TPS TXCPU
# CPU ticks the whole server has used: its live processes, plus what the postmaster collected
# from the backends that exited (cutime, cstime).
server_ticks() {
    local pm f t c
    pm=$(head -1 "$CLUSTER/data/postmaster.pid")
    read -r -a f <"/proc/$pm/stat"
    t=$((f[13] + f[14] + f[15] + f[16]))
    for c in $(pgrep -P "$pm"); do
        if read -r -a f <"/proc/$c/stat" 2>/dev/null; then t=$((t + f[13] + f[14])); fi
    done
    echo "$t"
}
pgbench_run() { # LABEL ENGINE [PGOPTIONS]
    local script=insert_one.pgbench
    [ "$2" = ref ] && script=ref_state_one.pgbench   # the event plus its outcome upsert, plain SQL
    sed "s/@TARGET@/$(table_of "$2")/" "$HERE/$script" >"$OUT/$1.pgbench"
    sql CHECKPOINT
    note_load
    local bench_pid t0 pids
    t0=$(server_ticks)
    PGOPTIONS=${3:-} "$PGBIN/pgbench" -n -M prepared -c "$C_CLIENTS" -j "$C_THREADS" -T "$C_SECONDS" \
        -D outcomes="$C_OUTCOMES" -f "$OUT/$1.pgbench" >"$OUT/$1.log" 2>&1 &
    bench_pid=$!
    # Profile this cluster's pgbench backends only (the machine may run other servers).
    if ((PERF)) && [[ $1 == *witn* ]] && ((C_SECONDS > 3)); then
        sleep 1
        pids=$(sql "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
        perf record -q -g -F 499 -p "$pids" -o "$OUT/perf-$1.data" -- sleep $((C_SECONDS - 3)) >/dev/null 2>&1 || true
    fi
    wait "$bench_pid" || { cat "$OUT/$1.log"; exit 1; }
    if [ -f "$OUT/perf-$1.data" ]; then perf_summary "$OUT/perf-$1"; fi
    TPS[$1]=$(awk '/^tps = / { printf "%.0f", $3 }' "$OUT/$1.log")
    sleep 0.5 # let the backends exit and be collected
    # Server CPU per transaction, in microseconds (all backends, WAL writer, checkpointer).
    TXCPU[$1]=$(awk -v t="$(($(server_ticks) - t0))" -v hz="$(getconf CLK_TCK)" \
        '/^number of transactions actually processed/ { printf "%.0f", t / hz * 1e6 / $NF }' "$OUT/$1.log")
    printf '  %-16s %10s tps %8s us server CPU per transaction\n' "$1" "${TPS[$1]}" "${TXCPU[$1]}"
}
# The reference's outcome rows: one per outcome key among its events, counters adding up.
distinct_keys() { sql "SELECT count(*) FROM (SELECT DISTINCT customer_key, key FROM bench.floor_events) k"; }
for e in floor naive witn ref; do
    pgbench_run "c.$e" "$e"
    footprint "c.$e" "$e"
    [ $e = ref ] && ref_check c "$(distinct_keys)"
    reset "$e"
done
HOT=""
# The same with synchronous_commit = off: the CPU cost without the WAL flush wait.
for e in floor naive witn ref; do
    pgbench_run "c.${e}_async" "$e" "-c synchronous_commit=off"
    if [ "$e" = witn ]; then
        HOT=$(sql "SELECT n_tup_upd || ' updates, ' || n_tup_hot_upd || ' HOT' FROM pg_stat_user_tables WHERE relid = 'witn.outcomes'::regclass")
    fi
    [ $e = ref ] && ref_check c_async "$(distinct_keys)"
    reset "$e"
done

# ---- (d) COPY ------------------------------------------------------------------------------------
echo "(d) COPY of $D_EVENTS events, $D_PER per outcome (naive: $D_NAIVE)"
best d.floor floor "$D_EVENTS" "$(copy_from floor "$CLUSTER/d.csv")"
footprint d.floor floor
reset floor
step d.naive "$D_NAIVE" "$(copy_from naive "$CLUSTER/d-naive.csv")"
footprint d.naive naive
reset naive
best d.witn witn "$D_EVENTS" "$(copy_from witn "$CLUSTER/d.csv")"
footprint d.witn witn
WITN_N[d]=$(witn_outcomes)
sql "SELECT bench.ref_sample('d')" >/dev/null
best d.ref ref "$D_EVENTS" "$(ref_copy_from d "$CLUSTER/d.csv")"
ref_check d "${WITN_N[d]}"
footprint d.ref ref

# ---- (e) settlement ----------------------------------------------------------------------------
D_OUTCOMES=$((D_EVENTS / D_PER))
echo "(e) settlement"
SETTLE="SELECT * FROM witn.settle(as_of => now() + interval '4 days');"
# The reference: the same outcomes, settled by one set-based SQL statement (bench.ref_settle).
reset ref
sql "INSERT INTO bench.ref_outcomes OVERRIDING SYSTEM VALUE SELECT * FROM witn.outcomes" >/dev/null
sql "VACUUM ANALYZE bench.ref_outcomes" >/dev/null
step e.ref_settle "$D_OUTCOMES" "SELECT bench.ref_settle(now() + interval '4 days');" $((SMOKE ? 30 : 90))
reset ref
step e.settle_small "$D_OUTCOMES" "$SETTLE" $((SMOKE ? 30 : 90))
SETTLED_SMALL=$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL")
reset witn

# ---- peak memory of witn's statements at M_SMALL and M_BIG events --------------------------------
# (d) at M_BIG is d.witn, (f) at M_BIG is f.witn below; settle() of M_SMALL and M_BIG due outcomes
# are e.settle_small and e.settle_big.
echo "memory: witn statements of $M_SMALL and $M_BIG events"
step "a.witn_$M_SMALL" "$M_SMALL" "$(insert_from witn "bench.src_a_$M_SMALL")"
reset witn
step "a.witn_$M_BIG" "$M_BIG" "$(insert_from witn "bench.src_a_$M_BIG")"
reset witn
step "d.witn_$M_SMALL" "$M_SMALL" "$(copy_from witn "$CLUSTER/d-$M_SMALL.csv")"
reset witn
step "f.witn_$M_SMALL" "$M_SMALL" "$(insert_from witn "bench.src_f_$M_SMALL")"
# Settling them with witn.pg_notify = wake: one pg_notify per transaction instead of one per
# notification (whose payloads PostgreSQL holds in memory until commit).
step e.settle_wake_small "$M_SMALL" "SET witn.pg_notify = wake; $SETTLE" $((SMOKE ? 30 : 90))
reset witn

# ---- (f) one INSERT ... SELECT opening E_BIG outcomes, one event each ---------------------------
# witn runs last among the ingest engines: its E_BIG open outcomes are (e)'s next backlog.
echo "(f) INSERT ... SELECT of $E_BIG events, one per outcome"
best f.floor floor "$E_BIG" "$(insert_from floor bench.src_e)"
reset floor
best f.witn witn "$E_BIG" "$(insert_from witn bench.src_e)"
WITN_N[f]=$(witn_outcomes)
sql "SELECT bench.ref_sample('f')" >/dev/null
best f.ref ref "$E_BIG" "$(ref_insert_from f bench.src_e)"
ref_check f "${WITN_N[f]}"
reset ref
sql "VACUUM ANALYZE witn.outcomes" >/dev/null
echo "(e) settlement, continued"
# Nothing due among E_BIG open outcomes: six calls in one session (the first plans the queries).
psql_q >"$OUT/e.nothing_due.log" 2>&1 <<'EOF'
\timing on
SELECT * FROM witn.settle();
SELECT * FROM witn.settle();
SELECT * FROM witn.settle();
SELECT * FROM witn.settle();
SELECT * FROM witn.settle();
SELECT * FROM witn.settle();
EOF
NOTHING_FIRST=$(awk '/^Time:/ { print $2; exit }' "$OUT/e.nothing_due.log")
NOTHING_MS=$(awk '/^Time:/ { print $2 }' "$OUT/e.nothing_due.log" | tail -n +2 | sort -n | sed -n 3p)
# The plans settle() runs, through auto_explain (nested statements included), and the due query alone.
psql_q >"$OUT/e.nothing_due.explain.txt" 2>&1 <<'EOF'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET client_min_messages = log;
SELECT * FROM witn.settle();
RESET client_min_messages;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = -1;
EXPLAIN (ANALYZE, BUFFERS)
SELECT o.customer_key, o.id FROM witn.outcomes o
 WHERE o.resolved_at IS NULL AND o.check_at <= now()
 ORDER BY o.check_at FOR UPDATE SKIP LOCKED;
EOF
DUE_INDEX=$(grep -c "outcomes_due_idx" "$OUT/e.nothing_due.explain.txt" || true)
step e.settle_big "$E_BIG" "$SETTLE" $((SMOKE ? 30 : 150))
SETTLED_BIG=$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL")
# The same backlog once more, settled with witn.pg_notify = wake.
reset witn
step f.witn_again "$E_BIG" "$(insert_from witn bench.src_e)"
sql "VACUUM ANALYZE witn.outcomes" >/dev/null
step e.settle_wake_big "$E_BIG" "SET witn.pg_notify = wake; $SETTLE" $((SMOKE ? 30 : 150))
SETTLED_WAKE=$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL")

# ---- report --------------------------------------------------------------------------------------
eps() { calc "${ROWS[$1]} / ${SECS[$1]}" 0; }          # per wall second
cps() { calc "${ROWS[$1]} / (${CPU[$1]} + 0.005)" 0; }  # per backend CPU second
ratio() { calc "$1 / $2" 2; }
ge() { awk "BEGIN { print ($1 >= $2) ? 1 : 0 }"; }
foot() { [ -n "${FOOT[$1]:-}" ] && echo "${FOOT[$1]}" | awk '{ printf "%s+%s", $1, $2 }'; return 0; }
{
echo
echo "witn benchmark — $MODE — PostgreSQL $(sql 'SHOW server_version' | cut -d' ' -f1) on $(nproc) cores, $(free -g | awk '/^Mem/ { print $2 }') GiB; highest 1-min load average before a step: $MAXLOAD"
echo "settings: $(echo $SETTINGS) (work_mem default 4MB)"
echo "ratios are the row's engine / floor, naive or ref in events per wall second; [cpu] the same in events per backend CPU second"
echo
FMT='%-33s %-24s %8s %8s %8s %9s %12s %12s %12s %10s %16s\n'
printf "$FMT" scenario engine events "wall s" "cpu s" events/s "/floor[cpu]" "/naive[cpu]" "/ref[cpu]" "MB priv/HWM" "bytes/event ev+out"
row() { # LABEL SCENARIO ENGINE FLOOR_LABEL NAIVE_LABEL [REF_LABEL]
    local rf="" rn="" rr=""
    [ -n "$4" ] && rf="$(ratio "$(eps "$1")" "$(eps "$4")")[$(ratio "$(cps "$1")" "$(cps "$4")")]"
    [ -n "$5" ] && rn="$(ratio "$(eps "$1")" "$(eps "$5")")[$(ratio "$(cps "$1")" "$(cps "$5")")]"
    [ -n "${6:-}" ] && rr="$(ratio "$(eps "$1")" "$(eps "$6")")[$(ratio "$(cps "$1")" "$(cps "$6")")]"
    printf "$FMT" "$2" "$3" "${ROWS[$1]}" "${SECS[$1]}" "${CPU[$1]}" "$(eps "$1")" "$rf" "$rn" "$rr" "${MEM[$1]}/${HWM[$1]}" "$(foot "$1")"
}
REF_ROW="ref: same rows, plain SQL"
row a.floor "(a) INSERT..SELECT, $A_PER/outcome" floor "" ""
row a.naive "" naive "" ""
row a.ref "" "$REF_ROW" a.floor ""
row a.witn "" witn a.floor a.naive a.ref
row a.witn_notrigger "" "witn.events, trigger off" a.floor ""
row b.floor "(b) INSERT..SELECT, $B_PER/out." floor "" ""
row "b.naive_$n1" "" "naive, sample $n1/out." "" ""
row "b.naive_$n2" "" "naive, sample $n2/out." "" ""
row b.naive "" "naive, extrapolated" "" ""
row b.ref "" "$REF_ROW" b.floor ""
row b.witn "" witn b.floor b.naive b.ref
row d.floor "(d) COPY, $D_PER/outcome" floor "" ""
row d.naive "" "naive (capped)" "" ""
row d.ref "" "ref: COPY + upsert, 1 txn" d.floor ""
row d.witn "" witn d.floor d.naive d.ref
row f.floor "(f) INSERT..SELECT, 1/outcome" floor "" ""
row f.ref "" "$REF_ROW" f.floor ""
row f.witn "" witn f.floor "" f.ref
echo "  (ref: the events and, in the same statement, one upsert per outcome of its final row; nothing evaluated. (d): COPY, then the upsert from the rows just copied, one transaction)"
echo
FMT='%-33s %-24s %8s %10s %14s %14s %14s %18s\n'
printf "$FMT" scenario engine tps "tps async" "cpu us/tx s/a" "w/floor s/a" "w/naive s/a" "bytes/event ev+out"
for e in floor naive witn ref; do
    rf="" rn="" title=""
    [ $e = floor ] && title="(c) pgbench 1 row/txn, $C_CLIENTS clients"
    if [ $e = witn ]; then
        rf="$(ratio "${TPS[c.witn]}" "${TPS[c.floor]}")/$(ratio "${TPS[c.witn_async]}" "${TPS[c.floor_async]}")"
        rn="$(ratio "${TPS[c.witn]}" "${TPS[c.naive]}")/$(ratio "${TPS[c.witn_async]}" "${TPS[c.naive_async]}")"
    fi
    [ $e = ref ] && rf="ref/floor $(ratio "${TPS[c.ref]}" "${TPS[c.floor]}")/$(ratio "${TPS[c.ref_async]}" "${TPS[c.floor_async]}")"
    printf "$FMT" "$title" "$e" "${TPS[c.$e]}" "${TPS[c.${e}_async]}" "${TXCPU[c.$e]}/${TXCPU[c.${e}_async]}" "$rf" "$rn" "$(foot "c.$e")"
done
echo "  (ref: the event plus the upsert of its outcome row in plain SQL, no evaluation; witn/ref: $(ratio "${TPS[c.witn]}" "${TPS[c.ref]}")/$(ratio "${TPS[c.witn_async]}" "${TPS[c.ref_async]}"))"
echo "  (s/a: synchronous_commit on / off; cpu us/tx: server CPU per transaction; witn.outcomes in witn's async run: $HOT)"
echo
FMT='%-52s %9s %9s %12s %12s\n'
printf "$FMT" settlement "wall s" "cpu s" outcomes/s "MB priv/HWM"
for l in e.ref_settle e.settle_small e.settle_big; do
    if [ -n "${DNF[$l]:-}" ]; then r="<$(eps $l)"; else r=$(eps $l); fi
    what="witn.settle()"; [ $l = e.ref_settle ] && what="ref: the same writes in SQL,"
    printf "$FMT" "(e) $what of ${ROWS[$l]} due outcomes" "${SECS[$l]}$([ -n "${DNF[$l]:-}" ] && echo '+')" "${CPU[$l]}" "$r" "${MEM[$l]}/${HWM[$l]}"
done
echo "(e) witn / ref on the same $D_OUTCOMES-outcome backlog: $(ratio "$(eps e.settle_small)" "$(eps e.ref_settle)")x [cpu $(ratio "$(cps e.settle_small)" "$(cps e.ref_settle)")x]"
echo "(e) witn.settle() with nothing due among $E_BIG open outcomes: ${NOTHING_MS} ms (median of 5 after a first call of ${NOTHING_FIRST} ms); due index in plan: $([ "$DUE_INDEX" -gt 0 ] && echo yes || echo NO)"
echo
# Peak private memory of witn's backend at M_SMALL and M_BIG (events per statement, due outcomes).
mb() { calc "${MEMKB[$1]} / 1024" 1; }
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) print n / 1e6 "M"; else if (n >= 1e3 && n % 1e3 == 0) print n / 1e3 "k"; else print n }'; }
S=$(human "$M_SMALL") B=$(human "$M_BIG")
declare -A MSMALL=([a]="a.witn_$M_SMALL" [d]="d.witn_$M_SMALL" [f]="f.witn_$M_SMALL" [e]=e.settle_small [w]=e.settle_wake_small)
declare -A MBIG=([a]="a.witn_$M_BIG" [d]=d.witn [f]=f.witn [e]=e.settle_big [w]=e.settle_wake_big)
declare -A MWHAT=([a]="INSERT..SELECT, $A_PER/outcome" [d]="COPY, $D_PER/outcome" [f]="INSERT..SELECT, 1/outcome" [e]="witn.settle(), due outcomes" [w]="witn.settle(), witn.pg_notify = wake")
FMT='%-52s %12s %12s %10s\n'
printf "$FMT" "peak private memory of witn's backend, MB (RssAnon)" "$S" "$B" "$B/$S"
for x in a d f e w; do
    printf "$FMT" "($([ $x = w ] && echo e || echo $x)) ${MWHAT[$x]}" "$(mb "${MSMALL[$x]}")" "$(mb "${MBIG[$x]}")" "$(calc "${MEMKB[${MBIG[$x]}]} / (${MEMKB[${MSMALL[$x]}]} + 1)" 2)x"
done
echo
echo "checks: naive vs witn outcome mismatches after (a): $MISMATCH; witn.verify() rows: $VERIFY; (a) outcomes: $STATUSES"
echo "        settled: $SETTLED_SMALL of $D_OUTCOMES, $SETTLED_BIG of $E_BIG, with witn.pg_notify = wake $SETTLED_WAKE of $E_BIG"
echo "        ref outcomes / witn's: (a) ${REF_CHECK[a]}, (b) ${REF_CHECK[b]}, (d) ${REF_CHECK[d]}, (f) ${REF_CHECK[f]}; ref outcomes / outcome keys of its events: (c) ${REF_CHECK[c]}, async ${REF_CHECK[c_async]}"
echo
echo "targets (PASS/MISS on wall time, as specified; [cpu] for comparison on a shared machine)"
target() { printf '  %-84s %-34s %s\n' "$1" "$2" "$([ "$3" = 1 ] && echo PASS || echo MISS)"; }
r=$(ratio "$(eps a.witn)" "$(eps a.floor)");  target "(a) witn >= 0.5x floor events/s" "${r}x [$(ratio "$(cps a.witn)" "$(cps a.floor)")x]" "$(ge "$r" 0.5)"
pa=$(calc "${SECS[a.witn]} / ${ROWS[a.witn]} * 1000000" 2)
pb=$(calc "${SECS[b.witn]} / ${ROWS[b.witn]} * 1000000" 2)
r=$(ratio "$pb" "$pa");                        target "(b) witn time/event <= 1.25x (a)'s" "$pb vs $pa us: ${r}x" "$(ge 1.25 "$r")"
r=$(ratio "${TPS[c.witn]}" "${TPS[c.floor]}"); target "(c) witn >= 0.85x floor tps" "${r}x (async $(ratio "${TPS[c.witn_async]}" "${TPS[c.floor_async]}")x) [$(ratio "${TXCPU[c.floor]}" "${TXCPU[c.witn]}")x]" "$(ge "$r" 0.85)"
r=$(ratio "$(eps d.witn)" "$(eps d.floor)");  target "(d) witn >= 0.5x floor events/s" "${r}x [$(ratio "$(cps d.witn)" "$(cps d.floor)")x]" "$(ge "$r" 0.5)"
for l in e.settle_small e.settle_big; do
    ok=$(ge "$(eps $l)" 50000); [ -n "${DNF[$l]:-}" ] && ok=0
    target "(e) settle ${ROWS[$l]} due >= 50,000 outcomes/s" "$(eps $l)/s$([ -n "${DNF[$l]:-}" ] && echo ' (timed out)')" "$ok"
done
target "(e) settle() with nothing due < 5 ms" "$NOTHING_MS ms" "$(ge 5 "$NOTHING_MS")"
for l in a d; do
    fl=$(echo "${FOOT[$l.floor]}" | awk '{ print $1 + $2 }')
    wi=$(echo "${FOOT[$l.witn]}" | awk '{ print $1 + $2 }')
    r=$(ratio "$wi" "$fl"); target "($l) storage per event <= 1.5x floor (events+outcomes)" "$wi vs $fl B: ${r}x" "$(ge 1.5 "$r")"
done
for x in a b c d f; do
    if [ $x = c ]; then
        r=$(ratio "${TPS[c.witn]}" "${TPS[c.ref]}")
        v="${r}x (async $(ratio "${TPS[c.witn_async]}" "${TPS[c.ref_async]}")x) [$(ratio "${TXCPU[c.ref]}" "${TXCPU[c.witn]}")x]"
    else
        r=$(ratio "$(eps $x.witn)" "$(eps $x.ref)") v="${r}x [$(ratio "$(cps $x.witn)" "$(cps $x.ref)")x]"
    fi
    target "($x) witn >= 0.9x ref events/s" "$v" "$(ge "$r" 0.9)"
done
for x in a d f e w; do
    sm=${MEMKB[${MSMALL[$x]}]} bg=${MEMKB[${MBIG[$x]}]}
    r=$(calc "$bg / ($sm + 1)" 2)
    case $x in e) what="settle() of $B due" ;; w) what="settle() of $B due, witn.pg_notify = wake" ;; *) what="$B-event statement" ;; esac
    label=$x; [ $x = w ] && label=e
    target "($label) peak private memory $what <= 1.2x the $S one, and < 128 MB both" "$(mb "${MBIG[$x]}") vs $(mb "${MSMALL[$x]}") MB: ${r}x" \
        "$(awk "BEGIN { print ($bg <= 1.2 * $sm && $bg < 131072 && $sm < 131072) ? 1 : 0 }")"
done
} | tee "$OUT/results.txt"
# The checks are correctness, not speed: any failure is fatal, at any scale.
if [ "$MISMATCH" != 0 ] || [ "$VERIFY" != 0 ] || [ "$SETTLED_SMALL" != "$D_OUTCOMES" ] || [ "$SETTLED_BIG" != "$E_BIG" ] || [ "$SETTLED_WAKE" != "$E_BIG" ] || [ "$REF_BAD" != 0 ]; then
    echo "CHECKS FAILED: naive/witn mismatches $MISMATCH, verify() rows $VERIFY, settled $SETTLED_SMALL of $D_OUTCOMES, $SETTLED_BIG and $SETTLED_WAKE of $E_BIG, ref outcomes (a) ${REF_CHECK[a]} (b) ${REF_CHECK[b]} (c) ${REF_CHECK[c]} ${REF_CHECK[c_async]} (d) ${REF_CHECK[d]} (f) ${REF_CHECK[f]}" >&2
    exit 1
fi
