-- Every rejection on the write path and on agent contracts: the SQLSTATE (class WT), the message
-- naming the problem, the detail saying where, and that nothing was written.
BEGIN;
SELECT plan(104);
SET LOCAL TimeZone = 'UTC';

INSERT INTO witn.rate_cards (key, currency) VALUES ('er_usd', 'USD'), ('er_bare', 'EUR');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('er', 'er_usd'), ('er_nocard', NULL), ('er_bare', 'er_bare');
INSERT INTO witn.agents (key, condition) VALUES
    ('er_agent', '[{"fact": "done", "operator": "seen"}]'),
    ('er_other', '[]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('er_usd', 'er_agent', 3), ('er_usd', 'er_other', 4);
-- An open outcome with one event, sent with an idempotency key.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
VALUES ('er', 'er_open', 'work', 'er_agent', '{"value": 1}', now() - interval '1 minute', 'er-1');

-- What the log and the outcomes hold: every rejected statement must leave it as it was.
CREATE FUNCTION pg_temp.written() RETURNS text LANGUAGE sql AS $$
    SELECT format('events=%s outcomes=%s accepted=%s', (SELECT count(*) FROM witn.events),
                  (SELECT count(*) FROM witn.outcomes), (SELECT sum(accepted_events) FROM witn.outcomes))
$$;
CREATE TEMP TABLE baseline AS SELECT pg_temp.written() AS written;

-- throws_ok, then checks that nothing was written: two tests per call.
CREATE FUNCTION pg_temp.rejects(sql text, code text, message text, description text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEXT throws_ok(sql, code, message, description);
    RETURN NEXT is(pg_temp.written(), (SELECT written FROM baseline), description || ': nothing written');
END $$;

-- The DETAIL of the error a statement raises (NULL when it raises none).
CREATE FUNCTION pg_temp.detail_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN detail;
END $$;

-- =============================================================================================
-- Who: customer, agent, price.
-- =============================================================================================
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('nobody', 'k', 'done', 'er_agent') $$,
    'WT002', 'CUSTOMER_NOT_FOUND: no customer nobody', 'unknown customer');
SELECT is(pg_temp.detail_of($$ INSERT INTO witn.events (customer_key, key, action, agent_key)
                               VALUES ('nobody', 'k', 'done', 'er_agent') $$),
          'customer_key nobody', 'unknown customer: the detail names the key');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'k', 'done', 'nobody') $$,
    'WT003', 'AGENT_NOT_FOUND: no agent nobody', 'unknown agent');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'er_open', 'done', 'er_other') $$,
    'WT004', 'AGENT_MISMATCH: outcome er_open belongs to agent er_agent, not er_other',
    'agent mismatch: a later event naming another agent');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'er_open', 'done', 'nobody') $$,
    'WT004', 'AGENT_MISMATCH: outcome er_open belongs to agent er_agent, not nobody',
    'agent mismatch: a later event naming an unknown agent');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
           ('er', 'er_two', 'work', 'er_agent'), ('er', 'er_two', 'done', 'er_other') $$,
    'WT004', 'AGENT_MISMATCH: outcome er_two belongs to agent er_agent, not er_other',
    'agent mismatch: two agents for a new outcome in one statement');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action) VALUES ('er', 'k', 'done') $$,
    'WT001', 'VALIDATION_ERROR: agent_key is required on an outcome''s first event',
    'missing agent_key on the first event');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er_nocard', 'k', 'done', 'er_agent') $$,
    'WT005', 'PRICE_NOT_FOUND: customer er_nocard has no price for agent er_agent', 'no price: customer without a rate card');
SELECT is(pg_temp.detail_of($$ INSERT INTO witn.events (customer_key, key, action, agent_key)
                               VALUES ('er_nocard', 'k', 'done', 'er_agent') $$),
          'customer er_nocard has no rate card', 'no price: the detail says the customer has no rate card');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er_bare', 'k', 'done', 'er_agent') $$,
    'WT005', 'PRICE_NOT_FOUND: customer er_bare has no price for agent er_agent', 'no price: rate card without a price for the agent');
