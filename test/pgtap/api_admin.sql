-- The admin objects through PostgREST: currencies, rate cards, customers, agents (the condition
-- as a JSON array in the body), prices; what an admin token may change and what it may not;
-- every rejection a 4xx.
BEGIN;
\ir api_request.psql
SELECT plan(126);
SET LOCAL TimeZone = 'UTC';

CREATE FUNCTION pg_temp.rejected(response jsonb, code text, description text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEXT is(response ->> 'code', code, description || ': ' || coalesce(response ->> 'message', 'accepted'));
    RETURN NEXT ok((response ->> 'status')::int BETWEEN 400 AND 499,
                   description || ': HTTP ' || (response ->> 'status'));
END $$;
CREATE FUNCTION pg_temp.accepted(response jsonb, description text) RETURNS text
LANGUAGE sql AS $$
    SELECT is(response ->> 'status', '201', description || coalesce(': ' || (response ->> 'message'), ''))
$$;
CREATE FUNCTION pg_temp.patched(response jsonb, description text) RETURNS text
LANGUAGE sql AS $$
    SELECT is(response ->> 'status', '200', description || coalesce(': ' || (response ->> 'message'), ''))
$$;
CREATE FUNCTION pg_temp.noise(characters integer) RETURNS text LANGUAGE sql AS $$
    SELECT left(string_agg(md5(i::text), ''), characters) FROM generate_series(1, characters / 32 + 1) i
$$;
CREATE TEMP TABLE admin AS SELECT pg_temp.token('witn_admin') AS token;

-- ---------------------------------------------------------------------------------------------
-- Setting up a customer, the way the product's quickstart does, in HTTP calls.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'currencies', '{"code": "XTS", "minor_units": 3}'),
                        'POST /currencies: a currency that is not listed');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'rate_cards', '{"key": "standard", "name": "Standard", "currency": "USD"}'),
                        'POST /rate_cards');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'customers', '{"key": "acme", "name": "Acme", "rate_card_key": "standard"}'),
                        'POST /customers');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "support", "name": "Support", "settlement_period": "72 hours", "attribution_method": "last",
      "condition": [{"fact": "agent_replied", "operator": "seen"},
                    {"fact": "escalated", "operator": "not seen"},
                    {"fact": "csat", "operator": "not lte", "value": 3}]}'),
    'POST /agents with the condition as a JSON array in the body');
SELECT is((SELECT condition::jsonb FROM witn.agents WHERE key = 'support'),
          '[{"fact": "agent_replied", "operator": "seen"}, {"fact": "escalated", "operator": "not seen"},
            {"fact": "csat", "operator": "not lte", "value": 3}]'::jsonb,
          'the condition is stored as sent');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "inspection", "condition": "[{\"fact\": \"inspection\", \"operator\": \"match\", \"value\": \"pass\"}]"}'),
    'POST /agents with the condition as a JSON string');
SELECT is((SELECT format('%s %s %s', settlement_period, attribution_method, version) FROM witn.agents WHERE key = 'inspection'),
          '72:00:00 last 1', 'columns left out of the body get their defaults');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'agents',
    '[{"key": "signing", "condition": [{"fact": "signed_by_buyer", "operator": "seen"}, {"fact": "signed_by_seller", "operator": "seen"}]},
      {"key": "metered", "condition": [{"fact": "api_call", "operator": "seen"}], "attribution_method": "sum"}]'),
    'POST /agents with two agents (bulk)');
-- PostgREST before version 10: json_populate_recordset over the view's row type.
SELECT is(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/agents',
    $q$WITH pgrst_source AS (INSERT INTO "witn_api"."agents"("condition","key")
         SELECT "condition","key" FROM json_populate_recordset(null::"witn_api"."agents", $1) _ RETURNING 1)
       SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, array[]::text[] AS header, '' AS body,
              nullif(current_setting('response.headers', true), '') AS response_headers,
              nullif(current_setting('response.status', true), '') AS response_status
         FROM (SELECT * FROM pgrst_source) _postgrest_t$q$,
    '[{"key": "rating", "condition": [{"fact": "rating", "operator": "gte", "value": 4}]}]') ->> 'status',
    '201', 'POST /agents through json_populate_recordset (PostgREST 9)');
SELECT is((SELECT witn.describe(condition) FROM witn.agents WHERE key = 'rating'), 'rating is at least 4',
          'json_populate_recordset: the condition arrived intact');
