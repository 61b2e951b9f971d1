#!/usr/bin/env bash
# Credits and reversals (CONTRACT §19, §20) against a plain-SQL baseline that writes the same
# rows, measured in the same run on a throwaway cluster (test/cluster.sh). See
# docs/performance.md.
#
#   test/bench/corrections.sh           full scale (about a minute on 2 cores)
#   test/bench/corrections.sh --smoke   a few seconds (the test run)
#
# Phases (full scale; --smoke in brackets):
#   1. pgbench -n -M prepared -c 4 -j 2 -T 20 [3]: SELECT witn.credit_outcome(random outcome,
#      0.01, 'bench') on 20,000 [2,000] confirmed outcomes of 100 customers, against
#      bench.credit(), a PL/pgSQL function that writes what a credit must: it locks the outcome
#      row, sums its earlier credits, inserts the credit line and a jsonb notification and calls
#      pg_notify, with no rules beyond "not more than the line": credits/s of each and the ratio;
#   2. one INSERT of 20,000 [2,000] 'reopened' events, one per confirmed outcome whose agent has
#      a reversal policy (every outcome is reversed in the statement: its credit line, reversal
#      and notification), against the same INSERT for outcomes of an agent without one (every
#      event late): events/s of each and the cost of a reversal per event.
# Checks, fatal at any scale: credits never exceed a line's amount; every reopened outcome is
# reversed with one credit and one notification; witn.verify() is empty.
# Needs root (the cluster runs as postgres) and witn 0.6.0 installed (this builds nothing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if ((SMOKE)); then SECONDS_1=3 N=2000; else SECONDS_1=20 N=20000; fi
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"
witn_cluster_start >/dev/null
witn_fresh_db bench_corrections >/dev/null
export PGDATABASE=bench_corrections
sql() { "$WITN_PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }

sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
     INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 100) g;
     INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
         ('policy', '[]', '1 hour', '[{\"fact\": \"reopened\", \"operator\": \"seen\"}]', '30 days'),
         ('plain', '[]', '1 hour', NULL, NULL);
     INSERT INTO witn.rate_card_prices VALUES ('std', 'policy', 5), ('std', 'plain', 5);
     INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'c' || (g % 100 + 1), a || g, 'done', a, now() - interval '2 hours'
       FROM generate_series(1, $N) g, unnest(ARRAY['policy', 'plain']) a;
     SELECT * FROM witn.settle();" >/dev/null
# The baseline: the same rows written by plain SQL.
sql "CREATE SCHEMA bench;
     CREATE TABLE bench.credits (LIKE witn.credit_lines INCLUDING ALL);
     CREATE TABLE bench.notes (LIKE witn.notifications INCLUDING ALL);
     CREATE FUNCTION bench.credit(wanted bigint, amount numeric, reason text) RETURNS void LANGUAGE plpgsql AS \$\$
     DECLARE o record; line numeric; done numeric; k bigint;
     BEGIN
         SELECT * INTO o FROM witn.outcomes WHERE id = wanted FOR UPDATE;
         SELECT l.amount INTO line FROM witn.invoice_lines l WHERE l.customer_key = o.customer_key AND l.outcome_id = o.id;
         SELECT coalesce(sum(c.amount), 0) INTO done FROM bench.credits c WHERE c.customer_key = o.customer_key AND c.outcome_id = o.id;
         IF done + amount > line THEN RAISE EXCEPTION 'exceeds'; END IF;
         INSERT INTO bench.credits (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason, billing_period)
         VALUES (o.customer_key, o.id, o.key, o.agent_key, amount, o.currency, 'adjustment', reason, date_trunc('month', now())::date)
         RETURNING id INTO k;
         INSERT INTO bench.notes (customer_key, outcome_id, kind, payload, credit_id)
         VALUES (o.customer_key, o.id, 'outcome_credited', jsonb_build_object('id', 'ntf_' || o.id || '_credit_' || k, 'type', 'outcome_credited',
                 'created_at', now(), 'data', jsonb_build_object('outcome_id', o.id, 'outcome_key', o.key, 'customer_key', o.customer_key,
                 'amount', line, 'credited', done + amount, 'remaining', line - done - amount, 'reason', reason)), k);
         PERFORM pg_notify('bench', 'x');
     END \$\$;" >/dev/null
