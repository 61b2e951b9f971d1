-- Webhook endpoints and deliveries (CONTRACT §21), the SQL surface without a delivery worker
-- (the test cluster does not preload witn, so nothing is sent and every delivery stays pending):
-- endpoints and their secrets, every refused endpoint writing nothing, the deliveries that
-- settlement, credits and reversals queue with their notifications, witn.redeliver, deleting
-- endpoints, witn.webhook_status, and who may do what, through witn and witn_api as PostgREST
-- drives them.
--
-- Endpoints are named by their description ('all', 'acme', ...); a delivery attempt's outcome is
-- played by an UPDATE as the worker would write it.
BEGIN;
\ir api_request.psql
SELECT plan(134);
SET LOCAL TimeZone = 'UTC';

INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std'), ('globex', 'std');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('support', '[{"fact": "resolved", "operator": "seen"}]', '1 minute');
INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
    ('refundable', '[{"fact": "resolved", "operator": "seen"}]', '1 minute', '[{"fact": "reopened", "operator": "seen"}]', '7 days');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('std', 'support', 10), ('std', 'refundable', 5);

-- ---- helpers ------------------------------------------------------------------------------------
-- The first event of an outcome at `at`; with the agents' 1 minute settlement period it is due a
-- minute later.
CREATE FUNCTION pg_temp.open_at(customer text, outcome text, agent text, action text, at timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES (customer, outcome, action, agent, at);
$$;
-- The latest notification of a kind for an outcome, and an endpoint by its description.
CREATE FUNCTION pg_temp.note(outcome text, wanted text) RETURNS bigint LANGUAGE sql AS $$
    SELECT n.id FROM witn.notifications n JOIN witn.outcomes o ON o.id = n.outcome_id
     WHERE o.key = outcome AND n.kind = wanted ORDER BY n.id DESC LIMIT 1
$$;
CREATE FUNCTION pg_temp.ep(name text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM witn.webhook_endpoints WHERE description = name
$$;
-- The endpoints a notification is queued for, by description, one per delivery row.
CREATE FUNCTION pg_temp.queued_for(notification bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(e.description, ' ' ORDER BY e.description, d.id), '(none)')
      FROM witn.webhook_deliveries d JOIN witn.webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.notification_id = notification
$$;
-- Every notification of some kinds and where it is queued: "outcome/kind: endpoints; ...".
CREATE FUNCTION pg_temp.queued(kinds text[]) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(o.key || '/' || n.kind || ': ' || pg_temp.queued_for(n.id), '; ' ORDER BY o.key, n.kind)
      FROM witn.notifications n JOIN witn.outcomes o ON o.id = n.outcome_id
     WHERE n.kind = ANY (kinds)
$$;
-- An INSERT into witn.webhook_endpoints.
CREATE FUNCTION pg_temp.insert_sql(columns text, vals text) RETURNS text LANGUAGE sql AS $$
    SELECT format('INSERT INTO witn.webhook_endpoints (%s) VALUES (%s)', columns, vals)
$$;
-- What the webhook tables hold: every refused statement must leave this as it was.
CREATE FUNCTION pg_temp.written() RETURNS text LANGUAGE sql AS $$
    SELECT format('endpoints=%s %s deliveries=%s %s',
                  (SELECT count(*) FROM witn.webhook_endpoints),
                  (SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY e.id), '')) FROM witn.webhook_endpoints e),
                  (SELECT count(*) FROM witn.webhook_deliveries),
                  (SELECT md5(coalesce(string_agg(d::text, ',' ORDER BY d.id), '')) FROM witn.webhook_deliveries d))
$$;
-- The SQLSTATE and message of the error a statement raises, or 'no error'.
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
-- The detail and the hint of the error a statement raises.
CREATE FUNCTION pg_temp.detail_and_hint(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN detail || ' | ' || hint;
END $$;
-- The statement fails with that SQLSTATE and message, and the webhook tables are as they were:
-- one test per call.
CREATE FUNCTION pg_temp.rejects(sql text, code text, message text, description text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.written();
BEGIN
    RETURN is(pg_temp.error_of(sql) || '; ' || pg_temp.written(), code || ' ' || message || '; ' || before,
              description || ': ' || code || ', nothing written');
END $$;
-- A delivery row, as "status attempts due-now last_response_code last_error".
CREATE FUNCTION pg_temp.delivery(d witn.webhook_deliveries) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s attempts=%s due_now=%s code=%s error=%s', d.status, d.attempts, d.next_attempt_at = now(),
                  coalesce(d.last_response_code::text, '-'), coalesce(d.last_error, '-'))
$$;
-- POST /rpc/redeliver as PostgREST calls it: the body's keys become named arguments.
CREATE FUNCTION pg_temp.rpc_redeliver(token jsonb, body json) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    keys text[] := ARRAY(SELECT k FROM json_object_keys(body) k ORDER BY 1);
BEGIN
    RETURN pg_temp.request(token ->> 'role', token::text, 'POST', '/rpc/redeliver',
        pg_temp.result_sql(format('SELECT pgrst_call.* FROM (SELECT $1 AS json_data) pgrst_payload, '
            'LATERAL (SELECT %s FROM json_to_record(pgrst_payload.json_data) AS _(%s) LIMIT 1) pgrst_body , '
            'LATERAL "witn_api"."redeliver"(%s) pgrst_call',
            (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) k),
            (SELECT string_agg(quote_ident(k) || ' bigint', ', ') FROM unnest(keys) k),
            (SELECT string_agg(format('%1$I := pgrst_body.%1$I', k), ', ') FROM unnest(keys) k)), true),
        body);
END $$;

