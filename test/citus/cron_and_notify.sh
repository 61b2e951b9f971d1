#!/usr/bin/env bash
# On a 1 + 2 Citus cluster: the pg_cron job on the coordinator (pg_cron in database postgres,
# scheduled with witn.schedule_settlement() through dblink) settles the due outcomes of every
# shard on both workers with nobody calling witn.settle(); a consumer LISTENing on a worker gets
# the notifications of the outcomes settled there, and the outbox has one per outcome.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
read -ra ports <<<"$WITN_CITUS_PORTS"
db=$PGDATABASE
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
work=$(mktemp -d)
cleanup() {
    psql -X -q -d postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'witn-settle:$db'" >/dev/null 2>&1 || true
    [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
q "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 16) g;
   INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', 'sum', '1 day')" >/dev/null
q "INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 1.25)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || (1 + g % 16), 't' || g, CASE WHEN g % 5 = 0 THEN 'other' ELSE 'replied' END, 'support', now() - interval '2 days'
     FROM generate_series(1, 64) g" >/dev/null
check "64 due outcomes on both workers" "64 2" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL") $(q "SELECT count(DISTINCT n.nodeport) FROM run_command_on_shards('witn.outcomes', 'SELECT count(*) FROM %s') r JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE r.result::int > 0")"

# A consumer listening on worker 1 (its session prints the notifications it received).
# psql prints the notifications it got after each command: one command a second.
(echo "LISTEN witn_outcomes;"; for ((n = 0; n < 150; n++)); do echo "SELECT 1;"; sleep 1; done) |
    psql -X -q -At -p "${ports[1]}" -d "$db" >"$work/listen.out" 2>&1 &
listener=$!
sleep 1
job=$(q "SELECT witn.schedule_settlement()")
check "the settlement job is scheduled in the cron database" "1" \
    "$(psql -X -At -d postgres -c "SELECT count(*) FROM cron.job WHERE jobid = $job AND database = '$db'")"
echo "# waiting up to 130 s for pg_cron to run witn.settle() on the coordinator"
for ((i = 0; i < 130; i++)); do
    [ "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")" = 0 ] && break
    sleep 1
done
echo "# waited ${i} s"
check "every outcome on every worker settled by the job" "0" "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")"
check "the job's run succeeded" "t" \
    "$(psql -X -At -d postgres -c "SELECT bool_or(status = 'succeeded') FROM cron.job_run_details WHERE jobid = $job")"
check "one invoice line per confirmed outcome, one notification per outcome" "52 64" \
    "$(q "SELECT count(*) FROM witn.invoice_lines") $(q "SELECT count(*) FROM witn.notifications")"
check "the invoice's amount" "65.00" "$(q "SELECT sum(amount) FROM witn.invoice_lines")"
sleep 2
kill "$listener" 2>/dev/null || true
listener=""
on_worker1=$(q "SELECT coalesce(sum(r.result::int), 0) FROM run_command_on_shards('witn.notifications', 'SELECT count(*) FROM %s') r
                JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = ${ports[1]}")
check "a LISTEN on worker 1 received the notifications of the outcomes settled there" "$on_worker1" \
    "$(grep -c 'Asynchronous notification "witn_outcomes"' "$work/listen.out" || true)"
check "verify() is clean" "0" "$(q "SELECT count(*) FROM witn.verify()")"
check "witn.unschedule_settlement() removes the job" "t 0" \
    "$(q "SELECT witn.unschedule_settlement()") $(psql -X -At -d postgres -c "SELECT count(*) FROM cron.job WHERE jobname = 'witn-settle:$db'")"
exit $fail
