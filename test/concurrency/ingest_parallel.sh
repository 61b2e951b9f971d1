#!/usr/bin/env bash
# Parallel ingestion: 8 sessions send multi-row INSERTs at the same time, into the SAME new
# outcome keys (in ascending key order in half the sessions, descending in the others), into
# their own keys, into new outcomes that two sessions race to open, and the same idempotency
# keys retried by every session at once. Afterwards: no error at all (no unique violation
# 23505, no deadlock 40P01, none counted in pg_stat_database), one outcome per key, every
# outcome's accepted_events equal to its non-late, non-duplicate events, exactly one accepted
# event per idempotency key, and witn.verify() empty.
# Then it measures the time per event for an outcome of 10 events and for one of 10,000 events
# (first 1,000 against last 1,000), one single-row INSERT per transaction, and prints it.
# Environment: PGHOST PGPORT PGUSER PGDATABASE (a fresh database with witn installed).
set -euo pipefail
: "${PGDATABASE:?set PGDATABASE}"

SESSIONS=8
ROUNDS=60
SHARED_KEYS=40     # per customer
WINDOW=10          # shared keys per statement
FLIPS=4            # raced new outcomes per statement

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
failed=
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sql <<'SQL'
INSERT INTO witn.rate_cards (key, currency) VALUES ('par_card', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('par_a', 'par_card'), ('par_b', 'par_card'), ('perf', 'par_card');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('par_agent', '[{"fact": "step", "operator": "count_gte", "value": 3}, {"fact": "csat", "operator": "not lte", "value": 3}]',
     '3 days', 'sum'),
    ('par_flip', '[{"fact": "score", "operator": "gte", "value": 5}]', '3 days', 'last'),
    ('perf_agent', '[{"fact": "agent_replied", "operator": "seen"}, {"fact": "escalated", "operator": "not seen"},
                     {"fact": "reopened", "operator": "not seen"}, {"fact": "csat", "operator": "not lte", "value": 3}]',
     '3 days', 'sum');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('par_card', 'par_agent', 1.5), ('par_card', 'par_flip', 1), ('par_card', 'perf_agent', 2);
SQL

# ---------------------------------------------------------------------------------------------
# One script per session, ROUNDS rounds. Every session starts round r at the same instant
# (start + r x 150 ms, unless it is running late), so they really collide. A round is:
#  1. the flip race: sessions 2p-1 and 2p open FLIPS new outcomes of the flip agent (score gte 5)
#     together; the even one sends 9 as of a minute ago, the odd one 1 as of now. Applied 9
#     first, an outcome becomes PENDING (then scheduled FAILED); applied 1 first, it never holds
#     and stays OPEN; replay must agree either way. The odd session inserts from a slow SELECT
#     (10 ms per row), the even one 15 ms into the round, so that the even session's events
#     (later ids) often reach an outcome before the odd session's first one (earlier id).
#  2. one multi-row INSERT: WINDOW shared keys of both customers (overlapping between sessions,
#     in ascending key order in even sessions, descending in odd ones), two events of the
#     session's own outcomes, and the round's retried event (same idempotency key and payload
#     in every session).
# ---------------------------------------------------------------------------------------------
for s in $(seq 1 "$SESSIONS"); do
    order=$([ $((s % 2)) -eq 0 ] && echo ASC || echo DESC)
    {
        echo '\set VERBOSITY verbose'
        sql -v s="$s" -v rounds="$ROUNDS" -v shared="$SHARED_KEYS" -v win="$WINDOW" -v flips="$FLIPS" -v ord="$order" <<'SQL'
WITH flips AS (
    SELECT r, string_agg(format('(%L, %L, %L, %L, %L::jsonb, %s, NULL::text)', 'par_a', format('flip_%s_%s_%s', r, (:s + 1) / 2, f),
                                'score', 'par_flip', jsonb_build_object('value', CASE WHEN :s % 2 = 0 THEN 9 ELSE 1 END),
                                CASE WHEN :s % 2 = 0 THEN $$now() - interval '1 minute'$$ ELSE 'now()' END), ', ' ORDER BY f) AS v
      FROM generate_series(1, :rounds) r, generate_series(1, :flips) f
     GROUP BY r
), batch AS (
    SELECT r, string_agg(v, ', ' ORDER BY pos) AS v FROM (
        SELECT r, row_number() OVER (PARTITION BY r ORDER BY k :ord, c :ord) AS pos,
               format('(%L, %L, %L, %L, %L, now(), NULL)', c, 'shared_' || k, CASE WHEN (r + k) % 4 = 0 THEN 'csat' ELSE 'step' END,
                      'par_agent', jsonb_build_object('value', (r + k + :s) % 6, 'attribution', 0.5)) AS v
          FROM generate_series(1, :rounds) r, generate_series(0, :win - 1) w,
               LATERAL (SELECT 1 + (r * 7 + w * 3 + :s * 5) % :shared AS k) kk, unnest(ARRAY['par_a', 'par_b']) c
        UNION ALL
        SELECT r, 1000 + j, format('(%L, %L, %L, %L, %L, now(), NULL)', 'par_a', format('own_%s_%s', :s, 1 + (r + j) % 5),
                                   'step', 'par_agent', '{}')
          FROM generate_series(1, :rounds) r, generate_series(1, 2) j
        UNION ALL
        SELECT r, CASE WHEN :s % 2 = 0 THEN 0 ELSE 2000 END,
               format('(%L, %L, %L, %L, %L, now(), %L)', 'par_b', 'retry_' || r, 'step', 'par_agent', '{"attribution": 2}', 'retry-' || r)
          FROM generate_series(1, :rounds) r
    ) rows GROUP BY r
)
SELECT format($f$SELECT pg_sleep_until(:'start'::timestamptz + interval '150 milliseconds' * %s);$f$, r) || E'\n'
       || CASE WHEN :s % 2 = 0
               THEN format($f$SELECT pg_sleep(0.015); INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) VALUES %s;$f$, f.v)
               ELSE format($f$INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) SELECT v.* FROM (VALUES %s) v (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) CROSS JOIN LATERAL (SELECT pg_sleep(0.01 + 0 * length(v.key))) slow;$f$, f.v)
          END || E'\n'
       || format($f$INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) VALUES %s;$f$, b.v)
  FROM flips f JOIN batch b USING (r) ORDER BY r;
