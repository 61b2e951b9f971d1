#!/usr/bin/env bash
# Parallel sessions on a 1 + 2 Citus cluster: four writers through the coordinator and one
# straight into a worker, racing two settlers; then every event is stored once, every
# confirmed outcome has exactly one invoice line and every resolved one exactly one
# notification, the totals match the outcomes, and verify() is clean.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
read -ra ports <<<"$WITN_CITUS_PORTS"
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 20) g;
   INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}, {\"fact\": \"reopened\", \"operator\": \"not seen\"}]', 'sum', '1 day');
   INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 0.10);" >/dev/null

writer() { # WRITER_NO PORT: 40 statements of 1 to 25 events over every customer; writers send
    # some of the same events (same idempotency key and payload): retries
    # A multi-customer statement can meet another in a Citus distributed deadlock (40P01): it
    # is rolled back whole, and retried as a client would.
    local w=$1 port=$2 i attempt err
    for ((i = 0; i < 40; i++)); do
      for ((attempt = 0; attempt < 50; attempt++)); do
        if err=$(psql -X -q -p "$port" -v ON_ERROR_STOP=1 -c "
            INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key, occurred_at)
            SELECT 'c' || (1 + (g * 7 + $i) % 20), 'o' || ((g + $i * 3) % 60),
                   CASE WHEN (g + $i) % 9 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
                   jsonb_build_object('attribution', 1 + g % 3), 'e-$i-' || g,
                   timestamptz '2026-01-01' + make_interval(mins => $i)
              FROM generate_series(1 + $w % 3, 1 + ($i * 13 + $w) % 25) g" 2>&1 >/dev/null); then
            break
        fi
        grep -q 'distributed deadlock' <<<"$err" || { echo "$err"; return 1; }
        echo "deadlock" >>"$retries"
      done
      ((attempt < 50)) || { echo "# a statement met a distributed deadlock 50 times in a row"; return 1; }
    done
}
settler() { local i; for ((i = 0; i < 15; i++)); do q "SELECT * FROM witn.settle(timestamptz '2026-01-01' + make_interval(hours => 24 + $i))" >/dev/null || return 1; done; }
retries=$(mktemp)
trap 'rm -f "$retries"' EXIT
pids=()
for w in 1 2 3 4; do writer "$w" "${ports[0]}" & pids+=($!); done
writer 5 "${ports[1]}" & pids+=($!)
settler & pids+=($!)
settler & pids+=($!)
ok=0
for p in "${pids[@]}"; do wait "$p" || ok=1; done
check "every writer and settler finished without an error" 0 "$ok"
echo "# $(wc -l <"$retries") statements retried after a Citus distributed deadlock"
q "SELECT * FROM witn.settle(timestamptz '2026-02-01')" >/dev/null
check "every event stored once (ids unique across nodes)" t "$(q "SELECT count(DISTINCT id) = count(*) FROM witn.events")"
check "a retried idempotency key is recorded as a duplicate, not applied" 0 \
    "$(q "SELECT count(*) FROM (SELECT customer_key, idempotency_key FROM witn.events WHERE duplicate_of IS NULL GROUP BY 1, 2 HAVING count(*) > 1) d")"
check "accepted events add up" \
    "$(q "SELECT count(*) FROM witn.events WHERE duplicate_of IS NULL AND NOT late")" \
    "$(q "SELECT sum(accepted_events) FROM witn.outcomes")"
check "every outcome settled" 0 "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")"
check "exactly one invoice line per confirmed outcome" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'")" \
    "$(q "SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id WHERE o.status = 'CONFIRMED'")"
check "exactly one notification per resolved outcome" "$(q "SELECT count(*) FROM witn.outcomes")" "$(q "SELECT count(*) FROM witn.notifications")"
check "invoice totals are unit_price x quantity of the confirmed outcomes" \
    "$(q "SELECT sum(unit_price * quantity) FROM witn.outcomes WHERE status = 'CONFIRMED'")" \
    "$(q "SELECT sum(amount) FROM witn.invoice_lines")"
check "no settlement errors" 0 "$(q "SELECT count(*) FROM witn.settlement_errors")"
check "verify() is clean" 0 "$(q "SELECT count(*) FROM witn.verify()")"
echo "# $(q "SELECT count(*) FROM witn.events") events, $(q "SELECT count(*) FROM witn.outcomes") outcomes, $(q "SELECT count(*) FROM witn.invoice_lines") lines, $(q "SELECT sum(amount) FROM witn.invoice_lines") USD"
exit $fail
