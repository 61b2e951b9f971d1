#!/usr/bin/env bash
# What-if (0.7.0, CONTRACT §22) on a 1 + 2 Citus cluster, through the coordinator: witn.simulate
# runs on every shard's node and gathers the rows; with all terms NULL every resolved outcome's
# simulated status and amount equal the actual ones on both workers; a stricter draft condition
# changes them; simulate_summary totals the rows; errors keep their SQLSTATE; nothing is written.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
state() { psql -X -At -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | tail -1 | sed 's/^ERROR: *//' || true; }

q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD'), ('eur', 'EUR')" >/dev/null
q "INSERT INTO witn.customers (key, rate_card_key) SELECT 's' || g, CASE WHEN g % 3 = 0 THEN 'eur' ELSE 'std' END FROM generate_series(1, 10) g" >/dev/null
q "INSERT INTO witn.agents (key, condition, settlement_period, attribution_method)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}, {\"fact\": \"csat\", \"operator\": \"not lte\", \"value\": 3}]', '1 hour', 'sum')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50), ('eur', 'support', 3)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
   SELECT 's' || c, 't' || g, 'replied', 'support', jsonb_build_object('attribution', g % 3 + 1), now() - interval '3 hours'
     FROM generate_series(1, 10) c, generate_series(1, 12) g" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
   SELECT 's' || c, 't' || g, 'csat', jsonb_build_object('value', g % 5 + 1), now() - interval '170 minutes'
     FROM generate_series(1, 10) c, generate_series(1, 12) g" >/dev/null
q "SELECT * FROM witn.settle()" >/dev/null
range="'support', now() - interval '1 day', now() + interval '1 day'"
fingerprint() {
    echo "$(q "SELECT md5(string_agg(o::text, '|' ORDER BY o.id)) FROM witn.outcomes o") $(q "SELECT count(*) FROM witn.events") $(q "SELECT count(*) FROM witn.invoice_lines")"
}
before=$(fingerprint)

check "every outcome is simulated, from both workers" "120" "$(q "SELECT count(*) FROM witn.simulate($range)")"
check "with all terms NULL, every resolved outcome's status and amount are what happened" "0" \
    "$(q "SELECT count(*) FROM witn.simulate($range) s WHERE s.status IN ('CONFIRMED', 'FAILED')
          AND (s.simulated_status <> s.status OR s.simulated_amount IS DISTINCT FROM s.amount)")"
check "and they are the invoice lines" "$(q "SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines")" \
    "$(q "SELECT count(simulated_amount) || ' ' || sum(simulated_amount) FROM witn.simulate($range)")"
stricter="'[{\"fact\": \"replied\", \"operator\": \"seen\"}, {\"fact\": \"escalated\", \"operator\": \"seen\"}]'"
confirmed=$(q "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'")
check "some outcomes are confirmed (the comparison below is not empty)" yes "$( ((confirmed > 0)) && echo yes || echo "$confirmed")"
check "a draft condition no ticket meets (escalated seen) fails every confirmed one" "$confirmed" \
    "$(q "SELECT count(*) FROM witn.simulate($range, $stricter) WHERE status = 'CONFIRMED' AND simulated_status = 'FAILED'")"
check "simulate_summary totals the rows per customer and currency" \
    "$(q "SELECT string_agg(customer_key || ':' || currency || ':' || n || ':' || a || ':' || sa, ' ' ORDER BY customer_key, currency) FROM (
            SELECT customer_key, currency, count(*) n, coalesce(sum(amount), 0) a, coalesce(sum(simulated_amount), 0) sa
              FROM witn.simulate($range, $stricter, NULL, 'max', 5) GROUP BY 1, 2) t")" \
    "$(q "SELECT string_agg(customer_key || ':' || currency || ':' || outcomes || ':' || amount || ':' || simulated_amount, ' ' ORDER BY customer_key, currency) FROM witn.simulate_summary($range, $stricter, NULL, 'max', 5)")"
check "a bad draft period keeps its SQLSTATE through the coordinator" "WT001" "$(state "SELECT * FROM witn.simulate($range, NULL, '0 hours')")"
check "an invalid draft condition is the agents' VALIDATION_ERROR" "WT001" "$(state "SELECT * FROM witn.simulate($range, '[{\"fact\": \"x\"}]')")"
check "an unknown agent is WT003" "WT003" "$(state "SELECT * FROM witn.simulate('nobody', now() - interval '1 day', now())")"
check "simulate writes nothing" "$before" "$(fingerprint)"
exit $fail
