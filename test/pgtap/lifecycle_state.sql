-- The outcome lifecycle: the state machine, the settlement timer, the latest value, counts,
-- contract and price snapshots, late events, idempotency, explain/replay, and verify() after
-- every scenario.
BEGIN;
SELECT plan(97);
SET LOCAL TimeZone = 'UTC';

-- ---------------------------------------------------------------------------------------------
-- Rate cards, customers, agents and prices of this file.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.rate_cards (key, currency) VALUES ('lc_usd', 'USD'), ('lc_edit', 'USD'), ('lc_edit_eur', 'EUR');
INSERT INTO witn.customers (key, rate_card_key) VALUES
    ('lc', 'lc_usd'), ('lc_other', 'lc_usd'), ('lc_edit', 'lc_edit');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('score', '[{"fact": "score", "operator": "gte", "value": 5}]', '2 hours', 'last'),
    ('timer', '[{"fact": "done", "operator": "seen"}]', '2 hours', 'last'),
    ('pair', '[{"fact": "ping", "operator": "count_eq", "value": 2}]', '2 hours', 'last'),
    ('tally', '[{"fact": "ping", "operator": "count_gte", "value": 100}]', '2 hours', 'sum'),
    ('editable', '[{"fact": "a", "operator": "seen"}]', '1 hour', 'last'),
    ('quick', '[]', '1 hour', 'last'),
    ('explained', '[{"fact": "agent_replied", "operator": "seen"},
                    {"fact": "escalated", "operator": "not seen"},
                    {"fact": "csat", "operator": "not lte", "value": 3},
                    {"fact": "warning", "operator": "count_lt", "value": 2},
                    {"fact": "inspection", "operator": "match", "value": "pass"}]', '2 hours', 'last');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT 'lc_usd', key, 1 FROM witn.agents WHERE key <> 'editable';
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('lc_edit', 'editable', 5), ('lc_edit_eur', 'editable', 9);

-- "STATUS/SCHEDULED" of an outcome, e.g. 'PENDING/CONFIRMED', 'OPEN/-'.
CREATE FUNCTION pg_temp.state(outcome_key text, customer text DEFAULT 'lc') RETURNS text LANGUAGE sql AS $$
    SELECT o.status || '/' || coalesce(o.scheduled_resolution::text, '-')
      FROM witn.outcomes o WHERE o.customer_key = customer AND o.key = outcome_key
$$;
-- The whole outcome row.
CREATE FUNCTION pg_temp.o(outcome_key text, customer text DEFAULT 'lc') RETURNS witn.outcomes LANGUAGE sql AS $$
    SELECT * FROM witn.outcomes o WHERE o.customer_key = customer AND o.key = outcome_key
$$;
-- One leaf of witn.explain for an outcome, by fact.
CREATE FUNCTION pg_temp.leaf(outcome_key text, leaf_fact text)
    RETURNS TABLE (event_count bigint, latest_value jsonb, passes boolean) LANGUAGE sql AS $$
    SELECT x.event_count, x.latest_value, x.passes
      FROM witn.explain((pg_temp.o(outcome_key)).id) x WHERE x.fact = leaf_fact
$$;

