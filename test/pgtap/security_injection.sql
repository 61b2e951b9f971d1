-- SQL injection through every text field the API takes: customer, rate card and agent keys and
-- names, condition fact names and values, event keys, actions, idempotency keys, property
-- names and values, filter values. Everything is stored and compared literally; nothing is
-- executed.
BEGIN;
\ir api_request.psql
SELECT plan(14);
SET LOCAL TimeZone = 'UTC';

-- A canary: another customer's data that an injected statement would change or delete.
INSERT INTO witn.rate_cards (key, currency) VALUES ('canary_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('canary', 'canary_usd');
INSERT INTO witn.agents (key, condition) VALUES ('canary_agent', '[{"fact": "done", "operator": "seen"}]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('canary_usd', 'canary_agent', 9);
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('canary', 'c-1', 'done', 'canary_agent');
CREATE TEMP TABLE before AS
    SELECT (SELECT count(*) FROM pg_class WHERE relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)) AS relations,
           (SELECT format('%s %s %s', status, accepted_events, unit_price) FROM witn.outcomes WHERE key = 'c-1') AS canary,
           clock_timestamp() AS started;

-- The whole journey for one hostile string s, every field carrying it: the admin creates the
-- customer, rate card, agent (facts named s) and price; ingest sends two events; the customer
-- reads its outcome back with a filter on s. Returns what differs from the literal reading.
CREATE FUNCTION pg_temp.journey(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    admin jsonb := pg_temp.token('witn_admin');
    card text := 'card ' || s;
    agent text := 'agent ' || s;
    problems text[] := '{}';
    r jsonb;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        (pg_temp.post(admin, 'rate_cards', json_build_object('key', card, 'name', s, 'currency', 'USD'))),
        (pg_temp.post(admin, 'customers', json_build_object('key', s, 'name', s, 'rate_card_key', card))),
        (pg_temp.post(admin, 'agents', json_build_object('key', agent, 'name', s, 'condition', json_build_array(
            json_build_object('fact', s, 'operator', 'seen'),
            json_build_object('fact', s || ' (2)', 'operator', 'match', 'value', s))))),
        (pg_temp.post(admin, 'rate_card_prices', json_build_object('rate_card_key', card, 'agent_key', agent, 'price_per_unit', 3))),
        (pg_temp.post(pg_temp.token('witn_ingest'), 'events', json_build_array(
            json_build_object('customer_key', s, 'key', s, 'action', s, 'agent_key', agent, 'idempotency_key', s,
                              'properties', json_build_object(s, s, 'note', s)),
            json_build_object('customer_key', s, 'key', s, 'action', s || ' (2)', 'agent_key', agent,
                              'idempotency_key', s || ' (2)', 'properties', json_build_object('value', s))))))
        AS t(r)
    LOOP
        IF r ->> 'status' <> '201' THEN
            problems := problems || (r ->> 'message');
        END IF;
    END LOOP;
    r := pg_temp.get(pg_temp.token('witn_customer', s), 'outcomes', 'key', s);
    IF r #>> '{body,0,status}' IS DISTINCT FROM 'PENDING' OR jsonb_array_length(r -> 'body') <> 1 THEN
        problems := problems || ('customer read back ' || r::text);
    END IF;
    IF (SELECT name FROM witn.customers WHERE key = s) IS DISTINCT FROM s THEN
        problems := problems || 'customer'::text;
    END IF;
    IF (SELECT condition::jsonb #>> '{0,fact}' FROM witn.agents WHERE key = agent) IS DISTINCT FROM s THEN
        problems := problems || 'condition fact'::text;
    END IF;
    IF (SELECT string_agg(format('%s|%s|%s|%s', key, action, idempotency_key, properties), ' ' ORDER BY id)
          FROM witn.events WHERE customer_key = s)
       IS DISTINCT FROM format('%s|%s|%s|%s %s|%s|%s|%s', s, s, s, jsonb_build_object(s, s, 'note', s),
                               s, s || ' (2)', s || ' (2)', jsonb_build_object('value', s)) THEN
        problems := problems || 'events'::text;
    END IF;
    IF (SELECT string_agg(format('%s:%s:%s', e.fact = s, e.event_count, e.passes), ' ' ORDER BY e.leaf)
          FROM witn.outcomes o CROSS JOIN LATERAL witn.explain(o.id) e WHERE o.customer_key = s AND o.key = s)
       IS DISTINCT FROM 't:1:t f:1:t' THEN
        problems := problems || 'explain'::text;
    END IF;
    RETURN coalesce(nullif(array_to_string(problems, '; '), ''), 'stored literally');
END $$;

SELECT is(pg_temp.journey($s$'; DROP TABLE witn.outcomes; --$s$), 'stored literally', 'a quote, a statement and a comment');
SELECT is(pg_temp.journey($s$acme' OR '1'='1$s$), 'stored literally', 'a tautology');
SELECT is(pg_temp.journey($s$$$; DELETE FROM witn.events; $$$s$), 'stored literally', 'dollar quotes');
SELECT is(pg_temp.journey($s$"); SELECT pg_sleep(5); --$s$), 'stored literally', 'a double quote and a sleep');
SELECT is(pg_temp.journey($s$\'; TRUNCATE witn.invoice_lines CASCADE; --$s$), 'stored literally', 'a backslash-escaped quote');
SELECT is(pg_temp.journey($q$%s %I %L %1$s$q$), 'stored literally', 'format() placeholders');
SELECT is(pg_temp.journey($s$' || (SELECT string_agg(key, ',') FROM witn.customers) || '$s$), 'stored literally', 'a subquery spliced into a string');
SELECT is(pg_temp.journey($s$x'::text); UPDATE witn.rate_card_prices SET price_per_unit = 0; SELECT ('$s$), 'stored literally', 'a cast that closes a call');
SELECT is(pg_temp.journey($s${"fact": "x"}], [{"$s$), 'stored literally', 'JSON that would close the condition array');

-- A filter value is a value: it matches a key equal to it, nothing else.
SELECT is(pg_temp.get(pg_temp.token('witn_reader'), 'outcomes', 'key', $s$x' OR '1'='1$s$) -> 'body', '[]',
          'GET /outcomes?key=eq.x'' OR ''1''=''1 matches nothing');
SELECT is(jsonb_array_length(pg_temp.get(pg_temp.token('witn_reader'), 'customers', 'key', $s$acme' OR '1'='1$s$) -> 'body'), 1,
          'GET /customers?key=eq.<hostile key> matches that customer only');

-- Nothing was executed.
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)),
          (SELECT relations FROM before), 'no relation of witn or witn_api was dropped or created');
SELECT is((SELECT format('%s %s %s', status, accepted_events, unit_price) FROM witn.outcomes WHERE key = 'c-1'),
          (SELECT canary FROM before), 'the canary outcome is untouched');
SELECT ok(clock_timestamp() - (SELECT started FROM before) < interval '4 seconds', 'no pg_sleep ran');

SELECT * FROM finish();
ROLLBACK;
