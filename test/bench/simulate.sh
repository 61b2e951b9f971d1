#!/usr/bin/env bash
# What-if (CONTRACT §22): witn.simulate and witn.simulate_summary over a settled history, on a
# throwaway cluster (test/cluster.sh). See docs/performance.md.
#
#   test/bench/simulate.sh           full scale (about two minutes on 2 cores)
#   test/bench/simulate.sh --smoke   a few seconds (the test run)
#
# The history: 1,000,000 [10,000] events over 200,000 [2,000] outcomes of one agent for four
# customers in two currencies, five events each (replies, a reopen on every 7th outcome, no reply
# on every 11th, a csat of 1 to 5 with an attribution), in five statements of 40,000 [400]
# outcomes; settled; then a late reopen for every 20th outcome; the last 1% of the outcomes
# opened afterwards under a new version of the agent (72-hour window: still PENDING or OPEN).
# Timed, each in a session of its own (figures: events replayed per second, counting every event
# of the replayed outcomes; the backend's peak private memory, RssAnon sampled every 20 ms, and
# its VmHWM, which also counts the shared buffers it touched, before and after):
#   1. witn.simulate over the whole range with all terms NULL; 2. with a draft condition (csat
#   above 4 instead of 3); 3. witn.simulate_summary with that draft; 4. witn.simulate of the
#   first fifth of the range (memory against the whole range), and of an empty range (what the
#   scan of every outcome costs).
# Checks, fatal at any scale: with all terms NULL every resolved outcome's simulated status and
# amount are its status and invoice line amount, and the unresolved ones stay what they are;
# the summary's totals are the sums of the rows; nothing is written; with a transaction that
# ran simulate still open, an event is applied and settlement runs, within a 1 s lock_timeout.
# Needs root (the cluster runs as postgres) and witn 0.8.0 installed (this builds nothing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if ((SMOKE)); then OUTCOMES=2000; else OUTCOMES=200000; fi
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"
witn_cluster_start >/dev/null
witn_fresh_db bench_simulate >/dev/null
export PGDATABASE=bench_simulate
sql() { "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }

# ---- the history ---------------------------------------------------------------------------------
sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('usd', 'USD'), ('eur', 'EUR');
     INSERT INTO witn.customers (key, rate_card_key) VALUES
         ('acme', 'usd'), ('globex', 'usd'), ('initech', 'eur'), ('umbrella', 'usd');
     INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
         ('support', '[{\"fact\": \"agent_replied\", \"operator\": \"seen\"},
                       {\"fact\": \"reopened\", \"operator\": \"not seen\"},
                       {\"fact\": \"csat\", \"operator\": \"not lte\", \"value\": 3}]', '1 second', 'sum');
     INSERT INTO witn.rate_card_prices VALUES
         ('usd', 'support', 2.50), ('eur', 'support', 2.25);" >/dev/null
# Outcomes FIRST..LAST, five events each, interleaved as a day's traffic is (every outcome's first
# event, then every second one, ...), so that an outcome's log is spread over the table.
history() { # FIRST LAST
    sql "INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
         SELECT (ARRAY['acme', 'globex', 'initech', 'umbrella'])[g % 4 + 1], 't' || g,
                CASE WHEN j = 1 THEN 'ticket_opened'
                     WHEN j IN (2, 4) AND g % 11 = 0 THEN 'note'
                     WHEN j IN (2, 4) THEN 'agent_replied'
                     WHEN j = 3 AND g % 7 = 0 THEN 'reopened'
                     WHEN j = 3 THEN 'customer_replied'
                     ELSE 'csat' END,
                CASE WHEN j = 1 THEN 'support' END,
                CASE WHEN j = 5 THEN jsonb_build_object('value', g % 5 + 1, 'attribution', g % 3 + 1)
                     WHEN j = 2 THEN jsonb_build_object('attribution', 0.5)
                     ELSE '{}' END,
                now() + j * interval '1 millisecond'
           FROM generate_series(1, 5) j, generate_series($1, $2) g
          ORDER BY j, g" >/dev/null
}
settled=$((OUTCOMES - OUTCOMES / 100))
slice=$((settled / 5))
t0=$(date +%s.%N)
for ((i = 0; i < 5; i++)); do history $((i * slice + 1)) $(((i + 1) * slice)); done
sleep 1.2
sql "SELECT * FROM witn.settle()" >/dev/null
sql "INSERT INTO witn.events (customer_key, key, action)
     SELECT customer_key, key, 'reopened' FROM witn.outcomes WHERE substr(key, 2)::bigint % 20 = 0" >/dev/null
sql "UPDATE witn.agents SET settlement_period = '72 hours' WHERE key = 'support'" >/dev/null
history $((settled + 1)) "$OUTCOMES"
build_s=$(awk "BEGIN { printf \"%.0f\", $(date +%s.%N) - $t0 }")
sql "VACUUM ANALYZE witn.events, witn.outcomes, witn.invoice_lines" >/dev/null
read -r events outcomes resolved confirmed late <<<"$(sql "SELECT (SELECT count(*) FROM witn.events), count(*),
        count(*) FILTER (WHERE resolved_at IS NOT NULL), count(*) FILTER (WHERE status = 'CONFIRMED'),
        (SELECT count(*) FROM witn.events WHERE late)
   FROM witn.outcomes WHERE agent_key = 'support'" | tr '|' ' ')"
echo "history: $events events over $outcomes outcomes of 4 customers ($resolved resolved, $confirmed confirmed, $late late events), built and settled in ${build_s}s"
check "the history is settled but for the last 1%" "$settled" "$resolved"

# The whole range: every outcome of the agent, and the events they replay.
range="'support', '-infinity', 'infinity'"
fifth="'support', '-infinity', (SELECT min(opened_at) FROM witn.outcomes WHERE key = 't$((slice + 1))')"
replayed=$(sql "SELECT count(*) FROM witn.events e WHERE EXISTS (
                  SELECT 1 FROM witn.outcomes o WHERE o.customer_key = e.customer_key AND o.key = e.key AND o.agent_key = 'support')")
draft="'[{\"fact\": \"agent_replied\", \"operator\": \"seen\"}, {\"fact\": \"reopened\", \"operator\": \"not seen\"},
         {\"fact\": \"csat\", \"operator\": \"not lte\", \"value\": 4}]'"
writes() { sql "SELECT (SELECT count(*) FROM witn.events) || ' ' || (SELECT count(*) FROM witn.notifications) || ' '
                || (SELECT count(*) FROM witn.invoice_lines) || ' ' || (SELECT max(xmin::text::bigint) FROM witn.outcomes)"; }
before=$(writes)

# ---- measuring one query in a session of its own ------------------------------------------------
work=$(mktemp -d); chmod 755 "$work"; witn_on_exit "rm -rf '$work'"
# measured NAME SELECT: runs SELECT (one row) in its own session; prints "seconds peak_rss_kb
# hwm_before_kb hwm_after_kb" and leaves SELECT's row in $work/NAME.row.
measured() {
    local name=$1 query=$2 pid="" peak=0 rss psql_pid
    cat >"$work/$name.sql" <<EOF
SELECT pg_sleep(0.3) \gset
SELECT count(*) AS warm FROM witn.simulate('support', 'infinity', 'infinity') \gset
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+(\d+)') AS hwm0, clock_timestamp() AS t0 \gset
$query \g $work/$name.row
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS secs, substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+(\d+)') AS hwm1 \gset
\echo :secs :hwm0 :hwm1
EOF
    PGAPPNAME="bench_simulate_$name" "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -f "$work/$name.sql" >"$work/$name.out" &
    psql_pid=$!
    while kill -0 "$psql_pid" 2>/dev/null; do
        [ -n "$pid" ] || pid=$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_simulate_$name'")
        if [ -n "$pid" ]; then
            rss=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            [ -n "$rss" ] && ((rss > peak)) && peak=$rss
        fi
        sleep 0.02
    done
    wait "$psql_pid" || { cat "$work/$name.out"; exit 1; }
    read -r secs hwm0 hwm1 <"$work/$name.out"
    echo "$secs $peak $hwm0 $hwm1"
}
report() { # LABEL EVENTS "secs peak hwm0 hwm1"
    local secs peak hwm0 hwm1
    read -r secs peak hwm0 hwm1 <<<"$3"
    awk -v l="$1" -v n="$2" -v s="$secs" -v p="$peak" -v a="$hwm0" -v b="$hwm1" 'BEGIN {
        printf "%s: %d events in %.2f s = %.0f events/s; peak private memory %.1f MB, VmHWM %.1f -> %.1f MB\n",
               l, n, s, n / (s > 0 ? s : 0.001), p / 1024, a / 1024, b / 1024 }'
}

# ---- 1. all terms NULL: what happened ----------------------------------------------------------------
null_m=$(measured null "SELECT count(*) AS n,
        count(*) FILTER (WHERE status IN ('CONFIRMED', 'FAILED') AND (simulated_status <> status OR simulated_amount IS DISTINCT FROM amount)) AS resolved_differ,
        count(*) FILTER (WHERE status IN ('OPEN', 'PENDING') AND simulated_status <> status) AS open_differ,
        count(simulated_amount) || ' ' || coalesce(sum(simulated_amount), 0) AS billed
   FROM witn.simulate($range)")
report "simulate, all terms NULL" "$replayed" "$null_m"
IFS='|' read -r n resolved_differ open_differ billed <"$work/null.row"
check "every outcome is simulated" "$outcomes" "$n"
check "with all terms NULL, every resolved outcome's simulated status and amount are what happened" 0 "$resolved_differ"
check "with all terms NULL, the outcomes not due yet stay OPEN or PENDING as they are" 0 "$open_differ"
check "with all terms NULL, the simulated amounts are the invoice lines" "$(sql "SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines")" "$billed"

# ---- 2. a draft condition -------------------------------------------------------------------------------
totals="count(*) AS outcomes,
        count(*) FILTER (WHERE status IS DISTINCT FROM simulated_status OR amount IS DISTINCT FROM simulated_amount) AS changed,
        count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed, count(*) FILTER (WHERE simulated_status = 'CONFIRMED') AS simulated_confirmed,
        coalesce(sum(amount), 0) AS amount, coalesce(sum(simulated_amount), 0) AS simulated_amount"
draft_m=$(measured draft "SELECT string_agg(concat_ws(':', customer_key, currency, outcomes, changed, confirmed, simulated_confirmed,
                                               amount, simulated_amount, simulated_amount - amount), ' ' ORDER BY customer_key, currency),
                                     sum(changed)
   FROM (SELECT customer_key, currency, $totals FROM witn.simulate($range, $draft) GROUP BY 1, 2) t")
report "simulate, draft condition (csat above 4)" "$replayed" "$draft_m"
IFS='|' read -r rows changed <"$work/draft.row"
echo "draft: $changed of $outcomes outcomes change"

# ---- 3. the summary of the same draft ------------------------------------------------------------------
summary_m=$(measured summary "SELECT string_agg(concat_ws(':', customer_key, currency, outcomes, changed, confirmed, simulated_confirmed,
                                                   amount, simulated_amount, difference), ' ' ORDER BY customer_key, currency)
   FROM witn.simulate_summary($range, $draft)")
report "simulate_summary, draft condition" "$replayed" "$summary_m"
check "the summary's totals are the sums of the rows" "$rows" "$(cat "$work/summary.row")"

# ---- 4. memory: a fifth of the range --------------------------------------------------------------------
fifth_events=$(sql "SELECT count(*) FROM witn.events e WHERE EXISTS (
                      SELECT 1 FROM witn.outcomes o WHERE o.customer_key = e.customer_key AND o.key = e.key
                         AND o.agent_key = 'support' AND o.opened_at < (SELECT min(opened_at) FROM witn.outcomes WHERE key = 't$((slice + 1))'))")
fifth_m=$(measured fifth "SELECT count(*) FROM witn.simulate($fifth)")
report "simulate, a fifth of the range, all terms NULL" "$fifth_events" "$fifth_m"
check "a fifth of the range is a fifth of the settled outcomes" "$slice" "$(cat "$work/fifth.row")"
empty_m=$(measured empty "SELECT count(*) FROM witn.simulate('support', 'infinity', 'infinity')")
read -r empty_s _ <<<"$empty_m"
echo "simulate of an empty range: $(awk "BEGIN { printf \"%.2f\", $empty_s }") s (the scan of all $outcomes outcomes, none replayed)"
check "simulate writes nothing" "$before" "$(writes)"

# ---- 5. locks: an open transaction that ran simulate blocks neither ingestion nor settlement ----------
"$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "SET application_name = 'bench_simulate_open'" -c "BEGIN" \
    -c "SELECT count(*) FROM witn.simulate($range)" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
open_pid=$!
for ((i = 0; i < 600; i++)); do
    [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_simulate_open' AND query LIKE 'SELECT pg_sleep%'")" = 1 ] && break
    sleep 0.05
done
check "with a transaction that ran simulate still open, an event is applied and settlement runs (lock_timeout 1s)" "1 0" \
    "$("$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "SET lock_timeout = '1s'" \
        -c "INSERT INTO witn.events (customer_key, key, action) SELECT customer_key, key, 'agent_replied' FROM witn.outcomes WHERE key = 't$OUTCOMES'" \
        -c "SELECT accepted_events - 5 || ' ' || (SELECT errors FROM witn.settle()) FROM witn.outcomes WHERE key = 't$OUTCOMES'" 2>&1)"
wait "$open_pid"
exit $fail
