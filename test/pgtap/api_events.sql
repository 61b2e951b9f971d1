-- POST /events through PostgREST: the seed documents' calls, bulk POSTs in every statement shape
-- PostgREST generates, and every rejection answered with a 4xx, never a 500.
BEGIN;
\ir api_request.psql
SELECT plan(88);
SET LOCAL TimeZone = 'UTC';

INSERT INTO witn.rate_cards (key, currency) VALUES ('ae_usd', 'USD'), ('ae_empty', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES
    ('acme', 'ae_usd'), ('globex', 'ae_usd'), ('ae_unpriced', 'ae_empty');
INSERT INTO witn.agents (key, condition) VALUES
    ('support', '[{"fact": "inspection", "operator": "match", "value": "pass"},
                  {"fact": "csat", "operator": "not lte", "value": 3}]'),
    ('ae_other', '[]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('ae_usd', 'support', 12.50), ('ae_usd', 'ae_other', 1);

-- A rejection: the SQLSTATE, and the HTTP status PostgREST answers with it (two tests).
CREATE FUNCTION pg_temp.rejected(response jsonb, code text, description text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEXT is(response ->> 'code', code, description || ': ' || coalesce(response ->> 'message', 'accepted'));
    RETURN NEXT ok((response ->> 'status')::int BETWEEN 400 AND 499,
                   description || ': HTTP ' || (response ->> 'status'));
END $$;

CREATE FUNCTION pg_temp.event_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM witn.events $$;

-- ---------------------------------------------------------------------------------------------
-- The seed documents' two calls (POST /v1/events), one request each.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "ticket-1", "action": "inspection", "agent_key": "support", "customer_key": "acme",
      "properties": {"value": "pass"}}'),
    '{"status": 201, "body": null}', 'POST /events: the inspection call is accepted (201)');
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "ticket-1", "action": "csat", "agent_key": "support", "customer_key": "acme",
      "properties": {"value": 4.8, "attribution": 0.8}}') ->> 'status',
    '201', 'POST /events: the csat call is accepted (201)');
SELECT is((SELECT format('%s %s %s', status, quantity, accepted_events) FROM witn.outcomes
            WHERE customer_key = 'acme' AND key = 'ticket-1'),
          'PENDING 0.8 2', 'both calls applied: the outcome is PENDING with quantity 0.8');
SELECT is((SELECT count(*) FROM witn.events WHERE key = 'ticket-1' AND received_at = now()
              AND NOT late AND duplicate_of IS NULL),
          2::bigint, 'received_at, late and duplicate_of are set by witn');

-- ---------------------------------------------------------------------------------------------
-- Bulk POST: a JSON array is one INSERT statement, whatever shape PostgREST gives it.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '[{"key": "bulk-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "pass"}},
      {"key": "bulk-1", "action": "csat", "agent_key": "support", "customer_key": "acme", "properties": {"value": 2}},
      {"key": "bulk-2", "action": "inspection", "agent_key": "support", "customer_key": "globex", "properties": {"value": "fail"}}]')
    ->> 'status', '201', 'bulk POST (json_to_recordset, PostgREST 10+): accepted');
SELECT is((SELECT string_agg(format('%s/%s %s %s', customer_key, key, status, coalesce(scheduled_resolution::text, '-')), ', ' ORDER BY key)
             FROM witn.outcomes WHERE key LIKE 'bulk-%'),
          'acme/bulk-1 PENDING FAILED, globex/bulk-2 OPEN -',
          'bulk POST: every event applied, in order, for both customers');

-- PostgREST before version 10 read the body with json_populate_recordset over the view's row type.
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_ingest"}', 'POST', '/events',
    $q$WITH pgrst_source AS (INSERT INTO "witn_api"."events"("action","agent_key","customer_key","key","properties")
         SELECT "action","agent_key","customer_key","key","properties"
           FROM json_populate_recordset(null::"witn_api"."events", $1) _ RETURNING 1)
       SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, array[]::text[] AS header,
              '' AS body, nullif(current_setting('response.headers', true), '') AS response_headers,
              nullif(current_setting('response.status', true), '') AS response_status
         FROM (SELECT * FROM pgrst_source) _postgrest_t$q$,
    '[{"key": "legacy-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "pass"}},
      {"key": "legacy-1", "action": "csat", "agent_key": "support", "customer_key": "acme", "properties": {"value": 5, "attribution": 3}}]')
    ->> 'status', '201', 'bulk POST (json_populate_recordset, PostgREST 9): accepted');
