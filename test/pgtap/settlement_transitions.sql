-- Settlement: every transition, the exact settlement time, the invoice line and notification each
-- resolution writes, repeatability, batching, late events, one bad outcome among good ones, and
-- argument validation.
--
-- Times are anchored a day ahead of the transaction's now() (pg_temp.at), so that events are
-- never late on arrival and witn.settle(as_of => ...) plays the clock.
BEGIN;
SELECT plan(95);

CREATE TEMP TABLE anchor AS SELECT date_trunc('minute', now()) + interval '1 day' AS t;
CREATE FUNCTION pg_temp.at(i interval) RETURNS timestamptz LANGUAGE sql STABLE AS
    $$ SELECT t + i FROM anchor $$;
CREATE FUNCTION pg_temp.outcome(c text, k text) RETURNS witn.outcomes LANGUAGE sql STABLE AS
    $$ SELECT * FROM witn.outcomes WHERE customer_key = c AND key = k $$;
CREATE FUNCTION pg_temp.ev(c text, k text, a text, occurred timestamptz,
                           props jsonb DEFAULT '{}') RETURNS void LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
    VALUES (c, k, a, 'support', props, occurred)
$$;
CREATE FUNCTION pg_temp.settled(as_of timestamptz, max_outcomes integer DEFAULT NULL)
    RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s', s.confirmed, s.failed, s.errors) FROM witn.settle(as_of, max_outcomes) s
$$;

INSERT INTO witn.rate_cards (key, currency) VALUES ('standard', 'USD');
INSERT INTO witn.customers (key, rate_card_key)
    VALUES ('acme', 'standard'), ('batch', 'standard'), ('late', 'standard'), ('mix', 'standard');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('support', '[{"fact": "resolved", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}]',
     '1 hour');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('standard', 'support', 25);

-- ---------------------------------------------------------------------------------------------
-- Transitions: OPEN -> FAILED, PENDING/CONFIRMED -> CONFIRMED, PENDING/FAILED -> FAILED, and an
-- explicit properties.settles_at.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.ev('acme', 'missed', 'opened', pg_temp.at('0'));
SELECT pg_temp.ev('acme', 'won', 'resolved', pg_temp.at('0'), '{"attribution": 2}');
SELECT pg_temp.ev('acme', 'reverted', 'resolved', pg_temp.at('0'));
SELECT pg_temp.ev('acme', 'reverted', 'reopened', pg_temp.at('10 minutes'));
SELECT pg_temp.ev('acme', 'quick', 'resolved', pg_temp.at('0'),
                  jsonb_build_object('settles_at', pg_temp.at('5 minutes')));

SELECT results_eq(
    $$ SELECT key, status::text, scheduled_resolution::text, settles_at FROM witn.outcomes
        WHERE customer_key = 'acme' ORDER BY key $$,
    $$ VALUES ('missed', 'OPEN', NULL, pg_temp.at('1 hour')),
              ('quick', 'PENDING', 'CONFIRMED', pg_temp.at('5 minutes')),
              ('reverted', 'PENDING', 'FAILED', pg_temp.at('1 hour 10 minutes')),
              ('won', 'PENDING', 'CONFIRMED', pg_temp.at('1 hour')) $$,
    'before settlement: OPEN, PENDING/CONFIRMED, PENDING/FAILED; properties.settles_at sets the settlement time');

SELECT is(pg_temp.settled(pg_temp.at('5 minutes') - interval '1 microsecond'), '0/0/0',
          'settle just before the earliest settles_at settles nothing');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL), 0::bigint,
          'not-yet-due outcomes are untouched');
SELECT is((SELECT count(*) FROM witn.invoice_lines) + (SELECT count(*) FROM witn.notifications),
          0::bigint, 'and nothing is written for them');

SELECT is(pg_temp.settled(pg_temp.at('5 minutes')), '1/0/0',
          'settle exactly at settles_at settles (properties.settles_at outcome)');