SELECT is(pg_temp.detail_of($$ INSERT INTO witn.events (customer_key, key, action, agent_key)
                               VALUES ('er_bare', 'k', 'done', 'er_agent') $$),
          'rate card er_bare has no price for agent er_agent', 'no price: the detail names the rate card');

-- =============================================================================================
-- Sizes: keys up to 255 characters (not bytes), properties up to 256 KiB.
-- =============================================================================================
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', %L, 'done', 'er_agent') $$, repeat('k', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: key is longer than 255 characters', 'key of 256 characters');
SELECT is(pg_temp.detail_of(format($$ INSERT INTO witn.events (customer_key, key, action, agent_key)
                                      VALUES ('er', %L, 'done', 'er_agent') $$, repeat('k', 256))),
          'column key has 256 characters', 'key of 256 characters: the detail counts them');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', %L, 'done', 'er_agent') $$, repeat('é', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: key is longer than 255 characters', 'key of 256 two-byte characters');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES (%L, 'k', 'done', 'er_agent') $$, repeat('c', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: customer_key is longer than 255 characters', 'customer_key of 256 characters');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'k', %L, 'er_agent') $$, repeat('a', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: action is longer than 255 characters', 'action of 256 characters');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'k', 'done', %L) $$, repeat('g', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: agent_key is longer than 255 characters', 'agent_key of 256 characters');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key, idempotency_key) VALUES ('er', 'k', 'done', 'er_agent', %L) $$, repeat('i', 256)),
    'WT007', 'PAYLOAD_TOO_LARGE: idempotency_key is longer than 255 characters', 'idempotency_key of 256 characters');
SELECT pg_temp.rejects(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', %L) $$,
           jsonb_build_object('document', repeat('x', 270000))),
    'WT007', 'PAYLOAD_TOO_LARGE: properties is larger than 256 KiB', 'properties over 256 KiB');

SELECT lives_ok(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key, idempotency_key) VALUES ('er', %L, %L, 'er_agent', %L) $$,
           repeat('é', 255), repeat('€', 255), repeat('😀', 255)),
    'key, action and idempotency_key of 255 multi-byte characters (up to 1020 bytes) are accepted');
SELECT is((SELECT length(key) FROM witn.outcomes WHERE customer_key = 'er' AND key = repeat('é', 255)), 255,
          'the outcome with a 255-character key was opened');
SELECT lives_ok(
    format($$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'er_big', 'done', 'er_agent', %L) $$,
           jsonb_build_object('document', repeat('x', 250000))),
    'properties just under 256 KiB are accepted');
-- The accepted events above are the new baseline.
UPDATE baseline SET written = pg_temp.written();

-- =============================================================================================
-- Shape of an event: action, properties and its reserved members, occurred_at.
-- =============================================================================================
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', 'k', '', 'er_agent') $$,
    'WT001', 'VALIDATION_ERROR: action must not be empty', 'empty action');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('er', '', 'done', 'er_agent') $$,
    'WT001', 'VALIDATION_ERROR: key must not be empty', 'empty key');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('', 'k', 'done', 'er_agent') $$,
    'WT001', 'VALIDATION_ERROR: customer_key must not be empty', 'empty customer_key');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '[1, 2]') $$,
    'WT001', 'VALIDATION_ERROR: properties must be a JSON object', 'properties an array');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '"text"') $$,
    'WT001', 'VALIDATION_ERROR: properties must be a JSON object', 'properties a string');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', 'null') $$,
    'WT001', 'VALIDATION_ERROR: properties must be a JSON object', 'properties JSON null');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '{"attribution": -0.5}') $$,
    'WT001', 'VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)',
    'negative attribution');