-- Runs a statement and rolls it back: a statement that should have been rejected leaves no trace.
CREATE FUNCTION pg_temp.rolled_back(statement text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RAISE EXCEPTION USING ERRCODE = 'XX999', MESSAGE = 'accepted (and rolled back by the test)';
END $$;
-- Opens an outcome with a settles_at that has no UTC offset, under TimeZone UTC, and counts
-- what verify() then finds under America/New_York; all rolled back. 0 when witn rejects it.
CREATE FUNCTION pg_temp.no_offset_replay_differences() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;
BEGIN
    BEGIN
        INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
        VALUES ('lc', 'tm_no_offset', 'done', 'timer',
                jsonb_build_object('settles_at', to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS')), now());
        PERFORM set_config('TimeZone', 'America/New_York', true);
        SELECT count(*) INTO n FROM witn.verify() v WHERE v.outcome_key = 'tm_no_offset';
        RAISE EXCEPTION USING ERRCODE = 'XX999';
    EXCEPTION WHEN SQLSTATE 'WT001' OR SQLSTATE 'XX999' THEN
        NULL;
    END;
    RETURN n;
END $$;

-- =============================================================================================
-- State machine: OPEN -> PENDING when the condition first holds; PENDING follows the condition
-- with its scheduled resolution and never returns to OPEN.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'sm_flip', 'score', 'score', '{"value": 3}', now() - interval '50 minutes');
SELECT is(pg_temp.state('sm_flip'), 'OPEN/-', 'state: a false condition keeps a new outcome OPEN, nothing scheduled');
SELECT is((pg_temp.o('sm_flip')).condition_holds, false, 'state: condition_holds false');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'sm_flip', 'score', '{"value": 7}', now() - interval '49 minutes');
SELECT is(pg_temp.state('sm_flip'), 'PENDING/CONFIRMED', 'state: OPEN and the condition holds: PENDING, scheduled CONFIRMED');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'sm_flip', 'score', '{"value": 1}', now() - interval '48 minutes');
SELECT is(pg_temp.state('sm_flip'), 'PENDING/FAILED', 'state: PENDING and the condition fails: scheduled FAILED, not back to OPEN');
SELECT is((pg_temp.o('sm_flip')).condition_holds, false, 'state: condition_holds follows the latest evaluation');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'sm_flip', 'score', '{"value": 9}', now() - interval '47 minutes');
SELECT is(pg_temp.state('sm_flip'), 'PENDING/CONFIRMED', 'state: PENDING and the condition holds again: scheduled CONFIRMED');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'sm_flip', 'score', '{"value": 2}', now() - interval '46 minutes');
SELECT is(pg_temp.state('sm_flip'), 'PENDING/FAILED', 'state: and FAILED again');
SELECT is((pg_temp.o('sm_flip')).accepted_events, 5::bigint, 'state: five accepted events');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'sm_boundary', 'score', 'score', '{"value": 5}', now() - interval '50 minutes');
SELECT is(pg_temp.state('sm_boundary'), 'PENDING/CONFIRMED', 'state: gte 5 holds at exactly 5');

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc', 'sm_never', 'comment', 'score', now() - interval '50 minutes');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('lc', 'sm_never', 'comment', now() - interval '49 minutes');
SELECT is(pg_temp.state('sm_never'), 'OPEN/-', 'state: events of actions the condition does not mention leave it OPEN');
SELECT is((pg_temp.o('sm_never')).facts, '{}'::jsonb, 'state: and add no facts');

-- One statement, three outcomes, the agent named on each outcome's first row only.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('lc', 'sm_multi_b', 'score', 'score', '{"value": 1}', now() - interval '50 minutes'),
    ('lc', 'sm_multi_a', 'score', 'score', '{"value": 6}', now() - interval '50 minutes'),
    ('lc', 'sm_multi_b', 'score', NULL, '{"value": 8}', now() - interval '49 minutes'),
    ('lc', 'sm_multi_c', 'score', 'score', '{"value": 2}', now() - interval '49 minutes'),
    ('lc', 'sm_multi_a', 'score', 'score', '{"value": 0}', now() - interval '48 minutes');
SELECT results_eq($$
    SELECT key, pg_temp.state(key), accepted_events FROM witn.outcomes
     WHERE customer_key = 'lc' AND key LIKE 'sm_multi_%' ORDER BY key
$$, $$ VALUES ('sm_multi_a', 'PENDING/FAILED', 2::bigint), ('sm_multi_b', 'PENDING/CONFIRMED', 2::bigint),
              ('sm_multi_c', 'OPEN/-', 1::bigint) $$,
   'state: a multi-row, multi-outcome statement applies each outcome''s rows in arrival order');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'state: verify() is empty before settlement');
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '3 hours') $$,
                  $$ VALUES (2::bigint, 4::bigint, 0::bigint) $$,
                  'state: settlement: 2 confirmed (PENDING/CONFIRMED), 4 failed (OPEN or PENDING/FAILED)');
SELECT results_eq($$
    SELECT key, status::text FROM witn.outcomes WHERE customer_key = 'lc' AND key LIKE 'sm_%' ORDER BY key
$$, $$ VALUES ('sm_boundary', 'CONFIRMED'), ('sm_flip', 'FAILED'), ('sm_multi_a', 'FAILED'),
              ('sm_multi_b', 'CONFIRMED'), ('sm_multi_c', 'FAILED'), ('sm_never', 'FAILED') $$,
   'state: OPEN -> FAILED, PENDING -> its scheduled resolution');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'state: verify() is empty after settlement');

