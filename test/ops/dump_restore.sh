#!/usr/bin/env bash
# Backup and restore: pg_dump of a database using witn, restored into a fresh database, gives
# the same customers, agents, prices, events, outcomes, invoice lines and notifications when
# loaded with session_replication_role = replica (and is refused without it); the restored
# events are not applied a second time; verify() is clean; new events keep working.
# Needs PGHOST, PGPORT, PGUSER (a superuser) and PGDATABASE (a fresh database with witn).
set -euo pipefail
src=$PGDATABASE
dst="${PGDATABASE}_restored"
fail=0
check() { # description expected actual
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

psql -X -q -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
INSERT INTO witn.currencies (code, minor_units) VALUES ('XTS', 3);
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD'), ('test', 'XTS');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std'), ('initech', 'test');
INSERT INTO witn.agents (key, condition, attribution_method) VALUES
    ('support', '[{"fact": "replied", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}]', 'sum');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50), ('test', 'support', 1.125);
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key)
SELECT c, 't' || g, CASE WHEN g % 4 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
       jsonb_build_object('attribution', g % 3), 'k' || g
  FROM generate_series(1, 200) g, unnest(ARRAY['acme', 'initech']) c;
-- Webhooks (0.7.0): an endpoint (its secret made by witn) for which every notification is queued.
INSERT INTO witn.webhook_endpoints (url, description) VALUES ('https://hooks.example.com/witn', 'restore check');
INSERT INTO witn.events (customer_key, key, action, properties, idempotency_key)
VALUES ('acme', 't1', 'replied', '{"attribution": 1}', 'k1');   -- a retry: recorded as a duplicate
SELECT * FROM witn.settle(now() + interval '4 days');
INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 't2', 'reopened');   -- late
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'open-1', 'replied', 'support');
-- Credits (0.6.0): outcomes billed last month, which is then closed; a credit, a reversal by hand
-- and one by the reversal condition, all billed this month.
INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period)
VALUES ('onb', '[]', '1 hour', '[{"fact": "churned", "operator": "seen"}]', '60 days');
INSERT INTO witn.rate_card_prices VALUES ('std', 'onb', 100), ('test', 'onb', 7.125);
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT c, 'onb-' || g, 'done', 'onb', date_trunc('month', now()) - interval '3 days'
  FROM generate_series(1, 3) g, unnest(ARRAY['acme', 'initech']) c;
SELECT * FROM witn.settle();
SELECT * FROM witn.close_period((date_trunc('month', now()) - interval '1 month')::date);
SELECT * FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'onb-1'), 12.5, 'goodwill');
SELECT * FROM witn.reverse_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'initech' AND key = 'onb-2'), 'dispute');
INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'onb-3', 'churned');
SQL

snapshot() { # the data a restore must preserve, as one hash per table
    q "$1" "SELECT string_agg(t || ':' || h, ' ' ORDER BY t) FROM (
        SELECT 'outcomes' t, md5(string_agg(o::text, '|' ORDER BY o.id)) h FROM witn.outcomes o
        UNION ALL SELECT 'events', md5(string_agg(e::text, '|' ORDER BY e.id)) FROM witn.events e
        UNION ALL SELECT 'lines', md5(string_agg(l::text, '|' ORDER BY l.id)) FROM witn.invoice_lines l
        UNION ALL SELECT 'notifications', md5(string_agg(n::text, '|' ORDER BY n.id)) FROM witn.notifications n
        UNION ALL SELECT 'agents', md5(string_agg(a::text, '|' ORDER BY a.key)) FROM witn.agents a
        UNION ALL SELECT 'prices', md5(string_agg(p::text, '|' ORDER BY p.rate_card_key, p.agent_key)) FROM witn.rate_card_prices p
        UNION ALL SELECT 'currencies', md5(string_agg(c::text, '|' ORDER BY c.code)) FROM witn.currencies c
        UNION ALL SELECT 'credits', md5(string_agg(k::text, '|' ORDER BY k.id)) FROM witn.credit_lines k
        UNION ALL SELECT 'endpoints', md5(string_agg(w::text, '|' ORDER BY w.id)) FROM witn.webhook_endpoints w
        UNION ALL SELECT 'deliveries', md5(string_agg(d::text, '|' ORDER BY d.id)) FROM witn.webhook_deliveries d
        UNION ALL SELECT 'closed', md5(string_agg(p::text, '|' ORDER BY p.customer_key, p.period)) FROM witn.closed_periods p
        UNION ALL SELECT 'invoices', md5(string_agg(i::text, '|' ORDER BY i.customer_key, i.currency, i.month)) FROM witn.invoices i) s"
}
before=$(snapshot "$src")

