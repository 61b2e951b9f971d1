#!/usr/bin/env bash
# witn.settle() in real parallel sessions:
#   1. throughput: one settle() over 100,000 due outcomes, printed as outcomes/second;
#   2. four settle() calls released at once on 5,000 due outcomes;
#   3. four sessions settling 5,000 more in small batches (max_outcomes 50) until none is left;
#   4. events racing settlement of the same outcomes (two sessions sending events, some retried
#      with an idempotency key, two sessions settling), then every invariant of the log.
# In each: one invoice line per confirmed outcome, one notification per resolved one, the
# returned counts add up, no settlement error, witn.verify() empty.
#
# Needs PGHOST PGPORT PGUSER PGDATABASE (pgtap + witn installed). Tunables:
#   WITN_SETTLE_BENCH_OUTCOMES (default 100000), WITN_SETTLE_BENCH_TIMEOUT (default 60s),
#   WITN_RACE_SECONDS (default 12).
set -u

bench_outcomes=${WITN_SETTLE_BENCH_OUTCOMES:-100000}
bench_timeout=${WITN_SETTLE_BENCH_TIMEOUT:-60s}
race_seconds=${WITN_RACE_SECONDS:-12}

work=$(mktemp -d)
pids=()
failures=0

cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

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

# Runs "$@" in the background; its stdout and stderr go to $work/<name>.out / .err.
spawn() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    spawned[$name]=$!
}
declare -A spawned
# Waits for the named background jobs; reports any that failed, with their stderr.
join() {
    local name ok=0
    for name in "$@"; do
        if ! wait "${spawned[$name]}"; then
            echo "not ok - session $name failed:"
            sed 's/^/#   /' "$work/$name.err"
            failures=$((failures + 1))
            ok=1
        fi
    done
    return $ok
}

# Invariants of settled outcomes for customers matching a LIKE pattern.
check_settled() { # label pattern
    check "$1: nothing left due" "0" \
        "$(sql "SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE '$2' AND resolved_at IS NULL")"
    check "$1: exactly one invoice line per confirmed outcome, none for failed ones" "0" "$(sql "
        SELECT count(*) FROM witn.outcomes o
         WHERE o.customer_key LIKE '$2'
           AND (SELECT count(*) FROM witn.invoice_lines l
                 WHERE l.customer_key = o.customer_key AND l.outcome_id = o.id)
               <> CASE o.status WHEN 'CONFIRMED' THEN 1 ELSE 0 END")"
    check "$1: exactly one notification per resolved outcome" "0" "$(sql "
        SELECT count(*) FROM witn.outcomes o
         WHERE o.customer_key LIKE '$2'
           AND (SELECT count(*) FROM witn.notifications n
                 WHERE n.customer_key = o.customer_key AND n.outcome_id = o.id) <> 1")"
    check "$1: lines match their outcomes (amount = unit_price x quantity)" "0" "$(sql "
        SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o
            ON o.customer_key = l.customer_key AND o.id = l.outcome_id
         WHERE l.customer_key LIKE '$2'
           AND (l.amount <> o.unit_price * o.quantity OR l.resolved_at <> o.settles_at)")"
    check "$1: resolved_at = settles_at" "0" \
        "$(sql "SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE '$2' AND resolved_at <> settles_at")"
    check "$1: no settlement error" "0" \
        "$(sql "SELECT count(*) FROM witn.settlement_errors WHERE customer_key LIKE '$2'")"
}

sql "
INSERT INTO witn.rate_cards (key, currency) VALUES ('standard', 'USD');
INSERT INTO witn.customers (key, rate_card_key)
    SELECT prefix || i, 'standard'
      FROM unnest(ARRAY['all', 'batch', 'race', 'bench']) prefix, generate_series(1, 20) i;
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('support', '[{\"fact\": \"done\", \"operator\": \"seen\"}]', '1 hour'),
    ('racer', '[{\"fact\": \"done\", \"operator\": \"seen\"}, {\"fact\": \"undo\", \"operator\": \"not seen\"}]',
     '2 seconds');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('standard', 'support', 1.5), ('standard', 'racer', 2);
" || { echo "not ok - setup"; exit 1; }