-- =============================================================================================
-- Timer: settles_at = occurred_at + settlement_period, never moved earlier; properties.settles_at
-- sets it explicitly (not before the event, at most 180 days after it).
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc', 'tm_window', 'work', 'timer', now() - interval '30 minutes');
SELECT is((pg_temp.o('tm_window')).settles_at, now() + interval '90 minutes',
          'timer: the first event sets settles_at = occurred_at + 2 hours');
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('lc', 'tm_window', 'work', now());
SELECT is((pg_temp.o('tm_window')).settles_at, now() + interval '2 hours', 'timer: a later event moves it on');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('lc', 'tm_window', 'done', now() - interval '1 hour');
SELECT is((pg_temp.o('tm_window')).settles_at, now() + interval '2 hours',
          'timer: a back-dated event never shortens the window');
SELECT is(pg_temp.state('tm_window'), 'PENDING/CONFIRMED', 'timer: the back-dated event still counts for the condition');
SELECT is((pg_temp.o('tm_window')).settlement_period, interval '2 hours', 'timer: the agent''s period is on the outcome');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'tm_explicit', 'work', 'timer',
        jsonb_build_object('settles_at', now() + interval '10 days'), now());
SELECT is((pg_temp.o('tm_explicit')).settles_at, now() + interval '10 days',
          'timer: properties.settles_at sets settles_at explicitly');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('lc', 'tm_explicit', 'work', now() + interval '1 minute');
SELECT is((pg_temp.o('tm_explicit')).settles_at, now() + interval '10 days',
          'timer: a later event whose window ends earlier does not move it back');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'tm_explicit', 'work', jsonb_build_object('settles_at', now() + interval '5 days'), now());
SELECT is((pg_temp.o('tm_explicit')).settles_at, now() + interval '10 days',
          'timer: an explicit settles_at earlier than the current one does not move it back');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'tm_explicit', 'work', jsonb_build_object('settles_at', now() + interval '20 days'), now());
SELECT is((pg_temp.o('tm_explicit')).settles_at, now() + interval '20 days',
          'timer: an explicit later settles_at moves it on');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'tm_short', 'done', 'timer', jsonb_build_object('settles_at', now() + interval '10 minutes'), now());
SELECT is((pg_temp.o('tm_short')).settles_at, now() + interval '10 minutes',
          'timer: on the first event an explicit settles_at may be sooner than the period');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'tm_180', 'done', 'timer', jsonb_build_object('settles_at', now() + interval '180 days'), now());
SELECT is((pg_temp.o('tm_180')).settles_at, now() + interval '180 days',
          'timer: settles_at exactly 180 days after occurred_at is accepted');
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'tm_same', 'done', 'timer', jsonb_build_object('settles_at', now() + interval '1 hour'),
        now() + interval '1 hour');
SELECT is((pg_temp.o('tm_same')).settles_at, now() + interval '1 hour',
          'timer: settles_at equal to occurred_at is accepted');

SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
       VALUES ('lc', 'tm_too_far', 'done', 'timer',
               jsonb_build_object('settles_at', now() + interval '180 days 1 second'), now()) $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO timestamp at most 180 days after occurred_at',
    'timer: settles_at more than 180 days after occurred_at is a VALIDATION_ERROR');
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
       VALUES ('lc', 'tm_window', 'done',
               jsonb_build_object('settles_at', now() - interval '1 second'), now()) $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO timestamp not before occurred_at',
    'timer: settles_at before occurred_at is a VALIDATION_ERROR (on an open outcome too)');
