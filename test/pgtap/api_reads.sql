-- Reading through PostgREST: outcomes, invoice lines, invoices, notifications and events, and
-- POST /rpc/explain_outcome; a customer token sees its own rows, finance and admin see all.
BEGIN;
\ir api_request.psql
SELECT plan(30);
SET LOCAL TimeZone = 'UTC';

INSERT INTO witn.rate_cards (key, currency) VALUES ('ar_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'ar_usd'), ('globex', 'ar_usd');
INSERT INTO witn.agents (key, condition) VALUES
    ('support', '[{"fact": "inspection", "operator": "match", "value": "pass"},
                  {"fact": "csat", "operator": "not lte", "value": 3}]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('ar_usd', 'support', 12.50);

-- Events arrive over HTTP; pg_cron's witn.settle() resolves them (here: as of four days on).
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '[{"key": "ticket-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "pass"}},
      {"key": "ticket-1", "action": "csat", "agent_key": "support", "customer_key": "acme", "properties": {"value": 4.8, "attribution": 0.8}},
      {"key": "ticket-2", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "fail"}},
      {"key": "ticket-9", "action": "inspection", "agent_key": "support", "customer_key": "globex", "properties": {"value": "pass"}}]')
    ->> 'status', '201', 'four events for two customers');
SELECT is((SELECT format('%s confirmed, %s failed', confirmed, failed) FROM witn.settle(now() + interval '4 days')),
          '2 confirmed, 1 failed', 'settlement resolved all three outcomes');
CREATE TEMP TABLE ids AS
    SELECT (SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'ticket-1') AS acme_1,
           (SELECT id FROM witn.outcomes WHERE customer_key = 'globex' AND key = 'ticket-9') AS globex_9;

CREATE FUNCTION pg_temp.keys(response jsonb, field text DEFAULT 'key') RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(coalesce(r ->> 'customer_key', '?') || '/' || (r ->> field), ' ' ORDER BY r ->> 'customer_key', r ->> field),
                    '(none: HTTP ' || (response ->> 'status') || coalesce(' ' || (response ->> 'code'), '') || ')')
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(response -> 'body') = 'array' THEN response -> 'body' END) r
$$;

-- ---------------------------------------------------------------------------------------------
-- A customer token: {"role": "witn_customer", "customer_key": "acme"}.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE acme AS SELECT pg_temp.token('witn_customer', 'acme') AS token;
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'outcomes', 'customer_key', 'acme')),
          'acme/ticket-1 acme/ticket-2', 'customer acme: GET /outcomes?customer_key=eq.acme');
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'outcomes')),
          'acme/ticket-1 acme/ticket-2', 'customer acme: GET /outcomes (no filter) shows acme''s only');
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'outcomes', 'customer_key', 'globex')),
          '(none: HTTP 200)', 'customer acme: GET /outcomes?customer_key=eq.globex is empty');
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'outcomes', 'id', (SELECT globex_9::text FROM ids))),
          '(none: HTTP 200)', 'customer acme: GET /outcomes?id=eq.<globex''s outcome> is empty');
SELECT is(pg_temp.get((SELECT token FROM acme), 'outcomes', 'key', 'ticket-1') #>> '{body,0,status}', 'CONFIRMED',
          'customer acme: the confirmed outcome');
SELECT is(pg_temp.get((SELECT token FROM acme), 'outcomes', 'key', 'ticket-1') #>> '{body,0,condition_description}',
          'inspection is equal to "pass" AND csat is missing or has value above 3', 'outcomes carry the condition in words');
SELECT is(pg_temp.get((SELECT token FROM acme), 'outcomes', 'key', 'ticket-1') #> '{body,0,condition}',
          '[{"fact": "inspection", "operator": "match", "value": "pass"}, {"fact": "csat", "operator": "not lte", "value": 3}]',
          'outcomes carry the condition they were opened under, as a JSON array');
SELECT is(pg_temp.get((SELECT token FROM acme), 'invoice_lines') -> 'body',
          jsonb_build_array(jsonb_build_object('id', (SELECT id FROM witn.invoice_lines WHERE customer_key = 'acme'),
              'customer_key', 'acme', 'outcome_id', (SELECT acme_1 FROM ids), 'outcome_key', 'ticket-1',
              'agent_key', 'support', 'quantity', 0.8, 'unit_price', 12.50, 'amount', 10.000, 'currency', 'USD',
              'resolved_at', (SELECT resolved_at FROM witn.outcomes WHERE id = (SELECT acme_1 FROM ids)),
              'created_at', now(),
              'billing_period', date_trunc('month', (SELECT resolved_at FROM witn.outcomes WHERE id = (SELECT acme_1 FROM ids)) AT TIME ZONE 'UTC')::date)),
          'customer acme: GET /invoice_lines, the one line of its confirmed outcome');
SELECT is(pg_temp.get((SELECT token FROM acme), 'invoices') #>> '{body,0}',
          jsonb_build_object('customer_key', 'acme', 'currency', 'USD', 'month', to_char(now() + interval '4 days', 'YYYY-MM-01'),
                             'lines', 1, 'credit_count', 0, 'charges', 10.000, 'credits', 0,
                             'amount_exact', 10.000, 'amount', 10.00, 'closed_at', NULL)::text,
          'customer acme: GET /invoices, its monthly total');
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'notifications'), 'kind'),
          'acme/outcome_failed acme/outcome_succeed', 'customer acme: GET /notifications, its two');