-- =================================================================================================
-- 1. Without endpoints nothing is queued.
-- =================================================================================================
SELECT pg_temp.open_at('acme', 'a_early', 'support', 'resolved', now() - interval '20 minutes');
SELECT is((SELECT format('%s confirmed, %s failed', confirmed, failed) FROM witn.settle(now() - interval '15 minutes')),
    '1 confirmed, 0 failed', 'setup: an outcome settled before any endpoint exists');
SELECT is((SELECT format('notifications=%s deliveries=%s', (SELECT count(*) FROM witn.notifications),
                         (SELECT count(*) FROM witn.webhook_deliveries))),
    'notifications=1 deliveries=0', 'no endpoint: the notification is written, no delivery is queued');
SET LOCAL client_min_messages = warning;
SELECT is((SELECT count(*) FROM witn.redeliver(pg_temp.note('a_early', 'outcome_succeed'))), 0::bigint,
    'witn.redeliver with no endpoint queues nothing, and is no error (a notice says so)');
RESET client_min_messages;

-- =================================================================================================
-- 2. Endpoints and their secrets.
-- =================================================================================================
INSERT INTO witn.webhook_endpoints (description, url, customer_key, event_types, enabled) VALUES
    ('all', 'https://hooks.example.com/witn', NULL, NULL, true),
    ('acme', 'https://acme.example.com:8443/witn?source=billing', 'acme', NULL, true),
    ('failures', 'http://127.0.0.1:9000/failed', NULL, '{outcome_failed}', true),
    ('off', 'https://[::1]:8080/off', NULL, NULL, false),
    ('globex_wins', 'HTTPS://Globex.Example.com/', 'globex', '{outcome_succeed}', true);
SELECT is((SELECT count(*) FROM witn.webhook_endpoints
            WHERE secret ~ '^whsec_[A-Za-z0-9+/]{43}=$' AND length(decode(substr(secret, 7), 'base64')) = 32), 5::bigint,
    'an endpoint without a secret gets one: whsec_ and the base64 of 32 bytes');
SELECT is((SELECT count(DISTINCT secret) FROM witn.webhook_endpoints), 5::bigint, 'each endpoint''s secret is its own');
SELECT ok((SELECT a <> b AND a ~ '^whsec_[A-Za-z0-9+/]{43}=$' AND b ~ '^whsec_[A-Za-z0-9+/]{43}=$'
             FROM (SELECT witn.webhook_secret() AS a, witn.webhook_secret() AS b) s),
    'witn.webhook_secret() makes a new secret at every call');
SELECT is((SELECT format('%s %s %s %s %s', enabled, event_types IS NULL, customer_key IS NULL, created_at = now(), updated_at = now())
             FROM witn.webhook_endpoints WHERE description = 'all'),
    't t t t t', 'the defaults: enabled, every kind, every customer, created and updated now');
SELECT is((SELECT url FROM witn.webhook_endpoints WHERE description = 'globex_wins'), 'HTTPS://Globex.Example.com/',
    'the URL is stored as written');

-- =================================================================================================
-- 3. Refused endpoints (WT001 VALIDATION_ERROR, WT002 CUSTOMER_NOT_FOUND) write nothing.
-- =================================================================================================
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'ftp://hooks.example.com/witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be an http:// or https:// URL', 'an ftp:// URL');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'javascript:alert(1)'$$), 'WT001',
    'VALIDATION_ERROR: url must be an http:// or https:// URL', 'a javascript: URL');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'hooks.example.com/witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be an http:// or https:// URL', 'a URL without a scheme');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', 'NULL'), 'WT001',
    'VALIDATION_ERROR: url must be an http:// or https:// URL', 'a NULL URL');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://'$$), 'WT001',
    'VALIDATION_ERROR: url must be a host name or address after the scheme', 'a URL without a host');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https:///witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be a host name or address after the scheme', 'a URL with a path but no host');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://hooks.example.com:0/witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be a port from 1 to 65535', 'port 0');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://hooks.example.com:70000/witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be a port from 1 to 65535', 'port 70000');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://hooks.example.com:80a/witn'$$), 'WT001',
    'VALIDATION_ERROR: url must be a port from 1 to 65535', 'a port that is not a number');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://hooks.example.com/my hooks'$$), 'WT001',
    'VALIDATION_ERROR: url must be a URL without spaces or control characters (percent-encode them)', 'a URL with a space');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$E'https://hooks.example.com/witn\r\nX-Injected: 1'$$), 'WT001',
    'VALIDATION_ERROR: url must be a URL without spaces or control characters (percent-encode them)', 'a URL with a line break');
SELECT pg_temp.rejects(pg_temp.insert_sql('url', $$'https://hooks.example.com/' || repeat('a', 2023)$$), 'WT001',
    'VALIDATION_ERROR: url must be at most 2048 characters', 'a URL of 2049 characters');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, secret', $$'https://hooks.example.com/witn', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'$$),
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes',
    'a secret without the whsec_ prefix');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, secret', $$'https://hooks.example.com/witn', 'whsec_not base64!'$$),
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes',
    'a secret that is not base64');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, secret',
        $$'https://hooks.example.com/witn', 'whsec_' || encode(convert_to(repeat('k', 23), 'UTF8'), 'base64')$$),
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes',
    'a secret of 23 bytes (too short)');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, secret',
        $$'https://hooks.example.com/witn', 'whsec_' || translate(encode(convert_to(repeat('k', 65), 'UTF8'), 'base64'), E'\n', '')$$),
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes',
    'a secret of 65 bytes (too long)');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, secret', $$'https://hooks.example.com/witn', NULL$$),
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes', 'a NULL secret');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{}'$$),
    'WT001', 'VALIDATION_ERROR: event_types must be NULL (every kind) or at least one kind', 'event_types empty');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{outcome_succeed,outcome_bogus}'$$),
    'WT001', 'VALIDATION_ERROR: event_types[1] must be one of outcome_succeed, outcome_failed, outcome_reversed, outcome_credited',
    'an unknown kind in event_types');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{OUTCOME_FAILED}'$$),
    'WT001', 'VALIDATION_ERROR: event_types[0] must be one of outcome_succeed, outcome_failed, outcome_reversed, outcome_credited',
    'a kind in capitals');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{outcome_failed,outcome_failed}'$$),
    'WT001', 'VALIDATION_ERROR: event_types[1] must be a kind not listed before it', 'a kind listed twice');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{outcome_failed,NULL}'$$),
    'WT001', 'VALIDATION_ERROR: event_types[1] must be one of outcome_succeed, outcome_failed, outcome_reversed, outcome_credited',
    'a NULL item in event_types');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{{outcome_failed},{outcome_succeed}}'$$),
    'WT001', 'VALIDATION_ERROR: event_types must be a one-dimensional array of kinds', 'a two-dimensional event_types');