-- settles_at is an ISO 8601 timestamp: words whose value depends on when they are read, and
-- dates whose meaning depends on DateStyle, would make replay() disagree with what was stored.
-- (Run through pg_temp.rolled_back so that a wrongly accepted event leaves no trace.)
SELECT throws_ok(
    $$ SELECT pg_temp.rolled_back('INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
                                   VALUES (''lc'', ''tm_word'', ''done'', ''timer'', ''{"settles_at": "now"}'', now() - interval ''1 hour'')') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")',
    'timer: settles_at "now" is not an ISO timestamp');
SELECT throws_ok(
    $$ SELECT pg_temp.rolled_back('INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
                                   VALUES (''lc'', ''tm_word'', ''done'', ''timer'', ''{"settles_at": "tomorrow"}'', now())') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")',
    'timer: settles_at "tomorrow" is not an ISO timestamp');
SELECT throws_ok(
    $$ SELECT pg_temp.rolled_back('INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
                                   VALUES (''lc'', ''tm_word'', ''done'', ''timer'', ''{"settles_at": "01/02/2031"}'', ''2031-01-01Z'')') $$,
    'WT001', 'VALIDATION_ERROR: properties.settles_at must be an ISO 8601 timestamp with a UTC offset (e.g. "2026-11-23T10:00:00Z")',
    'timer: settles_at "01/02/2031" (day and month by DateStyle) is not an ISO timestamp');
SELECT is(pg_temp.no_offset_replay_differences(), 0::bigint,
          'timer: settles_at without a UTC offset is rejected, or read alike whatever the session''s TimeZone');
SELECT is((pg_temp.o('tm_window')).accepted_events, 3::bigint, 'timer: the rejected event was not applied');
SELECT ok(NOT EXISTS (SELECT FROM witn.outcomes WHERE key = 'tm_too_far'), 'timer: the rejected first event opened nothing');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'timer: verify() is empty');

-- =============================================================================================
-- Latest value: by occurred_at, ties by arrival.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'lv_backdated', 'score', 'score', '{"value": 8}', now() - interval '10 minutes');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'lv_backdated', 'score', '{"value": 1}', now() - interval '20 minutes');
SELECT is(pg_temp.state('lv_backdated'), 'PENDING/CONFIRMED',
          'latest value: a back-dated event does not replace a newer value');
SELECT results_eq($$ SELECT * FROM pg_temp.leaf('lv_backdated', 'score') $$,
                  $$ VALUES (2::bigint, '8'::jsonb, true) $$,
                  'latest value: explain shows two events, latest value 8');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'lv_tie_up', 'score', 'score', '{"value": 1}', date_trunc('minute', now()));
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'lv_tie_up', 'score', '{"value": 9}', date_trunc('minute', now()));
SELECT is(pg_temp.state('lv_tie_up'), 'PENDING/CONFIRMED', 'latest value: same occurred_at, the later arrival (9) wins');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'lv_tie_down', 'score', 'score', '{"value": 9}', date_trunc('minute', now()));
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'lv_tie_down', 'score', '{"value": 1}', date_trunc('minute', now()));
SELECT is(pg_temp.state('lv_tie_down'), 'PENDING/FAILED', 'latest value: same occurred_at, the later arrival (1) wins');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('lc', 'lv_tie_statement', 'score', 'score', '{"value": 9}', date_trunc('minute', now())),
    ('lc', 'lv_tie_statement', 'score', NULL, '{"value": 1}', date_trunc('minute', now()));
SELECT is(pg_temp.state('lv_tie_statement'), 'PENDING/FAILED',
          'latest value: ties inside one statement go by row order too');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('lc', 'lv_kinds', 'score', 'score', '{"value": 9}', now() - interval '3 minutes');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at) VALUES
    ('lc', 'lv_kinds', 'score', '{"value": "9"}', now() - interval '2 minutes');
SELECT is(pg_temp.state('lv_kinds'), 'PENDING/FAILED', 'latest value: a string "9" is not a number: gte fails');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at) VALUES
    ('lc', 'lv_kinds', 'score', '{"value": 6}', now() - interval '1 minute');
SELECT is(pg_temp.state('lv_kinds'), 'PENDING/CONFIRMED', 'latest value: a number again');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at) VALUES
    ('lc', 'lv_kinds', 'score', '{"note": "no value"}', now());
SELECT is(pg_temp.state('lv_kinds'), 'PENDING/FAILED', 'latest value: the latest event without a value fails the comparison');
SELECT results_eq($$ SELECT * FROM pg_temp.leaf('lv_kinds', 'score') $$,
                  $$ VALUES (4::bigint, NULL::jsonb, false) $$,
                  'latest value: explain shows no latest value');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'latest value: verify() is empty');

