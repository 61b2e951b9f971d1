#!/usr/bin/env bash
# Webhook delivery throughput (CONTRACT §21, issue 13), on a throwaway cluster with witn
# preloaded and a local receiver (test/webhooks/receiver.py, which checks every signature).
# See docs/performance.md.
#
#   test/bench/webhooks.sh           full scale (about three minutes on 2 cores)
#   test/bench/webhooks.sh --smoke   a few seconds (the test run)
#
# Phases (full scale; --smoke in brackets):
#   1. settlement of 50,000 [1,000] due outcomes with no endpoint, then of as many with one
#      (disabled) endpoint: outcomes/s of each; the second also queues a delivery per
#      notification, in the settling transaction;
#   2. a backlog of 100,000 [2,000] notifications, queued while the endpoint is disabled, drains
#      once it is enabled: deliveries/s from the enable to the last one recorded delivered
#      (witn.webhook_max_connections = 8 kept-alive connections to the one endpoint);
#   3. ingestion: 20 [4] INSERT statements of 1,000 events, with the worker idle, then while it
#      drains a second backlog: events/s of each and the ratio.
# Checks, fatal at any scale: every notification is delivered and arrived, every signature
# verifies.
# Needs root (the cluster runs as postgres) and witn 0.8.0 installed (this builds nothing).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if ((SMOKE)); then SETTLE=1000 BACKLOG=2000 STATEMENTS=4; else SETTLE=50000 BACKLOG=100000 STATEMENTS=20; fi
# shellcheck source=test/webhooks/lib.sh
DB=bench_webhooks . "$ROOT/test/webhooks/lib.sh"
webhooks_cluster_start >/dev/null
webhooks_seed
receiver_start bench
URL="http://127.0.0.1:$RECEIVER_PORT/ok"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) * 1000 / max(int(sys.argv[2]), 1):,.0f}')" "$1" "$2"; }

# ---- 1. settlement with and without an endpoint ----------------------------------------------------
events() { # PREFIX COUNT: events for COUNT outcomes of the 3 customers, due an hour from now
    q "INSERT INTO witn.events (customer_key, key, action, agent_key)
       SELECT (ARRAY['acme', 'globex', 'initech'])[g % 3 + 1], '$1-' || g, 'replied', 'support'
         FROM generate_series(1, $2) g" >/dev/null
}
events plain "$SETTLE"
t0=$(now_ms)
q "SELECT * FROM witn.settle(now() + interval '2 hours')" >/dev/null
plain_ms=$(($(now_ms) - t0))
q "INSERT INTO witn.webhook_endpoints (url, secret, enabled) VALUES ('$URL', '$WITN_TEST_SECRET', false)" >/dev/null
events queued "$SETTLE"
t0=$(now_ms)
q "SELECT * FROM witn.settle(now() + interval '2 hours')" >/dev/null
queued_ms=$(($(now_ms) - t0))
check "one delivery queued per notification settled with the endpoint there" "$SETTLE" "$(q "SELECT count(*) FROM witn.webhook_deliveries")"
echo "# settlement of $SETTLE outcomes: $(rate "$SETTLE" "$plain_ms")/s with no endpoint, $(rate "$SETTLE" "$queued_ms")/s queueing one delivery each (ratio $(python3 -c "print(f'{$plain_ms / max($queued_ms, 1):.2f}')"))"

# ---- 2. a backlog drains ------------------------------------------------------------------------------
events backlog "$BACKLOG"
q "SELECT * FROM witn.settle(now() + interval '2 hours')" >/dev/null
total=$(q "SELECT count(*) FROM witn.webhook_deliveries")
check "the backlog is queued, waiting while the endpoint is disabled" "$total" "$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'pending'")"
t0=$(now_ms)
q "UPDATE witn.webhook_endpoints SET enabled = true" >/dev/null
deadline=$((SECONDS + 900))
while [ "$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'pending'")" != 0 ] && ((SECONDS < deadline)); do sleep 0.2; done
drain_ms=$(($(now_ms) - t0))
check "every delivery is recorded delivered" "$total|$total" "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'delivered') FROM witn.webhook_deliveries")"
read -r distinct valid requests < <(python3 -c "
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
print(len({x['id'] for x in r}), sum(x['valid'] for x in r), len(r))" "$RECEIVER_LOG")
check "every notification arrived" "$total" "$distinct"
check "every signature verifies" "$requests" "$valid"
echo "# drain: $total deliveries in $((drain_ms / 1000)).$(printf '%03d' $((drain_ms % 1000))) s = $(rate "$total" "$drain_ms") deliveries/s ($requests requests, 8 connections, receiver checking each signature)"

# ---- 3. ingestion while the worker drains -------------------------------------------------------------
ingest() { # PREFIX: STATEMENTS statements of 1,000 events; prints the milliseconds
    local t0 i
    t0=$(now_ms)
    for ((i = 0; i < STATEMENTS; i++)); do
        q "INSERT INTO witn.events (customer_key, key, action, agent_key)
           SELECT (ARRAY['acme', 'globex', 'initech'])[g % 3 + 1], '$1-$i-' || g, 'replied', 'support'
             FROM generate_series(1, 1000) g" >/dev/null
    done
    echo $(($(now_ms) - t0))
}
idle_ms=$(ingest idle)
events second "$BACKLOG"
q "UPDATE witn.webhook_endpoints SET enabled = false" >/dev/null
q "SELECT * FROM witn.settle(now() + interval '2 hours')" >/dev/null
q "UPDATE witn.webhook_endpoints SET enabled = true" >/dev/null
sleep 1
busy_ms=$(ingest busy)
still=$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'pending'")
n=$((STATEMENTS * 1000))
echo "# ingestion of $n events in statements of 1,000: $(rate "$n" "$idle_ms")/s with the worker idle, $(rate "$n" "$busy_ms")/s while it drained (ratio $(python3 -c "print(f'{$idle_ms / max($busy_ms, 1):.2f}')"); $still deliveries still pending at the end)"
deadline=$((SECONDS + 900))
while [ "$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'pending'")" != 0 ] && ((SECONDS < deadline)); do sleep 0.5; done
check "the second backlog is delivered too" 0 "$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status <> 'delivered'")"
exit $failures