SELECT is(pg_temp.keys(pg_temp.get((SELECT token FROM acme), 'events'), 'action'),
          'acme/csat acme/inspection acme/inspection', 'customer acme: GET /events, its three');

SELECT is(pg_temp.explain_outcome((SELECT token FROM acme), json_build_object('outcome_id', (SELECT acme_1 FROM ids))) -> 'body',
          jsonb_build_array(
              jsonb_build_object('outcome_id', (SELECT acme_1 FROM ids), 'customer_key', 'acme', 'outcome_key', 'ticket-1',
                  'status', 'CONFIRMED', 'scheduled_resolution', 'CONFIRMED',
                  'settles_at', (SELECT settles_at FROM witn.outcomes WHERE id = (SELECT acme_1 FROM ids)),
                  'condition_holds', true, 'leaf', 0, 'fact', 'inspection', 'operator', 'match',
                  'description', 'inspection is equal to "pass"', 'event_count', 1, 'latest_value', 'pass',
                  'latest_at', now(), 'passes', true, 'condition_name', 'condition', 'reversed_at', NULL),
              jsonb_build_object('outcome_id', (SELECT acme_1 FROM ids), 'customer_key', 'acme', 'outcome_key', 'ticket-1',
                  'status', 'CONFIRMED', 'scheduled_resolution', 'CONFIRMED',
                  'settles_at', (SELECT settles_at FROM witn.outcomes WHERE id = (SELECT acme_1 FROM ids)),
                  'condition_holds', true, 'leaf', 1, 'fact', 'csat', 'operator', 'not lte',
                  'description', 'csat is missing or has value above 3', 'event_count', 1, 'latest_value', 4.8,
                  'latest_at', now(), 'passes', true, 'condition_name', 'condition', 'reversed_at', NULL)),
          'customer acme: POST /rpc/explain_outcome for its outcome, one row per leaf');
SELECT is(pg_temp.explain_outcome((SELECT token FROM acme), json_build_object('outcome_id', (SELECT globex_9 FROM ids))),
          '{"status": 200, "body": []}', 'customer acme: explaining globex''s outcome gives nothing');
SELECT is(pg_temp.explain_outcome((SELECT token FROM acme), '{"outcome_id": -1}'),
          '{"status": 200, "body": []}', 'explaining an outcome that does not exist gives nothing');
SELECT is(pg_temp.explain_outcome((SELECT token FROM acme), '{"outcome_id": "one"}') ->> 'status', '400',
          'explain_outcome with an outcome_id that is not a number: 400');

-- ---------------------------------------------------------------------------------------------
-- Finance and admin read everything; ingest reads nothing.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.keys(pg_temp.get(pg_temp.token('witn_reader'), 'outcomes')),
          'acme/ticket-1 acme/ticket-2 globex/ticket-9', 'reader: GET /outcomes, every customer''s');
SELECT is(pg_temp.keys(pg_temp.get(pg_temp.token('witn_reader'), 'invoice_lines'), 'outcome_key'),
          'acme/ticket-1 globex/ticket-9', 'reader: GET /invoice_lines, every customer''s');
SELECT is(pg_temp.keys(pg_temp.get(pg_temp.token('witn_reader'), 'invoices'), 'amount'),
          'acme/10.00 globex/12.50', 'reader: GET /invoices');
SELECT is(jsonb_array_length(pg_temp.explain_outcome(pg_temp.token('witn_reader'),
              json_build_object('outcome_id', (SELECT globex_9 FROM ids))) -> 'body'),
          2, 'reader: POST /rpc/explain_outcome for any outcome');
SELECT is(pg_temp.keys(pg_temp.get(pg_temp.token('witn_admin'), 'notifications'), 'kind'),
          'acme/outcome_failed acme/outcome_succeed globex/outcome_succeed', 'admin: GET /notifications, every customer''s');
SELECT is(pg_temp.keys(pg_temp.get(pg_temp.token('witn_admin'), 'events'), 'action'),
          'acme/csat acme/inspection acme/inspection globex/inspection', 'admin: GET /events');
SELECT is(pg_temp.get(pg_temp.token('witn_ingest'), 'outcomes') ->> 'status', '403', 'ingest: GET /outcomes is 403');
SELECT is(pg_temp.get(pg_temp.token('witn_ingest'), 'events') ->> 'status', '403', 'ingest: GET /events is 403');
SELECT is(pg_temp.get(pg_temp.token('witn_ingest'), 'invoice_lines') ->> 'status', '403', 'ingest: GET /invoice_lines is 403');
SELECT is(pg_temp.explain_outcome(pg_temp.token('witn_ingest'), json_build_object('outcome_id', (SELECT acme_1 FROM ids))) ->> 'status',
          '403', 'ingest: POST /rpc/explain_outcome is 403');
SELECT is(pg_temp.get(pg_temp.token('witn_customer', 'acme'), 'customers') ->> 'status', '403', 'customer: GET /customers is 403');
SELECT is(pg_temp.get(pg_temp.token('witn_customer', 'acme'), 'rate_card_prices') ->> 'status', '403',
          'customer: GET /rate_card_prices is 403');

-- The role PostgREST would switch to for a token naming a role that does not exist.
SELECT is(pg_temp.get(pg_temp.token('witn_superuser'), 'outcomes') ->> 'status', '401',
          'a token for a role that does not exist is 401');

SELECT * FROM finish();
ROLLBACK;