-- =============================================================================================
-- Counts: every accepted event of the action, back-dated or not, with or without a value.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc', 'ct_pair', 'ping', 'pair', now() - interval '5 minutes');
SELECT is(pg_temp.state('ct_pair'), 'OPEN/-', 'counts: one ping, count_eq 2 does not hold');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'ct_pair', 'ping', '{"value": "x"}', now() - interval '1 hour');
SELECT is(pg_temp.state('ct_pair'), 'PENDING/CONFIRMED', 'counts: a back-dated ping counts: 2 pings');
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('lc', 'ct_pair', 'pong', now());
SELECT is(pg_temp.state('ct_pair'), 'PENDING/CONFIRMED', 'counts: other actions do not count');
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('lc', 'ct_pair', 'ping', now());
SELECT is(pg_temp.state('ct_pair'), 'PENDING/FAILED', 'counts: a third ping breaks count_eq 2');
SELECT results_eq($$ SELECT event_count, passes FROM pg_temp.leaf('ct_pair', 'ping') $$,
                  $$ VALUES (3::bigint, false) $$, 'counts: explain shows 3 pings');
SELECT is((pg_temp.o('ct_pair')).accepted_events, 4::bigint, 'counts: accepted_events counts every action');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'counts: verify() is empty');

-- =============================================================================================
-- Contract and price snapshots: editing an agent or a price affects outcomes opened afterwards.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc_edit', 'ed_old', 'x', 'editable', now() - interval '10 minutes');
UPDATE witn.agents SET condition = '[{"fact": "b", "operator": "seen"}]', settlement_period = '3 hours',
                       attribution_method = 'sum'
 WHERE key = 'editable';
SELECT is((SELECT version FROM witn.agents WHERE key = 'editable'), 2, 'snapshot: editing the contract bumps the agent version');
UPDATE witn.agents SET name = 'Editable agent' WHERE key = 'editable';
SELECT is((SELECT version FROM witn.agents WHERE key = 'editable'), 2, 'snapshot: renaming the agent does not');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc_edit', 'ed_new', 'a', 'editable', '{"attribution": 2}', now() - interval '9 minutes');
UPDATE witn.rate_card_prices SET price_per_unit = 7 WHERE rate_card_key = 'lc_edit' AND agent_key = 'editable';
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc_edit', 'ed_newer', 'b', 'editable', now() - interval '9 minutes');
UPDATE witn.customers SET rate_card_key = 'lc_edit_eur' WHERE key = 'lc_edit';
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc_edit', 'ed_eur', 'b', 'editable', now() - interval '9 minutes');

INSERT INTO witn.events (customer_key, key, action, properties, occurred_at) VALUES
    ('lc_edit', 'ed_old', 'a', '{"attribution": 2}', now() - interval '8 minutes'),
    ('lc_edit', 'ed_new', 'a', '{"attribution": 3}', now() - interval '8 minutes');
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc_edit', 'ed_old', 'a', '{"attribution": 3}', now() - interval '7 minutes');

SELECT is(pg_temp.state('ed_old', 'lc_edit'), 'PENDING/CONFIRMED',
          'snapshot: the outcome opened before the edit is evaluated with the old condition (a seen)');
SELECT results_eq($$
    SELECT condition::text, settlement_period, attribution_method, agent_version, quantity, unit_price,
           settles_at = now() - interval '7 minutes' + interval '1 hour'
      FROM witn.outcomes WHERE customer_key = 'lc_edit' AND key = 'ed_old'
$$, $$ VALUES ('[{"fact": "a", "operator": "seen"}]', interval '1 hour', 'last', 1, 3::numeric, 5::numeric, true) $$,
   'snapshot: the old outcome keeps condition, period, attribution method (last: 3), version 1 and price 5');
SELECT is(pg_temp.state('ed_new', 'lc_edit'), 'OPEN/-',
          'snapshot: an outcome opened after the edit needs the new condition (b seen)');
SELECT results_eq($$
    SELECT condition::text, settlement_period, attribution_method, agent_version, quantity, unit_price,
           settles_at = now() - interval '8 minutes' + interval '3 hours'
      FROM witn.outcomes WHERE customer_key = 'lc_edit' AND key = 'ed_new'
$$, $$ VALUES ('[{"fact": "b", "operator": "seen"}]', interval '3 hours', 'sum', 2, 5::numeric, 5::numeric, true) $$,
   'snapshot: the new outcome has the new contract (sum: 2 + 3), version 2, and the price of its opening (5)');