dump=$(mktemp /tmp/witn-dump.XXXXXX.sql)
trap 'rm -f "$dump"; PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$dst\"" >/dev/null 2>&1' EXIT
pg_dump -d "$src" -f "$dump"
PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$dst\"" -c "CREATE DATABASE \"$dst\"" >/dev/null
# Without the explicit restore mode the first restored events are refused, loudly.
if out=$(psql -X -q -v ON_ERROR_STOP=1 -1 -d "$dst" -f "$dump" 2>&1 >/dev/null); then
    check "a restore without session_replication_role = replica is refused" "an error" "success"
else
    check "a restore without session_replication_role = replica is refused" "yes" \
        "$(grep -q -e 'received_at is set by witn' -e 'credit lines are issued by witn' <<<"$out" && echo yes || echo "$out")"
fi
PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$dst\"" -c "CREATE DATABASE \"$dst\"" >/dev/null
# A restore is explicit: session_replication_role = replica (superuser) stores the rows as
# they are, without the events trigger.
PGOPTIONS='-c session_replication_role=replica' psql -X -q -v ON_ERROR_STOP=1 -d "$dst" -f "$dump" >/dev/null

check "every witn table restored identically" "$before" "$(snapshot "$dst")"
check "verify() is clean after the restore" "0" "$(q "$dst" "SELECT count(*) FROM witn.verify()")"
check "restored events were not applied again" \
    "$(q "$src" "SELECT sum(accepted_events) FROM witn.outcomes")" \
    "$(q "$dst" "SELECT sum(accepted_events) FROM witn.outcomes")"

q "$dst" "INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'open-1', 'reopened')" >/dev/null
check "a new event applies to a restored outcome" "PENDING/FAILED/2" \
    "$(q "$dst" "SELECT status || '/' || scheduled_resolution || '/' || accepted_events FROM witn.outcomes WHERE key = 'open-1' AND customer_key = 'acme'")"
check "new ids continue after the restored ones" "t" \
    "$(q "$dst" "SELECT max(id) FILTER (WHERE received_at = (SELECT max(received_at) FROM witn.events)) > (SELECT max(id) FROM witn.events WHERE received_at < (SELECT max(received_at) FROM witn.events)) FROM witn.events")"
check "settlement goes on after the restore" "1" \
    "$(q "$dst" "SELECT failed FROM witn.settle(now() + interval '4 days')")"
check "the restore holds the endpoint, its secret and its queue; a new notification is queued after them" "true true" \
    "$(q "$dst" "SELECT ((SELECT secret FROM witn.webhook_endpoints) = '$(q "$src" "SELECT secret FROM witn.webhook_endpoints")')::text
                 || ' ' || (max(id) = (SELECT d.id FROM witn.webhook_deliveries d JOIN witn.notifications n ON n.customer_key = d.customer_key AND n.id = d.notification_id ORDER BY n.id DESC LIMIT 1))::text FROM witn.webhook_deliveries")"
check "the restore holds the credits" "3 1 2" \
    "$(q "$dst" "SELECT count(*) || ' ' || count(*) FILTER (WHERE kind = 'adjustment') || ' ' || (SELECT count(*) FROM witn.outcomes WHERE reversed_at IS NOT NULL) FROM witn.credit_lines")"
check "a restored reversal is not repeated (WT012)" "WT012" \
    "$(psql -X -At -d "$dst" -c '\set VERBOSITY sqlstate' -c "SELECT * FROM witn.reverse_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'initech' AND key = 'onb-2'), 'again')" 2>&1 | tail -1 | sed 's/^ERROR: *//')"
check "a new credit on a restored outcome counts the restored ones (WT011 past what is left)" "WT011 87.5" \
    "$(psql -X -At -d "$dst" -c '\set VERBOSITY sqlstate' -c "SELECT * FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'onb-1'), 87.51, 'x')" 2>&1 | tail -1 | sed 's/^ERROR: *//') $(q "$dst" "SELECT amount FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'onb-1'), 87.5, 'the rest')")"
check "credit ids continue after the restored ones" "t" \
    "$(q "$dst" "SELECT max(id) = (SELECT id FROM witn.credit_lines WHERE reason = 'the rest') FROM witn.credit_lines")"
check "an inserted credit line that brings its own currency is refused outside a restore" "WT001" \
    "$(psql -X -At -d "$dst" -c '\set VERBOSITY sqlstate' -c "INSERT INTO witn.credit_lines (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason, billing_period) SELECT customer_key, outcome_id, outcome_key, agent_key, 1, currency, 'adjustment', 'copied', billing_period FROM witn.invoice_lines LIMIT 1" 2>&1 | tail -1 | sed 's/^ERROR: *//')"
check "verify() is clean at the end" "0" "$(q "$dst" "SELECT count(*) FROM witn.verify()")"
exit $fail