SELECT is((pg_temp.outcome('acme', 'quick')).status::text, 'CONFIRMED',
          'PENDING/CONFIRMED -> CONFIRMED');
SELECT is((pg_temp.outcome('acme', 'quick')).resolved_at, pg_temp.at('5 minutes'),
          'resolved_at = the explicit properties.settles_at');
SELECT is((pg_temp.outcome('acme', 'won')).status::text, 'PENDING',
          'an outcome due an hour later is still PENDING');

SELECT is(pg_temp.settled(pg_temp.at('1 hour') - interval '1 microsecond'), '0/0/0',
          'one microsecond before settles_at: nothing');
SELECT is(pg_temp.settled(pg_temp.at('1 hour')), '1/1/0',
          'at settles_at: one confirmed, one failed');
SELECT is((pg_temp.outcome('acme', 'missed')).status::text, 'FAILED', 'OPEN -> FAILED');
SELECT is((pg_temp.outcome('acme', 'missed')).resolved_at, pg_temp.at('1 hour'),
          'OPEN -> FAILED: resolved_at = settles_at');
SELECT is((pg_temp.outcome('acme', 'won')).status::text, 'CONFIRMED', 'PENDING/CONFIRMED -> CONFIRMED');
SELECT is((pg_temp.outcome('acme', 'won')).resolved_at, pg_temp.at('1 hour'),
          'PENDING -> CONFIRMED: resolved_at = settles_at');
SELECT is((pg_temp.outcome('acme', 'reverted')).status::text, 'PENDING',
          'the outcome whose window a later event extended is not due yet');

-- Settling long after settles_at still resolves at settles_at, not at as_of.
SELECT is(pg_temp.settled(pg_temp.at('30 days')), '0/1/0', 'PENDING/FAILED settles as failed');
SELECT is((pg_temp.outcome('acme', 'reverted')).status::text, 'FAILED', 'PENDING/FAILED -> FAILED');
SELECT is((pg_temp.outcome('acme', 'reverted')).resolved_at, pg_temp.at('1 hour 10 minutes'),
          'resolved_at = settles_at even when settle runs much later');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE resolved_at IS DISTINCT FROM settles_at),
          0::bigint, 'every resolved outcome has resolved_at = settles_at exactly');

-- ---------------------------------------------------------------------------------------------
-- Invoice lines: one per confirmation, none for failures, the snapshot's numbers.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq(
    $$ SELECT l.outcome_key, l.customer_key, l.agent_key, l.quantity, l.unit_price, l.amount,
              l.currency, l.resolved_at
         FROM witn.invoice_lines l ORDER BY l.outcome_key $$,
    $$ VALUES ('quick', 'acme', 'support', 1::numeric, 25::numeric, 25::numeric, 'USD',
               pg_temp.at('5 minutes')),
              ('won', 'acme', 'support', 2::numeric, 25::numeric, 50::numeric, 'USD',
               pg_temp.at('1 hour')) $$,
    'one invoice line per confirmed outcome, amount = unit_price x quantity, resolved_at = settles_at');
SELECT is((SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o ON o.id = l.outcome_id
            WHERE o.status = 'FAILED'), 0::bigint, 'no invoice line for a failed outcome');
SELECT ok((SELECT bool_and(l.outcome_id = o.id AND l.outcome_key = o.key)
             FROM witn.invoice_lines l JOIN witn.outcomes o
               ON o.customer_key = l.customer_key AND o.id = l.outcome_id),
          'each line points at its outcome');

-- ---------------------------------------------------------------------------------------------
-- Notifications: one per resolution, the webhook's shape.
-- ---------------------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM witn.notifications), 4::bigint, 'one notification per resolution');
SELECT is((SELECT count(DISTINCT outcome_id) FROM witn.notifications), 4::bigint,
          'no outcome has two notifications');