SELECT results_eq($$
    SELECT status::text, agent_version, unit_price, currency
      FROM witn.outcomes WHERE customer_key = 'lc_edit' AND key = 'ed_newer'
$$, $$ VALUES ('PENDING', 2, 7::numeric, 'USD') $$,
   'snapshot: an outcome opened after the price edit gets the new price 7');
SELECT results_eq($$
    SELECT key, unit_price, currency FROM witn.outcomes WHERE customer_key = 'lc_edit' ORDER BY key
$$, $$ VALUES ('ed_eur', 9::numeric, 'EUR'), ('ed_new', 5, 'USD'), ('ed_newer', 7, 'USD'), ('ed_old', 5, 'USD') $$,
   'snapshot: moving the customer to a EUR rate card prices only outcomes opened afterwards, in EUR');

SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '4 hours') $$,
                  $$ VALUES (8::bigint, 5::bigint, 0::bigint) $$,
                  'snapshot: four hours on, the outcomes of the timer, latest value, count and snapshot scenarios that are due settle: 8 confirmed, 5 failed');
SELECT results_eq($$
    SELECT outcome_key, quantity, unit_price, amount, currency FROM witn.invoice_lines
     WHERE customer_key = 'lc_edit' ORDER BY outcome_key
$$, $$ VALUES ('ed_eur', 1::numeric, 9::numeric, 9::numeric, 'EUR'), ('ed_newer', 1, 7, 7, 'USD'), ('ed_old', 3, 5, 15, 'USD') $$,
   'snapshot: invoice lines bill each outcome at its snapshotted price');
SELECT is(pg_temp.state('ed_new', 'lc_edit'), 'FAILED/-', 'snapshot: the outcome under the new condition failed');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'snapshot: verify() is empty');

-- =============================================================================================
-- Late events: an outcome already settled, or already due, takes no more events; they are
-- recorded with late = true and counted in late_events.
-- =============================================================================================
-- Due but not settled: the back-dated first event puts settles_at an hour in the past.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('lc', 'late_due', 'score', 'score', '{"value": 9}', now() - interval '3 hours');
SELECT is((pg_temp.o('late_due')).settles_at, now() - interval '1 hour', 'late: the outcome is due since an hour ago');
CREATE TEMP TABLE late_due_before AS SELECT * FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'late_due';
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'late_due', 'score', '{"value": 1}', now());
INSERT INTO witn.events (customer_key, key, action, properties, occurred_at)
VALUES ('lc', 'late_due', 'score', '{"value": 2}', now() - interval '2 hours 30 minutes');
SELECT results_eq($$
    SELECT late, duplicate_of FROM witn.events WHERE customer_key = 'lc' AND key = 'late_due' ORDER BY id
$$, $$ VALUES (false, NULL::bigint), (true, NULL), (true, NULL) $$,
   'late: events for a due outcome are stored, marked late');
SELECT results_eq($$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, last_event_id, condition_holds
      FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'late_due'
$$, $$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, last_event_id, condition_holds
      FROM late_due_before
$$, 'late: the due outcome is unchanged (a score of 1 would have scheduled FAILED)');
SELECT is((pg_temp.o('late_due')).late_events, 2::bigint, 'late: late_events counts them');

-- Inside one statement: the first row makes the outcome due, the second is late.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('lc', 'late_same_statement', 'score', 'score', '{"value": 9}', now() - interval '3 hours'),
    ('lc', 'late_same_statement', 'score', NULL, '{"value": 1}', now() - interval '2 hours 59 minutes');
SELECT results_eq($$
    SELECT late FROM witn.events WHERE customer_key = 'lc' AND key = 'late_same_statement' ORDER BY id
$$, $$ VALUES (false), (true) $$, 'late: within one statement, rows after the outcome became due are late');
SELECT results_eq($$ SELECT pg_temp.state('late_same_statement'), (pg_temp.o('late_same_statement')).late_events $$,
                  $$ VALUES ('PENDING/CONFIRMED', 1::bigint) $$, 'late: and do not change it');

SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now()) $$,
                  $$ VALUES (2::bigint, 0::bigint, 0::bigint) $$,
                  'late: settle(now()) resolves just the two due outcomes');