SELECT pg_temp.accepted(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '[{"rate_card_key": "standard", "agent_key": "support", "price_per_unit": 2.5},
      {"rate_card_key": "standard", "agent_key": "inspection", "price_per_unit": "7.25"}]'),
    'POST /rate_card_prices (bulk)');
SELECT is((SELECT string_agg(agent_key || '=' || price_per_unit, ' ' ORDER BY agent_key) FROM witn.rate_card_prices),
          'inspection=7.25 support=2.5', 'the prices are stored exactly');
-- "Prefer: resolution=ignore-duplicates" is INSERT ... ON CONFLICT DO NOTHING.
SELECT is(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/customers',
    pg_temp.result_sql('INSERT INTO "witn_api"."customers"("key", "name") SELECT "pgrst_body"."key", "pgrst_body"."name" '
        'FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT "key", "name" FROM json_to_recordset(pgrst_payload.json_data) AS _("key" text, "name" text) ) pgrst_body '
        'ON CONFLICT("key") DO NOTHING RETURNING 1', false),
    '[{"key": "acme", "name": "Acme again"}, {"key": "globex", "name": "Globex"}]') ->> 'status',
    '201', 'POST /customers with Prefer: resolution=ignore-duplicates');
SELECT is((SELECT string_agg(key || ':' || name, ' ' ORDER BY key) FROM witn.customers), 'acme:Acme globex:Globex',
          'ignore-duplicates: the existing customer kept, the new one added');

-- ---------------------------------------------------------------------------------------------
-- Changing things: PATCH the columns an admin may change.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.patched(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support',
    '{"condition": [{"fact": "agent_replied", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": 4}]}'),
    'PATCH /agents?key=eq.support with a new condition');
SELECT is((SELECT format('%s: %s', version, witn.describe(condition)) FROM witn.agents WHERE key = 'support'),
          '2: agent_replied is seen AND csat is at least 4', 'the new condition is stored and the version moves on');
SELECT pg_temp.patched(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"settlement_period": "7 days", "name": "Support desk"}'),
                       'PATCH /agents: settlement period and name');
SELECT pg_temp.patched(pg_temp.patch((SELECT token FROM admin), 'customers', 'key', 'globex', '{"rate_card_key": "standard"}'),
                       'PATCH /customers: assign a rate card');
SELECT pg_temp.patched(pg_temp.patch((SELECT token FROM admin), 'rate_card_prices', 'agent_key', 'support', '{"price_per_unit": 3}'),
                       'PATCH /rate_card_prices: a new price');
SELECT pg_temp.patched(pg_temp.patch((SELECT token FROM admin), 'rate_cards', 'key', 'standard', '{"name": "Standard 2026"}'),
                       'PATCH /rate_cards: rename');
SELECT is(pg_temp.delete((SELECT token FROM admin), 'agents', 'key', 'rating') ->> 'status', '200',
          'DELETE /agents?key=eq.rating (no outcome refers to it)');

-- ---------------------------------------------------------------------------------------------
-- Bad contracts: VALIDATION_ERROR (400) naming the path.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"type": "signed", "operator": "seen"}]}'), 'WT001', 'POST /agents: a leaf with "type" instead of "fact"');
SELECT ok(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"fact": "signed", "operator": "seen"}, {"fact": "x", "operator": "count_gte", "value": -1}]}') ->> 'message'
    LIKE 'VALIDATION_ERROR: [1].value %', 'the message names the path of the bad leaf');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"fact": "signed", "operator": "seen", "value": 1}]}'), 'WT001', 'POST /agents: seen with a value');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"fact": "csat", "operator": "gte", "value": "high"}]}'), 'WT001', 'POST /agents: gte with a string');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"fact": "", "operator": "seen"}]}'), 'WT001', 'POST /agents: an empty fact');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": {"fact": "signed", "operator": "seen"}}'), 'WT001', 'POST /agents: a leaf that is not in an array');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": "[{\"fact\": "}'), 'WT001', 'POST /agents: a condition string that is not JSON');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents',
    '{"key": "bad", "condition": [{"fact": "x", "operator": "sometimes"}]}'), 'WT001', 'POST /agents: an unknown operator');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support',
    '{"condition": [{"fact": "csat", "operator": "lt"}]}'), 'WT001', 'PATCH /agents: lt without a value');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"settlement_period": "0"}'),
                        'WT001', 'PATCH /agents: settlement period 0');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"settlement_period": "181 days"}'),
                        'WT001', 'PATCH /agents: settlement period over 180 days');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"settlement_period": "forever"}'),
                        '22007', 'PATCH /agents: settlement period not an interval');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"settlement_period": "999999999 years"}'),
                        '22008', 'PATCH /agents: settlement period out of range');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"attribution_method": "median"}'),
                        'WT001', 'PATCH /agents: unknown attribution method');