SELECT is((SELECT format('%s %s %s', status, scheduled_resolution, quantity) FROM witn.outcomes WHERE key = 'legacy-1'),
          'PENDING CONFIRMED 3', 'bulk POST (json_populate_recordset): both events applied');

-- Objects with different keys: ?columns= lists them all; with "Prefer: missing=default" an
-- object that leaves out properties or occurred_at gets the column default.
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '[{"key": "mixed-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "pass"}, "occurred_at": "2026-01-01T00:00:00Z"},
      {"key": "mixed-1", "action": "ping", "customer_key": "acme"}]',
    ARRAY['customer_key', 'key', 'action', 'agent_key', 'properties', 'occurred_at'], true)
    ->> 'status', '201', 'bulk POST with ?columns= and Prefer: missing=default: accepted');
SELECT is((SELECT string_agg(format('%s %s %s', action, properties, occurred_at = now()), ', ' ORDER BY id)
             FROM witn.events WHERE key = 'mixed-1'),
          'inspection {"value": "pass"} f, ping {} t',
          'missing=default: the object without properties and occurred_at got {} and now()');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '[{"key": "mixed-2", "action": "inspection", "agent_key": "support", "customer_key": "acme", "properties": {"value": "pass"}},
      {"key": "mixed-2", "action": "ping", "customer_key": "acme"}]',
    ARRAY['customer_key', 'key', 'action', 'agent_key', 'properties']),
    '23502', 'bulk POST with ?columns= but without missing=default: properties is null');

-- A bulk POST is one statement: one bad event rejects the batch and nothing of it is written.
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '[{"key": "atomic-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"},
      {"key": "atomic-2", "action": "inspection", "agent_key": "nobody", "customer_key": "acme"}]'),
    'WT003', 'bulk POST with one event naming an unknown agent');
SELECT is((SELECT count(*) FROM witn.events WHERE key LIKE 'atomic-%'), 0::bigint,
          'the rejected batch wrote nothing, not even its good event');

-- ---------------------------------------------------------------------------------------------
-- Retries: an idempotency key makes a retried POST harmless.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "retry-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "idempotency_key": "req-1"}') ->> 'status',
    '201', 'POST with an idempotency key');
SELECT is(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "retry-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "idempotency_key": "req-1"}') ->> 'status',
    '201', 'the same POST again (a retry) is accepted');
SELECT is((SELECT accepted_events FROM witn.outcomes WHERE key = 'retry-1'), 1::bigint,
          'the retry was recorded as a duplicate and not applied twice');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "retry-1", "action": "csat", "agent_key": "support", "customer_key": "acme", "idempotency_key": "req-1"}'),
    'WT006', 'the same idempotency key with another payload');

-- ---------------------------------------------------------------------------------------------
-- What an ingest token may not do through /events.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "own-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "received_at": "2020-01-01T00:00:00Z"}'),
    '42501', 'received_at in the body (only witn sets it)');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "own-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "late": true}'),
    '42501', 'late in the body');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "own-1", "action": "inspection", "agent_key": "support", "customer_key": "acme", "duplicate_of": 1}'),
    '42501', 'duplicate_of in the body');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"id": 1, "key": "own-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"}'),
    '428C9', 'id in the body');
-- "Prefer: return=representation" reads the inserted rows back: an ingest token may not read.
SELECT pg_temp.rejected(pg_temp.request('witn_ingest', '{"role": "witn_ingest"}', 'POST', '/events',
    pg_temp.result_sql('INSERT INTO "witn_api"."events"("key", "action", "agent_key", "customer_key") '
        'SELECT "key", "action", "agent_key", "customer_key" FROM json_to_record($1) AS _("key" text, "action" text, "agent_key" text, "customer_key" text) '
        'RETURNING "witn_api"."events".*', true),
    '{"key": "own-2", "action": "inspection", "agent_key": "support", "customer_key": "acme"}'),
    '42501', 'Prefer: return=representation with an ingest token');
-- A token scoped to one customer sends that customer's events only.
SELECT is(pg_temp.post(pg_temp.token('witn_ingest', 'acme'), 'events',
    '{"key": "scoped-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"}') ->> 'status',
    '201', 'an ingest token with customer_key acme sends acme''s events');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest', 'acme'), 'events',
    '[{"key": "scoped-2", "action": "inspection", "agent_key": "support", "customer_key": "acme"},
      {"key": "scoped-2", "action": "inspection", "agent_key": "support", "customer_key": "globex"}]'),
    '42501', 'an ingest token with customer_key acme sending a globex event');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_customer', 'acme'), 'events',
    '{"key": "cust-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"}'),
    '42501', 'a customer token posting an event');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_reader'), 'events',
    '{"key": "reader-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"}'),
    '42501', 'a reader token posting an event');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_admin'), 'events',
    '{"key": "admin-1", "action": "inspection", "agent_key": "support", "customer_key": "acme"}'),
    '42501', 'an admin token posting an event');