SELECT results_eq($$ SELECT status::text, resolved_at FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'late_due' $$,
                  $$ VALUES ('CONFIRMED', now() - interval '1 hour') $$,
                  'late: resolved as of its settles_at, an hour ago');

-- Settled: events after settlement.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('lc', 'late_settled', 'anything', 'quick', now() - interval '10 minutes');
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '1 hour') $$,
                  $$ VALUES (1::bigint, 0::bigint, 0::bigint) $$, 'late: the quick outcome settles');
INSERT INTO witn.events (customer_key, key, action, occurred_at)
VALUES ('lc', 'late_settled', 'anything', now() - interval '5 minutes');
SELECT results_eq($$
    SELECT o.status::text, o.accepted_events, o.late_events, o.settles_at = now() + interval '50 minutes',
           (SELECT late FROM witn.events e WHERE e.customer_key = o.customer_key AND e.key = o.key ORDER BY id DESC LIMIT 1)
      FROM witn.outcomes o WHERE o.customer_key = 'lc' AND o.key = 'late_settled'
$$, $$ VALUES ('CONFIRMED', 1::bigint, 1::bigint, true, true) $$,
   'late: an event after settlement is late; the outcome keeps its status and settles_at');
SELECT is((SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id
            WHERE o.key = 'late_settled'), 1::bigint, 'late: still one invoice line');
SELECT is((SELECT count(*) FROM witn.notifications n JOIN witn.outcomes o ON o.customer_key = n.customer_key AND o.id = n.outcome_id
            WHERE o.key = 'late_settled'), 1::bigint, 'late: still one notification');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'late: verify() is empty');

-- =============================================================================================
-- Idempotency: a retried event is stored as a duplicate and not applied; the same key with a
-- different payload is IDEMPOTENCY_CONFLICT and writes nothing.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) VALUES
    ('lc', 'idem', 'ping', 'tally', '{"attribution": 2}', now() - interval '5 minutes', 'evt-1'),
    ('lc', 'idem', 'ping', 'tally', '{"attribution": 2}', now() - interval '5 minutes', 'evt-1');
SELECT results_eq($$
    SELECT duplicate_of IS NULL, duplicate_of = min(id) OVER () FROM witn.events
     WHERE customer_key = 'lc' AND key = 'idem' ORDER BY id
$$, $$ VALUES (true, NULL::boolean), (false, true) $$,
   'idempotency: the second row of the same statement is a duplicate of the first');
SELECT results_eq($$ SELECT accepted_events, quantity FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'idem' $$,
                  $$ VALUES (1::bigint, 2::numeric) $$, 'idempotency: applied once (sum of attributions 2, not 4)');
CREATE TEMP TABLE idem_before AS SELECT * FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'idem';

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
VALUES ('lc', 'idem', 'ping', 'tally', '{"attribution": 2}', now() + interval '1 minute', 'evt-1');
SELECT is((SELECT duplicate_of FROM witn.events WHERE customer_key = 'lc' AND key = 'idem' ORDER BY id DESC LIMIT 1),
          (SELECT min(id) FROM witn.events WHERE customer_key = 'lc' AND key = 'idem'),
          'idempotency: a retry in a later statement (even with another occurred_at) is a duplicate of the original');
SELECT results_eq($$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, late_events, last_event_id
      FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'idem'
$$, $$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, late_events, last_event_id
      FROM idem_before
$$, 'idempotency: the duplicate changes nothing on the outcome, settles_at included');

INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
VALUES ('lc_other', 'idem', 'ping', 'tally', '{"attribution": 2}', now(), 'evt-1');
SELECT is((SELECT duplicate_of FROM witn.events WHERE customer_key = 'lc_other' AND key = 'idem'), NULL,
          'idempotency: keys are per customer: another customer''s evt-1 is accepted');

CREATE TEMP TABLE idem_counts AS
SELECT (SELECT count(*) FROM witn.events) AS events, (SELECT count(*) FROM witn.outcomes) AS outcomes;
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, properties, idempotency_key)
       VALUES ('lc', 'idem', 'ping', '{"attribution": 3}', 'evt-1') $$,
    'WT006', 'IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload',
    'idempotency: the same key with different properties is a conflict');
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key)
       VALUES ('lc', 'idem_elsewhere', 'ping', 'tally', '{"attribution": 2}', 'evt-1') $$,
    'WT006', 'IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload',
    'idempotency: the same key for another outcome is a conflict');
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key) VALUES
           ('lc', 'idem_pair', 'ping', 'tally', '{}', 'evt-2'),
           ('lc', 'idem_pair', 'ping', 'tally', '{"value": 1}', 'evt-2') $$,
    'WT006', 'IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload',
    'idempotency: a conflict between two rows of one statement');