SELECT set_eq(
    $$ SELECT o.key, n.kind FROM witn.notifications n JOIN witn.outcomes o ON o.id = n.outcome_id $$,
    $$ VALUES ('quick', 'outcome_succeed'), ('won', 'outcome_succeed'),
              ('missed', 'outcome_failed'), ('reverted', 'outcome_failed') $$,
    'kind: outcome_succeed for confirmations, outcome_failed for failures');
SELECT ok((SELECT bool_and(n.customer_key = o.customer_key) FROM witn.notifications n
             JOIN witn.outcomes o ON o.id = n.outcome_id), 'notifications carry the customer_key');
SELECT set_eq(
    $$ SELECT DISTINCT jsonb_object_keys(payload) FROM witn.notifications $$,
    ARRAY['id', 'type', 'created_at', 'data'],
    'payload has exactly id, type, created_at, data');
SELECT is((SELECT count(*) FROM witn.notifications
            WHERE NOT payload->'data' ?& ARRAY['outcome_id', 'outcome_key', 'customer_key',
                  'agent_key', 'status', 'settles_at', 'resolved_at', 'quantity', 'unit_price',
                  'amount', 'currency']), 0::bigint,
          'every payload.data has outcome_id, outcome_key, customer_key, agent_key, status, settles_at, resolved_at, quantity, unit_price, amount, currency');

SELECT is((SELECT n.payload->>'id' FROM witn.notifications n WHERE n.outcome_id = (pg_temp.outcome('acme', 'won')).id),
          'ntf_' || (pg_temp.outcome('acme', 'won')).id, 'payload id is ntf_<outcome_id>');
SELECT is((SELECT count(*) FROM witn.notifications WHERE payload->>'id' <> 'ntf_' || outcome_id),
          0::bigint, 'every payload id is ntf_<outcome_id>');
SELECT is((SELECT count(*) FROM witn.notifications WHERE payload->>'type' <> kind), 0::bigint,
          'payload type equals kind');
SELECT is((SELECT count(*) FROM witn.notifications
            WHERE (payload->>'created_at')::timestamptz <> created_at), 0::bigint,
          'payload created_at is the row''s created_at');

SELECT is(
    (SELECT n.payload FROM witn.notifications n WHERE n.outcome_id = (pg_temp.outcome('acme', 'won')).id)
        - 'created_at',
    jsonb_build_object(
        'id', 'ntf_' || (pg_temp.outcome('acme', 'won')).id,
        'type', 'outcome_succeed',
        'data', jsonb_build_object(
            'outcome_id', (pg_temp.outcome('acme', 'won')).id, 'outcome_key', 'won',
            'customer_key', 'acme', 'agent_key', 'support', 'status', 'CONFIRMED',
            'settles_at', pg_temp.at('1 hour'), 'resolved_at', pg_temp.at('1 hour'),
            'quantity', 2, 'unit_price', 25, 'amount', 50, 'currency', 'USD')),
    'outcome_succeed payload, field by field');
SELECT is(
    (SELECT n.payload FROM witn.notifications n WHERE n.outcome_id = (pg_temp.outcome('acme', 'missed')).id)
        - 'created_at',
    jsonb_build_object(
        'id', 'ntf_' || (pg_temp.outcome('acme', 'missed')).id,
        'type', 'outcome_failed',
        'data', jsonb_build_object(
            'outcome_id', (pg_temp.outcome('acme', 'missed')).id, 'outcome_key', 'missed',
            'customer_key', 'acme', 'agent_key', 'support', 'status', 'FAILED',
            'settles_at', pg_temp.at('1 hour'), 'resolved_at', pg_temp.at('1 hour'),
            'quantity', 1, 'unit_price', 25, 'amount', NULL, 'currency', 'USD')),
    'outcome_failed payload, field by field: no amount');
SELECT is((SELECT (n.payload->'data'->>'resolved_at')::timestamptz FROM witn.notifications n
            WHERE n.outcome_id = (pg_temp.outcome('acme', 'reverted')).id),
          pg_temp.at('1 hour 10 minutes'), 'payload resolved_at reads back as the exact settles_at');