SELECT is(pg_temp.detail_of($$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties)
                               VALUES ('er', 'k', 'done', 'er_agent', '{"attribution": -0.5}') $$),
          'at properties.attribution', 'negative attribution: the detail gives the path');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '{"attribution": "1.5"}') $$,
    'WT001', 'VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)',
    'attribution given as a string');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, properties) VALUES ('er', 'er_open', 'done', '{"attribution": -1}') $$,
    'WT001', 'VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)',
    'negative attribution on an open outcome');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '{"settles_at": "next week"}') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")', 'settles_at not a timestamp');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '{"settles_at": 1767225600}') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")', 'settles_at a number');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES ('er', 'k', 'done', 'er_agent', '{"settles_at": "infinity"}') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")', 'settles_at infinity');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('er', 'k', 'done', 'er_agent', 'infinity') $$,
    'WT001', 'VALIDATION_ERROR: occurred_at must be a finite timestamp', 'occurred_at infinity');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES (NULL, 'k', 'done', 'er_agent') $$,
    '23502', 'null value in column "customer_key" of relation "events" violates not-null constraint',
    'NULL customer_key: the standard not-null error');

-- =============================================================================================
-- Idempotency conflict, and one bad row failing its whole statement.
-- =============================================================================================
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, properties, idempotency_key)
       VALUES ('er', 'er_open', 'work', '{"value": 2}', 'er-1') $$,
    'WT006', 'IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload',
    'idempotency conflict: the same key with other properties');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, properties, idempotency_key)
       VALUES ('er', 'er_open', 'done', '{"value": 1}', 'er-1') $$,
    'WT006', 'IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload',
    'idempotency conflict: the same key with another action');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
           ('er', 'er_fresh', 'done', 'er_agent'), ('nobody', 'k', 'done', 'er_agent') $$,
    'WT002', 'CUSTOMER_NOT_FOUND: no customer nobody', 'a good row and an unknown customer in one statement');
SELECT pg_temp.rejects(
    $$ INSERT INTO witn.events (customer_key, key, action, properties) VALUES
           ('er', 'er_open', 'done', '{}'), ('er', 'er_open', 'done', '{"attribution": "x"}') $$,
    'WT001', 'VALIDATION_ERROR: properties.attribution must be a non-negative number (the billing quantity)',
    'a good row and an invalid row for the same outcome in one statement');
SELECT results_eq($$ SELECT status::text, accepted_events FROM witn.outcomes WHERE customer_key = 'er' AND key = 'er_open' $$,
                  $$ VALUES ('OPEN', 1::bigint) $$, 'the open outcome took none of the rejected events');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'verify() is empty after the rejections');

-- =============================================================================================
-- Agent contracts: the condition is validated on INSERT and UPDATE, with the path.
-- =============================================================================================
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"type": "signed", "operator": "seen"}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].type must be absent: a leaf has only the keys "fact", "operator" and "value"',
    'condition: the wrong key name (the documents'' example)');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "seen"}, {"operator": "seen"}]') $$,
    'WT001', 'VALIDATION_ERROR: [1].fact must be present: a non-empty string (the event action)', 'condition: fact missing');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "", "operator": "seen"}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].fact must be a non-empty string (the event action)', 'condition: empty fact');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "equals", "value": 1}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].operator must be one of "seen", "not seen", "count_gte", "count_lte", "count_gt", "count_lt", "count_eq", "match", "gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt"',
    'condition: unknown operator');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "seen", "value": true}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be absent: "seen" takes no value', 'condition: seen with a value');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "count_gte", "value": 2.5}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be a non-negative integer (a count)', 'condition: a fractional count');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "count_eq", "value": -1}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be a non-negative integer (a count)', 'condition: a negative count');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "count_lt"}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be present: a non-negative integer (a count)', 'condition: a count without value');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "match", "value": {"x": 1}}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be a string, number or boolean', 'condition: match against an object');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '[{"fact": "a", "operator": "not lte", "value": "3"}]') $$,
    'WT001', 'VALIDATION_ERROR: [0].value must be a number', 'condition: not lte against a string');
SELECT throws_ok(
    $$ UPDATE witn.agents SET condition = '[{"fact": "done", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": "4"}]'
        WHERE key = 'er_agent' $$,
    'WT001', 'VALIDATION_ERROR: [1].value must be a number', 'condition: validated on UPDATE too');
