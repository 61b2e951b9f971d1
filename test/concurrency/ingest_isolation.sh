#!/usr/bin/env bash
# An event for an outcome that another transaction changed after this one's snapshot:
#   READ COMMITTED   -> applied on top of the other transaction's state (nothing lost);
#   REPEATABLE READ  -> serialization failure (40001), nothing written, as an UPDATE would fail.
# And an event for an outcome another transaction holds waits for it and then applies on top.
#
#   session A: BEGIN [ISOLATION LEVEL ...]; takes its snapshot; sleeps
#   session B: an event for the same outcome, committed while A sleeps
#   session A: its event for the outcome; COMMIT
# Environment: PGHOST PGPORT PGUSER PGDATABASE (a fresh database with witn installed).
set -euo pipefail
: "${PGDATABASE:?set PGDATABASE}"

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sql <<'SQL'
INSERT INTO witn.rate_cards (key, currency) VALUES ('iso_card', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('iso', 'iso_card');
INSERT INTO witn.agents (key, condition) VALUES ('iso_agent', '[{"fact": "ping", "operator": "count_gte", "value": 3}]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('iso_card', 'iso_agent', 1);
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
    ('iso', 'rc', 'ping', 'iso_agent'), ('iso', 'rr', 'ping', 'iso_agent'), ('iso', 'held', 'ping', 'iso_agent');
SQL

race() { # KEY ISOLATION: A starts first and sends its event after B committed one
    psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose >"$work/$1.a" 2>&1 <<SQL &
BEGIN ISOLATION LEVEL $2;
SELECT count(*) FROM witn.outcomes;
SELECT pg_sleep(1.5);
INSERT INTO witn.events (customer_key, key, action) VALUES ('iso', '$1', 'ping');
COMMIT;
SQL
    local a=$!
    sleep 0.5
    sql -c "INSERT INTO witn.events (customer_key, key, action) VALUES ('iso', '$1', 'ping')"
    wait "$a" && echo 0 >"$work/$1.rc" || echo $? >"$work/$1.rc"
}
accepted() { sql -c "SELECT accepted_events || ' ' || status || '/' || coalesce(scheduled_resolution::text, '-') FROM witn.outcomes WHERE key = '$1'"; }

race rc "READ COMMITTED"
[ "$(cat "$work/rc.rc")" = 0 ] || { cat "$work/rc.a"; fail "READ COMMITTED: the event was refused"; }
[ "$(accepted rc)" = "3 PENDING/CONFIRMED" ] || fail "READ COMMITTED: outcome rc is $(accepted rc), expected 3 PENDING/CONFIRMED"
echo "ok - READ COMMITTED: applied on top of the concurrent event (3 events, PENDING)"

race rr "REPEATABLE READ"
[ "$(cat "$work/rr.rc")" != 0 ] || fail "REPEATABLE READ: the event was applied to a row the snapshot cannot see"
grep -q "ERROR:  40001" "$work/rr.a" || { cat "$work/rr.a"; fail "REPEATABLE READ: expected SQLSTATE 40001"; }
[ "$(accepted rr)" = "2 OPEN/-" ] || fail "REPEATABLE READ: outcome rr is $(accepted rr), expected 2 OPEN/-"
[ "$(sql -c "SELECT count(*) FROM witn.events WHERE key = 'rr'")" = 2 ] || fail "REPEATABLE READ: the refused event was stored"
echo "ok - REPEATABLE READ: 40001, nothing written (2 events, OPEN)"

# B holds outcome 'held' (its event applied, not committed); A's event waits, then applies.
psql -X -q -v ON_ERROR_STOP=1 >"$work/held.b" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO witn.events (customer_key, key, action) VALUES ('iso', 'held', 'ping');
SELECT pg_sleep(1.5);
COMMIT;
SQL
b=$!
sleep 0.5
start=$SECONDS
sql -c "INSERT INTO witn.events (customer_key, key, action) VALUES ('iso', 'held', 'ping')"
wait "$b" || { cat "$work/held.b"; fail "the holding session failed"; }
[ "$(accepted held)" = "3 PENDING/CONFIRMED" ] || fail "held: outcome is $(accepted held), expected 3 PENDING/CONFIRMED"
echo "ok - an event for a held outcome waited $((SECONDS - start))s and applied on top (3 events, PENDING)"

[ "$(sql -c "SELECT count(*) FROM witn.verify()")" = 0 ] || fail "verify() finds differences"
echo "ok - verify() is empty"
echo "ingest_isolation: PASS"
