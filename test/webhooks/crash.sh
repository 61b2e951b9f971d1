#!/usr/bin/env bash
# Nothing is lost when delivery is interrupted: a backlog of notifications is being delivered
# when the worker is stopped (SIGTERM), killed (SIGKILL: PostgreSQL restarts every process, as
# after a crash), and when PostgreSQL itself stops in "immediate" mode and starts again. After
# each, delivery resumes by itself; in the end every notification arrived (at least once) and
# every delivery is recorded delivered.
set -uo pipefail
# shellcheck source=test/webhooks/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${WITN_CRASH_BACKLOG:-3000}
webhooks_cluster_start "witn.webhook_retry_schedule = '1s,1s,1s,1s,1s'
witn.webhook_max_connections = 4
restart_after_crash = on" || exit 1
webhooks_seed
# Each answer takes 10 ms: 4 connections drain about 300 a second, so the backlog lasts seconds.
receiver_start main
q "INSERT INTO witn.webhook_endpoints (url, secret, enabled) VALUES ('http://127.0.0.1:$RECEIVER_PORT/slow/0.01', '$WITN_TEST_SECRET', false)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key) SELECT 'acme', 'c-' || g, 'replied', 'support' FROM generate_series(1, $N) g" >/dev/null
q "SELECT * FROM witn.settle(now() + interval '2 hours')" >/dev/null
check "$N deliveries queued, waiting while the endpoint is disabled" "$N" "$(q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'pending' AND attempts = 0")"
q "UPDATE witn.webhook_endpoints SET enabled = true" >/dev/null

delivered() { q "SELECT count(*) FROM witn.webhook_deliveries WHERE status = 'delivered'" 2>/dev/null || echo -1; }
received() { wc -l <"$RECEIVER_LOG"; }
wait_delivered() { # COUNT SECONDS
    local deadline=$((SECONDS + $2))
    while (($(delivered) < $1)) && ((SECONDS < deadline)); do sleep 0.1; done
}
worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'witn webhook worker' AND datname = current_database()" 2>/dev/null; }

wait_delivered $((N / 5)) 60
pid=$(worker_pid)
kill -TERM "$pid"
sleep 0.5
at=$(delivered)
echo "# SIGTERM to the worker with $at of $N recorded delivered, $(received) received"
check "a stopped worker is started again by the launcher" yes \
    "$(for _ in $(seq 150); do p=$(worker_pid); [ -n "$p" ] && [ "$p" != "$pid" ] && break; sleep 0.1; done; [ -n "$p" ] && [ "$p" != "$pid" ] && echo yes || echo "no: [$p] after $pid")"

wait_delivered $((2 * N / 5)) 60
pid=$(worker_pid)
kill -KILL "$pid"
at=$(delivered)
echo "# SIGKILL to the worker with $at of $N recorded delivered, $(received) received"
for _ in $(seq 100); do pg_isready -q -d postgres && [ "$(q "SELECT 1" 2>/dev/null)" = 1 ] && break; sleep 0.2; done
check "PostgreSQL restarted every process after the killed worker" 1 "$(grep -c 'terminating any other active server processes' "$WITN_CLUSTER_DIR/server.log")"
check "the worker is back after the crash restart" yes \
    "$(for _ in $(seq 200); do p=$(worker_pid); [ -n "$p" ] && break; sleep 0.1; done; [ -n "$p" ] && echo yes || echo no)"

wait_delivered $((3 * N / 5)) 60
at=$(delivered)
echo "# pg_ctl stop -m immediate with $at of $N recorded delivered, $(received) received"
witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$WITN_CLUSTER_DIR/data" -m immediate -w stop >/dev/null
witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$WITN_CLUSTER_DIR/data" -l "$WITN_CLUSTER_DIR/server.log" -w start >/dev/null
check "after the restart, the backlog drains by itself" "$N" "$(wait_delivered "$N" 120; delivered)"
check "every delivery is recorded delivered, none failed or pending" "$N|0|0" \
    "$(q "SELECT count(*) FILTER (WHERE status = 'delivered') || '|' || count(*) FILTER (WHERE status = 'failed') || '|' || count(*) FILTER (WHERE status = 'pending') FROM witn.webhook_deliveries")"
read -r distinct total valid < <(python3 -c "
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
print(len({x['id'] for x in r}), len(r), sum(x['valid'] for x in r))" "$RECEIVER_LOG")
check "every notification arrived, none was dropped" "$(q "SELECT count(*) FROM witn.notifications")" "$distinct"
check "every request was signed correctly" "$total" "$valid"
echo "# $total requests for $distinct notifications: $((total - distinct)) sent again after the interruptions (at least once; receivers dedupe by webhook-id)"
exit $failures