SELECT is((SELECT (n.payload->'data'->>'amount')::numeric FROM witn.notifications n
            JOIN witn.invoice_lines l ON l.outcome_id = n.outcome_id
            WHERE n.outcome_id = (pg_temp.outcome('acme', 'quick')).id),
          (SELECT amount FROM witn.invoice_lines WHERE outcome_key = 'quick'),
          'payload amount is the invoice line''s amount');

-- ---------------------------------------------------------------------------------------------
-- Settling again changes nothing.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE before_rerun AS
    SELECT (SELECT count(*) FROM witn.invoice_lines) AS lines,
           (SELECT count(*) FROM witn.notifications) AS notes,
           (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM witn.outcomes o) AS outcomes;
SELECT is(pg_temp.settled(pg_temp.at('30 days')), '0/0/0', 're-running settle at the same time: counts 0');
SELECT is(pg_temp.settled(pg_temp.at('179 days')), '0/0/0', 're-running settle later: counts 0');
SELECT is(pg_temp.settled(now()), '0/0/0', 're-running settle at now(): counts 0');
SELECT is((SELECT count(*) FROM witn.invoice_lines), (SELECT lines FROM before_rerun),
          're-running settle writes no invoice line');
SELECT is((SELECT count(*) FROM witn.notifications), (SELECT notes FROM before_rerun),
          're-running settle writes no notification');
SELECT is((SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM witn.outcomes o),
          (SELECT outcomes FROM before_rerun), 're-running settle leaves the outcomes as they were');
SELECT is(pg_temp.settled(pg_temp.at('30 days'), 0), '0/0/0', 'max_outcomes 0 settles nothing');

-- ---------------------------------------------------------------------------------------------
-- properties.settles_at with another UTC offset names the same instant.
-- ---------------------------------------------------------------------------------------------
SET LOCAL timezone = 'Asia/Kolkata';
SELECT pg_temp.ev('acme', 'offset', 'resolved', pg_temp.at('1 day'),
                  jsonb_build_object('settles_at', pg_temp.at('1 day 7 minutes')));
RESET timezone;
SELECT ok((SELECT properties->>'settles_at' FROM witn.events WHERE key = 'offset') LIKE '%+05:30',
          'the event carries settles_at as an ISO string with offset +05:30');
SELECT is((pg_temp.outcome('acme', 'offset')).settles_at, pg_temp.at('1 day 7 minutes'),
          'properties.settles_at with an offset sets that instant');
SELECT is(pg_temp.settled(pg_temp.at('1 day 7 minutes')), '1/0/0', 'and it settles then');

-- ---------------------------------------------------------------------------------------------
-- max_outcomes: oldest settles_at first, the rest on the next call.
-- ---------------------------------------------------------------------------------------------
-- Arrival order differs from settles_at order on purpose.
SELECT pg_temp.ev('batch', 'b3', 'resolved', pg_temp.at('2 days 3 minutes'));
SELECT pg_temp.ev('batch', 'b1', 'opened', pg_temp.at('2 days 1 minute'));
SELECT pg_temp.ev('batch', 'b5', 'resolved', pg_temp.at('2 days 5 minutes'));
SELECT pg_temp.ev('batch', 'b2', 'resolved', pg_temp.at('2 days 2 minutes'));
SELECT pg_temp.ev('batch', 'b4', 'opened', pg_temp.at('2 days 4 minutes'));

SELECT is(pg_temp.settled(pg_temp.at('3 days'), 2), '1/1/0', 'max_outcomes 2 settles two');
SELECT set_eq($$ SELECT key FROM witn.outcomes WHERE customer_key = 'batch' AND resolved_at IS NOT NULL $$,
              ARRAY['b1', 'b2'], 'the two with the oldest settles_at');
SELECT is(pg_temp.settled(pg_temp.at('3 days'), 2), '1/1/0', 'the next call settles the next two');
SELECT set_eq($$ SELECT key FROM witn.outcomes WHERE customer_key = 'batch' AND resolved_at IS NOT NULL $$,
              ARRAY['b1', 'b2', 'b3', 'b4'], 'b3 and b4 next');
