#!/usr/bin/env bash
# Moving a shard group between workers (what citus_rebalance_start does): colocated shards move
# together and witn keeps working on them; witn.distribute() run again gives the moved shards
# the privileges the move dropped, and a node's id range survives; settlement, verify and the
# ingest role's inserts work after the move.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
read -ra ports <<<"$WITN_CITUS_PORTS"
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
state() { psql -X -At -c '\set VERBOSITY sqlstate' "$@" 2>&1 | tail -1 | sed 's/^ERROR: *//'; }
q "ALTER ROLE witn_ingest LOGIN" >/dev/null
trap 'q "ALTER ROLE witn_ingest NOLOGIN" >/dev/null 2>&1' EXIT
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 20) g;
   INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', 'sum', '1 day')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 0.50)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || (1 + g % 20), 't' || g, 'replied', 'support', timestamptz '2026-01-01' FROM generate_series(1, 100) g" >/dev/null

# c1's shard group moves from its worker to the other one.
shard=$(q "SELECT get_shard_id_for_distribution_column('witn.events', 'c1')")
from=$(q "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $shard")
to=${ports[1]}; [ "$from" = "$to" ] && to=${ports[2]}
q "SELECT citus_move_shard_placement($shard, '127.0.0.1', $from, '127.0.0.1', $to, 'block_writes')" >/dev/null
check "c1's events, outcomes and lines moved together" "$to $to $to" \
    "$(for t in events outcomes invoice_lines; do q "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = get_shard_id_for_distribution_column('witn.$t', 'c1')"; done | tr '\n' ' ' | sed 's/ $//')"
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('c1', 'after-move', 'replied', 'support', timestamptz '2026-01-01')" >/dev/null
check "events for c1 open outcomes on the new node" "1" "$(q "SELECT count(*) FROM witn.outcomes WHERE key = 'after-move'")"
check "the new node makes ids in its own range" "t" \
    "$(q "SELECT id >> 48 = (SELECT groupid FROM pg_dist_node WHERE nodeport = $to) FROM witn.outcomes WHERE key = 'after-move'")"
ingest() { psql -X -q -At -v ON_ERROR_STOP=1 <<SQL 2>&1 | tail -1 | sed 's/^ERROR: *//'
\\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE witn_ingest;
SELECT set_config('request.jwt.claims', '{"role": "witn_ingest"}', true) \\g /dev/null
SELECT witn.pre_request() \\g /dev/null
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('c1', '$1', 'replied', 'support', timestamptz '2026-01-01') RETURNING 'sent';
COMMIT;
SQL
}
moved=$(ingest ingest-before || true)
check "before witn.distribute() runs again, the ingest role is refused on the moved shard, loudly" "yes" \
    "$([ "$moved" = 42501 ] || [ "$moved" = sent ] && echo yes || echo "$moved")"
echo "# ingest role on the moved shard before witn.distribute(): $moved"
check "witn.distribute() after the move (14 tables)" "14" "$(q "SELECT count(*) FROM witn.distribute()")"
check "the ingest role sends c1's events again" "sent" "$(ingest ingest-after)"
q "SELECT * FROM witn.settle(timestamptz '2026-02-01')" >/dev/null
check "everything settled, one line per confirmed outcome" "0 t" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL") $(q "SELECT (SELECT count(*) FROM witn.invoice_lines) = (SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED')")"
check "verify() is clean" "0" "$(q "SELECT count(*) FROM witn.verify()")"
moved_id=$(q "SELECT id FROM witn.outcomes WHERE key = 'after-move'")
check "replay() finds a moved outcome" "t" "$(q "SELECT matches FROM witn.replay($moved_id)")"
exit $fail
