#!/usr/bin/env bash
# Webhook delivery (0.7.0, CONTRACT §21) on a 1 + 2 Citus cluster with witn preloaded on every
# node: witn.webhook_endpoints is a reference table and witn.webhook_deliveries is distributed,
# colocated with the notifications; settlement through the coordinator queues each notification's
# deliveries on its node, and each node's worker delivers the shards it holds. Every notification
# arrives signed, the deliveries are visible through the coordinator, witn.redeliver and
# witn.webhook_status work there, a failing endpoint is retried and failed on every node, and
# a credit made through the coordinator is delivered too.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
on() { local p=$1; shift; psql -X -At -h 127.0.0.1 -p "$p" "$@"; }
wait_for() { # SECONDS SQL EXPECTED
    local deadline=$((SECONDS + $1)) got
    while :; do
        got=$(q "$2" 2>&1)
        [ "$got" = "$3" ] && { echo "$got"; return 0; }
        ((SECONDS >= deadline)) && { echo "$got"; return 1; }
        sleep 0.3
    done
}
read -ra ports <<<"$WITN_CITUS_PORTS"
dir=$(mktemp -d "${TMPDIR:-/tmp}/witn-citus-webhooks.XXXXXX")
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
python3 "$(dirname "${BASH_SOURCE[0]}")/../webhooks/receiver.py" --port-file "$dir/port" --log "$dir/log" --secret "$secret" >"$dir/out" 2>&1 &
receiver=$!
cleanup() {
    kill "$receiver" 2>/dev/null || true
    for p in "${ports[@]}"; do
        on "$p" -d "$PGDATABASE" -q -c "ALTER SYSTEM RESET witn.webhook_retry_schedule" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
R=http://127.0.0.1:$(cat "$dir/port")
for p in "${ports[@]}"; do
    on "$p" -d "$PGDATABASE" -q -c "ALTER SYSTEM SET witn.webhook_retry_schedule = '1s,1s'" -c "SELECT pg_reload_conf()" >/dev/null
done

check "the endpoints are a reference table, the deliveries distributed beside the notifications" "n h true" \
    "$(q "SELECT string_agg(p.partmethod::text || CASE WHEN p.partmethod = 'h' THEN ' ' || (p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'witn.notifications'::regclass))::text ELSE '' END, ' ' ORDER BY p.partmethod DESC)
          FROM pg_dist_partition p WHERE p.logicalrelid IN ('witn.webhook_endpoints'::regclass, 'witn.webhook_deliveries'::regclass)")"
for p in "${ports[@]}"; do
    check "node $p runs a webhook worker in this database" 1 \
        "$(on "$p" -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'witn webhook worker' AND datname = '$PGDATABASE'")"
done

q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD')" >/dev/null
q "INSERT INTO witn.customers (key, rate_card_key) SELECT 'w' || g, 'std' FROM generate_series(1, 12) g" >/dev/null
q "INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', '1 hour')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50)" >/dev/null
q "INSERT INTO witn.webhook_endpoints (url, secret) VALUES ('$R/ok', '$secret')" >/dev/null
q "INSERT INTO witn.webhook_endpoints (url, secret, customer_key) VALUES ('$R/status/500', '$secret', 'w1')" >/dev/null
check "an endpoint for an unknown customer is refused through the coordinator (WT002)" WT002 \
    "$(psql -X -At -c '\set VERBOSITY sqlstate' -c "INSERT INTO witn.webhook_endpoints (url, customer_key) VALUES ('$R/x', 'nobody')" 2>&1 | sed 's/^ERROR: *//')"
# Customers on both workers, in one multi-customer statement and row by row.
q "INSERT INTO witn.events (customer_key, key, action, agent_key)
   SELECT 'w' || c, 't' || g, CASE WHEN g % 4 = 0 THEN 'opened' ELSE 'replied' END, 'support'
     FROM generate_series(1, 12) c, generate_series(1, 5) g" >/dev/null
for c in 1 2 3 4; do
    q "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('w$c', 'single', 'replied', 'support')" >/dev/null
done
check "settlement through the coordinator: 52 confirmed, 12 failed" "52|12" "$(q "SELECT confirmed || '|' || failed FROM witn.settle(now() + interval '2 hours')")"
check "64 + 6 deliveries queued on the shards (w1's failing endpoint gets w1's)" 70 "$(q "SELECT count(*) FROM witn.webhook_deliveries")"
shards=$(q "SELECT string_agg(DISTINCT get_shard_id_for_distribution_column('witn.webhook_deliveries', customer_key)::text, ',') FROM witn.webhook_deliveries")
check "the deliveries are on both workers" 2 \
    "$(q "SELECT count(DISTINCT nodeport) FROM pg_dist_shard_placement WHERE shardid IN ($shards)")"
check "every node's worker delivers its shards: all 64 delivered within 30 s" 64 \
    "$(wait_for 30 "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'delivered'" 64)"
ids=$(q "SELECT string_agg(payload ->> 'id', ' ' ORDER BY payload ->> 'id') FROM witn.notifications")
got=$(python3 -c "
import json, sys
print(' '.join(sorted({r['id'] for r in map(json.loads, open(sys.argv[1])) if r['path'] == '/ok'})))" "$dir/log")
check "every notification arrived at the catch-all endpoint" "$ids" "$got"
check "every request is signed correctly" yes \
    "$(python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print('yes' if r and all(x['valid'] for x in r) else r)" "$dir/log")"
check "the failing endpoint's deliveries fail after 3 attempts, on the node that holds them" "6|3|500" \
    "$(wait_for 30 "SELECT count(*) || '|' || max(attempts) || '|' || max(last_response_code) FROM witn.webhook_deliveries WHERE status = 'failed'" "6|3|500")"
check "witn.webhook_status through the coordinator (pending|failed per endpoint)" "0|0 0|6" \
    "$(q "SELECT string_agg(pending || '|' || failed, ' ' ORDER BY endpoint_id) FROM witn.webhook_status")"

note=$(q "SELECT min(id) FROM witn.notifications WHERE customer_key = 'w7'")
check "witn.redeliver through the coordinator queues it again" "1|pending" \
    "$(q "SELECT count(*) || '|' || min(status) FROM witn.redeliver($note)")"
check "and that node's worker delivers it" 0 \
    "$(wait_for 20 "SELECT count(*) FROM witn.webhook_deliveries WHERE notification_id = $note AND status <> 'delivered'" 0)"
outcome=$(q "SELECT min(outcome_id) FROM witn.invoice_lines WHERE customer_key = 'w9'")
q "SELECT witn.credit_outcome($outcome, 1.00, 'goodwill')" >/dev/null
check "a credit through the coordinator is queued on its node and delivered" "delivered" \
    "$(wait_for 20 "SELECT min(d.status) FROM witn.webhook_deliveries d JOIN witn.notifications n ON n.customer_key = d.customer_key AND n.id = d.notification_id WHERE n.kind = 'outcome_credited'" delivered)"
exit $fail