SELECT pg_temp.rejects(pg_temp.insert_sql('url, customer_key', $$'https://hooks.example.com/witn', 'nobody'$$),
    'WT002', 'CUSTOMER_NOT_FOUND: no customer nobody', 'an unknown customer_key');
SELECT pg_temp.rejects($$UPDATE witn.webhook_endpoints SET url = 'ftp://hooks.example.com/' WHERE description = 'all'$$,
    'WT001', 'VALIDATION_ERROR: url must be an http:// or https:// URL', 'an UPDATE to an ftp:// URL');
SELECT pg_temp.rejects($$UPDATE witn.webhook_endpoints SET secret = 'whsec_c2hvcnQ=' WHERE description = 'all'$$,
    'WT001', 'VALIDATION_ERROR: secret must be "whsec_" followed by the base64 of 24 to 64 random bytes', 'an UPDATE to a short secret');
SELECT pg_temp.rejects($$UPDATE witn.webhook_endpoints SET event_types = '{}' WHERE description = 'all'$$,
    'WT001', 'VALIDATION_ERROR: event_types must be NULL (every kind) or at least one kind', 'an UPDATE to empty event_types');
SELECT pg_temp.rejects($$UPDATE witn.webhook_endpoints SET customer_key = 'nobody' WHERE description = 'acme'$$,
    'WT002', 'CUSTOMER_NOT_FOUND: no customer nobody', 'an UPDATE to an unknown customer_key');
SELECT is(pg_temp.detail_and_hint(pg_temp.insert_sql('url, event_types', $$'https://hooks.example.com/witn', '{outcome_failed,outcome_failed}'$$)),
    'at event_types[1] | List the notification kinds to deliver, or leave event_types NULL for all of them.',
    'a duplicate kind: the detail names event_types[1], the hint says what to list');
SELECT is(pg_temp.detail_and_hint(pg_temp.insert_sql('url', $$'ftp://hooks.example.com/witn'$$)),
    'at url | Give the receiver''s address, e.g. https://billing.example.com/witn/webhooks.',
    'a bad URL: the detail names url, the hint shows one');
-- The description's length: the trigger says so (the CHECK constraint stays as a backstop).
SELECT pg_temp.rejects(pg_temp.insert_sql('url, description', $$'https://hooks.example.com/witn', repeat('x', 1001)$$),
    'WT001', 'VALIDATION_ERROR: description must be at most 1000 characters', 'a description of 1001 characters');
SELECT is((pg_temp.error_of(pg_temp.insert_sql('url, description', $$'https://hooks.example.com/witn', repeat('x', 1001)$$)) <> 'no error')
              || ' ' || pg_temp.written(), 'true ' || pg_temp.written(),
    'a description of 1001 characters is refused all the same, nothing written');
SELECT lives_ok(pg_temp.insert_sql('url, description', $$'https://hooks.example.com/witn', repeat('x', 1000)$$),
    'a description of 1000 characters is accepted');
DELETE FROM witn.webhook_endpoints WHERE length(description) = 1000;

-- =================================================================================================
-- 4. Settlement queues one pending delivery per matching endpoint, disabled ones included.
-- =================================================================================================
SELECT pg_temp.open_at(c, o, 'support', act, now() - interval '5 minutes')
  FROM (VALUES ('acme', 'a_ok', 'resolved'), ('acme', 'a_miss', 'opened'),
               ('globex', 'g_ok', 'resolved'), ('globex', 'g_miss', 'opened')) v(c, o, act);
-- Due two minutes ago, settled below by the event that reverses it (section 5).
SELECT pg_temp.open_at('acme', 'a_rev', 'refundable', 'resolved', now() - interval '3 minutes');
SELECT is((SELECT format('%s confirmed, %s failed', confirmed, failed) FROM witn.settle(now() - interval '3 minutes')),
    '2 confirmed, 2 failed', 'setup: settlement as of three minutes ago confirms two outcomes and misses two');
SELECT is(pg_temp.queued(ARRAY['outcome_succeed', 'outcome_failed']),
    'a_early/outcome_succeed: (none); '
    'a_miss/outcome_failed: acme all failures off; a_ok/outcome_succeed: acme all off; '
    'g_miss/outcome_failed: all failures off; g_ok/outcome_succeed: all globex_wins off',
    'each notification is queued for every endpoint that takes it: catch-all, its customer''s, its kind''s, disabled or not');
SELECT is((SELECT count(*) FROM witn.webhook_deliveries d JOIN witn.webhook_endpoints e ON e.id = d.endpoint_id
            WHERE e.description = 'off'), 4::bigint, 'the disabled endpoint''s deliveries are queued (they wait until it is enabled)');
