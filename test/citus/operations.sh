#!/usr/bin/env bash
# Operations (0.8.0, CONTRACT §24, §25) on a 1 + 2 Citus cluster, through the coordinator:
# witn_operator settles every shard (and may not settle ahead), witn.purge_events purges on every
# shard's node in batches per shard, the outcomes stay with events_purged_at, verify() is clean and
# simulate skips them; the monitoring views count over every shard; the purges of settlement
# errors and delivered webhooks work on distributed tables.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
as_operator() { psql -X -qAt -v ON_ERROR_STOP=1 -c "SET ROLE witn_operator" -c "$1"; }
state() { psql -X -At -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | tail -1 | sed 's/^ERROR: *//' || true; }

q "INSERT INTO witn.rate_cards (key, currency) VALUES ('ops', 'USD')" >/dev/null
q "INSERT INTO witn.customers (key, rate_card_key) SELECT 'o' || g, 'ops' FROM generate_series(1, 12) g" >/dev/null
q "INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('ops', '[{\"fact\": \"done\", \"operator\": \"seen\"}]', '1 day')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('ops', 'ops', 4)" >/dev/null
# 240 outcomes resolved 9 days ago over every customer (so every shard), 40 not due yet.
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'o' || c, 'k' || g, CASE WHEN g % 4 = 0 THEN 'started' ELSE 'done' END, 'ops', now() - interval '10 days'
     FROM generate_series(1, 12) c, generate_series(1, 20) g" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key)
   SELECT 'o' || c, 'new' || g, 'done', 'ops' FROM generate_series(1, 4) c, generate_series(1, 10) g" >/dev/null

check "settlement_backlog counts the due outcomes over every shard" "240" "$(q "SELECT due FROM witn.settlement_backlog")"
check "witn_operator settles every shard" "180/60/0" "$(as_operator "SELECT confirmed || '/' || failed || '/' || errors FROM witn.settle()")"
check "but not ahead of the clock" "42501" "$(state "SET ROLE witn_operator; SELECT witn.settle(now() + interval '2 days')")"
check "witn_ingest is told what to grant" "42501" "$(state "SET ROLE witn_ingest; SELECT witn.settle()")"
check "nothing is due then" "0" "$(q "SELECT due FROM witn.settlement_backlog")"
check "retention_backlog counts the resolved outcomes over every shard" "240" "$(q "SELECT outcomes_with_events FROM witn.retention_backlog")"
lines=$(q "SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines")

check "purge_events refuses a NULL time through the coordinator" "WT001" "$(state "SELECT witn.purge_events(NULL)")"
first=$(as_operator "SELECT witn.purge_events(now() - interval '1 day', 5)")
shards=$(q "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'witn.outcomes'::regclass")
purged=$(q "SELECT count(*) FROM witn.outcomes WHERE events_purged_at IS NOT NULL")
check "a batch of 5 per shard purges at most 5 outcomes on each shard, on every node" "yes" \
    "$( ((purged > 5 && purged <= 5 * shards && first == purged)) && echo yes || echo "$purged purged, $first events, $shards shards")"
rest=0
while got=$(as_operator "SELECT witn.purge_events(now() - interval '1 day', 50)") && [ "$got" -gt 0 ]; do rest=$((rest + got)); done
check "calling again until it returns 0 purges every resolved outcome's events" "240 240" "$((first + rest)) $(q "SELECT count(*) FROM witn.outcomes WHERE events_purged_at IS NOT NULL")"
check "their events are gone on every shard, the others stay" "40" "$(q "SELECT count(*) FROM witn.events")"
check "the invoice lines stay" "$lines" "$(q "SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines")"
check "verify() skips them: clean" "0" "$(q "SELECT count(*) FROM witn.verify()")"
one=$(q "SELECT min(id) FROM witn.outcomes WHERE events_purged_at IS NOT NULL")
check "replay says an outcome was not replayed" "not replayed" "$(q "SELECT coalesce(matches::text, left(differences[1], 12)) FROM witn.replay($one)")"
check "simulate skips them and replays the others" "40" "$(q "SELECT count(*) FROM witn.simulate('ops', now() - interval '1 day', now() + interval '1 day')")"
q "INSERT INTO witn.events (customer_key, key, action) VALUES ('o3', 'k1', 'done')" >/dev/null
check "a late event for a purged outcome is stored late and bills nothing" "t $lines" \
    "$(q "SELECT late FROM witn.events WHERE customer_key = 'o3' AND key = 'k1'") $(q "SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines")"

q "INSERT INTO witn.settlement_errors (customer_key, outcome_id, sqlstate, message, occurred_at)
   SELECT 'o' || g, g, 'XX000', 'test', now() - interval '40 days' FROM generate_series(1, 12) g" >/dev/null
check "settlement_error_summary over every shard" "12" "$(q "SELECT errors FROM witn.settlement_error_summary")"
check "purge_settlement_errors on a distributed table" "12" "$(as_operator "SELECT witn.purge_settlement_errors(now() - interval '30 days')")"
check "storage sums every shard's bytes" "t" "$(q "SELECT total_bytes > pg_total_relation_size('witn.events') FROM witn.storage WHERE table_name = 'events'")"
check "webhook_backlog plans on Citus" "0" "$(q "SELECT pending FROM witn.webhook_backlog")"
check "purge_webhook_deliveries on a distributed table" "0" "$(as_operator "SELECT witn.purge_webhook_deliveries(now())")"
exit $fail
