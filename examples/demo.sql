-- witn demo: a helpdesk vendor bills its support agent per successfully resolved ticket, and a
-- data vendor bills metered API usage. Run by examples/demo.sh in a fresh database; on its own:
--   psql -X -d some_empty_database -f examples/demo.sql
-- The events happened over the last few hours; instead of waiting out the 72-hour settlement
-- windows, the demo settles "as of" 71 hours from now.
\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
\pset null '-'
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE EXTENSION IF NOT EXISTS witn CASCADE;

\echo
\echo '== 1. Contracts: a rate card in USD, two customers, two agents and their prices'
INSERT INTO witn.rate_cards (key, name, currency) VALUES ('standard', 'Standard pricing', 'USD');
INSERT INTO witn.customers (key, name, rate_card_key) VALUES
    ('acme', 'Acme Inc', 'standard'),
    ('globex', 'Globex Corp', 'standard');
-- support: billable when an agent replied, and the ticket was neither escalated nor reopened,
-- and the customer did not rate it 3 or lower. Settles 72 hours after its latest event.
-- metered: billable when the API was called; the quantity is the sum of properties.attribution.
INSERT INTO witn.agents (key, name, condition, settlement_period, attribution_method) VALUES
    ('support', 'Support agent',
     '[{"fact": "agent_replied", "operator": "seen"},
       {"fact": "escalated", "operator": "not seen"},
       {"fact": "reopened", "operator": "not seen"},
       {"fact": "csat", "operator": "not lte", "value": 3}]',
     '72 hours', 'last'),
    ('metered', 'Metered API usage',
     '[{"fact": "api_call", "operator": "seen"}]',
     '72 hours', 'sum');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('standard', 'support', 2.50),
    ('standard', 'metered', 10);

SELECT a.key AS agent, witn.describe(a.condition) AS "billable when", a.settlement_period,
       a.attribution_method, p.price_per_unit, r.currency
  FROM witn.agents a
  JOIN witn.rate_card_prices p ON p.agent_key = a.key
  JOIN witn.rate_cards r ON r.key = p.rate_card_key
 ORDER BY a.key;

-- demo.sh passes the address of a local receiver (psql -v webhook_url=...): every notification
-- below is also delivered there as a signed webhook (docs/webhooks.md).
\if :{?webhook_url}
\echo '   A webhook endpoint: every notification is POSTed to it, signed (Standard Webhooks).'
INSERT INTO witn.webhook_endpoints (url, secret, description)
VALUES (:'webhook_url', :'webhook_secret', 'the demo''s receiver');
SELECT id, url, event_types, customer_key, enabled FROM witn.webhook_endpoints;
\endif

\echo
\echo '== 2. Events arrive as things happen: plain INSERTs, triggers keep each outcome current'
INSERT INTO witn.events (key, action, agent_key, customer_key, properties, occurred_at) VALUES
    -- ticket-1: answered, the customer is happy (CSAT 5)
    ('ticket-1', 'agent_replied', 'support', 'acme', '{}', now() - interval '5 hours'),
    ('ticket-1', 'csat', 'support', 'acme', '{"value": 5}', now() - interval '4 hours'),
    -- ticket-2: answered, then the customer reopened it
    ('ticket-2', 'agent_replied', 'support', 'acme', '{}', now() - interval '6 hours'),
    ('ticket-2', 'reopened', 'support', 'acme', '{}', now() - interval '3 hours'),
    -- ticket-3: answered, but the customer rated it 2
    ('ticket-3', 'agent_replied', 'support', 'acme', '{}', now() - interval '5 hours'),
    ('ticket-3', 'csat', 'support', 'acme', '{"value": 2}', now() - interval '2 hours'),
    -- ticket-4: the customer wrote, no agent ever replied
    ('ticket-4', 'customer_wrote', 'support', 'globex', '{}', now() - interval '4 hours'),
    -- metered usage: two batches of API calls, 0.75 + 0.45 = 1.2 units at 10 USD
    ('usage-2026-w47', 'api_call', 'metered', 'globex', '{"attribution": 0.75}', now() - interval '6 hours'),
    ('usage-2026-w47', 'api_call', 'metered', 'globex', '{"attribution": 0.45}', now() - interval '2 hours');
-- ticket-5: answered just now. The client timed out and sent the event again with the same
-- idempotency key: recorded twice, applied once.
INSERT INTO witn.events (key, action, agent_key, customer_key, idempotency_key)
VALUES ('ticket-5', 'agent_replied', 'support', 'globex', 'req-42');
INSERT INTO witn.events (key, action, agent_key, customer_key, idempotency_key)
VALUES ('ticket-5', 'agent_replied', 'support', 'globex', 'req-42');