SELECT is((SELECT string_agg(DISTINCT pg_temp.delivery(d), ', ') FROM witn.webhook_deliveries d),
    'pending attempts=0 due_now=t code=- error=-', 'every queued delivery is pending, not attempted, due now');
SELECT is((SELECT count(*) FROM witn.webhook_deliveries d
            WHERE d.last_attempt_at IS NULL AND d.delivered_at IS NULL AND d.created_at = now()
              AND d.customer_key = (SELECT n.customer_key FROM witn.notifications n WHERE n.id = d.notification_id)),
    13::bigint, '... never attempted, created now, under its notification''s customer_key');
SELECT is((SELECT count(*) FROM (SELECT 1 FROM witn.webhook_deliveries GROUP BY notification_id, endpoint_id HAVING count(*) > 1) x),
    0::bigint, 'one delivery per notification and endpoint');
SELECT is((SELECT format('%s confirmed, %s failed', confirmed, failed) FROM witn.settle(now() - interval '3 minutes')),
    '0 confirmed, 0 failed', 'settling again settles nothing');
SELECT is((SELECT count(*) FROM witn.webhook_deliveries), 13::bigint, '... and queues nothing');

-- =================================================================================================
-- 5. Credits and reversals queue outcome_credited and outcome_reversed deliveries.
-- =================================================================================================
INSERT INTO witn.webhook_endpoints (description, url, event_types) VALUES
    ('corrections', 'https://finance.example.com/credits', '{outcome_credited,outcome_reversed}');
SELECT is((SELECT amount FROM witn.credit_outcome((SELECT id FROM witn.outcomes WHERE key = 'a_ok'), 2.5, 'goodwill')), 2.5,
    'setup: witn.credit_outcome credits a_ok');
SELECT is((SELECT kind FROM witn.reverse_outcome((SELECT id FROM witn.outcomes WHERE key = 'g_ok'), 'disputed')), 'reversal',
    'setup: witn.reverse_outcome reverses g_ok');
SELECT is(pg_temp.queued(ARRAY['outcome_credited', 'outcome_reversed']),
    'a_ok/outcome_credited: acme all corrections off; g_ok/outcome_reversed: all corrections off',
    'the credit and the reversal are queued for the endpoints that take them');
-- a_rev is due and not settled: its reopened event settles it first, then reverses it (§20).
INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'a_rev', 'reopened');
SELECT is((SELECT status || ' ' || reversal_reason FROM witn.outcomes WHERE key = 'a_rev'), 'CONFIRMED reversal_condition',
    'setup: an event settles a_rev and reverses it by its reversal condition');
SELECT is(pg_temp.queued_for(pg_temp.note('a_rev', 'outcome_succeed')) || '; ' || pg_temp.queued_for(pg_temp.note('a_rev', 'outcome_reversed')),
    'acme all off; acme all corrections off',
    'the confirmation and the reversal written by the events trigger are queued too');
SELECT is((SELECT string_agg(DISTINCT pg_temp.delivery(d), ', ') FROM witn.webhook_deliveries d),
    'pending attempts=0 due_now=t code=- error=-', 'all of them pending and due now');
SELECT is((SELECT count(*) FROM witn.webhook_deliveries), 27::bigint, '27 deliveries queued in all');

-- =================================================================================================
-- 6. witn.redeliver.
-- =================================================================================================
SELECT pg_temp.rejects('SELECT * FROM witn.redeliver(NULL)', 'WT001',
    'VALIDATION_ERROR: notification_id: a witn.notifications id', 'redeliver(NULL)');
SELECT pg_temp.rejects('SELECT * FROM witn.redeliver(987654321)', 'WT013',
    'NOTIFICATION_NOT_FOUND: no notification 987654321', 'redeliver of an unknown notification');
SELECT pg_temp.rejects(format('SELECT * FROM witn.redeliver(%s, 987654321)', pg_temp.note('a_ok', 'outcome_succeed')), 'WT014',
    'WEBHOOK_ENDPOINT_NOT_FOUND: no webhook endpoint 987654321', 'redeliver to an unknown endpoint');
SELECT pg_temp.rejects(format('SELECT * FROM witn.redeliver(%s, %s)', pg_temp.note('a_ok', 'outcome_succeed'), pg_temp.ep('failures')),
    'WT001', format('VALIDATION_ERROR: endpoint_id: webhook endpoint %s does not take notification %s',
                    pg_temp.ep('failures'), pg_temp.note('a_ok', 'outcome_succeed')),
    'redeliver to an endpoint whose event_types leave the notification out');
SELECT pg_temp.rejects(format('SELECT * FROM witn.redeliver(%s, %s)', pg_temp.note('g_ok', 'outcome_succeed'), pg_temp.ep('acme')),
    'WT001', format('VALIDATION_ERROR: endpoint_id: webhook endpoint %s does not take notification %s',
                    pg_temp.ep('acme'), pg_temp.note('g_ok', 'outcome_succeed')),
    'redeliver to an endpoint of another customer');

-- A pending delivery waiting for its next attempt is made due now: the same row.
UPDATE witn.webhook_deliveries SET attempts = 2, next_attempt_at = now() + interval '1 hour', last_attempt_at = now() - interval '1 minute',
       last_response_code = 503, last_error = 'HTTP 503'
 WHERE notification_id = pg_temp.note('a_miss', 'outcome_failed') AND endpoint_id = pg_temp.ep('failures');
CREATE TEMP TABLE retrying AS SELECT id FROM witn.webhook_deliveries
 WHERE notification_id = pg_temp.note('a_miss', 'outcome_failed') AND endpoint_id = pg_temp.ep('failures');
