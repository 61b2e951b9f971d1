-- A statement far larger than its memory budget (work_mem = 64kB: the trigger's sorts spill to
-- disk) gives exactly the state the same events give one row per statement: outcomes opened and
-- updated, late events, idempotency retries, attribution, two agents. The events go to two
-- customers on the same rate card: 'ls_rows' gets them one INSERT each, 'ls_bulk' in one
-- INSERT ... SELECT (then a second one onto the outcomes the first opened), in the same order.
BEGIN;
SELECT plan(9);
SET LOCAL TimeZone = 'UTC';
SELECT setseed(0.4242);

INSERT INTO witn.rate_cards (key, currency) VALUES ('ls_card', 'EUR');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('ls_rows', 'ls_card'), ('ls_bulk', 'ls_card');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('ls_support', '[{"fact": "replied", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}, {"fact": "csat", "operator": "not lte", "value": 3}]', '72 hours', 'sum'),
    ('ls_sales', '[{"fact": "signed", "operator": "count_gte", "value": 2}]', '24 hours', 'last');
INSERT INTO witn.rate_card_prices VALUES ('ls_card', 'ls_support', 1.25), ('ls_card', 'ls_sales', 10);

-- The events: 2,500 outcomes with 1 to 12 events each, in two waves (the second only for
-- outcomes the first opened). Some outcomes start 30 hours back, so a sales outcome's later
-- events arrive after it is due (late); some events are retried with their idempotency key.
CREATE TEMP TABLE ls_events AS
WITH outcomes AS (
    SELECT o, CASE WHEN o % 3 = 0 THEN 'ls_sales' ELSE 'ls_support' END AS agent,
           now() - CASE WHEN o % 7 = 0 THEN interval '30 hours' ELSE interval '2 hours' END AS start,
           1 + floor(random() * 12)::int AS n
      FROM generate_series(1, 2500) o
), events AS (
    SELECT o.o, o.agent, e, o.start + e * interval '1 minute' AS occurred_at,
           CASE WHEN e = 1 OR e <= o.n / 2 THEN 1 ELSE 2 END AS wave,
           (ARRAY['replied', 'reopened', 'csat', 'signed', 'note'])[1 + floor(random() * 5)::int] AS action,
           random() AS r
      FROM outcomes o, generate_series(1, o.n) e
)
SELECT row_number() OVER (ORDER BY wave, random()) AS seq, wave, 'o-' || o AS key, action,
       CASE WHEN e = 1 THEN agent END AS agent_key, occurred_at,
       CASE WHEN r < 0.3 THEN jsonb_build_object('value', floor(r * 20)::int % 6, 'attribution', round((r * 10)::numeric, 2))
            WHEN r < 0.5 THEN jsonb_build_object('attribution', floor(r * 7)::int)
            ELSE '{}'::jsonb END AS properties,
       CASE WHEN r > 0.8 THEN 'idem-' || o || '-' || e END AS idempotency_key
  FROM events;
-- Retries: the same payload with the same key, once more, in the same wave.
INSERT INTO ls_events
SELECT (SELECT max(seq) FROM ls_events) + row_number() OVER (ORDER BY seq), wave, key, action, agent_key,
       occurred_at, properties, idempotency_key
  FROM ls_events WHERE idempotency_key IS NOT NULL AND seq % 2 = 0;
-- A wave's opening events come first: an outcome's first event names its agent.
CREATE TEMP TABLE ls_order AS
SELECT seq, row_number() OVER (ORDER BY wave, agent_key IS NULL, seq) AS pos FROM ls_events;

SELECT cmp_ok((SELECT count(*) FROM ls_events), '>', 10000::bigint, 'the test sends more than 10,000 events');