\echo
\echo '   Outcomes: PENDING once the condition has held (scheduled_resolution: what it becomes at'
\echo '   settles_at if nothing else happens); OPEN while it never held (it will FAIL).'
SELECT id, customer_key, key, agent_key, status, scheduled_resolution,
       settles_at::timestamp(0) AS settles_at, quantity, accepted_events
  FROM witn.outcomes
 ORDER BY id;
SELECT key, action, idempotency_key, duplicate_of FROM witn.events WHERE idempotency_key IS NOT NULL ORDER BY id;

\echo
\echo '== 3. Why is ticket-3 going to fail? witn.explain shows each leaf of the condition'
SELECT leaf, description, event_count, latest_value, passes
  FROM witn.explain((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'ticket-3'))
 ORDER BY leaf;

\echo
\echo '== 4. Settlement. In production pg_cron runs witn.settle() every minute; here we fast-forward'
\echo '   71 hours with its as_of argument: every window has closed except ticket-5''s, which'
\echo '   opened just now and has an hour to go.'
SELECT * FROM witn.settle(as_of => now() + interval '71 hours');

SELECT id, customer_key, key, status, resolved_at::timestamp(0) AS resolved_at, quantity, unit_price
  FROM witn.outcomes
 ORDER BY id;

\echo
\echo '== 5. Invoice lines: one per CONFIRMED outcome, amount = unit_price x quantity, exact'
SELECT customer_key, outcome_id, agent_key, quantity, unit_price, amount, currency,
       resolved_at::timestamp(0) AS resolved_at
  FROM witn.invoice_lines
 ORDER BY outcome_id;

\echo '   Invoice totals per customer and month, rounded once to the currency''s minor units'
SELECT customer_key, currency, month, lines, amount FROM witn.invoices ORDER BY customer_key, month;

\echo
\echo '== 6. A late event (after ticket-1 settled) changes nothing; the log keeps it, marked late'
INSERT INTO witn.events (key, action, agent_key, customer_key) VALUES ('ticket-1', 'reopened', 'support', 'acme');
SELECT e.key, e.action, e.late, o.status, o.late_events
  FROM witn.events e
  JOIN witn.outcomes o ON o.customer_key = e.customer_key AND o.key = e.key
 WHERE e.late
 ORDER BY e.id;

\echo
\echo '== 7. Settling again is safe: nothing more is due, nothing is billed twice'
SELECT * FROM witn.settle(as_of => now() + interval '71 hours');
SELECT count(*) AS invoice_lines FROM witn.invoice_lines;

\echo
\echo '== 8. Last month''s invoice, closed; then corrections. A third customer bills in Tokyo time.'
\echo '   onboarding: billable once onboarding is completed, and reversed (credited in full) if the'
\echo '   customer churns within 45 days of the confirmation.'
INSERT INTO witn.customers (key, name, rate_card_key, timezone) VALUES ('initech', 'Initech KK', 'standard', 'Asia/Tokyo');
INSERT INTO witn.agents (key, name, condition, settlement_period, reversal_condition, reversal_period) VALUES
    ('onboarding', 'Onboarding agent', '[{"fact": "onboarding_completed", "operator": "seen"}]', '24 hours',
     '[{"fact": "churned", "operator": "seen"}]', '45 days');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('standard', 'onboarding', 100);
-- Three onboardings completed two days before this month began (events may arrive back-dated):
-- they settled, and were billed, last month.
INSERT INTO witn.events (key, action, agent_key, customer_key, occurred_at)
SELECT 'onboarding-' || n, 'onboarding_completed', 'onboarding', c, date_trunc('month', now()) - interval '2 days'
  FROM (VALUES (1, 'initech'), (2, 'initech'), (3, 'globex')) AS o (n, c);
SELECT * FROM witn.settle();
\echo '   Last month is over in every customer''s timezone: close it. Its invoice never changes again.'
SELECT customer_key, period, closed_at::timestamp(0) AS closed_at
  FROM witn.close_period((date_trunc('month', now()) - interval '1 month')::date)
 ORDER BY customer_key;
CREATE TEMP TABLE last_month AS
    SELECT customer_key, month, lines, charges, credits, amount FROM witn.invoices
     WHERE month = (date_trunc('month', now()) - interval '1 month')::date;

\echo
\echo '   A goodwill credit of 25 USD on onboarding-1, a dispute that reverses onboarding-2, and'
\echo '   globex churning (its reversal condition reverses onboarding-3 in the INSERT itself):'
SELECT id, outcome_key, amount, kind, reason, billing_period
  FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE key = 'onboarding-1'), 25, 'onboarding call started late');