SELECT is(pg_temp.settled(pg_temp.at('3 days'), 2), '1/0/0', 'then the last one');
SELECT is(pg_temp.settled(pg_temp.at('3 days'), 2), '0/0/0', 'then nothing');
SELECT is((SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'batch'), 3::bigint,
          'batched settlement: one line per confirmation');
SELECT is((SELECT count(*) FROM witn.notifications WHERE customer_key = 'batch'), 5::bigint,
          'batched settlement: one notification per resolution');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE customer_key = 'batch'
            AND resolved_at IS DISTINCT FROM settles_at), 0::bigint,
          'batched settlement: resolved_at = settles_at');

-- max_outcomes also applies when only part is due.
SELECT pg_temp.ev('batch', 'b6', 'resolved', pg_temp.at('4 days'));
SELECT pg_temp.ev('batch', 'b7', 'resolved', pg_temp.at('5 days'));
SELECT is(pg_temp.settled(pg_temp.at('4 days 1 hour'), 10), '1/0/0',
          'max_outcomes larger than what is due settles only what is due');
SELECT is((pg_temp.outcome('batch', 'b7')).status::text, 'PENDING', 'the not-yet-due one waits');
SELECT is(pg_temp.settled(pg_temp.at('5 days 1 hour')), '1/0/0', 'and settles when due');

-- ---------------------------------------------------------------------------------------------
-- A late event: the outcome was due but not settled when it arrived.
-- ---------------------------------------------------------------------------------------------
-- Back-dated: settles_at = now() - 1 hour, so the outcome is due the moment it opens.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
    VALUES ('late', 'l1', 'resolved', 'support', now() - interval '2 hours');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
    VALUES ('late', 'l1', 'reopened', now());
SELECT is((SELECT late FROM witn.events WHERE customer_key = 'late' AND action = 'reopened'), true,
          'an event for a due, unsettled outcome is marked late');
SELECT results_eq(
    $$ SELECT status::text, scheduled_resolution::text, accepted_events, late_events, settles_at
         FROM witn.outcomes WHERE customer_key = 'late' $$,
    $$ VALUES ('PENDING', 'CONFIRMED', 1::bigint, 1::bigint, now() - interval '1 hour') $$,
    'the late event does not change the outcome (only late_events)');
SELECT is(pg_temp.settled(now()), '1/0/0', 'settle confirms it as it stood');
SELECT is((pg_temp.outcome('late', 'l1')).resolved_at, now() - interval '1 hour',
          'resolved as of its settles_at, not as of the late event or the settle call');
SELECT is((SELECT resolved_at FROM witn.invoice_lines WHERE customer_key = 'late'),
          now() - interval '1 hour', 'its invoice line carries that resolved_at');
INSERT INTO witn.events (customer_key, key, action) VALUES ('late', 'l1', 'reopened');
SELECT results_eq(
    $$ SELECT status::text, late_events, (SELECT count(*) FROM witn.events e
                                            WHERE e.customer_key = 'late' AND e.late)
         FROM witn.outcomes WHERE customer_key = 'late' $$,
    $$ VALUES ('CONFIRMED', 2::bigint, 2::bigint) $$,
    'an event after settlement is late too; the outcome stays CONFIRMED');
SELECT is(pg_temp.settled(now()), '0/0/0', 'and nothing is settled again');