range=$(sql "SELECT min(id) || ' ' || max(id) FROM witn.outcomes WHERE agent_key = 'policy'")
read -r lo hi <<<"$range"
work=$(mktemp -d); chmod 755 "$work"; witn_on_exit "rm -rf '$work'"
printf '\\set id random(%s, %s)\nSELECT witn.credit_outcome(:id, 0.01, '"'"'bench'"'"');\n' "$lo" "$hi" >"$work/witn.pgbench"
printf '\\set id random(%s, %s)\nSELECT bench.credit(:id, 0.01, '"'"'bench'"'"');\n' "$lo" "$hi" >"$work/base.pgbench"
tps() { "$WITN_PG_BIN/pgbench" -n -M prepared -c 4 -j 2 -T "$SECONDS_1" -f "$1" 2>"$1.err" | awk '/^tps/ { printf "%.0f", $3 }'; }
witn_tps=$(tps "$work/witn.pgbench")
base_tps=$(tps "$work/base.pgbench") || true
[ -n "$base_tps" ] || { tail -5 "$work/base.pgbench.err"; exit 1; }
echo "credits: witn.credit_outcome $witn_tps/s, plain-SQL baseline $base_tps/s, ratio $(awk "BEGIN { printf \"%.2f\", $witn_tps / $base_tps }") (4 clients, ${SECONDS_1}s each)"
check "credits never exceed a line's amount" "0" \
    "$(sql "SELECT count(*) FROM (SELECT k.customer_key, k.outcome_id FROM witn.credit_lines k JOIN witn.invoice_lines l USING (customer_key, outcome_id)
            GROUP BY 1, 2, l.amount HAVING sum(k.amount) > l.amount) x")"
check "one notification per credit" "$(sql "SELECT count(*) FROM witn.credit_lines")" \
    "$(sql "SELECT count(*) FROM witn.notifications WHERE kind = 'outcome_credited'")"

timed() { # SQL -> seconds
    local t0 t1
    t0=$(date +%s.%N); sql "$1" >/dev/null; t1=$(date +%s.%N)
    awk "BEGIN { printf \"%.3f\", $t1 - $t0 }"
}
late_s=$(timed "INSERT INTO witn.events (customer_key, key, action) SELECT customer_key, key, 'reopened' FROM witn.outcomes WHERE agent_key = 'plain'")
rev_s=$(timed "INSERT INTO witn.events (customer_key, key, action) SELECT customer_key, key, 'reopened' FROM witn.outcomes WHERE agent_key = 'policy'")
echo "reversals: $N reopened events in one INSERT: $(awk "BEGIN { printf \"%.0f\", $N / $rev_s }")/s reversing every outcome, $(awk "BEGIN { printf \"%.0f\", $N / $late_s }")/s late (no policy); a reversal adds $(awk "BEGIN { printf \"%.0f\", ($rev_s - $late_s) / $N * 1e6 }") us per event"
check "every reopened outcome with a policy is reversed, with one credit and one notification" "$N $N" \
    "$(sql "SELECT count(*) FILTER (WHERE reversed_at IS NOT NULL) FROM witn.outcomes WHERE agent_key = 'policy'") $(sql "SELECT count(*) FROM witn.notifications WHERE kind = 'outcome_reversed'")"
check "every reopened event without a policy is late" "$N" "$(sql "SELECT count(*) FROM witn.events WHERE late")"
check "verify() is empty" "0" "$(sql "SELECT count(*) FROM witn.verify()")"
exit $fail