SELECT id, outcome_key, amount, kind, reason, billing_period
  FROM witn.reverse_outcome((SELECT id FROM witn.outcomes WHERE key = 'onboarding-2'), 'customer disputed the onboarding');
INSERT INTO witn.events (key, action, customer_key) VALUES ('onboarding-3', 'churned', 'globex');
SELECT key, status, resolved_at::date AS resolved_on, reversed_at IS NOT NULL AS reversed, reversal_reason
  FROM witn.outcomes WHERE agent_key = 'onboarding' ORDER BY key;
\echo '   Each credit is billed in the month it is issued: last month is closed, so this month.'
SELECT customer_key, outcome_key, amount, kind, reason, billing_period FROM witn.credit_lines ORDER BY id;
SELECT customer_key, month, lines, credit_count, charges, credits, amount, closed_at IS NOT NULL AS closed
  FROM witn.invoices ORDER BY customer_key, month;
SELECT count(*) = 0 AS "last month's invoices did not change"
  FROM (SELECT customer_key, month, lines, charges, credits, amount FROM witn.invoices
         WHERE month = (date_trunc('month', now()) - interval '1 month')::date
        EXCEPT SELECT * FROM last_month) changed;
\echo '   Every credit wrote a notification in its transaction (the outbox, also sent by pg_notify):'
SELECT n.kind, n.payload ->> 'id' AS payload_id, n.payload #>> '{data,credited}' AS credited,
       n.payload #>> '{data,remaining}' AS remaining
  FROM witn.notifications n WHERE n.kind IN ('outcome_credited', 'outcome_reversed') ORDER BY n.id;
\echo '   Crediting more than is left is refused, and writes nothing:'
\set ON_ERROR_STOP off
\set SHOW_CONTEXT never
SELECT * FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE key = 'onboarding-1'), 80, 'too much');
\set SHOW_CONTEXT errors
\set ON_ERROR_STOP on
\echo '   Why onboarding-3 was reversed:'
SELECT condition_name, description, event_count, passes
  FROM witn.explain((SELECT id FROM witn.outcomes WHERE key = 'onboarding-3')) ORDER BY condition_name, leaf;
SELECT count(*) AS "witn.verify() differences" FROM witn.verify();

\if :{?webhook_url}
\echo
\echo '== 9. Webhooks: every notification above was queued for the endpoint in its own transaction;'
\echo '   the delivery worker POSTs them, signed, outside those transactions (a few seconds).'
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM witn.webhook_deliveries WHERE status = 'pending');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT n.kind, d.status, count(*) AS deliveries, max(d.attempts) AS attempts, max(d.last_response_code) AS http
  FROM witn.webhook_deliveries d
  JOIN witn.notifications n ON n.customer_key = d.customer_key AND n.id = d.notification_id
 GROUP BY n.kind, d.status ORDER BY n.kind;
SELECT endpoint_id, pending, failed, last_delivered_at IS NOT NULL AS delivered_some FROM witn.webhook_status;
\endif

\echo
\echo '== 10. Running it: an operations login needs only GRANT witn_operator. It settles (as of now,'
\echo '   never ahead), watches the backlog, errors, deliveries and storage, and purges old events.'
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_ops') THEN
        CREATE ROLE demo_ops LOGIN;
    END IF;
END $$;
GRANT witn_operator TO demo_ops;
ANALYZE witn.events, witn.outcomes, witn.invoice_lines;   -- autovacuum does this in production
SET ROLE demo_ops;
SELECT * FROM witn.settle();
SELECT due, oldest_due_age FROM witn.settlement_backlog;
SELECT count(*) AS error_kinds FROM witn.settlement_error_summary;
SELECT pending, due, failed FROM witn.webhook_backlog;
SELECT table_name, rows_estimate, total_size FROM witn.storage WHERE table_name IN ('events', 'outcomes', 'invoice_lines');
\echo '   Settling ahead of the clock bills what has not happened yet: only a superuser may (tests).'
\set ON_ERROR_STOP off
SELECT * FROM witn.settle(now() + interval '1 day');
\set ON_ERROR_STOP on
\echo '   Retention: events of outcomes resolved over 13 months ago, past any reversal window'
\echo '   (none here: the demo settled ahead of the clock; pg_cron runs it every few minutes in'
\echo '   production, docs/operations.md).'
SELECT witn.purge_events(now() - interval '13 months') AS events_purged;
SELECT outcomes_with_events, oldest_resolved_at FROM witn.retention_backlog;
RESET ROLE;