CREATE TEMP TABLE again AS SELECT r AS d FROM witn.redeliver(pg_temp.note('a_miss', 'outcome_failed'), pg_temp.ep('failures')) r;
SELECT is((SELECT format('%s same_row=%s', pg_temp.delivery(d), (d).id = (SELECT id FROM retrying)) FROM again),
    'pending attempts=2 due_now=t code=503 error=HTTP 503 same_row=t',
    'redeliver of a pending delivery makes that row due now, its attempts kept');
SELECT is(pg_temp.queued_for(pg_temp.note('a_miss', 'outcome_failed')), 'acme all failures off', '... and adds no row');

-- A delivered one stays; a new pending delivery is added.
UPDATE witn.webhook_deliveries SET status = 'delivered', attempts = 1, next_attempt_at = NULL, last_attempt_at = now() - interval '2 minutes',
       last_response_code = 200, delivered_at = now() - interval '2 minutes'
 WHERE notification_id = pg_temp.note('a_ok', 'outcome_succeed') AND endpoint_id = pg_temp.ep('all');
CREATE TEMP TABLE after_delivered AS SELECT * FROM witn.redeliver(pg_temp.note('a_ok', 'outcome_succeed'), pg_temp.ep('all'));
SELECT is((SELECT string_agg(pg_temp.delivery(d), ', ' ORDER BY d.id) FROM witn.webhook_deliveries d
            WHERE notification_id = pg_temp.note('a_ok', 'outcome_succeed') AND endpoint_id = pg_temp.ep('all')),
    'delivered attempts=1 due_now= code=200 error=-, pending attempts=0 due_now=t code=- error=-',
    'redeliver of a delivered delivery keeps it and adds a new pending one, due now');
SELECT is((SELECT format('%s %s', count(*), bool_and(a.id = (SELECT max(id) FROM witn.webhook_deliveries))) FROM after_delivered a),
    '1 t', '... which it returns');

-- A failed one likewise.
UPDATE witn.webhook_deliveries SET status = 'failed', attempts = 8, next_attempt_at = NULL, last_attempt_at = now() - interval '3 minutes',
       last_response_code = NULL, last_error = 'connection refused'
 WHERE notification_id = pg_temp.note('g_miss', 'outcome_failed') AND endpoint_id = pg_temp.ep('failures');
SELECT is((SELECT pg_temp.delivery(r) FROM witn.redeliver(pg_temp.note('g_miss', 'outcome_failed'), pg_temp.ep('failures')) r),
    'pending attempts=0 due_now=t code=- error=-', 'redeliver of a failed delivery returns a new pending one');
SELECT is((SELECT string_agg(pg_temp.delivery(d), ', ' ORDER BY d.id) FROM witn.webhook_deliveries d
            WHERE notification_id = pg_temp.note('g_miss', 'outcome_failed') AND endpoint_id = pg_temp.ep('failures')),
    'failed attempts=8 due_now= code=- error=connection refused, pending attempts=0 due_now=t code=- error=-',
    '... and the failed one stays, with its attempts');

-- Without endpoint_id: every endpoint whose filters take it.
SELECT is((SELECT string_agg(e.description, ' ' ORDER BY e.description)
             FROM witn.redeliver(pg_temp.note('a_early', 'outcome_succeed')) r JOIN witn.webhook_endpoints e ON e.id = r.endpoint_id),
    'acme all off', 'redeliver without endpoint_id queues a notification written before the endpoints for every endpoint that takes it');
SELECT is(pg_temp.queued_for(pg_temp.note('a_early', 'outcome_succeed')), 'acme all off', '... as new pending deliveries');
SELECT is((SELECT count(*) || ' ' || string_agg(DISTINCT pg_temp.delivery(r), ', ')
             FROM witn.redeliver(pg_temp.note('a_ok', 'outcome_succeed')) r),
    '3 pending attempts=0 due_now=t code=- error=-',
    'redeliver without endpoint_id of a notification with pending deliveries returns them, due now');
SELECT is(pg_temp.queued_for(pg_temp.note('a_ok', 'outcome_succeed')), 'acme all all off',
    '... without adding any (all: the delivered row and the pending one)');

