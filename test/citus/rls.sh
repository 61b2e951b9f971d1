#!/usr/bin/env bash
# Row level security on Citus as PostgREST drives it: a login role SET ROLEs to witn_customer or
# witn_ingest in a transaction, sets request.jwt.claims with set_config(..., true) and calls the
# db-pre-request function witn.pre_request(), which sends the claims on to the workers. A
# customer token reads its own rows only, through witn's tables and the witn_api views; an ingest
# token scoped to a customer cannot send another customer's events; a request that did not send
# its claims is refused (42501), never answered with "no rows" or "no scope".
# Citus connects to the workers as the current role, so these roles must be able to log in
# there (docs/scale-out.md); this test lets them for its duration (trust auth on 127.0.0.1).
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
# request ROLE CLAIMS SQL [pre_request]: one PostgREST-like transaction; prints the result or
# the SQLSTATE of its error.
request() {
    local pre="SELECT witn.pre_request();"
    [ "${5:-with}" = without ] && pre=""
    psql -X -q -At -v ON_ERROR_STOP=1 2>&1 <<SQL | grep -v '^$' | tail -1 | sed 's/^ERROR: *//'
\\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE $1;
SELECT set_config('request.jwt.claims', '$2', true) \\g /dev/null
$pre
$3;
COMMIT;
SQL
}
q "ALTER ROLE witn_customer LOGIN; ALTER ROLE witn_ingest LOGIN; ALTER ROLE witn_reader LOGIN; ALTER ROLE witn_admin LOGIN" >/dev/null
trap 'q "ALTER ROLE witn_customer NOLOGIN; ALTER ROLE witn_ingest NOLOGIN; ALTER ROLE witn_reader NOLOGIN; ALTER ROLE witn_admin NOLOGIN" >/dev/null 2>&1' EXIT
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 8) g;
   INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', 'sum', '1 day');
   INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50);
   INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || (1 + g % 8), 't' || g, 'replied', 'support', timestamptz '2026-01-01' FROM generate_series(1, 80) g" >/dev/null
q "SELECT * FROM witn.settle(timestamptz '2026-02-01')" >/dev/null
check "on Citus, settle() inside a transaction that already used distributed tables is refused (25001)" "25001" \
    "$(psql -X -At -c '\set VERBOSITY sqlstate' -c "BEGIN" -c "SELECT count(*) FROM witn.outcomes" -c "SELECT * FROM witn.settle()" 2>&1 | tail -1 | sed 's/^ERROR: *//')"

c1='{"role": "witn_customer", "customer_key": "c1"}'
check "a customer token reads its own outcomes only (through the coordinator, rows on both workers)" "10 c1" \
    "$(request witn_customer "$c1" "SELECT count(*) || ' ' || string_agg(DISTINCT customer_key, ',') FROM witn.outcomes")"
check "... its own events, invoice lines and notifications" "10 10 10" \
    "$(request witn_customer "$c1" "SELECT (SELECT count(*) FROM witn.events) || ' ' || (SELECT count(*) FROM witn.invoice_lines) || ' ' || (SELECT count(*) FROM witn.notifications)")"
check "... and the same through the witn_api views PostgREST exposes" "10 10" \
    "$(request witn_customer "$c1" "SELECT (SELECT count(*) FROM witn_api.outcomes) || ' ' || (SELECT count(*) FROM witn_api.invoice_lines)")"
check "another customer's outcome is not there for it" "0" \
    "$(request witn_customer "$c1" "SELECT count(*) FROM witn.outcomes WHERE customer_key = 'c2'")"
# Without witn.pre_request() the claims are not on the workers: where Citus evaluates the
# policy's claim on the coordinator (to find the customer's shard) the answer is right, where a
# worker evaluates it the request is refused. Never an empty answer.
for t in outcomes events invoice_lines notifications; do
    got=$(request witn_customer "$c1" "SELECT count(*) FROM witn.$t" without)
    check "a customer request that did not send its claims: witn.$t is refused or right, never empty ($got)" "yes" \
        "$([ "$got" = 42501 ] || [ "$got" = 10 ] && echo yes || echo "$got")"
done
check "a token for another role sees nothing" "0" \
    "$(request witn_customer '{"role": "witn_reader", "customer_key": "c1"}' "SELECT count(*) FROM witn.outcomes")"
check "witn_reader reads every customer" "80" \
    "$(request witn_reader '{"role": "witn_reader"}' "SELECT count(*) FROM witn.outcomes")"

