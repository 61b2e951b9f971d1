#!/usr/bin/env bash
# Two sessions, one new outcome: the event with the lower id must not be applied after the
# event with the higher id without witn.replay() (which replays the log in id order) agreeing.
#
#   session B: BEGIN; opens outcome k1 (and keeps it locked), then waits until A is blocked
#   session A: one INSERT: k2 "score 9" (lower id, a minute earlier), k1 "hello"
#              -> its trigger handles k1 first (key order) and waits for B
#   session B: INSERT k2 "score 1" (higher id); COMMIT
#   session A: resumes, applies its k2 event on top of B's
#
# Condition: score gte 5. In id order k2 is PENDING (9) then scheduled FAILED (1); applied in
# the other order it never holds and stays OPEN. Whatever witn calls the arrival order, the
# stored outcome and its replay must agree: witn.verify() must be empty.
# Environment: PGHOST PGPORT PGUSER PGDATABASE (a fresh database with witn installed).
set -euo pipefail
: "${PGDATABASE:?set PGDATABASE}"

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sql <<'SQL'
INSERT INTO witn.rate_cards (key, currency) VALUES ('ao_card', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('ao', 'ao_card');
INSERT INTO witn.agents (key, condition) VALUES ('ao_agent', '[{"fact": "score", "operator": "gte", "value": 5}]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('ao_card', 'ao_agent', 1);
SQL

sql > "$work/b.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('ao', 'k1', 'hello', 'ao_agent');
DO $$ /* ao: B waits for A */
BEGIN
    FOR n IN 1..600 LOOP
        EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                           WHERE datname = current_database() AND wait_event_type = 'Lock'
                             AND query LIKE '%ao: A%');
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('ao', 'k2', 'score', 'ao_agent', '{"value": 1}');
COMMIT;
SQL
b=$!

for n in $(seq 1 600); do
    [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ao: B waits%' AND pid <> pg_backend_pid()")" = 1 ] && break
    sleep 0.05
done
sql > "$work/a.out" 2>&1 <<'SQL' || true
/* ao: A */ INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('ao', 'k2', 'score', 'ao_agent', '{"value": 9}', now() - interval '1 minute'),
    ('ao', 'k1', 'hello', 'ao_agent', '{}', now());
SQL
wait "$b" || true
if grep -h ERROR "$work/a.out" "$work/b.out"; then fail "the sessions raised errors"; fi

echo "ingest_arrival_order: the log of k2, and its outcome:"
sql -c "SELECT format('  event %s: %s %s at %s', id, action, properties, occurred_at) FROM witn.events WHERE key = 'k2' ORDER BY id"
sql -c "SELECT format('  outcome k2: %s/%s', status, coalesce(scheduled_resolution::text, '-')) FROM witn.outcomes WHERE key = 'k2'"
differences=$(sql -c "SELECT outcome_key || ': ' || differences::text FROM witn.verify()")
[ -z "$differences" ] || fail "witn.verify() disagrees with the stored outcome:
$differences"
echo "ingest_arrival_order: PASS"