SELECT is((SELECT format('%s %s %s', version, settlement_period, attribution_method) FROM witn.agents WHERE key = 'support'),
          '3 7 days last', 'no rejected change reached the agent');

-- ---------------------------------------------------------------------------------------------
-- Bad lookup rows: constraint errors, 400 or 409, never 500.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', '{"key": "acme"}'), '23505', 'POST /customers: the key exists');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', '{"key": "initech", "rate_card_key": "nope"}'),
                        '23503', 'POST /customers: an unknown rate card');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', '{"key": ""}'), '23514', 'POST /customers: an empty key');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', json_build_object('key', repeat('c', 256))),
                        '23514', 'POST /customers: a key of 256 characters');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', json_build_object('key', pg_temp.noise(20000))),
                        '23514', 'POST /customers: a key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents', json_build_object('key', pg_temp.noise(20000))),
                        '23514', 'POST /agents: a key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_cards', json_build_object('key', pg_temp.noise(20000), 'currency', 'USD')),
                        '23514', 'POST /rate_cards: a key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'customers', '{"name": "no key"}'), '23502', 'POST /customers: no key');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_cards', '{"key": "eur", "currency": "usd"}'),
                        '23503', 'POST /rate_cards: an unknown currency');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'currencies', '{"code": "usd", "minor_units": 2}'),
                        '23514', 'POST /currencies: a code that is not three capitals');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'currencies', '{"code": "XXY", "minor_units": 9}'),
                        '23514', 'POST /currencies: too many minor units');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "support", "price_per_unit": 1}'), '23505', 'POST /rate_card_prices: the price exists');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "nobody", "price_per_unit": 1}'), '23503', 'POST /rate_card_prices: an unknown agent');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "signing", "price_per_unit": -1}'), '23514', 'POST /rate_card_prices: a negative price');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "signing", "price_per_unit": "ten"}'), '22P02', 'POST /rate_card_prices: a price that is not a number');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "signing", "price_per_unit": "NaN"}'), '23514', 'POST /rate_card_prices: NaN');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    '{"rate_card_key": "standard", "agent_key": "metered", "price_per_unit": "Infinity"}'), '23514', 'POST /rate_card_prices: Infinity');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'rate_card_prices',
    json_build_object('rate_card_key', pg_temp.noise(20000), 'agent_key', 'signing', 'price_per_unit', 1)),
    '23514', 'POST /rate_card_prices: a rate card key of 20000 characters that do not compress');

INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'ticket-1', 'agent_replied', 'support');
SELECT pg_temp.rejected(pg_temp.delete((SELECT token FROM admin), 'customers', 'key', 'acme'), '23503',
                        'DELETE /customers: a customer with outcomes');
SELECT pg_temp.rejected(pg_temp.delete((SELECT token FROM admin), 'agents', 'key', 'support'), '23503',
                        'DELETE /agents: an agent with outcomes');

-- ---------------------------------------------------------------------------------------------
-- What an admin token may not change: keys (events and invoice lines refer to them by value),
-- witn's own columns, currencies already in use, and anything of the event log and its results.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'customers', 'key', 'acme', '{"key": "acme-2"}'),
                        '42501', 'PATCH /customers: the key');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"key": "helpdesk"}'),
                        '42501', 'PATCH /agents: the key');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'agents', 'key', 'support', '{"version": 1}'),
                        '42501', 'PATCH /agents: the version');
SELECT pg_temp.rejected(pg_temp.post((SELECT token FROM admin), 'agents', '{"key": "v", "version": 7}'),
                        '42501', 'POST /agents with a version');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'currencies', 'code', 'USD', '{"minor_units": 3}'),
                        '42501', 'PATCH /currencies');
SELECT pg_temp.rejected(pg_temp.delete((SELECT token FROM admin), 'currencies', 'code', 'XTS'),
                        '42501', 'DELETE /currencies');
SELECT pg_temp.rejected(pg_temp.patch((SELECT token FROM admin), 'outcomes', 'key', 'ticket-1', '{"status": "CONFIRMED"}'),
                        '42501', 'PATCH /outcomes');
SELECT pg_temp.rejected(pg_temp.delete((SELECT token FROM admin), 'events', 'key', 'ticket-1'),
                        '42501', 'DELETE /events');