scoped='{"role": "witn_ingest", "customer_key": "c3"}'
check "an ingest token scoped to a customer sends that customer's events" "sent" \
    "$(request witn_ingest "$scoped" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c3', 'scoped-ok', 'replied', 'support') RETURNING 'sent'")"
check "... and not another customer's (row policy, 42501)" "42501" \
    "$(request witn_ingest "$scoped" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c4', 'scoped-bad', 'replied', 'support')")"
check "... nor without sending its claims to the workers (42501, not an unscoped token)" "42501" \
    "$(request witn_ingest "$scoped" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c4', 'scoped-bad2', 'replied', 'support')" without)"
check "an unscoped ingest token sends events for any customer" "sent" \
    "$(request witn_ingest '{"role": "witn_ingest"}' "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c4', 'free', 'replied', 'support'), ('c5', 'free', 'replied', 'support') RETURNING 'sent'")"
check "the refused events were not written, the accepted ones opened outcomes" "0 3" \
    "$(q "SELECT count(*) FILTER (WHERE key LIKE 'scoped-bad%') || ' ' || count(*) FILTER (WHERE key IN ('scoped-ok', 'free')) FROM witn.outcomes")"
some=$(q "SELECT min(id) FROM witn.outcomes WHERE customer_key = 'c1'")
other=$(q "SELECT min(id) FROM witn.outcomes WHERE customer_key = 'c2'")
check "explain_outcome shows a customer its own outcome" "1" \
    "$(request witn_customer "$c1" "SELECT count(*) FROM witn_api.explain_outcome($some)")"
check "... and nothing of another customer's" "0" \
    "$(request witn_customer "$c1" "SELECT count(*) FROM witn_api.explain_outcome($other)")"
check "witn.pre_request() is a no-op on a single node and needs no privilege beyond the roles'" "" \
    "$(request witn_customer "$c1" "SELECT witn.pre_request()")"

# witn_admin writes the lookup tables (reference tables: a copy on every node) within its
# column privileges, as on one node.
admin='{"role": "witn_admin"}'
check "witn_admin adds a customer and a rate card" "added" \
    "$(request witn_admin "$admin" "INSERT INTO witn.rate_cards (key, currency) VALUES ('premium', 'USD'); INSERT INTO witn.customers (key, rate_card_key) VALUES ('c9', 'premium') RETURNING 'added'")"
check "witn_admin changes an agent's condition and a price" "changed" \
    "$(request witn_admin "$admin" "UPDATE witn.rate_card_prices SET price_per_unit = 3 WHERE rate_card_key = 'std'; UPDATE witn.agents SET condition = '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', name = 'Support' WHERE key = 'support' RETURNING 'changed'")"
check "witn_admin may not change a key (column privilege, 42501)" "42501" \
    "$(request witn_admin "$admin" "UPDATE witn.customers SET key = 'c99' WHERE key = 'c9'")"
read -ra ports <<<"$WITN_CITUS_PORTS"
check "every node's copy has the admin's changes" "3 3 3" \
    "$(for p in "${ports[@]}"; do psql -X -At -p "$p" -c "SELECT (SELECT count(*) FROM witn.customers WHERE key = 'c9') + (SELECT count(*) FROM witn.agents WHERE name = 'Support') + (SELECT count(*) FROM witn.rate_cards WHERE key = 'premium')"; done | tr '\n' ' ' | sed 's/ $//')"
# The guard on customers and agents: on Citus it checks each node's outcome shards.
check "a customer with outcomes cannot be deleted (23503, as on one node)" "23503" \
    "$(psql -X -At -c '\set VERBOSITY sqlstate' -c "DELETE FROM witn.customers WHERE key = 'c1'" 2>&1 | tail -1 | sed 's/^ERROR: *//')"
check "an agent with outcomes cannot be deleted (23503)" "23503" \
    "$(psql -X -At -c '\set VERBOSITY sqlstate' -c "DELETE FROM witn.agents WHERE key = 'support'" 2>&1 | tail -1 | sed 's/^ERROR: *//')"
q "INSERT INTO witn.customers (key, rate_card_key) VALUES ('unused', 'std')" >/dev/null
check "a customer without outcomes can be deleted" "DELETE 1" "$(psql -X -At -c "DELETE FROM witn.customers WHERE key = 'unused'" 2>&1)"
check "the customers are all still there (8 with outcomes, c9 added by witn_admin)" "9" "$(q "SELECT count(*) FROM witn.customers")"
exit $fail
