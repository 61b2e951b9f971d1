#!/usr/bin/env bash
# Billing periods and closed months on a 1 + 2 Citus cluster: customers in several time zones on
# both workers; witn.close_period through the coordinator (one customer, then all); settlement
# on the workers bills a line that would fall into a closed month in the next open one, under
# the per-customer lock that the close takes on the customer's node; a close racing parallel
# settlement leaves the closed month as it was when the close committed.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
state() { psql -X -At -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | tail -1 | sed 's/^ERROR: *//'; }
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key, timezone)
   SELECT 'c' || g, 'std', (ARRAY['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin'])[1 + g % 4] FROM generate_series(1, 12) g;
   INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('a', '[]', '1 day')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('std', 'a', 0.50)" >/dev/null
check "witn.closed_periods is distributed with the customers' other rows" "t" \
    "$(q "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'witn.closed_periods'::regclass AND colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'witn.events'::regclass))")"
check "the current month cannot be closed (WT001)" "WT001" \
    "$(state "SELECT * FROM witn.close_period(date_trunc('month', now())::date)")"
check "nothing was closed" "0" "$(q "SELECT count(*) FROM witn.closed_periods")"

# Outcomes resolving on 31 October at 23:30 local time, and at 00:30 on 1 November.
# (Not INSERT ... SELECT from witn.customers joined with a VALUES list: Citus 12.1 inserted
# nothing for that, reporting INSERT 0 0.)
zones="(ARRAY['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin'])[1 + g % 4]"
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || g, w.outcome, 'done', 'a', (w.local::timestamp AT TIME ZONE $zones) - interval '1 day'
     FROM generate_series(1, 12) g CROSS JOIN (VALUES ('oct_end', '2026-10-31 23:30'), ('nov_start', '2026-11-01 00:30')) w(outcome, local)" >/dev/null
check "24 outcomes, two per customer" "24" "$(q "SELECT count(*) FROM witn.outcomes")"
check "c1 closes October" "c1 2026-10-01" "$(q "SELECT customer_key || ' ' || period FROM witn.close_period('2026-10-01', 'c1')")"
q "SELECT * FROM witn.settle(timestamptz '2026-11-05')" >/dev/null
check "each customer's lines are in its local months; c1's October line went to November" \
    "c1:nov_start:2026-11-01 c1:oct_end:2026-11-01 c2:nov_start:2026-11-01 c2:oct_end:2026-10-01 c3:nov_start:2026-11-01 c3:oct_end:2026-10-01" \
    "$(q "SELECT string_agg(customer_key || ':' || outcome_key || ':' || billing_period, ' ' ORDER BY customer_key, outcome_key) FROM witn.invoice_lines WHERE customer_key IN ('c1', 'c2', 'c3')")"
check "witn.invoices shows c1's October as closed (no line in it) and the others open" "1 0" \
    "$(q "SELECT count(*) FROM witn.closed_periods WHERE customer_key = 'c1'") $(q "SELECT count(*) FROM witn.invoices WHERE month = '2026-10-01' AND closed_at IS NOT NULL")"
check "closing October for every customer" "12" "$(q "SELECT count(*) FROM witn.close_period('2026-10-01')")"
check "... shows it closed in every invoice that has October lines" "11 11" \
    "$(q "SELECT count(*) FROM witn.invoices WHERE month = '2026-10-01'") $(q "SELECT count(*) FROM witn.invoices WHERE month = '2026-10-01' AND closed_at IS NOT NULL")"

# A close racing parallel settlement on the workers.
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || g, 'r' || r, 'done', 'a', ('2026-09-01'::timestamp AT TIME ZONE $zones) + r * interval '10 minutes' - interval '1 day'
     FROM generate_series(1, 12) g CROSS JOIN generate_series(1, 300) r" >/dev/null
check "3600 more outcomes due in September" "3624" "$(q "SELECT count(*) FROM witn.outcomes")"
pids=()
for s in 1 2; do
    (for i in $(seq 1 60); do q "SELECT confirmed FROM witn.settle(timestamptz '2026-11-05', 10)" >/dev/null; done) & pids+=($!)
done
sleep 0.3
q "SELECT count(*) FROM witn.close_period('2026-09-01')" >/dev/null
at_close=$(q "SELECT string_agg(customer_key || '=' || lines || '/' || amount_exact, ' ' ORDER BY customer_key) FROM witn.invoices WHERE month = '2026-09-01'")
for p in "${pids[@]}"; do wait "$p"; done
q "SELECT * FROM witn.settle(timestamptz '2026-11-05')" >/dev/null
check "September's invoices are what they were when the close committed" "$at_close" \
    "$(q "SELECT string_agg(customer_key || '=' || lines || '/' || amount_exact, ' ' ORDER BY customer_key) FROM witn.invoices WHERE month = '2026-09-01'")"
check "every outcome settled once: one line each" "0 t" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL") $(q "SELECT (SELECT count(*) FROM witn.invoice_lines) = (SELECT count(*) FROM witn.outcomes)")"
echo "# September at the close: $(awk '{n = 0; for (i = 1; i <= NF; i++) { split($i, a, "[=/]"); n += a[2] } print n}' <<<"${at_close:-}") of 3600 lines"
check "verify() is clean" "0" "$(q "SELECT count(*) FROM witn.verify()")"
exit $fail