-- Upserts rewrite the key columns (ON CONFLICT ... DO UPDATE SET key = EXCLUDED.key): POST, then PATCH.
SELECT pg_temp.rejected(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/customers',
    pg_temp.result_sql('INSERT INTO "witn_api"."customers"("key", "name") SELECT "pgrst_body"."key", "pgrst_body"."name" '
        'FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (SELECT "key", "name" FROM json_to_record(pgrst_payload.json_data) AS _("key" text, "name" text) ) pgrst_body '
        'ON CONFLICT("key") DO UPDATE SET "key" = EXCLUDED."key", "name" = EXCLUDED."name" RETURNING 1', false),
    '{"key": "acme", "name": "Acme Corp"}'),
    '42501', 'POST /customers with Prefer: resolution=merge-duplicates');

-- ---------------------------------------------------------------------------------------------
-- The other roles may not touch the admin objects.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_reader'), 'customers', '{"key": "r"}'), '42501', 'reader: POST /customers');
SELECT pg_temp.rejected(pg_temp.patch(pg_temp.token('witn_reader'), 'rate_card_prices', 'agent_key', 'support', '{"price_per_unit": 0}'),
                        '42501', 'reader: PATCH /rate_card_prices');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'agents', '{"key": "i", "condition": []}'), '42501', 'ingest: POST /agents');
SELECT pg_temp.rejected(pg_temp.get(pg_temp.token('witn_ingest'), 'customers'), '42501', 'ingest: GET /customers');
SELECT pg_temp.rejected(pg_temp.patch(pg_temp.token('witn_customer', 'acme'), 'rate_card_prices', 'agent_key', 'support', '{"price_per_unit": 0}'),
                        '42501', 'customer: PATCH /rate_card_prices');
SELECT pg_temp.rejected(pg_temp.get(pg_temp.token('witn_customer', 'acme'), 'agents'), '42501', 'customer: GET /agents');
SELECT is(jsonb_array_length(pg_temp.get(pg_temp.token('witn_reader'), 'agents') -> 'body'), 4, 'reader: GET /agents');
SELECT is(pg_temp.get(pg_temp.token('witn_reader'), 'rate_card_prices', 'agent_key', 'support') #>> '{body,0,price_per_unit}', '3',
          'reader: GET /rate_card_prices?agent_key=eq.support');
SELECT is(pg_temp.get(pg_temp.token('witn_reader'), 'agents', 'key', 'signing') #> '{body,0,condition}',
          '[{"fact": "signed_by_buyer", "operator": "seen"}, {"fact": "signed_by_seller", "operator": "seen"}]',
          'GET /agents: the condition is a JSON array in the response, not a string');

-- POST /rpc/close_period, as PostgREST calls it.
CREATE FUNCTION pg_temp.close_period(token jsonb, body json) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT pg_temp.request(token ->> 'role', token::text, 'POST', '/rpc/close_period',
        pg_temp.result_sql('SELECT pgrst_call.* FROM (SELECT $1 AS json_data) pgrst_payload, '
            'LATERAL (SELECT "period", "customer_key" FROM json_to_record(pgrst_payload.json_data) AS _("period" date, "customer_key" text) LIMIT 1) pgrst_body , '
            'LATERAL "witn_api"."close_period"("period" := pgrst_body."period", "customer_key" := pgrst_body."customer_key") pgrst_call', true),
        body)
$$;
INSERT INTO witn.customers (key, rate_card_key) VALUES ('close_me', (SELECT min(key) FROM witn.rate_cards));
SELECT is((SELECT r -> 'body' -> 0 ->> 'period' FROM pg_temp.close_period(pg_temp.token('witn_admin'),
               '{"period": "2026-01-01", "customer_key": "close_me"}') r),
          '2026-01-01', 'admin: POST /rpc/close_period closes a month and returns it');
SELECT is((SELECT count(*) FROM witn.closed_periods WHERE customer_key = 'close_me'), 1::bigint, '... one closed month');
SELECT is((pg_temp.close_period(pg_temp.token('witn_reader'), '{"period": "2026-01-01", "customer_key": "close_me"}')) ->> 'status',
          '403', 'reader: POST /rpc/close_period is 403');
SELECT is((pg_temp.close_period(pg_temp.token('witn_admin'), '{"period": "2026-01-15", "customer_key": "close_me"}')) ->> 'status',
          '400', 'admin: a period that is not a month''s first day is 400 (VALIDATION_ERROR)');

SELECT * FROM finish();
ROLLBACK;