-- ---------------------------------------------------------------------------------------------
-- One bad outcome is reported and skipped; the rest settle.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.rate_cards (key, currency) VALUES ('premium', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('bigspender', 'premium');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('premium', 'support', 5000);
SELECT pg_temp.ev('mix', 'g1', 'resolved', pg_temp.at('10 days'));
SELECT pg_temp.ev('bigspender', 'bad', 'resolved', pg_temp.at('10 days 1 minute'));
SELECT pg_temp.ev('mix', 'g2', 'resolved', pg_temp.at('10 days 2 minutes'));
SELECT pg_temp.ev('mix', 'f1', 'opened', pg_temp.at('10 days 3 minutes'));
ALTER TABLE witn.invoice_lines ADD CONSTRAINT test_cap CHECK (amount < 1000);

SET LOCAL client_min_messages = error;
SELECT is(pg_temp.settled(pg_temp.at('11 days')), '2/1/1',
          'a mix with one outcome that cannot be settled: two confirmed, one failed, one error');
RESET client_min_messages;
SELECT set_eq($$ SELECT key, status::text FROM witn.outcomes WHERE customer_key IN ('mix', 'bigspender') $$,
              $$ VALUES ('g1', 'CONFIRMED'), ('g2', 'CONFIRMED'), ('f1', 'FAILED'), ('bad', 'PENDING') $$,
              'the good ones settle, the bad one stays due');
SELECT is((pg_temp.outcome('bigspender', 'bad')).resolved_at, NULL, 'the bad one is not resolved');
SELECT results_eq(
    $$ SELECT customer_key, outcome_id, sqlstate, message ~ 'test_cap' FROM witn.settlement_errors $$,
    $$ VALUES ('bigspender', (pg_temp.outcome('bigspender', 'bad')).id, '23514', true) $$,
    'a witn.settlement_errors row names the outcome and the error');
SELECT is((SELECT count(*) FROM witn.invoice_lines WHERE customer_key IN ('mix', 'bigspender')), 2::bigint,
          'lines only for the good confirmations');
SELECT is((SELECT count(*) FROM witn.notifications WHERE customer_key IN ('mix', 'bigspender')), 3::bigint,
          'notifications only for the settled ones');
SELECT is((SELECT count(*) FROM witn.notifications WHERE customer_key = 'bigspender'), 0::bigint,
          'no notification for the outcome that was not settled');

SET LOCAL client_min_messages = error;
SELECT is(pg_temp.settled(pg_temp.at('11 days')), '0/0/1', 'the next run retries it and reports it again');
RESET client_min_messages;
SELECT is((SELECT count(*) FROM witn.settlement_errors), 2::bigint, 'a second error row');

ALTER TABLE witn.invoice_lines DROP CONSTRAINT test_cap;
SELECT is(pg_temp.settled(pg_temp.at('11 days')), '1/0/0', 'once the cause is gone it settles');
SELECT is((pg_temp.outcome('bigspender', 'bad')).resolved_at, pg_temp.at('10 days 1 minute 1 hour'),
          'as of its settles_at');
SELECT is((SELECT amount FROM witn.invoice_lines WHERE customer_key = 'bigspender'), 5000::numeric,
          'with its invoice line');
SELECT is((SELECT count(*) FROM witn.notifications WHERE customer_key = 'bigspender'), 1::bigint,
          'and exactly one notification');

-- The fallback path honours max_outcomes too.
SELECT pg_temp.ev('bigspender', 'bad2', 'resolved', pg_temp.at('12 days'));
SELECT pg_temp.ev('mix', 'g3', 'resolved', pg_temp.at('12 days 1 minute'));
SELECT pg_temp.ev('mix', 'g4', 'resolved', pg_temp.at('12 days 2 minutes'));
ALTER TABLE witn.invoice_lines ADD CONSTRAINT test_cap CHECK (amount < 1000) NOT VALID;
SET LOCAL client_min_messages = error;
SELECT is(pg_temp.settled(pg_temp.at('13 days'), 2), '1/0/1',
          'max_outcomes 2 with the bad one first: one error, one confirmed');
RESET client_min_messages;
SELECT is((pg_temp.outcome('mix', 'g4')).status::text, 'PENDING', 'the third is left for the next call');
ALTER TABLE witn.invoice_lines DROP CONSTRAINT test_cap;
SELECT is(pg_temp.settled(pg_temp.at('13 days')), '2/0/0', 'the next call settles the rest');

-- ---------------------------------------------------------------------------------------------
-- check_at: an event that moves settles_at leaves the due index alone; settlement, finding the
-- outcome not yet due, looks again at the new settles_at.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.ev('acme', 'moved', 'resolved', pg_temp.at('20 days'));
SELECT pg_temp.ev('acme', 'moved', 'noted', pg_temp.at('20 days 30 minutes'));
SELECT is(((pg_temp.outcome('acme', 'moved')).settles_at, (pg_temp.outcome('acme', 'moved')).check_at),
          (pg_temp.at('20 days 1 hour 30 minutes'), pg_temp.at('20 days 1 hour')),
          'a later event moves settles_at, not check_at');
SELECT is(pg_temp.settled(pg_temp.at('20 days 1 hour 10 minutes')), '0/0/0',
          'past check_at but before settles_at: nothing settles');
SELECT is((pg_temp.outcome('acme', 'moved')).check_at, pg_temp.at('20 days 1 hour 30 minutes'),
          'and check_at moves to settles_at');
SELECT is(pg_temp.settled(pg_temp.at('20 days 1 hour 30 minutes')), '1/0/0', 'at settles_at it settles');
SELECT is((pg_temp.outcome('acme', 'moved')).resolved_at, pg_temp.at('20 days 1 hour 30 minutes'),
          'resolved at settles_at');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE check_at > settles_at), 0::bigint,
          'check_at never lies after settles_at');