SELECT is(pg_temp.detail_of($$ UPDATE witn.agents SET condition = '[{"fact": "done", "operator": "seen"}, {"fact": "csat", "operator": "gte", "value": "4"}]'
                               WHERE key = 'er_agent' $$),
          'at [1].value', 'condition: the detail gives the path');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '{"fact": "a", "operator": "seen"}') $$,
    'WT001', NULL, 'condition: an object instead of an array');
SELECT is(pg_temp.detail_of($$ INSERT INTO witn.agents (key, condition) VALUES ('bad', '{"fact": "a", "operator": "seen"}') $$),
          'at the top level', 'condition: the detail says the top level');
SELECT results_eq($$ SELECT condition::text, version FROM witn.agents WHERE key = 'er_agent' $$,
                  $$ VALUES ('[{"fact": "done", "operator": "seen"}]', 1) $$,
                  'condition: a rejected UPDATE leaves the agent as it was');
SELECT ok(NOT EXISTS (SELECT FROM witn.agents WHERE key = 'bad'), 'condition: no rejected agent was created');

-- =============================================================================================
-- Agent contracts: settlement period and attribution method.
-- =============================================================================================
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, settlement_period) VALUES ('bad', '0') $$,
    'WT001', 'VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days', 'settlement_period 0');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, settlement_period) VALUES ('bad', '-1 hour') $$,
    'WT001', 'VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days', 'settlement_period negative');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, settlement_period) VALUES ('bad', '181 days') $$,
    'WT001', 'VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days', 'settlement_period 181 days');
SELECT throws_ok(
    $$ UPDATE witn.agents SET settlement_period = '180 days 1 second' WHERE key = 'er_other' $$,
    'WT001', 'VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days', 'settlement_period over 180 days on UPDATE');
SELECT lives_ok(
    $$ INSERT INTO witn.agents (key, settlement_period) VALUES ('er_longest', '180 days') $$,
    'settlement_period of exactly 180 days is accepted');
SELECT throws_ok(
    $$ INSERT INTO witn.agents (key, attribution_method) VALUES ('bad', 'median') $$,
    'WT001', 'VALIDATION_ERROR: attribution_method must be one of last, first, sum, max, min, average',
    'attribution_method median');
SELECT throws_ok(
    $$ UPDATE witn.agents SET attribution_method = 'LAST' WHERE key = 'er_other' $$,
    'WT001', 'VALIDATION_ERROR: attribution_method must be one of last, first, sum, max, min, average',
    'attribution_method in capitals on UPDATE');

-- ---------------------------------------------------------------------------------------------
-- Scale-out on a single node (docs/scale-out.md).
-- ---------------------------------------------------------------------------------------------
SELECT throws_ok('SELECT * FROM witn.distribute()', '55000',
    'CITUS_NOT_AVAILABLE: Citus is not installed in this database',
    'witn.distribute() without Citus says so (55000)');
SELECT is(witn.distributed(), false, 'witn.distributed() is false on a single node');
SELECT lives_ok('SELECT witn.pre_request()', 'witn.pre_request() does nothing on a single node');
SELECT throws_ok($$INSERT INTO witn.events (customer_key, key, action, received_at) VALUES ('x', 'y', 'z', now() - interval '1 day')$$,
    'WT001', 'VALIDATION_ERROR: received_at is set by witn',
    'an event that brings its own received_at is refused outside a restore, also for a superuser');
CREATE TABLE pg_temp.not_events (LIKE witn.events INCLUDING DEFAULTS);
CREATE TRIGGER misplaced AFTER INSERT ON pg_temp.not_events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION witn.events_apply('0.8.0');
SELECT throws_ok($$INSERT INTO pg_temp.not_events (id, customer_key, key, action, received_at) VALUES (1, 'x', 'y', 'z', now())$$,
    '0A000', NULL, 'witn''s trigger on a table that is not witn.events (nor a Citus shard of it) refuses to work');

SELECT * FROM finish();
ROLLBACK;
