#!/usr/bin/env bash
# Removal on Citus (CONTRACT §26): DROP EXTENSION witn through the coordinator of a distributed
# database leaves nothing of witn on any node: no schema witn or witn_api, no shard, no pg_cron
# job of the database, no privilege of a witn role.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
node() { local n=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${WITN_CITUS_PORTS_LIST[$n]}" -c "$1"; }
read -r -a WITN_CITUS_PORTS_LIST <<<"${WITN_CITUS_PORTS:?}"

q "INSERT INTO witn.rate_cards (key, currency) VALUES ('rm', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'rm' || g, 'rm' FROM generate_series(1, 8) g;
   INSERT INTO witn.agents (key) VALUES ('rm')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('rm', 'rm', 1)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key) SELECT 'rm' || g, 'k', 'a', 'rm' FROM generate_series(1, 8) g" >/dev/null
q "CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null
q "SELECT witn.schedule_settlement()" >/dev/null
check "the settlement job exists" "1" "$(psql -X -At -d postgres -c "SELECT count(*) FROM cron.job WHERE database = '$PGDATABASE' AND jobname LIKE 'witn-%'")"
for n in 1 2; do
    check "worker $n holds shards of witn.events" "t" "$(node $n "SELECT count(*) > 0 FROM pg_class WHERE relname LIKE 'events\_%' AND relnamespace = 'witn'::regnamespace" -d "$PGDATABASE" 2>/dev/null || echo error)"
done
q "DROP EXTENSION witn CASCADE" >/dev/null 2>&1 || q "DROP EXTENSION witn CASCADE"
for n in 0 1 2; do
    check "node $n: no witn extension, schema or API schema" "0 0" \
        "$(psql -X -At -h 127.0.0.1 -p "${WITN_CITUS_PORTS_LIST[$n]}" -d "$PGDATABASE" -c "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'witn') || ' ' || (SELECT count(*) FROM pg_namespace WHERE nspname IN ('witn', 'witn_api'))")"
    check "node $n: no privilege of a witn role left in this database" "0" \
        "$(psql -X -At -h 127.0.0.1 -p "${WITN_CITUS_PORTS_LIST[$n]}" -d "$PGDATABASE" -c "SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid WHERE d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND r.rolname LIKE 'witn\_%'")"
done
check "no pg_cron job of the database is left" "0" "$(psql -X -At -d postgres -c "SELECT count(*) FROM cron.job WHERE database = '$PGDATABASE'")"
exit $fail