SQL
    } > "$work/session_$s.sql"
done

deadlocks_before=$(sql -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
start=$(sql -c "SELECT now() + interval '2 seconds'")
pids=()
for s in $(seq 1 "$SESSIONS"); do
    psql -X -q -v start="$start" -f "$work/session_$s.sql" > "$work/session_$s.out" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

if grep -h 'ERROR' "$work"/session_*.out > "$work/errors"; then
    echo "errors in the parallel sessions:"
    sort "$work/errors" | uniq -c | head -20
    grep -qE '23505|40P01' "$work/errors" && echo "(unique violations 23505 or deadlocks 40P01 among them)"
    fail "the parallel sessions raised errors"
fi

sleep 1  # the sessions' statistics reach pg_stat_database when they exit
deadlocks=$(( $(sql -c "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()") - deadlocks_before ))
[ "$deadlocks" -eq 0 ] || fail "$deadlocks deadlocks during parallel ingestion"

sent=$((SESSIONS * ROUNDS * (2 * WINDOW + 2 + FLIPS + 1)))
checks=$(sql <<SQL
SELECT 'events stored: ' || count(*) || ', expected $sent' FROM witn.events WHERE customer_key LIKE 'par_%' HAVING count(*) <> $sent
UNION ALL
SELECT 'late events: ' || count(*) FROM witn.events WHERE customer_key LIKE 'par_%' AND late HAVING count(*) > 0
UNION ALL
SELECT 'outcome keys with ' || n || ' rows: ' || count(*) FROM (
    SELECT count(*) AS n FROM witn.outcomes WHERE customer_key LIKE 'par_%' GROUP BY customer_key, key) t
 WHERE n <> 1 GROUP BY n
UNION ALL
SELECT 'outcomes: ' || (SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE 'par_%')
       || ', distinct event keys: ' || count(*)
  FROM (SELECT DISTINCT customer_key, key FROM witn.events WHERE customer_key LIKE 'par_%') k
HAVING count(*) <> (SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE 'par_%')
UNION ALL
SELECT format('outcome %s/%s: accepted_events %s, log has %s accepted', o.customer_key, o.key, o.accepted_events, e.n)
  FROM witn.outcomes o
  JOIN (SELECT customer_key, key, count(*) FILTER (WHERE NOT late AND duplicate_of IS NULL) AS n
          FROM witn.events GROUP BY customer_key, key) e USING (customer_key, key)
 WHERE o.customer_key LIKE 'par_%' AND o.accepted_events <> e.n
UNION ALL
SELECT format('idempotency key %s: %s accepted, %s duplicates', idempotency_key,
              count(*) FILTER (WHERE duplicate_of IS NULL), count(*) FILTER (WHERE duplicate_of IS NOT NULL))
  FROM witn.events WHERE customer_key LIKE 'par_%' AND idempotency_key IS NOT NULL
 GROUP BY idempotency_key
HAVING count(*) FILTER (WHERE duplicate_of IS NULL) <> 1 OR count(*) <> $SESSIONS
UNION ALL
SELECT 'sum of accepted_events: ' || sum(accepted_events) || ', expected ' || ($sent - ($SESSIONS - 1) * $ROUNDS)
  FROM witn.outcomes WHERE customer_key LIKE 'par_%'
HAVING sum(accepted_events) <> $sent - ($SESSIONS - 1) * $ROUNDS
UNION ALL
SELECT 'witn.verify(): ' || count(*) || ' outcomes differ from a replay of their log, e.g. '
       || string_agg(outcome_key || ' ' || differences::text, '; ') FILTER (WHERE n <= 3)
  FROM (SELECT v.*, row_number() OVER () AS n FROM witn.verify() v) v HAVING count(*) > 0;
SQL
)
echo "ingest_parallel: $SESSIONS sessions x $ROUNDS multi-row INSERTs, $sent events"
echo "ingest_parallel: the raced flip outcomes ended $(sql -c "SELECT string_agg(n || ' ' || s, ', ') FROM (SELECT status || '/' || coalesce(scheduled_resolution::text, '-') AS s, count(*) AS n FROM witn.outcomes WHERE key LIKE 'flip_%' GROUP BY 1 ORDER BY 1) t")"
if [ -n "$checks" ]; then
    # Reported at the end: the timing below is wanted either way.
    failed="after parallel ingestion:
$checks"
else
    echo "ingest_parallel: no error, one outcome per key, accepted_events, idempotency and verify() consistent"
fi

# ---------------------------------------------------------------------------------------------
# Time per event: single-row INSERTs, one transaction each. Measured twice: by pgbench (what a
# client sees, round trip included) and inside the server (a DO block that commits after every
# INSERT and times each batch of 1,000 with clock_timestamp()).
# ---------------------------------------------------------------------------------------------
latency_us() { # pgbench script, transactions -> average latency in microseconds
    pgbench -n -c 1 -j 1 -t "$2" -f "$1" 2>&1 | awk '/latency average/ { printf "%.0f", $4 * 1000 }'
}
server_us() { # outcome key expression over n (1..1000) -> microseconds per event inside the server
    sql <<SQL
DO \$\$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR n IN 1..1000 LOOP
        INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
        VALUES ('perf', $1, 'csat', 'perf_agent', '{"value": 5, "attribution": 1}');
        COMMIT;
    END LOOP;
    INSERT INTO perf_timing (us) VALUES (round(extract(epoch FROM clock_timestamp() - t0) * 1000));
END \$\$;
SELECT us FROM perf_timing ORDER BY id DESC LIMIT 1;
SQL
}
sql -c "CREATE SEQUENCE perf_seq START 10; CREATE TABLE perf_timing (id bigint GENERATED ALWAYS AS IDENTITY, us numeric)"
cat > "$work/small.sql" <<'SQL'
INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
VALUES ('perf', 'small_' || nextval('perf_seq') / 10, 'csat', 'perf_agent', '{"value": 5, "attribution": 1}');
SQL
cat > "$work/big.sql" <<'SQL'
INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
VALUES ('perf', 'big', 'csat', 'perf_agent', '{"value": 5, "attribution": 1}');
SQL

client_small=$(latency_us "$work/small.sql" 1000)
client=()
for b in $(seq 1 10); do client+=("$(latency_us "$work/big.sql" 1000)"); done
server_small=$(server_us "'server_small_' || (n - 1) / 10")
server=()
for b in $(seq 1 10); do server+=("$(server_us "'server_big'")"); done

read -r n_small n_big < <(sql -F ' ' -c "SELECT count(*) FILTER (WHERE accepted_events = 10 AND key LIKE '%small_%'),
                                                min(accepted_events) FILTER (WHERE key IN ('big', 'server_big'))
                                           FROM witn.outcomes WHERE customer_key = 'perf'")
[ "$n_small" = 200 ] || fail "expected 200 outcomes of 10 events, found $n_small"
[ "$n_big" = 10000 ] || fail "expected the two big outcomes to have 10000 events each, found $n_big"

echo "ingest_parallel: time per event, single-row INSERT, one transaction each (us/event):"
echo "                                        client (pgbench)   server (DO + COMMIT)"
printf '  outcome with 10 events:              %8s           %8s\n' "$client_small" "$server_small"
printf '  10,000-event outcome, events 1-1000: %8s           %8s\n' "${client[0]}" "${server[0]}"
printf '  10,000-event outcome, events 9001-:  %8s           %8s\n' "${client[9]}" "${server[9]}"
echo "  each 1,000-event batch, client: ${client[*]}"
echo "  each 1,000-event batch, server: ${server[*]}"
# The per-event cost must not grow with the outcome's history. Bound generous against noise:
# the best of the last three batches against the best of the first three.
ratio=$(printf '%s\n' "${server[@]}" | awk '{ v[NR] = $1 } END {
    f = v[1]; if (v[2] < f) f = v[2]; if (v[3] < f) f = v[3];
    l = v[8]; if (v[9] < l) l = v[9]; if (v[10] < l) l = v[10];
    printf "%.2f", l / f }')
echo "  server, best of batches 8-10 / best of batches 1-3 = ${ratio}"
awk -v r="$ratio" 'BEGIN { exit !(r < 3) }' || fail "the per-event time grows with the outcome's history (ratio $ratio)"
[ "$(sql -c "SELECT count(*) FROM witn.verify() WHERE customer_key = 'perf'")" = 0 ] || fail "witn.verify() is not empty for the timed outcomes"

[ -z "$failed" ] || fail "$failed"
echo "ingest_parallel: PASS"