-- =================================================================================================
-- 7. Deleting an endpoint.
-- =================================================================================================
INSERT INTO witn.webhook_endpoints (description, url, secret) VALUES
    ('own', 'https://own.example.com/', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
SELECT is((SELECT secret FROM witn.webhook_endpoints WHERE description = 'own'), 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    'a secret given is kept (24 bytes, the least)');
SELECT pg_temp.rejects(format('DELETE FROM witn.webhook_endpoints WHERE id = %s', pg_temp.ep('acme')), '23503',
    format('webhook endpoint %s has deliveries and cannot be deleted', pg_temp.ep('acme')),
    'an endpoint with deliveries cannot be deleted');
SELECT pg_temp.rejects($$DELETE FROM witn.webhook_endpoints WHERE description IN ('own', 'acme')$$, '23503',
    format('webhook endpoint %s has deliveries and cannot be deleted', pg_temp.ep('acme')),
    'a DELETE of an endpoint with deliveries and one without deletes neither');
SELECT lives_ok(format('DELETE FROM witn.webhook_endpoints WHERE id = %s', pg_temp.ep('own')),
    'an endpoint without deliveries is deleted');
SELECT is(pg_temp.ep('own'), NULL, '... and is gone');
DELETE FROM witn.webhook_deliveries WHERE endpoint_id = pg_temp.ep('globex_wins');
SELECT lives_ok(format('DELETE FROM witn.webhook_endpoints WHERE id = %s', pg_temp.ep('globex_wins')),
    'once its deliveries are deleted, an endpoint can be deleted');

-- =================================================================================================
-- 8. updated_at.
-- =================================================================================================
INSERT INTO witn.webhook_endpoints (description, url, event_types, created_at, updated_at) VALUES
    ('dated', 'https://dated.example.com/', '{outcome_failed}', now() - interval '1 day', now() - interval '1 day');
UPDATE witn.webhook_endpoints SET enabled = false WHERE description = 'dated';
SELECT is((SELECT format('created=%s updated=%s', now() - created_at, now() - updated_at) FROM witn.webhook_endpoints WHERE description = 'dated'),
    'created=1 day updated=00:00:00', 'an UPDATE moves updated_at to now, created_at stays');
UPDATE witn.webhook_endpoints SET updated_at = now() - interval '1 hour' WHERE description = 'dated';
SELECT is((SELECT now() - updated_at FROM witn.webhook_endpoints WHERE description = 'dated'), interval '0',
    '... whatever the UPDATE sets it to');

-- =================================================================================================
-- 9. witn.webhook_status.
-- =================================================================================================
-- 'status' has a delivery due now, one retrying, one failed and two delivered (an attempt's result
-- as the worker records it); 'quiet' has none.
INSERT INTO witn.webhook_endpoints (description, url) VALUES ('status', 'https://status.example.com/'), ('quiet', 'https://quiet.example.com/');
CREATE TEMP TABLE status_rows AS
    SELECT o.key, (SELECT r.id FROM witn.redeliver(pg_temp.note(o.key, o.kind), pg_temp.ep('status')) r) AS id
      FROM (VALUES ('a_ok', 'outcome_succeed'), ('a_miss', 'outcome_failed'), ('g_ok', 'outcome_succeed'),
                   ('g_miss', 'outcome_failed'), ('a_rev', 'outcome_succeed')) o(key, kind);
UPDATE witn.webhook_deliveries d SET created_at = now() - interval '10 minutes'
  FROM status_rows s WHERE s.id = d.id AND s.key = 'a_ok';
UPDATE witn.webhook_deliveries d SET created_at = now() - interval '1 hour', attempts = 2, next_attempt_at = now() + interval '1 hour',
       last_attempt_at = now() - interval '5 minutes', last_response_code = 503, last_error = 'HTTP 503'
  FROM status_rows s WHERE s.id = d.id AND s.key = 'a_miss';
UPDATE witn.webhook_deliveries d SET status = 'failed', attempts = 8, next_attempt_at = NULL,
       last_attempt_at = now() - interval '2 minutes', last_response_code = NULL, last_error = 'connection refused'
  FROM status_rows s WHERE s.id = d.id AND s.key = 'g_ok';
UPDATE witn.webhook_deliveries d SET status = 'delivered', attempts = 1, next_attempt_at = NULL,
       last_attempt_at = now() - interval '1 minute', last_response_code = 200, delivered_at = now() - interval '1 minute'
  FROM status_rows s WHERE s.id = d.id AND s.key = 'g_miss';
UPDATE witn.webhook_deliveries d SET status = 'delivered', attempts = 3, next_attempt_at = NULL,
       last_attempt_at = now() - interval '30 minutes', last_response_code = 204, delivered_at = now() - interval '30 minutes'
  FROM status_rows s WHERE s.id = d.id AND s.key = 'a_rev';
SELECT results_eq(
    $$ SELECT url, enabled, pending, due, retrying, now() - oldest_pending_at, oldest_pending_age, failed,
              now() - last_attempt_at, last_response_code, last_error, now() - last_delivered_at
         FROM witn.webhook_status WHERE endpoint_id = pg_temp.ep('status') $$,
    $$ VALUES ('https://status.example.com/'::text, true, 2::bigint, 1::bigint, 1::bigint, interval '1 hour', interval '1 hour',
               1::bigint, interval '2 minutes', NULL::integer, 'connection refused'::text, interval '1 minute') $$,
    'webhook_status: 2 pending (1 due, 1 retrying), the oldest an hour old, 1 failed, the failed attempt''s error, the last delivery');
SELECT results_eq(
    $$ SELECT pending, due, retrying, oldest_pending_at, oldest_pending_age, failed, last_attempt_at, last_response_code,
              last_error, last_delivered_at
         FROM witn.webhook_status WHERE endpoint_id = pg_temp.ep('quiet') $$,
    $$ VALUES (0::bigint, 0::bigint, 0::bigint, NULL::timestamptz, NULL::interval, 0::bigint, NULL::timestamptz, NULL::integer,
               NULL::text, NULL::timestamptz) $$,
    'webhook_status of an endpoint without deliveries: zeros and NULLs');
SELECT results_eq(
    $$ SELECT enabled, pending, due, retrying, oldest_pending_at = now(), failed, last_attempt_at
         FROM witn.webhook_status WHERE endpoint_id = pg_temp.ep('off') $$,
    $$ VALUES (false, 9::bigint, 9::bigint, 0::bigint, true, 0::bigint, NULL::timestamptz) $$,
    'webhook_status of the disabled endpoint: its backlog, all due');
SELECT results_eq(
    $$ SELECT pending, due, retrying, failed, last_response_code, last_error, now() - last_delivered_at
         FROM witn.webhook_status WHERE endpoint_id = pg_temp.ep('all') $$,
    $$ VALUES (9::bigint, 9::bigint, 0::bigint, 0::bigint, NULL::integer, NULL::text, interval '2 minutes') $$,
    'webhook_status: a delivered attempt is no last error, but the last delivery');
SELECT is((SELECT count(*) FROM witn.webhook_status), (SELECT count(*) FROM witn.webhook_endpoints),
    'webhook_status has one row per endpoint');
SELECT set_eq('SELECT * FROM witn_api.webhook_status', 'SELECT * FROM witn.webhook_status',
    'witn_api.webhook_status shows the same');

-- =================================================================================================
-- 10. Roles, as PostgREST drives them.
-- =================================================================================================
CREATE TEMP TABLE tokens AS SELECT pg_temp.token('witn_admin') AS admin, pg_temp.token('witn_reader') AS reader,
    pg_temp.token('witn_customer', 'acme') AS customer, pg_temp.token('witn_ingest') AS ingest;
CREATE TEMP TABLE ids AS SELECT pg_temp.note('a_ok', 'outcome_succeed') AS a_ok, pg_temp.ep('all') AS e_all;

-- witn_admin: endpoints with their secrets, through witn_api and witn.
SELECT is(pg_temp.post((SELECT admin FROM tokens), 'webhook_endpoints',
              '{"url": "https://api.example.com/witn", "event_types": ["outcome_failed", "outcome_reversed"],
                "customer_key": "globex", "description": "api"}') ->> 'status',
    '201', 'witn_admin: POST /webhook_endpoints');
SELECT is((SELECT format('%s %s %s %s', event_types, customer_key, enabled, secret ~ '^whsec_[A-Za-z0-9+/]{43}=$')
             FROM witn.webhook_endpoints WHERE description = 'api'),
    '{outcome_failed,outcome_reversed} globex t t', '... the endpoint, with its kinds, its customer and a new secret');
SELECT is(pg_temp.get((SELECT admin FROM tokens), 'webhook_endpoints', 'description', 'api') #>> '{body,0,secret}',
    (SELECT secret FROM witn.webhook_endpoints WHERE description = 'api'), 'witn_admin: GET /webhook_endpoints shows the secret');
SELECT is(pg_temp.patch((SELECT admin FROM tokens), 'webhook_endpoints', 'description', 'api', '{"enabled": false}') ->> 'status',
    '200', 'witn_admin: PATCH /webhook_endpoints {"enabled": false}');
SELECT is((SELECT enabled FROM witn.webhook_endpoints WHERE description = 'api'), false, '... pauses it');
SELECT is(pg_temp.post((SELECT admin FROM tokens), 'webhook_endpoints', '{"url": "ftp://api.example.com/", "description": "bad"}')
              - 'detail',
    '{"status": 400, "code": "WT001", "message": "VALIDATION_ERROR: url must be an http:// or https:// URL"}',
    'witn_admin: POST /webhook_endpoints with an ftp:// URL is a 400 VALIDATION_ERROR');
SELECT is(pg_temp.delete((SELECT admin FROM tokens), 'webhook_endpoints', 'description', 'acme') ->> 'status', '409',
    'witn_admin: DELETE /webhook_endpoints of one with deliveries is a 409');
SELECT is(pg_temp.request('witn_admin', (SELECT admin::text FROM tokens), 'POST', '/',
              $$INSERT INTO witn.webhook_endpoints (url, description, secret) VALUES ('https://direct.example.com/', 'direct',
                'whsec_' || translate(encode(convert_to(repeat('s', 32), 'UTF8'), 'base64'), E'\n', '')) RETURNING 1$$) ->> 'status',
    '201', 'witn_admin inserts into witn.webhook_endpoints, with a secret of its own');
SELECT is(pg_temp.request('witn_admin', (SELECT admin::text FROM tokens), 'GET', '/',
              $$SELECT secret AS body FROM witn.webhook_endpoints WHERE description = 'direct'$$) ->> 'body',
    'whsec_' || translate(encode(convert_to(repeat('s', 32), 'UTF8'), 'base64'), E'\n', ''),
    '... and reads it there');
SELECT is(pg_temp.request('witn_admin', (SELECT admin::text FROM tokens), 'POST', '/',
              $$INSERT INTO witn.webhook_endpoints (url, updated_at) VALUES ('https://x.example.com/', now() - interval '1 day') RETURNING 1$$)
              ->> 'code', '42501', 'witn_admin may not set updated_at');
SELECT is(pg_temp.request('witn_admin', (SELECT admin::text FROM tokens), 'PATCH', '/',
              $$UPDATE witn.webhook_deliveries SET status = 'delivered', next_attempt_at = NULL RETURNING 1$$) ->> 'code',
    '42501', 'witn_admin may not write deliveries (the worker does)');
SELECT is(jsonb_array_length(pg_temp.get((SELECT admin FROM tokens), 'webhook_deliveries') -> 'body'),
    (SELECT count(*)::int FROM witn.webhook_deliveries), 'witn_admin: GET /webhook_deliveries shows every delivery');
SELECT is((SELECT format('%s %s', r ->> 'status', r #>> '{body,0,status}')
             FROM pg_temp.rpc_redeliver((SELECT admin FROM tokens),
                      json_build_object('notification_id', (SELECT a_ok FROM ids), 'endpoint_id', (SELECT e_all FROM ids))) r),
    '200 pending', 'witn_admin: POST /rpc/redeliver {"notification_id", "endpoint_id"} returns the queued delivery');
SELECT is((SELECT string_agg(e.description, ' ' ORDER BY e.description)
             FROM jsonb_array_elements(pg_temp.rpc_redeliver((SELECT admin FROM tokens),
                      json_build_object('notification_id', (SELECT a_ok FROM ids))) -> 'body') b
             JOIN witn.webhook_endpoints e ON e.id = (b ->> 'endpoint_id')::bigint),
    'acme all direct off quiet status', 'witn_admin: POST /rpc/redeliver {"notification_id"} returns one delivery per endpoint that takes it');
SELECT is(pg_temp.rpc_redeliver((SELECT admin FROM tokens), '{"notification_id": 987654321}') ->> 'code', 'WT013',
    'witn_admin: POST /rpc/redeliver of an unknown notification is a 400 NOTIFICATION_NOT_FOUND');
SELECT is(pg_temp.request('witn_admin', (SELECT admin::text FROM tokens), 'POST', '/',
              format('SELECT count(*) AS body FROM witn.redeliver(%s, %s)', (SELECT a_ok FROM ids), (SELECT e_all FROM ids))) ->> 'body',
    '1', 'witn_admin calls witn.redeliver');

-- witn_reader: deliveries and status, endpoints without their secrets, no writes.
SELECT is(jsonb_array_length(pg_temp.get((SELECT reader FROM tokens), 'webhook_status') -> 'body'),
    (SELECT count(*)::int FROM witn.webhook_endpoints), 'witn_reader: GET /webhook_status, one row per endpoint');
SELECT is(jsonb_array_length(pg_temp.get((SELECT reader FROM tokens), 'webhook_deliveries') -> 'body'),
    (SELECT count(*)::int FROM witn.webhook_deliveries), 'witn_reader: GET /webhook_deliveries shows every delivery');
SELECT is(pg_temp.request('witn_reader', (SELECT reader::text FROM tokens), 'GET', '/',
              $$SELECT count(*) AS body FROM witn.webhook_status s JOIN witn.webhook_deliveries d USING (endpoint_id)$$) ->> 'status',
    '200', 'witn_reader reads witn.webhook_status and witn.webhook_deliveries');
SELECT is(pg_temp.request('witn_reader', (SELECT reader::text FROM tokens), 'GET', '/',
              $$SELECT string_agg(format('%s %s %s %s %s', id, url, event_types, customer_key, enabled), ',') AS body
                  FROM witn.webhook_endpoints$$) ->> 'status',
    '200', 'witn_reader reads the endpoints'' other columns');
SELECT is(pg_temp.request('witn_reader', (SELECT reader::text FROM tokens), 'GET', '/',
              'SELECT string_agg(secret, '','') AS body FROM witn.webhook_endpoints') ->> 'code',
    '42501', 'witn_reader may not read the secret column');
SELECT is(pg_temp.request('witn_reader', (SELECT reader::text FROM tokens), 'GET', '/',
              'SELECT count(*) AS body FROM (SELECT * FROM witn.webhook_endpoints) e') ->> 'code',
    '42501', 'witn_reader may not SELECT * from witn.webhook_endpoints (it has the secret)');
SELECT is(pg_temp.get((SELECT reader FROM tokens), 'webhook_endpoints') ->> 'code', '42501',
    'witn_reader: GET /webhook_endpoints is a 403');
SELECT is(pg_temp.post((SELECT reader FROM tokens), 'webhook_endpoints', '{"url": "https://r.example.com/"}') ->> 'code', '42501',
    'witn_reader: POST /webhook_endpoints is a 403');
SELECT is(pg_temp.request('witn_reader', (SELECT reader::text FROM tokens), 'POST', '/',
              $$INSERT INTO witn.webhook_endpoints (url) VALUES ('https://r.example.com/') RETURNING 1$$) ->> 'code',
    '42501', 'witn_reader may not insert into witn.webhook_endpoints');

-- Only witn_admin redelivers; witn_customer and witn_ingest see nothing of webhooks.
-- A statement (%s: a notification's id) the role may not run: 42501 (PostgREST: 403).
CREATE FUNCTION pg_temp.denied(role_name text, statement text) RETURNS text LANGUAGE sql AS $$
    SELECT is(pg_temp.request(role_name, json_build_object('role', role_name, 'customer_key', 'acme')::text, 'POST', '/',
                              format(statement, (SELECT a_ok FROM ids))) ->> 'code',
              '42501', role_name || ' may not: ' || replace(statement, '%s', 'notification_id'))
$$;
SELECT pg_temp.denied(r, s)
  FROM (VALUES ('witn_reader'), ('witn_customer'), ('witn_ingest')) roles(r),
       (VALUES (1, 'SELECT count(*) AS body FROM witn.redeliver(%s)'),
               (2, 'SELECT count(*) AS body FROM witn_api.redeliver(%s)')) statements(n, s)
 ORDER BY r, n;
SELECT pg_temp.denied(r, s)
  FROM (VALUES ('witn_customer'), ('witn_ingest')) roles(r),
       (VALUES (1, 'SELECT count(*) AS body FROM witn.webhook_endpoints'),
               (2, 'SELECT count(*) AS body FROM witn.webhook_deliveries'),
               (3, 'SELECT count(*) AS body FROM witn.webhook_status'),
               (4, 'SELECT count(*) AS body FROM witn_api.webhook_endpoints'),
               (5, 'SELECT count(*) AS body FROM witn_api.webhook_deliveries'),
               (6, 'SELECT count(*) AS body FROM witn_api.webhook_status'),
               (7, $$INSERT INTO witn.webhook_endpoints (url) VALUES ('https://c.example.com/') RETURNING 1$$),
               (8, 'SELECT witn.webhook_secret() AS body')) statements(n, s)
 ORDER BY r, n;
SELECT is(pg_temp.rpc_redeliver((SELECT customer FROM tokens), json_build_object('notification_id', (SELECT a_ok FROM ids))) ->> 'status',
    '403', 'witn_customer: POST /rpc/redeliver is a 403');
SELECT is(pg_temp.get((SELECT customer FROM tokens), 'webhook_deliveries') ->> 'status', '403',
    'witn_customer: GET /webhook_deliveries is a 403 (its notifications are in GET /notifications)');

SELECT * FROM finish();
ROLLBACK;
