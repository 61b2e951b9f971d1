-- witn demo: a support vendor bills for resolved tickets, a data vendor for metered API usage.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;

\echo
\echo '1. Contracts: a rate card, two customers, two agents with their billable conditions'
INSERT INTO witn.rate_cards (key, name, currency) VALUES ('standard', 'Standard pricing', 'USD');
INSERT INTO witn.customers (key, name, rate_card_key) VALUES
    ('acme', 'Acme Inc', 'standard'),
    ('globex', 'Globex Corp', 'standard');
INSERT INTO witn.agents (key, name, condition, settlement_period, attribution_method) VALUES
    ('support', 'Support agent',
     '[{"fact": "agent_replied", "operator": "seen"},
       {"fact": "escalated", "operator": "not seen"},
       {"fact": "reopened", "operator": "not seen"},
       {"fact": "csat", "operator": "not lte", "value": 3}]', '72 hours', 'last'),
    ('metered', 'Metered API',
     '[{"fact": "api_call", "operator": "seen"}]', '24 hours', 'sum');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('standard', 'support', 2.50),
    ('standard', 'metered', 10);
SELECT key AS agent, witn.describe(condition) AS "billable when", settlement_period
  FROM witn.agents ORDER BY key;

\echo
\echo '2. Events arrive as things happen (plain INSERTs; triggers keep every outcome current)'
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    -- ticket 1: answered, happy customer
    ('acme', 'ticket-1', 'agent_replied', 'support', '{}', now() - interval '5 hours'),
    ('acme', 'ticket-1', 'csat', NULL, '{"value": 5}', now() - interval '4 hours'),
    -- ticket 2: answered, then reopened
    ('acme', 'ticket-2', 'agent_replied', 'support', '{}', now() - interval '5 hours'),
    ('acme', 'ticket-2', 'reopened', NULL, '{}', now() - interval '3 hours'),
    -- ticket 3: answered, unhappy customer
    ('acme', 'ticket-3', 'agent_replied', 'support', '{}', now() - interval '5 hours'),
    ('acme', 'ticket-3', 'csat', NULL, '{"value": 2}', now() - interval '2 hours'),
    -- ticket 4: answered, the customer never rates it (no CSAT is not a bad CSAT)
    ('globex', 'ticket-4', 'agent_replied', 'support', '{}', now() - interval '1 hour'),
    -- ticket 5: still waiting for an answer
    ('globex', 'ticket-5', 'customer_wrote', 'support', '{}', now() - interval '1 hour'),
    -- metered usage: 1.2 units, then 0.8 more
    ('globex', 'api-2026-11', 'api_call', 'metered', '{"attribution": 1.2}', now() - interval '2 hours'),
    ('globex', 'api-2026-11', 'api_call', NULL, '{"attribution": 0.8}', now() - interval '1 hour');
-- A retry of the same event (same idempotency key) is recorded once and applied once.
INSERT INTO witn.events (customer_key, key, action, idempotency_key)
VALUES ('acme', 'ticket-1', 'note', 'req-42'), ('acme', 'ticket-1', 'note', 'req-42');

SELECT customer_key AS customer, key AS outcome, agent_key AS agent, status,
       scheduled_resolution, round(extract(epoch FROM settles_at - now()) / 3600) AS settles_in_hours,
       quantity, unit_price, currency
  FROM witn.outcomes ORDER BY id;

\echo
\echo '3. Why ticket-3 is going to fail (witn.explain)'
SELECT description, event_count, latest_value, passes
  FROM witn.explain((SELECT id FROM witn.outcomes WHERE key = 'ticket-3')) ORDER BY leaf;

\echo
\echo '4. Three days later: settlement (pg_cron runs witn.settle() every minute; here we ask for'
\echo '   the state as of now + 73 hours)'
SELECT * FROM witn.settle(now() + interval '73 hours');

SELECT customer_key AS customer, key AS outcome, status, resolved_at = settles_at AS "resolved at settles_at"
  FROM witn.outcomes ORDER BY id;

\echo
\echo '5. Invoice lines (one per confirmed outcome) and the month''s invoice totals'
SELECT customer_key AS customer, outcome_key AS outcome, agent_key AS agent, quantity,
       unit_price, amount, currency
  FROM witn.invoice_lines ORDER BY id;
SELECT customer_key AS customer, currency, month, lines, amount FROM witn.invoices ORDER BY 1;

\echo
\echo '6. Notifications (outbox, also sent with pg_notify on channel witn_outcomes)'
SELECT payload->>'id' AS id, payload->>'type' AS type, payload->'data'->>'outcome_key' AS outcome
  FROM witn.notifications ORDER BY id;

\echo
\echo '7. A late event changes nothing; the log still records it'
INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'ticket-1', 'reopened');
SELECT key AS outcome, action, late FROM witn.events WHERE late;

\echo
\echo '8. Consistency: every outcome replayed from its event log (no rows = consistent)'
SELECT * FROM witn.verify();