CREATE FUNCTION pg_temp.send_rows(w int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e record;
BEGIN
    FOR e IN SELECT s.* FROM ls_events s JOIN ls_order p USING (seq) WHERE s.wave = w ORDER BY p.pos LOOP
        INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
        VALUES ('ls_rows', e.key, e.action, e.agent_key, e.properties, e.occurred_at, e.idempotency_key);
    END LOOP;
END $$;

CREATE FUNCTION pg_temp.send_bulk(w int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    SELECT 'ls_bulk', s.key, s.action, s.agent_key, s.properties, s.occurred_at, s.idempotency_key
      FROM ls_events s JOIN ls_order p USING (seq) WHERE s.wave = w ORDER BY p.pos
$$;

-- The outcomes of a customer, comparable across customers: event ids (the "seq" of facts and
-- attribution) differ between them, their order does not. check_at is when settlement looks
-- next, the first settles_at an outcome had in the statement that opened it: it differs.
CREATE FUNCTION pg_temp.state(customer text) RETURNS TABLE (key text, state text) LANGUAGE sql AS $$
    SELECT key, concat_ws(' ', agent_key, status, scheduled_resolution, settles_at, accepted_events,
                          late_events, quantity, condition_holds, unit_price, currency,
                          (SELECT jsonb_object_agg(k, v - 'seq') FROM jsonb_each(facts) AS f (k, v)),
                          attribution - 'first' - 'last', attribution -> 'first' -> 0, attribution -> 'first' -> 1,
                          attribution -> 'last' -> 0, attribution -> 'last' -> 1)
      FROM witn.outcomes WHERE customer_key = customer
$$;
-- Each event's disposition, by its position in the sending order.
CREATE FUNCTION pg_temp.dispositions(customer text) RETURNS TABLE (pos bigint, disposition text) LANGUAGE sql AS $$
    SELECT row_number() OVER (ORDER BY e.id), concat_ws(' ', e.key, e.action, e.late, o.key || '/' || o.action)
      FROM witn.events e LEFT JOIN witn.events o ON o.customer_key = e.customer_key AND o.id = e.duplicate_of
     WHERE e.customer_key = customer
$$;

SET LOCAL work_mem = '64kB';
SELECT pg_temp.send_rows(1);
SELECT lives_ok($$ SELECT pg_temp.send_bulk(1) $$, 'one statement carrying the first wave (far over work_mem) is applied');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE customer_key = 'ls_bulk'), 2500::bigint,
          'it opens every outcome');
SELECT set_eq($$ SELECT * FROM pg_temp.state('ls_bulk') $$, $$ SELECT * FROM pg_temp.state('ls_rows') $$,
              'after the first wave, every outcome is in the state the events give one by one');

SELECT pg_temp.send_rows(2);
SELECT pg_temp.send_bulk(2);
SELECT set_eq($$ SELECT * FROM pg_temp.state('ls_bulk') $$, $$ SELECT * FROM pg_temp.state('ls_rows') $$,
              'after a second statement onto the existing outcomes, too');
SELECT set_eq($$ SELECT * FROM pg_temp.dispositions('ls_bulk') $$, $$ SELECT * FROM pg_temp.dispositions('ls_rows') $$,
              'every event is late or a duplicate exactly when it is one by one');
SELECT ok((SELECT count(*) FILTER (WHERE late) > 0 AND count(*) FILTER (WHERE duplicate_of IS NOT NULL) > 0
             FROM witn.events WHERE customer_key = 'ls_bulk'),
          'the statements carried late events and retries');
SELECT is_empty($$ SELECT * FROM witn.verify() WHERE customer_key IN ('ls_rows', 'ls_bulk') $$,
                'verify() finds every outcome consistent with its log');

SELECT witn.settle(now() + interval '4 days');
SELECT set_eq($$ SELECT key, status || ' ' || amount FROM witn.outcomes o JOIN witn.invoice_lines l
                    ON l.customer_key = o.customer_key AND l.outcome_id = o.id WHERE o.customer_key = 'ls_bulk' $$,
              $$ SELECT key, status || ' ' || amount FROM witn.outcomes o JOIN witn.invoice_lines l
                    ON l.customer_key = o.customer_key AND l.outcome_id = o.id WHERE o.customer_key = 'ls_rows' $$,
              'they settle and bill alike');

SELECT * FROM finish();
ROLLBACK;