-- ---------------------------------------------------------------------------------------------
-- Every input the SQL path rejects is a 4xx through the API: witn's class WT (400), 23502 (400),
-- bad JSON text (22xxx, 400). Never 54000 (index row too large) or any other 500-class code.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE baseline AS SELECT pg_temp.event_count() AS events;
-- Text that does not compress: what a btree index cannot hold when it is long.
CREATE FUNCTION pg_temp.noise(characters integer) RETURNS text LANGUAGE sql AS $$
    SELECT left(string_agg(md5(i::text), ''), characters) FROM generate_series(1, characters / 32 + 1) i
$$;
CREATE FUNCTION pg_temp.send(event jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT pg_temp.post(pg_temp.token('witn_ingest'), 'events',
        (jsonb_build_object('key', 'bad', 'action', 'inspection', 'agent_key', 'support', 'customer_key', 'acme') || event)::json)
$$;

SELECT pg_temp.rejected(pg_temp.send('{"customer_key": "nobody"}'), 'WT002', 'unknown customer');
SELECT pg_temp.rejected(pg_temp.send('{"agent_key": "nobody"}'), 'WT003', 'unknown agent');
SELECT pg_temp.rejected(pg_temp.send('{"key": "ticket-1", "agent_key": "ae_other"}'), 'WT004', 'another agent on an open outcome');
SELECT pg_temp.rejected(pg_temp.send('{"customer_key": "ae_unpriced"}'), 'WT005', 'no price for the customer and agent');
SELECT pg_temp.rejected(pg_temp.send('{"agent_key": null}'), 'WT001', 'no agent_key on the first event');
SELECT pg_temp.rejected(pg_temp.send('{"customer_key": null}'), '23502', 'null customer_key');
SELECT pg_temp.rejected(pg_temp.send('{"key": ""}'), 'WT001', 'empty key');
SELECT pg_temp.rejected(pg_temp.send('{"action": null}'), '23502', 'null action');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('key', repeat('k', 256))), 'WT007', 'key of 256 characters');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('action', repeat('a', 256))), 'WT007', 'action of 256 characters');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('agent_key', repeat('g', 256))), 'WT007', 'agent_key of 256 characters');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('idempotency_key', repeat('i', 256))), 'WT007', 'idempotency_key of 256 characters');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('key', pg_temp.noise(20000))), 'WT007', 'key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('customer_key', pg_temp.noise(20000))), 'WT007', 'customer_key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('idempotency_key', pg_temp.noise(20000))), 'WT007', 'idempotency_key of 20000 characters that do not compress');
SELECT pg_temp.rejected(pg_temp.send(jsonb_build_object('properties', jsonb_build_object('blob', pg_temp.noise(300000)))),
                        'WT007', 'properties over 256 KiB');
SELECT pg_temp.rejected(pg_temp.send('{"properties": "pass"}'), 'WT001', 'properties a string');
SELECT pg_temp.rejected(pg_temp.send('{"properties": [1, 2]}'), 'WT001', 'properties an array');
SELECT pg_temp.rejected(pg_temp.send('{"properties": {"attribution": -1}}'), 'WT001', 'negative attribution');
SELECT pg_temp.rejected(pg_temp.send('{"properties": {"settles_at": "soon"}}'), 'WT001', 'settles_at not a timestamp');
SELECT pg_temp.rejected(pg_temp.send('{"occurred_at": "2026-01-01T00:00:00Z", "properties": {"settles_at": "2027-01-01T00:00:00Z"}}'),
                        'WT001', 'settles_at more than 180 days after the event');
SELECT pg_temp.rejected(pg_temp.send('{"occurred_at": "yesterday-ish"}'), '22007', 'occurred_at not a timestamp');
SELECT pg_temp.rejected(pg_temp.send('{"occurred_at": "infinity"}'), 'WT001', 'occurred_at infinity');
SELECT pg_temp.rejected(pg_temp.post(pg_temp.token('witn_ingest'), 'events',
    '{"key": "nul\u0000", "action": "inspection", "agent_key": "support", "customer_key": "acme"}',
    ARRAY['key', 'action', 'agent_key', 'customer_key']),
    '22P05', 'a key with a NUL character');
SELECT is(pg_temp.event_count(), (SELECT events FROM baseline), 'none of the rejected events was written');

SELECT * FROM finish();
ROLLBACK;