# Outcomes due in an hour: two thirds PENDING/CONFIRMED, one third OPEN.
open_outcomes() { # customer prefix, count
    sql "INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
         SELECT '$1' || (1 + i % 20), 'k' || i, CASE WHEN i % 3 = 0 THEN 'opened' ELSE 'done' END,
                'support', jsonb_build_object('attribution', i % 7)
           FROM generate_series(1, $2) i"
}

# ---------------------------------------------------------------------------------------------
# 1. Throughput: one settle() over $bench_outcomes due outcomes.
# ---------------------------------------------------------------------------------------------
open_outcomes bench "$bench_outcomes" || { echo "not ok - creating $bench_outcomes outcomes"; exit 1; }
# Timed settle(): prints outcomes/s; fails if it does not finish within $bench_timeout.
timed_settle() { # label
    local start elapsed_ms n
    start=$(date +%s%N)
    if n=$(PGOPTIONS="-c statement_timeout=$bench_timeout" \
            sql "SELECT confirmed + failed FROM witn.settle(now() + interval '2 hours')" 2>"$work/bench.err"); then
        elapsed_ms=$((($(date +%s%N) - start) / 1000000))
        check "throughput ($1): settle() resolved all $bench_outcomes" "$bench_outcomes" "$n"
        echo "# settle throughput ($1): $n outcomes in $elapsed_ms ms = $((n * 1000 / (elapsed_ms > 0 ? elapsed_ms : 1))) outcomes/s"
    else
        check "throughput ($1): settle() of $bench_outcomes outcomes within $bench_timeout" "done" "$(head -1 "$work/bench.err")"
        return 1
    fi
}
# On a freshly loaded table with no statistics yet, as when a cron run follows a bulk load; if
# that is too slow, once more after ANALYZE, so that the rest of the test can go on.
timed_settle "fresh table, no statistics" || { sql "ANALYZE witn.outcomes"; timed_settle "after ANALYZE"; }
check_settled "throughput" 'bench%'
# The rest works on small sets: start again from empty tables.
sql "TRUNCATE witn.invoice_lines, witn.notifications, witn.settlement_errors, witn.events, witn.outcomes"

# ---------------------------------------------------------------------------------------------
# 2. Four settle() calls at once.
# ---------------------------------------------------------------------------------------------
open_outcomes all 5000 || { echo "not ok - creating 5,000 outcomes"; exit 1; }
# A gate: the four sessions queue on an advisory lock the gate session holds, then all go.
mkfifo "$work/gate.in"
psql -X -qAt <"$work/gate.in" >"$work/gate.out" 2>&1 &
pids+=($!)
exec {gate}>"$work/gate.in"
printf '%s\n' "SELECT pg_advisory_lock(4242); \\echo locked" >&"$gate"
until grep -qx locked "$work/gate.out"; do sleep 0.05; done
for w in 1 2 3 4; do
    spawn "all$w" psql -X -qAt -v ON_ERROR_STOP=1 -c "SELECT pg_advisory_lock_shared(4242)" \
        -c "SELECT confirmed || ' ' || failed || ' ' || errors FROM witn.settle(now() + interval '2 hours')"