SELECT results_eq($$ SELECT (SELECT count(*) FROM witn.events), (SELECT count(*) FROM witn.outcomes) $$,
                  $$ SELECT events, outcomes FROM idem_counts $$,
                  'idempotency: nothing written by the conflicting statements');
SELECT results_eq($$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, late_events, last_event_id
      FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'idem'
$$, $$
    SELECT status, scheduled_resolution, settles_at, facts, quantity, accepted_events, late_events, last_event_id
      FROM idem_before
$$, 'idempotency: the outcome is untouched by the conflicts');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'idempotency: verify() is empty');

-- =============================================================================================
-- explain: one row per leaf, with the fact it saw; replay of a missing outcome.
-- =============================================================================================
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES
    ('lc', 'ex', 'agent_replied', 'explained', '{}', now() - interval '10 minutes'),
    ('lc', 'ex', 'inspection', NULL, '{"value": "pass"}', now() - interval '9 minutes'),
    ('lc', 'ex', 'csat', NULL, '{"value": 5}', now() - interval '8 minutes'),
    ('lc', 'ex', 'csat', NULL, '{"value": 2}', now() - interval '9 minutes'),
    ('lc', 'ex', 'warning', NULL, '{}', now() - interval '7 minutes'),
    ('lc', 'ex', 'warning', NULL, '{}', now() - interval '6 minutes');
SELECT results_eq($$
    SELECT leaf, fact, operator, description, event_count, latest_value, passes
      FROM witn.explain((pg_temp.o('ex')).id) ORDER BY leaf
$$, $$ VALUES
    (0, 'agent_replied', 'seen', 'agent_replied is seen', 1::bigint, NULL::jsonb, true),
    (1, 'escalated', 'not seen', 'escalated is not seen', 0, NULL, true),
    (2, 'csat', 'not lte', 'csat is missing or has value above 3', 2, '5', true),
    (3, 'warning', 'count_lt', 'warning is seen fewer than 2 times', 2, NULL, false),
    (4, 'inspection', 'match', 'inspection is equal to "pass"', 1, '"pass"', true)
$$, 'explain: one row per leaf, numbered like the condition''s paths, with count, latest value and result');
SELECT results_eq($$
    SELECT DISTINCT outcome_id, customer_key, outcome_key, status::text, scheduled_resolution::text, settles_at, condition_holds
      FROM witn.explain((pg_temp.o('ex')).id)
$$, $$ SELECT id, 'lc', 'ex', 'PENDING', 'FAILED', now() - interval '6 minutes' + interval '2 hours', false
         FROM witn.outcomes WHERE customer_key = 'lc' AND key = 'ex' $$,
   'explain: every row carries the outcome''s status, scheduled resolution, settles_at and result');
SELECT is((SELECT latest_at FROM witn.explain((pg_temp.o('ex')).id) WHERE fact = 'csat'), now() - interval '8 minutes',
          'explain: latest_at of csat is the newest csat, not the last to arrive');
SELECT results_eq($$ SELECT leaf, fact, passes FROM witn.explain((pg_temp.o('late_settled')).id) $$,
                  $$ VALUES (NULL::integer, NULL::text, NULL::boolean) $$,
                  'explain: an empty condition gives one row with null leaf columns');
SELECT results_eq($$ SELECT matches, differences FROM witn.replay((pg_temp.o('ex')).id) $$,
                  $$ VALUES (true, '{}'::text[]) $$, 'replay: the outcome matches its log');
SELECT throws_ok(format('SELECT * FROM witn.replay(%s)', (SELECT max(id) + 1000 FROM witn.outcomes)),
                 'WT008', format('OUTCOME_NOT_FOUND: no outcome %s', (SELECT max(id) + 1000 FROM witn.outcomes)),
                 'replay: a missing outcome id is OUTCOME_NOT_FOUND');

SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'explain: verify() is empty');

SELECT * FROM finish();
ROLLBACK;