-- A settlement period with a year in it counts as extract(epoch) does (365.25 days a year), on
-- the single-event path and the batch path alike.
INSERT INTO witn.agents (key, settlement_period) VALUES ('yearly', '1 year -200 days');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('standard', 'yearly', 1);
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
    VALUES ('acme', 'y1', 'a', 'yearly', pg_temp.at('0'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('acme', 'y1', 'b', pg_temp.at('1 minute'));
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
    VALUES ('acme', 'y2', 'a', 'yearly', pg_temp.at('0')), ('acme', 'y3', 'a', 'yearly', pg_temp.at('0'));
INSERT INTO witn.events (customer_key, key, action, occurred_at)
    VALUES ('acme', 'y2', 'b', pg_temp.at('1 minute')), ('acme', 'y3', 'b', pg_temp.at('1 minute'));
SELECT is((SELECT array_agg(settles_at - pg_temp.at('1 minute') ORDER BY key) FROM witn.outcomes WHERE agent_key = 'yearly'),
          ARRAY['165 days 06:00:00', '165 days 06:00:00', '165 days 06:00:00']::interval[],
          'settles_at is 165.25 days after the latest event on every path');
SELECT is(pg_temp.settled(pg_temp.at('200 days')), '3/0/0', 'and they settle (the empty condition holds): confirmed');

-- ---------------------------------------------------------------------------------------------
-- Arguments.
-- ---------------------------------------------------------------------------------------------
SELECT throws_ok($$ SELECT witn.settle(now(), -1) $$, 'WT001', NULL, 'max_outcomes -1: WT001');
SELECT throws_like($$ SELECT witn.settle(now(), -1) $$, 'VALIDATION_ERROR%max_outcomes%',
                   'max_outcomes -1: VALIDATION_ERROR names max_outcomes');
SELECT throws_ok($$ SELECT witn.settle(NULL) $$, 'WT001', NULL, 'as_of NULL: WT001');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL), 0::bigint,
          'every outcome in this file ended up settled');
SELECT is((SELECT count(*) FROM witn.verify()), 0::bigint, 'witn.verify() finds no difference');
SELECT is((SELECT count(*) FROM witn.notifications n
             JOIN witn.outcomes o ON o.customer_key = n.customer_key AND o.id = n.outcome_id
            WHERE n.payload IS DISTINCT FROM witn.notification_payload(o, n.created_at)), 0::bigint,
          'every notification settlement wrote is the body witn.notification_payload() describes');

SELECT * FROM finish();
ROLLBACK;