done
until [[ $(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted") == 4 ]]; do
    sleep 0.05
done
echo "SELECT pg_advisory_unlock(4242);" >&$gate
exec {gate}>&-
join all1 all2 all3 all4
sums=$(cat "$work"/all[1-4].out | grep -v '^$' | awk '{c += $1; f += $2; e += $3} END {print c, f, e}')
echo "# four concurrent settle() calls returned (confirmed failed errors): $(cat "$work"/all[1-4].out | grep -v '^$' | tr '\n' ',')"
check "four at once: the returned counts add up to what was resolved" \
    "$(sql "SELECT count(*) FILTER (WHERE status = 'CONFIRMED') || ' ' || count(*) FILTER (WHERE status = 'FAILED') || ' 0'
              FROM witn.outcomes WHERE customer_key LIKE 'all%'")" "$sums"
check "four at once: 5,000 resolved" "5000" \
    "$(sql "SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE 'all%' AND resolved_at IS NOT NULL")"
check_settled "four at once" 'all%'

# ---------------------------------------------------------------------------------------------
# 3. Four sessions settling in batches of 50 until nothing is left.
# ---------------------------------------------------------------------------------------------
open_outcomes batch 5000 || { echo "not ok - creating 5,000 more outcomes"; exit 1; }
batch_worker='
DO $$
DECLARE
    r record;
    c bigint := 0; f bigint := 0; e bigint := 0; calls int := 0;
BEGIN
    LOOP
        SELECT * INTO r FROM witn.settle(now() + interval '"'2 hours'"', 50);
        calls := calls + 1;
        c := c + r.confirmed; f := f + r.failed; e := e + r.errors;
        COMMIT;
        EXIT WHEN r.confirmed + r.failed + r.errors = 0;
    END LOOP;
    RAISE NOTICE '"'totals % % % %'"', c, f, e, calls;
END $$;'
for w in 1 2 3 4; do spawn "batch$w" psql -X -q -v ON_ERROR_STOP=1 -c "$batch_worker"; done
join batch1 batch2 batch3 batch4
totals=$(sed -n 's/.*NOTICE:  totals //p' "$work"/batch[1-4].err)
echo "# batched workers (confirmed failed errors calls): $(echo "$totals" | tr '\n' ',')"
check "batches: every worker took part" "4" "$(echo "$totals" | awk '$4 > 1' | wc -l | tr -d ' ')"
check "batches: the returned counts add up to what was resolved" \
    "$(sql "SELECT count(*) FILTER (WHERE status = 'CONFIRMED') || ' ' || count(*) FILTER (WHERE status = 'FAILED') || ' 0'
              FROM witn.outcomes WHERE customer_key LIKE 'batch%'")" \
    "$(echo "$totals" | awk '{c += $1; f += $2; e += $3} END {print c, f, e}')"
check_settled "batches" 'batch%'

# ---------------------------------------------------------------------------------------------
# 4. Events racing settlement.
# ---------------------------------------------------------------------------------------------
# 2,000 outcomes whose settles_at are spread over the next 2..10 seconds; every accepted event
# pushes its outcome 2 seconds further.
sql "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'race' || (1 + i % 20), 'r' || i, CASE WHEN i % 2 = 0 THEN 'done' ELSE 'ping' END, 'racer',
            now() + i * interval '4 milliseconds'
       FROM generate_series(1, 2000) i" || { echo "not ok - creating the race outcomes"; exit 1; }
# Events go to the outcomes nearest to settling; a quarter are sent with an idempotency key from
# a small shared pool (same key, same payload), so both sessions also retry each other's events.
event_worker="
DO \$\$
DECLARE
    stop timestamptz := clock_timestamp() + interval '$race_seconds seconds';
    o record;
    n int;
    i int;
BEGIN
    WHILE clock_timestamp() < stop LOOP
        IF random() < 0.25 THEN
            n := 1 + floor(random() * 400)::int;
            i := 1 + (n * 7) % 2000;
            INSERT INTO witn.events (customer_key, key, action, properties, idempotency_key)
            VALUES ('race' || (1 + i % 20), 'r' || i,
                    (ARRAY['done', 'undo', 'ping'])[1 + n % 3],
                    jsonb_build_object('attribution', n % 5), 'idem-' || n);
        ELSE
            SELECT customer_key, key INTO o FROM witn.outcomes
             WHERE customer_key LIKE 'race%'
             ORDER BY abs(extract(epoch FROM settles_at - clock_timestamp()))
             LIMIT 1 OFFSET floor(random() * 6)::int;
            INSERT INTO witn.events (customer_key, key, action, properties)
            VALUES (o.customer_key, o.key, (ARRAY['done', 'undo', 'ping'])[1 + floor(random() * 3)::int],
                    jsonb_build_object('attribution', floor(random() * 10)));
        END IF;
        COMMIT;
    END LOOP;
END \$\$;"
settle_worker="
DO \$\$
DECLARE
    stop timestamptz := clock_timestamp() + interval '$race_seconds seconds';
    r record;
    c bigint := 0; f bigint := 0; e bigint := 0;
BEGIN
    WHILE clock_timestamp() < stop LOOP
        SELECT * INTO r FROM witn.settle(max_outcomes => :max);
        c := c + r.confirmed; f := f + r.failed; e := e + r.errors;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'totals % % %', c, f, e;
END \$\$;"
spawn events1 psql -X -q -v ON_ERROR_STOP=1 -c "$event_worker"
spawn events2 psql -X -q -v ON_ERROR_STOP=1 -c "$event_worker"
spawn settle1 psql -X -q -v ON_ERROR_STOP=1 -c "${settle_worker//:max/NULL}"
spawn settle2 psql -X -q -v ON_ERROR_STOP=1 -c "${settle_worker//:max/20}"
join events1 events2 settle1 settle2
race_totals=$(sed -n 's/.*NOTICE:  totals //p' "$work"/settle[12].err)
settled_during=$(sql "SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE 'race%' AND resolved_at IS NOT NULL")
check "race: the settling sessions' counts add up to what they resolved" "$settled_during" \
    "$(echo "$race_totals" | awk '{s += $1 + $2} END {print s + 0}')"
check "race: no errors returned" "0" "$(echo "$race_totals" | awk '{e += $3} END {print e + 0}')"
sql "SELECT * FROM witn.settle(now() + interval '1 day')" >/dev/null

stats=$(sql "SELECT count(*) || ' events: ' || count(*) FILTER (WHERE duplicate_of IS NULL AND NOT late) || ' applied, '
                    || count(*) FILTER (WHERE late) || ' late, ' || count(*) FILTER (WHERE duplicate_of IS NOT NULL)
                    || ' duplicates' FROM witn.events WHERE customer_key LIKE 'race%'")
echo "# race: $stats; $settled_during of 2000 outcomes settled while events were arriving"
check "race: nothing lost: count(events) = sum(accepted_events) + sum(late_events) + count(duplicates)" \
    "$(sql "SELECT count(*) FROM witn.events WHERE customer_key LIKE 'race%'")" \
    "$(sql "SELECT (SELECT sum(accepted_events + late_events) FROM witn.outcomes WHERE customer_key LIKE 'race%')
                 + (SELECT count(*) FROM witn.events WHERE customer_key LIKE 'race%' AND duplicate_of IS NOT NULL)")"
check "race: per outcome, accepted_events and late_events match its events" "0" "$(sql "
    SELECT count(*) FROM witn.outcomes o
     CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE NOT e.late) AS applied,
                                count(*) FILTER (WHERE e.late) AS late
                           FROM witn.events e
                          WHERE e.customer_key = o.customer_key AND e.key = o.key
                            AND e.duplicate_of IS NULL) e
     WHERE o.customer_key LIKE 'race%'
       AND (o.accepted_events, o.late_events) IS DISTINCT FROM (e.applied, e.late)")"
check "race: no event applied once its outcome was due (received_at < settles_at)" "0" "$(sql "
    SELECT count(*) FROM witn.events e JOIN witn.outcomes o ON o.customer_key = e.customer_key AND o.key = e.key
     WHERE e.customer_key LIKE 'race%' AND e.duplicate_of IS NULL AND NOT e.late
       AND e.received_at >= o.settles_at")"
check "race: each idempotency key has exactly one original" "0" "$(sql "
    SELECT count(*) FROM (SELECT customer_key, idempotency_key FROM witn.events
                           WHERE customer_key LIKE 'race%' AND idempotency_key IS NOT NULL
                           GROUP BY 1, 2 HAVING count(*) FILTER (WHERE duplicate_of IS NULL) <> 1) x")"
check "race: every duplicate points at the original of its key" "0" "$(sql "
    SELECT count(*) FROM witn.events d
      LEFT JOIN witn.events e ON e.customer_key = d.customer_key AND e.id = d.duplicate_of
     WHERE d.customer_key LIKE 'race%' AND d.duplicate_of IS NOT NULL
       AND (e.id IS NULL OR e.idempotency_key IS DISTINCT FROM d.idempotency_key OR e.duplicate_of IS NOT NULL)")"
check "race: the race happened (some events late, some applied after the first, some duplicates)" "t" "$(sql "
    SELECT count(*) FILTER (WHERE late) > 0 AND count(*) FILTER (WHERE duplicate_of IS NOT NULL) > 0
           AND count(*) FILTER (WHERE NOT late AND duplicate_of IS NULL) > 2000
      FROM witn.events WHERE customer_key LIKE 'race%'")"
check_settled "race" 'race%'
check "witn.verify() is empty" "0" "$(sql "SELECT count(*) FROM witn.verify()")"

if ((failures)); then
    echo "settle_parallel: $failures check(s) failed"
    exit 1
fi
echo "settle_parallel: all checks passed"
