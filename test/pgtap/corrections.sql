-- Corrections (CONTRACT §19, §20): agents' reversal policies, validated and snapshotted into
-- outcomes; witn.credit_outcome and witn.reverse_outcome, every refusal writing nothing; the
-- notifications they write; invoices that net credits and round once, credits billed in the
-- month they are issued and never in a closed one; automatic reversal by an event in a confirmed
-- outcome's reversal window; explain, replay and verify; who may correct and who sees credits.
--
-- Dates are relative to the transaction's start: "last month" and "this month" are the calendar
-- months in Europe/Berlin (run on 2026-12-02: November and December 2026). Outcomes resolve a
-- minute before now, so only a run in the first two minutes of a month could see them billed in
-- the month before their credits.
BEGIN;
SELECT plan(217);

INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD'), ('yen', 'JPY');
INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES
    ('acme', 'std', 'Europe/Berlin'), ('globex', 'std', 'Europe/Berlin'),
    ('zeroco', 'std', 'Europe/Berlin'), ('roundco', 'std', 'UTC'), ('tokyo', 'yen', 'Asia/Tokyo');
INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
    ('support', '[{"fact": "resolved", "operator": "seen"}]', '1 minute', '[{"fact": "reopened", "operator": "seen"}]', '7 days'),
    ('survey', '[{"fact": "resolved", "operator": "seen"}]', '1 minute',
     '[{"fact": "reopened", "operator": "seen"}, {"fact": "csat", "operator": "lte", "value": 2}]', '30 days'),
    ('snapper', '[{"fact": "resolved", "operator": "seen"}]', '1 minute', '[{"fact": "reopened", "operator": "seen"}]', '7 days'),
    -- A reversal condition on an action the billable condition does not mention, seen before resolution.
    ('combo', '[]', '1 minute', '[{"fact": "warned", "operator": "seen"}, {"fact": "reopened", "operator": "seen"}]', '7 days'),
    -- An empty reversal condition always holds: any event in the window reverses.
    ('always', '[{"fact": "resolved", "operator": "seen"}]', '1 minute', '[]', '7 days');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('plain', '[{"fact": "resolved", "operator": "seen"}]', '1 minute');
INSERT INTO witn.rate_card_prices VALUES
    ('std', 'support', 10.005), ('std', 'survey', 4), ('std', 'snapper', 7), ('std', 'plain', 10.005),
    ('std', 'combo', 3), ('std', 'always', 5), ('yen', 'support', 100.5);

-- ---- helpers ------------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.o(outcome text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM witn.outcomes WHERE key = outcome
$$;
-- The month a credit issued now belongs to, for a customer in Europe/Berlin (and in UTC).
CREATE FUNCTION pg_temp.this_month(tz text DEFAULT 'Europe/Berlin') RETURNS date LANGUAGE sql AS $$
    SELECT date_trunc('month', now() AT TIME ZONE tz)::date
$$;
CREATE FUNCTION pg_temp.last_month() RETURNS date LANGUAGE sql AS $$
    SELECT (pg_temp.this_month() - interval '1 month')::date
$$;
-- The first event of an outcome, `ago` before now; with the agents' 1 minute settlement period it
-- is due a minute later, so witn.settle() resolves it at occurred_at + 1 minute.
CREATE FUNCTION pg_temp.open_at(customer text, outcome text, agent text, action text, at timestamptz) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES (customer, outcome, action, agent, at);
$$;
-- What corrections have written: every refused call must leave this as it was.
CREATE FUNCTION pg_temp.written() RETURNS text LANGUAGE sql AS $$
    SELECT format('credits=%s notifications=%s reversed=%s credited=%s',
                  (SELECT count(*) FROM witn.credit_lines), (SELECT count(*) FROM witn.notifications),
                  (SELECT count(*) FROM witn.outcomes WHERE reversed_at IS NOT NULL OR reversal_reason IS NOT NULL),
                  (SELECT coalesce(sum(amount), 0) FROM witn.credit_lines))
$$;
-- The problem an error names (the part of its message before the colon), or 'no error'.
CREATE FUNCTION pg_temp.error_name(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN split_part(SQLERRM, ':', 1);
END $$;
-- throws_ok, then the error's name and that nothing was written: two tests per call.
CREATE FUNCTION pg_temp.rejects(sql text, code text, name text, description text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    before text := pg_temp.written();
BEGIN
    RETURN NEXT throws_ok(sql, code, NULL, description || ' (' || code || ')');
    RETURN NEXT is(pg_temp.error_name(sql) || '; ' || pg_temp.written(), name || '; ' || before,
                   description || ': ' || name || ', nothing written');
END $$;
-- The latest notification of a kind for an outcome.
CREATE FUNCTION pg_temp.ntf(outcome text, wanted text) RETURNS witn.notifications LANGUAGE sql AS $$
    SELECT * FROM witn.notifications WHERE outcome_id = pg_temp.o(outcome) AND kind = wanted ORDER BY id DESC LIMIT 1
$$;

-- =================================================================================================
-- 1. The agent's reversal policy.
-- =================================================================================================
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition) VALUES
                   ('bad', '[]', '[{"fact": "reopened", "operator": "seen"}]')$$,
    'WT001', 'VALIDATION_ERROR: reversal_condition and reversal_period go together',
    'a reversal_condition without a reversal_period is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_period) VALUES ('bad', '[]', '7 days')$$,
    'WT001', 'VALIDATION_ERROR: reversal_condition and reversal_period go together',
    'a reversal_period without a reversal_condition is refused');
SELECT throws_ok($$UPDATE witn.agents SET reversal_period = NULL WHERE key = 'support'$$,
    'WT001', 'VALIDATION_ERROR: reversal_condition and reversal_period go together',
    'removing only the period of a policy is refused');
SELECT throws_ok($$UPDATE witn.agents SET reversal_condition = NULL WHERE key = 'support'$$,
    'WT001', 'VALIDATION_ERROR: reversal_condition and reversal_period go together',
    'removing only the condition of a policy is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                   ('bad', '[]', '[{"fact": "reopened", "operator": "seen"}]', '0')$$,
    'WT001', 'VALIDATION_ERROR: reversal_period must be more than 0 and at most 180 days', 'a reversal_period of 0 is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                   ('bad', '[]', '[{"fact": "reopened", "operator": "seen"}]', '-1 day')$$,
    'WT001', 'VALIDATION_ERROR: reversal_period must be more than 0 and at most 180 days', 'a negative reversal_period is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                   ('bad', '[]', '[{"fact": "reopened", "operator": "seen"}]', '181 days')$$,
    'WT001', 'VALIDATION_ERROR: reversal_period must be more than 0 and at most 180 days', 'a reversal_period of 181 days is refused');
SELECT throws_ok($$UPDATE witn.agents SET reversal_period = '180 days 1 second' WHERE key = 'support'$$,
    'WT001', 'VALIDATION_ERROR: reversal_period must be more than 0 and at most 180 days',
    'an update to a second over 180 days is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                   ('bad', '[]', '[{"fact": "reopened", "operator": "bogus"}]', '7 days')$$,
    'WT001', NULL, 'a reversal_condition with an unknown operator is refused');
SELECT throws_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                   ('bad', '[]', '[{"fact": "", "operator": "seen"}]', '7 days')$$,
    'WT001', NULL, 'a reversal_condition with an empty fact is refused');
SELECT throws_ok($$UPDATE witn.agents SET reversal_condition = 'not json' WHERE key = 'support'$$,
    'WT001', NULL, 'a reversal_condition that is not JSON is refused');
SELECT is((SELECT count(*) FROM witn.agents WHERE key = 'bad'), 0::bigint, 'no refused agent was written');
SELECT is((SELECT format('%s %s %s', reversal_condition, reversal_period, version) FROM witn.agents WHERE key = 'support'),
    '[{"fact": "reopened", "operator": "seen"}] 7 days 1', 'and the refused updates left support''s policy as it was');
SELECT lives_ok($$INSERT INTO witn.agents (key, condition, reversal_condition, reversal_period) VALUES
                  ('edge', '[]', '[{"fact": "refund", "operator": "gte", "value": 1}]', '180 days')$$,
    'a valid policy with a reversal_period of exactly 180 days is accepted');
SELECT lives_ok($$INSERT INTO witn.agents (key, condition) VALUES ('nopolicy', '[]')$$, 'an agent without a policy is accepted');
SELECT is((SELECT format('%s %s', reversal_condition IS NULL, reversal_period IS NULL) FROM witn.agents WHERE key = 'nopolicy'),
    't t', 'and has neither column');

-- Snapshot: snap_old opens under snapper's first policy; the policy changes; snap_new opens under the new one.
SELECT pg_temp.open_at('globex', 'snap_old', 'snapper', 'resolved', now() - interval '2 minutes');
UPDATE witn.agents SET reversal_condition = '[{"fact": "refund", "operator": "seen"}]' WHERE key = 'snapper';
SELECT is((SELECT version FROM witn.agents WHERE key = 'snapper'), 2, 'editing reversal_condition bumps agents.version');
UPDATE witn.agents SET reversal_period = '14 days' WHERE key = 'snapper';
SELECT is((SELECT version FROM witn.agents WHERE key = 'snapper'), 3, 'editing reversal_period bumps agents.version');
UPDATE witn.agents SET reversal_period = '14 days' WHERE key = 'snapper';
SELECT is((SELECT version FROM witn.agents WHERE key = 'snapper'), 3, 'an update that changes nothing keeps the version');
UPDATE witn.agents SET reversal_condition = NULL, reversal_period = NULL WHERE key = 'edge';
SELECT is((SELECT format('%s %s %s', reversal_condition IS NULL, reversal_period IS NULL, version) FROM witn.agents WHERE key = 'edge'),
    't t 2', 'removing a whole policy is accepted and bumps the version');
SELECT pg_temp.open_at('globex', 'snap_new', 'snapper', 'resolved', now() - interval '2 minutes');
SELECT is((SELECT format('%s %s %s', reversal_condition, reversal_period, agent_version) FROM witn.outcomes WHERE key = 'snap_old'),
    '[{"fact": "reopened", "operator": "seen"}] 7 days 1',
    'an outcome keeps the reversal policy it opened with after the agent''s policy changed');
SELECT is((SELECT format('%s %s %s', reversal_condition, reversal_period, agent_version) FROM witn.outcomes WHERE key = 'snap_new'),
    '[{"fact": "refund", "operator": "seen"}] 14 days 3', 'an outcome opened after the change has the new policy');

-- witn_admin sets policies, also through witn_api.agents.
SET LOCAL ROLE witn_admin;
SELECT lives_ok($$INSERT INTO witn_api.agents (key, condition, reversal_condition, reversal_period) VALUES
                  ('api_agent', '[]', '[{"fact": "reopened", "operator": "seen"}]', '3 days')$$,
    'witn_admin creates an agent with a policy through witn_api.agents');
SELECT lives_ok($$UPDATE witn_api.agents SET reversal_period = '5 days' WHERE key = 'api_agent'$$,
    'and edits it there');
SELECT throws_ok($$UPDATE witn_api.agents SET reversal_condition = NULL WHERE key = 'api_agent'$$, 'WT001',
    'VALIDATION_ERROR: reversal_condition and reversal_period go together', 'the same rules hold through witn_api.agents');
RESET ROLE;
SELECT is((SELECT format('%s %s', reversal_period, version) FROM witn.agents WHERE key = 'api_agent'), '5 days 2',
    'witn_api.agents wrote the policy');

-- =================================================================================================
-- The outcomes the rest uses. Each one's first event is back-dated (due a minute after it) and
-- settled now, so resolved_at is in the past and the reversal window has begun.
-- =================================================================================================
SELECT pg_temp.open_at('globex', o, a, act, now() - ago)
  FROM (VALUES ('g_main', 'support', 'resolved', interval '2 minutes'),   -- credited, then reversed by hand
               ('g_full', 'support', 'resolved', interval '2 minutes'),   -- credited in full, then reversed
               ('g_auto', 'support', 'resolved', interval '2 minutes'),   -- reversed by its reversal condition
               ('g_noted', 'support', 'resolved', interval '2 minutes'),  -- an unrelated event in the window
               ('g_admin', 'support', 'resolved', interval '2 minutes'),  -- corrected by witn_admin
               ('g_api', 'support', 'resolved', interval '2 minutes'),    -- corrected through witn_api
               ('g_old', 'support', 'resolved', interval '9 days'),     -- its window has passed
               ('g_edge_in', 'support', 'resolved', interval '7 days 1 minute' - interval '1 microsecond'),
               ('g_edge_out', 'support', 'resolved', interval '7 days 1 minute'),
               ('g_failed', 'support', 'opened', interval '2 minutes'),   -- FAILED
               ('g_plain', 'plain', 'resolved', interval '2 minutes'),    -- no reversal policy
               ('g_survey', 'survey', 'resolved', interval '2 minutes'),
               ('g_partial', 'support', 'resolved', interval '2 minutes'), -- adjusted, then reversed by the condition
               ('g_combo', 'combo', 'warned', interval '2 minutes'),      -- warned before resolution, reopened after
               ('g_always', 'always', 'resolved', interval '2 minutes'),   -- reversal condition []
               ('g_props', 'support', 'resolved', interval '2 minutes'),  -- settles_at and attribution in the window
               ('g_dup', 'support', 'resolved', interval '2 minutes'),    -- a duplicate in the window
               ('g_backdated', 'support', 'resolved', interval '2 minutes')) v(o, a, act, ago);  -- a back-dated reopened
SELECT pg_temp.open_at('tokyo', 'j1', 'support', 'resolved', now() - interval '2 minutes');
SELECT pg_temp.open_at('zeroco', 'z1', 'support', 'resolved', now() - interval '2 minutes');
SELECT pg_temp.open_at('roundco', 'r1', 'support', 'resolved', now() - interval '2 minutes');
-- Last month's lines (November, run in December): resolved on the 10th, 11:00 UTC.
SELECT pg_temp.open_at('acme', o, 'support', 'resolved', (pg_temp.last_month() + interval '9 days 10 hours') AT TIME ZONE 'UTC')
  FROM (VALUES ('a_nov1'), ('a_nov2')) v(o);
SELECT * FROM witn.settle();
-- Not confirmed yet: pending (condition holds) and open ones.
SELECT pg_temp.open_at('globex', 'g_pending', 'support', 'resolved', now());
SELECT pg_temp.open_at('globex', 'g_open', 'support', 'opened', now());
SELECT is((SELECT string_agg(key || '=' || status, ' ' ORDER BY key) FROM witn.outcomes
            WHERE key IN ('g_main', 'g_failed', 'g_pending', 'g_open', 'a_nov1', 'g_old')),
    'a_nov1=CONFIRMED g_failed=FAILED g_main=CONFIRMED g_old=CONFIRMED g_open=OPEN g_pending=PENDING',
    'setup: confirmed, failed, pending and open outcomes');
SELECT is((SELECT billing_period FROM witn.invoice_lines WHERE outcome_key = 'a_nov1'), pg_temp.last_month(),
    'setup: the back-dated lines are billed last month');

-- =================================================================================================
-- 2. witn.credit_outcome: refusals (each writes nothing).
-- =================================================================================================
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, NULL, ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: a NULL amount');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, ''NaN'', ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: amount NaN');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, ''Infinity'', ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: amount Infinity');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, ''-Infinity'', ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: amount -Infinity');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 0, ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: amount 0');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, -1, ''goodwill'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: amount -1');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, NULL)', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: reason NULL');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, '''')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: reason empty');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, ''   '')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: reason blank');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, repeat(''x'', 1001))', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: reason of 1001 characters');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, ''reversal_condition'')', pg_temp.o('g_main')),
    'WT001', 'VALIDATION_ERROR', 'credit_outcome: the reserved reason reversal_condition');
SELECT pg_temp.rejects('SELECT * FROM witn.credit_outcome(987654321, 1, ''goodwill'')',
    'WT008', 'OUTCOME_NOT_FOUND', 'credit_outcome: an unknown outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, ''goodwill'')', pg_temp.o('g_open')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'credit_outcome: an OPEN outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, ''goodwill'')', pg_temp.o('g_pending')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'credit_outcome: a PENDING outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 1, ''goodwill'')', pg_temp.o('g_failed')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'credit_outcome: a FAILED outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 10.0051, ''goodwill'')', pg_temp.o('g_main')),
    'WT011', 'CREDIT_EXCEEDS_AMOUNT', 'credit_outcome: more than the line''s amount');
SELECT is((SELECT format('credits=%s notifications=%s reversed_at=%s reason=%s', (SELECT count(*) FROM witn.credit_lines),
                         (SELECT count(*) FROM witn.notifications WHERE kind IN ('outcome_credited', 'outcome_reversed')),
                         (SELECT reversed_at IS NULL FROM witn.outcomes WHERE key = 'g_main'),
                         (SELECT reversal_reason IS NULL FROM witn.outcomes WHERE key = 'g_main'))),
    'credits=0 notifications=0 reversed_at=t reason=t', 'after all those refusals: no credit, no notification, nothing reversed');

-- =================================================================================================
-- 3. Credits and reversals by hand.
-- =================================================================================================
CREATE TEMP TABLE adj AS SELECT * FROM witn.credit_outcome(pg_temp.o('g_main'), 3.3333, 'goodwill');
SELECT results_eq($$SELECT customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason, billing_period,
                           created_at FROM adj$$,
    format($$VALUES ('globex'::text, %s::bigint, 'g_main'::text, 'support'::text, 3.3333::numeric, 'USD'::text,
                     'adjustment'::text, 'goodwill'::text, %L::date, now())$$, pg_temp.o('g_main'), pg_temp.this_month()),
    'credit_outcome returns the adjustment: the outcome''s keys, the amount, the currency, this month');
SELECT is((SELECT count(*) FROM witn.credit_lines k JOIN adj USING (customer_key, id)), 1::bigint, 'and it is in witn.credit_lines');
SELECT is((SELECT format('%s reversed=%s reason=%s', status, reversed_at IS NOT NULL, reversal_reason IS NOT NULL)
             FROM witn.outcomes WHERE key = 'g_main'),
    'CONFIRMED reversed=f reason=f', 'an adjustment does not reverse the outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 6.6718, ''goodwill'')', pg_temp.o('g_main')),
    'WT011', 'CREDIT_EXCEEDS_AMOUNT', 'credit_outcome: more than what is left after an adjustment');

CREATE TEMP TABLE rev AS SELECT * FROM witn.reverse_outcome(pg_temp.o('g_main'), 'customer disputed');
SELECT results_eq($$SELECT outcome_key, amount, kind, reason, billing_period FROM rev$$,
    format($$VALUES ('g_main'::text, 6.6717::numeric, 'reversal'::text, 'customer disputed'::text, %L::date)$$, pg_temp.this_month()),
    'reverse_outcome credits exactly what is left (10.005 - 3.3333 = 6.6717)');
SELECT is((SELECT sum(amount) FROM witn.credit_lines WHERE outcome_id = pg_temp.o('g_main')), 10.005,
    'the outcome''s credits add up to its line''s amount exactly');
SELECT is((SELECT format('%s %s %s', status, reversed_at = now(), reversal_reason) FROM witn.outcomes WHERE key = 'g_main'),
    'CONFIRMED t customer disputed', 'reversed_at is the transaction''s start, reversal_reason the reason; status stays CONFIRMED');
SELECT is((SELECT format('%s %s', count(*), sum(amount) = 10.005) FROM witn.invoice_lines WHERE outcome_key = 'g_main'), '1 t',
    'the invoice line is untouched');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''again'')', pg_temp.o('g_main')),
    'WT012', 'ALREADY_REVERSED', 'reverse_outcome: a second reversal');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 0.0001, ''more'')', pg_temp.o('g_main')),
    'WT011', 'CREDIT_EXCEEDS_AMOUNT', 'credit_outcome: an adjustment after the reversal');

-- Credited in full by adjustments (exactly what is left is fine), then reversed: no credit row.
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('g_full'), 5, 'partial refund')), 5::numeric, 'a first adjustment');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 5.0051, ''rest'')', pg_temp.o('g_full')),
    'WT011', 'CREDIT_EXCEEDS_AMOUNT', 'credit_outcome: a hair more than what is left');
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('g_full'), 5.005, 'rest')), 5.005,
    'an adjustment of exactly what is left is accepted');
SELECT is((SELECT format('%s reversed=%s', status, reversed_at IS NOT NULL) FROM witn.outcomes WHERE key = 'g_full'), 'CONFIRMED reversed=f',
    'crediting everything by adjustments does not mark the outcome reversed');
SELECT is((SELECT count(*) FROM witn.reverse_outcome(pg_temp.o('g_full'), 'closing the dispute')), 0::bigint,
    'reverse_outcome with nothing left returns no row');
SELECT is((SELECT format('%s %s %s', status, reversed_at = now(), reversal_reason) FROM witn.outcomes WHERE key = 'g_full'),
    'CONFIRMED t closing the dispute', '... and still marks the outcome reversed');
SELECT is((SELECT count(*) FROM witn.credit_lines WHERE outcome_id = pg_temp.o('g_full')), 2::bigint,
    '... without writing a credit line');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''again'')', pg_temp.o('g_full')),
    'WT012', 'ALREADY_REVERSED', 'reverse_outcome: again, after a reversal with nothing left');

-- reverse_outcome refuses what credit_outcome refuses.
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, NULL)', pg_temp.o('g_noted')),
    'WT001', 'VALIDATION_ERROR', 'reverse_outcome: reason NULL');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, '' '')', pg_temp.o('g_noted')),
    'WT001', 'VALIDATION_ERROR', 'reverse_outcome: reason blank');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, repeat(''x'', 1001))', pg_temp.o('g_noted')),
    'WT001', 'VALIDATION_ERROR', 'reverse_outcome: reason of 1001 characters');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''reversal_condition'')', pg_temp.o('g_noted')),
    'WT001', 'VALIDATION_ERROR', 'reverse_outcome: the reserved reason reversal_condition');
SELECT pg_temp.rejects('SELECT * FROM witn.reverse_outcome(987654321, ''refund'')',
    'WT008', 'OUTCOME_NOT_FOUND', 'reverse_outcome: an unknown outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', pg_temp.o('g_open')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'reverse_outcome: an OPEN outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', pg_temp.o('g_pending')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'reverse_outcome: a PENDING outcome');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', pg_temp.o('g_failed')),
    'WT010', 'OUTCOME_NOT_CONFIRMED', 'reverse_outcome: a FAILED outcome');
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('g_noted'), 0.5, repeat('é', 1000))), 0.5,
    'a reason of exactly 1000 characters (not bytes) is accepted');

-- =================================================================================================
-- 4. Notifications.
-- =================================================================================================
SELECT is((SELECT string_agg(kind || ':' || coalesce(credit_id::text, '-'), ' ' ORDER BY id) FROM witn.notifications
            WHERE outcome_id = pg_temp.o('g_main')),
    format('outcome_succeed:- outcome_credited:%s outcome_reversed:%s', (SELECT id FROM adj), (SELECT id FROM rev)),
    'g_main: its resolution, then one notification per credit, each naming its credit_id');
SELECT is((SELECT customer_key FROM pg_temp.ntf('g_main', 'outcome_credited')), 'globex', 'a credit notification is the customer''s');
SELECT is((pg_temp.ntf('g_main', 'outcome_credited')).payload ->> 'id',
    format('ntf_%s_credit_%s', pg_temp.o('g_main'), (SELECT id FROM adj)), 'an adjustment''s payload id: ntf_<outcome>_credit_<credit>');
SELECT is((pg_temp.ntf('g_main', 'outcome_reversed')).payload ->> 'id', format('ntf_%s_reversed', pg_temp.o('g_main')),
    'a reversal''s payload id: ntf_<outcome>_reversed');
SELECT is((SELECT p ->> 'type' || ' ' || (p -> 'data' ->> 'status') || ' ' || (p -> 'data' ->> 'outcome_key') || ' '
                  || (p -> 'data' ->> 'customer_key') || ' ' || (p -> 'data' ->> 'agent_key') || ' ' || (p -> 'data' ->> 'currency')
                  || ' ' || (p -> 'data' ->> 'outcome_id') || ' ' || (p -> 'data' ->> 'reason')
                  || ' ' || coalesce(p -> 'data' ->> 'reversed_at', 'null')
             FROM (SELECT (pg_temp.ntf('g_main', 'outcome_credited')).payload AS p) x),
    format('outcome_credited CONFIRMED g_main globex support USD %s goodwill null', pg_temp.o('g_main')),
    'the adjustment''s payload: type, status CONFIRMED, the outcome''s keys, reason, reversed_at null');
SELECT is((SELECT jsonb_build_array(p -> 'amount', p -> 'credited', p -> 'remaining')
             FROM (SELECT (pg_temp.ntf('g_main', 'outcome_credited')).payload -> 'data' AS p) x),
    '[10.005, 3.3333, 6.6717]'::jsonb, 'the adjustment''s payload: amount, credited and remaining as exact JSON numbers');
SELECT is((pg_temp.ntf('g_main', 'outcome_credited')).payload -> 'data' -> 'credit',
    jsonb_build_object('id', (SELECT id FROM adj), 'kind', 'adjustment', 'amount', 3.3333, 'reason', 'goodwill',
                       'billing_period', pg_temp.this_month()),
    'the adjustment''s payload: its credit');
SELECT is((SELECT jsonb_build_array(p -> 'amount', p -> 'credited', p -> 'remaining', p -> 'reason', p -> 'status')
             FROM (SELECT (pg_temp.ntf('g_main', 'outcome_reversed')).payload -> 'data' AS p) x),
    '[10.005, 10.005, 0, "customer disputed", "CONFIRMED"]'::jsonb,
    'the reversal''s payload: amount, credited (all of it) and remaining 0, exact; the reason');
SELECT is((pg_temp.ntf('g_main', 'outcome_reversed')).payload -> 'data' -> 'credit',
    jsonb_build_object('id', (SELECT id FROM rev), 'kind', 'reversal', 'amount', 6.6717, 'reason', 'customer disputed',
                       'billing_period', pg_temp.this_month()),
    'the reversal''s payload: its credit');
SELECT is(((pg_temp.ntf('g_main', 'outcome_reversed')).payload -> 'data' ->> 'reversed_at')::timestamptz, now(),
    'the reversal''s payload: reversed_at');
SELECT is((SELECT format('%s %s %s', n.credit_id IS NULL, n.payload -> 'data' -> 'credit', n.payload ->> 'id')
             FROM pg_temp.ntf('g_full', 'outcome_reversed') n),
    format('t null ntf_%s_reversed', pg_temp.o('g_full')),
    'a reversal with nothing left still notifies: no credit_id, "credit": null');
SELECT is((SELECT jsonb_build_array(p -> 'amount', p -> 'credited', p -> 'remaining')
             FROM (SELECT (pg_temp.ntf('g_full', 'outcome_reversed')).payload -> 'data' AS p) x),
    '[10.005, 10.005, 0]'::jsonb, '... with credited and remaining as they are');
SELECT is((SELECT string_agg(kind, ' ' ORDER BY id) FROM witn.notifications WHERE outcome_id = pg_temp.o('g_full')),
    'outcome_succeed outcome_credited outcome_credited outcome_reversed', 'g_full: one notification per credit and one for the reversal');
SELECT is((SELECT count(*) FROM witn.notifications WHERE kind IN ('outcome_succeed', 'outcome_failed')
             GROUP BY outcome_id ORDER BY count(*) DESC LIMIT 1), 1::bigint, 'still one resolution notification per outcome');

-- =================================================================================================
-- 5. Invoices: net, rounded once; credits in the month they are issued, never a closed one.
-- =================================================================================================
-- zeroco's only line, reversed: exactly zero.
SELECT is((SELECT amount FROM witn.reverse_outcome(pg_temp.o('z1'), 'refund')), 10.005, 'zeroco: the reversal credits the whole line');
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount FROM witn.invoices WHERE customer_key = 'zeroco'$$,
    format($$VALUES (%L::date, 1::bigint, 1::bigint, 10.005::numeric, 10.005::numeric, 0::numeric, 0::numeric)$$, pg_temp.this_month()),
    'a fully reversed outcome nets to exactly 0');
SELECT is((SELECT format('%s %s', amount_exact = 0, amount) FROM witn.invoices WHERE customer_key = 'zeroco'), 't 0.00',
    'amount_exact is 0 and amount 0.00 (two minor units), not a rounding residue');
-- roundco: 10.005 charged, 0.001 credited: 10.004 rounds once to 10.00 (per line: 10.01 - 0.00).
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('r1'), 0.001, 'rounding')), 0.001, 'roundco: a credit of 0.001');
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount FROM witn.invoices WHERE customer_key = 'roundco'$$,
    format($$VALUES (%L::date, 1::bigint, 1::bigint, 10.005::numeric, 0.001::numeric, 10.004::numeric, 10.00::numeric)$$,
           pg_temp.this_month('UTC')),
    'charges 10.005, credits 0.001: amount_exact 10.004, amount 10.00, rounded once on the net');
SELECT is((SELECT billing_period FROM witn.credit_lines WHERE customer_key = 'roundco'), pg_temp.this_month('UTC'),
    'a UTC customer''s credit is billed in this month in UTC');
-- tokyo, in JPY (no minor units): 100.5 charged, 0.4 credited: 100.1 rounds to 100.
SELECT is((SELECT format('%s %s', currency, billing_period = pg_temp.this_month('Asia/Tokyo'))
             FROM witn.credit_outcome(pg_temp.o('j1'), 0.4, 'discount')), 'JPY t',
    'a credit is in the line''s currency (JPY), billed this month in Tokyo');
SELECT results_eq($$SELECT currency, lines, credit_count, charges, credits, amount_exact, amount FROM witn.invoices WHERE customer_key = 'tokyo'$$,
    $$VALUES ('JPY'::text, 1::bigint, 1::bigint, 100.5::numeric, 0.4::numeric, 100.1::numeric, 100::numeric)$$,
    'JPY: charges 100.5, credits 0.4, amount_exact 100.1, amount 100 (the currency''s minor units)');
-- acme: two lines last month. A credit issued now is billed this month, even for a line of last month.
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount, closed_at FROM witn.invoices WHERE customer_key = 'acme'$$,
    format($$VALUES (%L::date, 2::bigint, 0::bigint, 20.010::numeric, 0::numeric, 20.010::numeric, 20.01::numeric, NULL::timestamptz)$$,
           pg_temp.last_month()),
    'acme: last month, two lines of 10.005 (20.01)');
CREATE TEMP TABLE acme_last_month AS SELECT * FROM witn.invoices WHERE customer_key = 'acme' AND month = pg_temp.last_month();
SELECT is((SELECT billing_period FROM witn.credit_outcome(pg_temp.o('a_nov1'), 0.005, 'late fix')), pg_temp.this_month(),
    'a credit issued now on a line billed last month (still open) is billed this month');
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount FROM witn.invoices WHERE customer_key = 'acme' ORDER BY month$$,
    format($$VALUES (%L::date, 2::bigint, 0::bigint, 20.010::numeric, 0::numeric, 20.010::numeric, 20.01::numeric),
                    (%L::date, 0::bigint, 1::bigint, 0::numeric, 0.005::numeric, -0.005::numeric, -0.01::numeric)$$,
           pg_temp.last_month(), pg_temp.this_month()),
    'last month unchanged; this month has only the credit: -0.005 rounds half away from zero to -0.01');
SELECT is((SELECT count(*) FROM witn.close_period(pg_temp.last_month(), 'acme')), 1::bigint, 'acme closes last month');
SELECT is((SELECT billing_period FROM witn.reverse_outcome(pg_temp.o('a_nov2'), 'refund')), pg_temp.this_month(),
    'a reversal of a line of the closed month is billed this month');
SELECT is((SELECT amount FROM witn.credit_lines WHERE outcome_key = 'a_nov2'), 10.005, '... for the whole line');
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount
                      FROM witn.invoices WHERE customer_key = 'acme' AND month = pg_temp.last_month()$$,
    $$SELECT month, lines, credit_count, charges, credits, amount_exact, amount FROM acme_last_month$$,
    'the closed month''s invoice figures did not change');
SELECT isnt((SELECT closed_at FROM witn.invoices WHERE customer_key = 'acme' AND month = pg_temp.last_month()), NULL,
    '... and it shows as closed');
SELECT results_eq($$SELECT month, lines, credit_count, charges, credits, amount_exact, amount, closed_at FROM witn.invoices
                     WHERE customer_key = 'acme' AND month = pg_temp.this_month()$$,
    format($$VALUES (%L::date, 0::bigint, 2::bigint, 0::numeric, 10.010::numeric, -10.010::numeric, -10.01::numeric, NULL::timestamptz)$$,
           pg_temp.this_month()),
    'this month (open) has both credits: -10.01');
SELECT is((SELECT count(*) FROM witn.credit_lines WHERE billing_period <= pg_temp.last_month()), 0::bigint,
    'no credit is billed in a closed or past month');
SELECT results_eq($$SELECT * FROM witn_api.invoices WHERE customer_key IN ('acme', 'roundco') ORDER BY customer_key, month$$,
    $$SELECT customer_key, currency, month, lines, credit_count, charges, credits, amount_exact, amount, closed_at
        FROM witn.invoices WHERE customer_key IN ('acme', 'roundco') ORDER BY customer_key, month$$,
    'witn_api.invoices has the same columns and figures');

-- =================================================================================================
-- 6. Automatic reversal in the reversal window.
-- =================================================================================================
CREATE TEMP TABLE before_auto AS SELECT * FROM witn.outcomes WHERE key = 'g_auto';
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_auto', 'reopened');
SELECT is((SELECT format('%s %s %s', status, reversed_at = now(), reversal_reason) FROM witn.outcomes WHERE key = 'g_auto'),
    'CONFIRMED t reversal_condition', 'a reopened event in the window reverses the outcome in that statement; status stays CONFIRMED');
SELECT results_eq($$SELECT kind, reason, amount, billing_period FROM witn.credit_lines WHERE outcome_key = 'g_auto'$$,
    format($$VALUES ('reversal'::text, 'reversal_condition'::text, 10.005::numeric, %L::date)$$, pg_temp.this_month()),
    'it writes a reversal credit of what was left, reason reversal_condition');
SELECT is((SELECT format('late=%s after_resolution=%s', late, after_resolution) FROM witn.events WHERE key = 'g_auto' AND action = 'reopened'),
    'late=f after_resolution=t', 'the event is accepted, not late, and marked after_resolution');
SELECT is((SELECT format('accepted=%s late=%s reopened_seen=%s', o.accepted_events - b.accepted_events, o.late_events - b.late_events,
                         o.facts ? 'reopened')
             FROM witn.outcomes o, before_auto b WHERE o.key = 'g_auto'),
    'accepted=1 late=0 reopened_seen=t', 'accepted_events is incremented and the facts updated');
SELECT is((SELECT format('%s %s %s', o.settles_at = b.settles_at, o.resolved_at = b.resolved_at, o.scheduled_resolution)
             FROM witn.outcomes o, before_auto b WHERE o.key = 'g_auto'),
    't t CONFIRMED', 'settles_at and resolved_at do not change');
SELECT is((SELECT format('%s %s', count(*), sum(amount) = 10.005) FROM witn.invoice_lines WHERE outcome_key = 'g_auto'), '1 t',
    'the invoice line does not change');
SELECT is((SELECT format('%s %s %s', kind, credit_id = (SELECT id FROM witn.credit_lines WHERE outcome_key = 'g_auto'),
                         payload -> 'data' ->> 'reason')
             FROM pg_temp.ntf('g_auto', 'outcome_reversed')),
    'outcome_reversed t reversal_condition', 'and notifies outcome_reversed with the credit');
-- Another reopened event in the window: accepted, nothing more credited.
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_auto', 'reopened');
SELECT is((SELECT format('credits=%s accepted=%s late=%s', (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_auto'),
                         accepted_events - (SELECT accepted_events FROM before_auto), late_events)
             FROM witn.outcomes WHERE key = 'g_auto'),
    'credits=1 accepted=2 late=0', 'a later event in the window of a reversed outcome is accepted and credits nothing more');
SELECT pg_temp.rejects(format('SELECT * FROM witn.reverse_outcome(%s, ''by hand'')', pg_temp.o('g_auto')),
    'WT012', 'ALREADY_REVERSED', 'reverse_outcome after a reversal by the condition');
SELECT pg_temp.rejects(format('SELECT * FROM witn.credit_outcome(%s, 0.01, ''more'')', pg_temp.o('g_auto')),
    'WT011', 'CREDIT_EXCEEDS_AMOUNT', 'credit_outcome after a reversal by the condition');
-- A reversal by hand, then the condition holds: no second reversal.
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_main', 'reopened');
SELECT is((SELECT format('%s credits=%s late=%s', reversal_reason, (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_main'), late_events)
             FROM witn.outcomes WHERE key = 'g_main'),
    'customer disputed credits=2 late=0', 'the condition holding on an outcome reversed by hand changes nothing');

-- An unrelated action in the window: accepted, no reversal.
CREATE TEMP TABLE before_noted AS SELECT * FROM witn.outcomes WHERE key = 'g_noted';
INSERT INTO witn.events (customer_key, key, action, properties) VALUES ('globex', 'g_noted', 'noted', '{"value": 3}');
SELECT is((SELECT format('late=%s after_resolution=%s', late, after_resolution) FROM witn.events WHERE key = 'g_noted' AND action = 'noted'),
    'late=f after_resolution=t', 'an unrelated action in the window is accepted');
SELECT is((SELECT format('%s accepted+%s reversed=%s credits=%s', o.status, o.accepted_events - b.accepted_events, o.reversed_at IS NOT NULL,
                         (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_noted'))
             FROM witn.outcomes o, before_noted b WHERE o.key = 'g_noted'),
    'CONFIRMED accepted+1 reversed=f credits=1', '... and does not reverse (only the earlier adjustment)');

-- One statement: events for several outcomes, some reversing, some late.
CREATE TEMP TABLE before_many AS SELECT key, accepted_events, late_events FROM witn.outcomes;
INSERT INTO witn.events (customer_key, key, action) VALUES
    ('globex', 'g_old', 'reopened'), ('globex', 'g_edge_in', 'reopened'), ('globex', 'g_edge_out', 'reopened'),
    ('globex', 'g_failed', 'reopened'), ('globex', 'g_plain', 'reopened'), ('globex', 'snap_old', 'reopened'),
    ('globex', 'snap_new', 'reopened');
CREATE FUNCTION pg_temp.window_result(outcome text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s late=%s after_resolution=%s accepted+%s late+%s reversed=%s credits=%s', o.status,
                  (SELECT string_agg(e.late::text, ',') FROM witn.events e WHERE e.key = o.key AND e.action = 'reopened'),
                  (SELECT string_agg(e.after_resolution::text, ',') FROM witn.events e WHERE e.key = o.key AND e.action = 'reopened'),
                  o.accepted_events - b.accepted_events, o.late_events - b.late_events, o.reversed_at IS NOT NULL,
                  (SELECT count(*) FROM witn.credit_lines k WHERE k.outcome_id = o.id))
      FROM witn.outcomes o JOIN before_many b USING (key) WHERE o.key = outcome
$$;
SELECT is(pg_temp.window_result('g_old'),
    'CONFIRMED late=true after_resolution=false accepted+0 late+1 reversed=f credits=0',
    'an event after the reversal window (resolved 9 days ago, 7 day window) is late and does not reverse');
SELECT is(pg_temp.window_result('g_edge_in'),
    'CONFIRMED late=false after_resolution=true accepted+1 late+0 reversed=t credits=1',
    'an event a microsecond before the window closes reverses');
SELECT is(pg_temp.window_result('g_edge_out'),
    'CONFIRMED late=true after_resolution=false accepted+0 late+1 reversed=f credits=0',
    'an event at resolved_at + reversal_period exactly is late (the window is half-open)');
SELECT is(pg_temp.window_result('g_failed'),
    'FAILED late=true after_resolution=false accepted+0 late+1 reversed=f credits=0',
    'an event for a FAILED outcome is late');
SELECT is(pg_temp.window_result('g_plain'),
    'CONFIRMED late=true after_resolution=false accepted+0 late+1 reversed=f credits=0',
    'an event for a confirmed outcome of an agent without a policy is late');
SELECT is(pg_temp.window_result('snap_old'),
    'CONFIRMED late=false after_resolution=true accepted+1 late+0 reversed=t credits=1',
    'an outcome is reversed by the policy it opened with (reopened), though its agent''s changed');
SELECT is(pg_temp.window_result('snap_new'),
    'CONFIRMED late=false after_resolution=true accepted+1 late+0 reversed=f credits=0',
    '... and one opened under the new policy (refund) is not reversed by reopened');

-- What is left after an adjustment is what the condition reverses.
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('g_partial'), 2.5, 'partial refund')), 2.5, 'g_partial: an adjustment of 2.5');
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_partial', 'reopened');
SELECT results_eq($$SELECT kind, amount, reason FROM witn.credit_lines WHERE outcome_key = 'g_partial' ORDER BY id$$,
    $$VALUES ('adjustment'::text, 2.5::numeric, 'partial refund'::text), ('reversal', 7.505, 'reversal_condition')$$,
    'the reversal by the condition credits what was left after the adjustment (7.505)');
SELECT is((SELECT jsonb_build_array(p -> 'credited', p -> 'remaining', p -> 'credit' -> 'amount')
             FROM (SELECT (pg_temp.ntf('g_partial', 'outcome_reversed')).payload -> 'data' AS p) x),
    '[10.005, 0, 7.505]'::jsonb, '... and its notification says so');
-- The reversal condition holds over all accepted events, those before the resolution too.
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_combo', 'reopened');
SELECT is((SELECT format('%s %s', reversal_reason, (SELECT sum(amount) = 3 FROM witn.credit_lines WHERE outcome_key = 'g_combo'))
             FROM witn.outcomes WHERE key = 'g_combo'),
    'reversal_condition t', 'warned (before the resolution) and reopened (in the window): the condition holds over all accepted events');
-- An empty reversal condition holds at once: the first event in the window reverses.
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_always', 'noted');
SELECT is((SELECT format('%s %s', reversal_reason, (SELECT sum(amount) = 5 FROM witn.credit_lines WHERE outcome_key = 'g_always'))
             FROM witn.outcomes WHERE key = 'g_always'),
    'reversal_condition t', 'reversal condition []: any event in the window reverses');
-- An event in the window never moves settles_at and never re-bills.
CREATE TEMP TABLE before_props AS SELECT * FROM witn.outcomes WHERE key = 'g_props';
INSERT INTO witn.events (customer_key, key, action, properties) VALUES
    ('globex', 'g_props', 'noted', jsonb_build_object('settles_at', now() + interval '3 days', 'attribution', 5, 'value', 1));
SELECT is((SELECT format('late=%s after_resolution=%s', late, after_resolution) FROM witn.events WHERE key = 'g_props' AND action = 'noted'),
    'late=f after_resolution=t', 'an event with settles_at and attribution in the window is accepted');
SELECT is((SELECT format('%s %s %s', o.status, o.settles_at = b.settles_at, o.resolved_at = b.resolved_at)
             FROM witn.outcomes o, before_props b WHERE o.key = 'g_props'),
    'CONFIRMED t t', '... its settles_at does not move the outcome''s');
SELECT is((SELECT format('%s %s %s', count(*), sum(quantity) = 1, sum(amount) = 10.005) FROM witn.invoice_lines WHERE outcome_key = 'g_props'),
    '1 t t', '... and its attribution does not re-bill: the one invoice line is as it was');
SELECT is((SELECT string_agg(kind, ' ') FROM witn.notifications WHERE outcome_id = pg_temp.o('g_props')), 'outcome_succeed',
    '... and nothing is notified again');
-- A duplicate (same idempotency key) in the window is not applied twice.
INSERT INTO witn.events (customer_key, key, action, idempotency_key, occurred_at) VALUES
    ('globex', 'g_dup', 'noted', 'g-dup-1', now() - interval '1 minute');
INSERT INTO witn.events (customer_key, key, action, idempotency_key, occurred_at) VALUES
    ('globex', 'g_dup', 'noted', 'g-dup-1', now() - interval '1 minute');
SELECT is((SELECT format('accepted=%s late=%s duplicates=%s', accepted_events, late_events,
                         (SELECT count(*) FROM witn.events WHERE key = 'g_dup' AND duplicate_of IS NOT NULL))
             FROM witn.outcomes WHERE key = 'g_dup'),
    'accepted=2 late=0 duplicates=1', 'a duplicate in the window is recorded as one, applied once');
-- Arrival decides, not occurred_at: a reopened back-dated before the resolution, arriving in the window.
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('globex', 'g_backdated', 'reopened', now() - interval '3 hours');
SELECT is((SELECT format('late=%s reversed=%s', (SELECT late FROM witn.events WHERE key = 'g_backdated' AND action = 'reopened'),
                         reversal_reason) FROM witn.outcomes WHERE key = 'g_backdated'),
    'late=f reversed=reversal_condition', 'an event arriving in the window counts, whenever it occurred');

-- A reversal condition of two leaves: reopened seen AND the latest csat at most 2.
CREATE TEMP TABLE before_survey AS SELECT * FROM witn.outcomes WHERE key = 'g_survey';
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_survey', 'reopened');
SELECT is((SELECT format('%s %s', reversed_at IS NOT NULL, (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_survey'))
             FROM witn.outcomes WHERE key = 'g_survey'), 'f 0', 'two leaves: reopened alone does not reverse');
SELECT results_eq($$SELECT condition_name, leaf, fact, passes FROM witn.explain(pg_temp.o('g_survey')) ORDER BY condition_name, leaf$$,
    $$VALUES ('condition'::text, 0, 'resolved'::text, true), ('reversal_condition', 0, 'reopened', true),
             ('reversal_condition', 1, 'csat', false)$$,
    'explain: the condition''s leaf, and the reversal condition''s leaves with what passes');
INSERT INTO witn.events (customer_key, key, action, properties) VALUES ('globex', 'g_survey', 'csat', '{"value": 4}');
SELECT is((SELECT format('%s %s', reversed_at IS NOT NULL, (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_survey'))
             FROM witn.outcomes WHERE key = 'g_survey'), 'f 0', 'two leaves: a csat of 4 does not reverse');
INSERT INTO witn.events (customer_key, key, action, properties) VALUES ('globex', 'g_survey', 'csat', '{"value": 2}');
SELECT is((SELECT format('%s %s accepted+%s %s', status, reversal_reason, accepted_events - (SELECT accepted_events FROM before_survey),
                         (SELECT string_agg(kind || ' ' || (amount = 4), ',') FROM witn.credit_lines WHERE outcome_key = 'g_survey'))
             FROM witn.outcomes WHERE key = 'g_survey'),
    'CONFIRMED reversal_condition accepted+3 reversal true', 'two leaves: the csat of 2 makes both hold and reverses the whole 4');

-- =================================================================================================
-- 7. explain, replay, verify.
-- =================================================================================================
SELECT results_eq($$SELECT condition_name, leaf, fact, passes, reversed_at = now() FROM witn.explain(pg_temp.o('g_survey')) ORDER BY condition_name, leaf$$,
    $$VALUES ('condition'::text, 0, 'resolved'::text, true, true), ('reversal_condition', 0, 'reopened', true, true),
             ('reversal_condition', 1, 'csat', true, true)$$,
    'explain after the reversal: every reversal leaf passes, reversed_at on every row');
SELECT results_eq($$SELECT condition_name, leaf, fact, passes FROM witn.explain(pg_temp.o('g_noted')) ORDER BY condition_name, leaf$$,
    $$VALUES ('condition'::text, 0, 'resolved'::text, true), ('reversal_condition', 0, 'reopened', false)$$,
    'explain of a confirmed outcome whose reversal condition does not hold');
SELECT results_eq($$SELECT condition_name, fact, passes FROM witn.explain(pg_temp.o('g_plain'))$$,
    $$VALUES ('condition'::text, 'resolved'::text, true)$$, 'explain of an outcome without a policy: only condition rows');
SELECT results_eq($$SELECT condition_name, fact, passes FROM witn.explain(pg_temp.o('g_pending'))$$,
    $$VALUES ('condition'::text, 'resolved'::text, true)$$, 'explain of a pending outcome with a policy: only condition rows');
SELECT is((SELECT string_agg(key || '=' || (witn.replay(id)).matches, ' ' ORDER BY key) FROM witn.outcomes
            WHERE key IN ('g_main', 'g_full', 'g_auto', 'g_noted', 'g_survey', 'g_edge_in', 'g_edge_out', 'g_old', 'snap_old', 'z1', 'a_nov2',
                          'g_partial', 'g_combo', 'g_always', 'g_props', 'g_dup', 'g_backdated')),
    'a_nov2=true g_always=true g_auto=true g_backdated=true g_combo=true g_dup=true g_edge_in=true g_edge_out=true g_full=true '
    'g_main=true g_noted=true g_old=true g_partial=true g_props=true g_survey=true snap_old=true z1=true',
    'replay matches after reversals by condition and by hand, and after events in and after the window');
SELECT is_empty('SELECT * FROM witn.verify()', 'verify finds no outcome that differs from its log');

-- =================================================================================================
-- 8. Roles.
-- =================================================================================================
SELECT ok(has_function_privilege('witn_admin', 'witn.reverse_outcome(bigint, text)', 'EXECUTE')
          AND has_function_privilege('witn_admin', 'witn.credit_outcome(bigint, numeric, text)', 'EXECUTE'),
    'witn_admin may execute reverse_outcome and credit_outcome');
-- The ids, known beforehand: witn_ingest may not read witn.outcomes.
SELECT pg_temp.o('g_admin') AS g_admin, pg_temp.o('g_pending') AS g_pending \gset
SET LOCAL ROLE witn_reader;
SELECT throws_ok(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', pg_temp.o('g_admin')), '42501', NULL, 'witn_reader may not reverse');
SELECT throws_ok(format('SELECT * FROM witn.credit_outcome(%s, 1, ''refund'')', pg_temp.o('g_admin')), '42501', NULL, 'witn_reader may not credit');
RESET ROLE;
SET LOCAL ROLE witn_ingest;
SELECT throws_ok(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', :g_admin), '42501', NULL, 'witn_ingest may not reverse');
SELECT throws_ok(format('SELECT * FROM witn.credit_outcome(%s, 1, ''refund'')', :g_admin), '42501', NULL, 'witn_ingest may not credit');
RESET ROLE;
SELECT set_config('request.jwt.claims', '{"role": "witn_customer", "customer_key": "globex"}', true);
SET LOCAL ROLE witn_customer;
SELECT throws_ok(format('SELECT * FROM witn.reverse_outcome(%s, ''refund'')', pg_temp.o('g_admin')), '42501', NULL,
    'witn_customer may not reverse, not even its own outcome');
SELECT throws_ok(format('SELECT * FROM witn.credit_outcome(%s, 1, ''refund'')', pg_temp.o('g_admin')), '42501', NULL,
    'witn_customer may not credit');
SELECT throws_ok(format('SELECT * FROM witn_api.reverse_outcome(%s, ''refund'')', pg_temp.o('g_admin')), '42501', NULL,
    'witn_customer may not call witn_api.reverse_outcome');
SELECT throws_ok(format('SELECT * FROM witn_api.credit_outcome(%s, 1, ''refund'')', pg_temp.o('g_admin')), '42501', NULL,
    'witn_customer may not call witn_api.credit_outcome');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);
SELECT is((SELECT format('%s %s', reversed_at IS NOT NULL, (SELECT count(*) FROM witn.credit_lines WHERE outcome_key = 'g_admin'))
             FROM witn.outcomes WHERE key = 'g_admin'), 'f 0', 'none of the refused calls credited anything');

SET LOCAL ROLE witn_admin;
SELECT is((SELECT amount FROM witn.credit_outcome(pg_temp.o('g_admin'), 1.5, 'admin goodwill')), 1.5, 'witn_admin credits');
SELECT is((SELECT amount FROM witn.reverse_outcome(pg_temp.o('g_admin'), 'admin refund')), 8.505, 'witn_admin reverses (the rest)');
SELECT is((SELECT amount FROM witn_api.credit_outcome(pg_temp.o('g_api'), 2, 'api goodwill')), 2::numeric,
    'witn_admin credits through witn_api.credit_outcome');
SELECT is((SELECT format('%s %s', kind, amount = 8.005) FROM witn_api.reverse_outcome(pg_temp.o('g_api'), 'api refund')), 'reversal t',
    'witn_admin reverses through witn_api.reverse_outcome');
-- 9. Nobody writes witn.credit_lines directly, not even witn_admin.
SELECT throws_ok(format($$INSERT INTO witn.credit_lines (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind,
                          reason, billing_period) VALUES ('globex', %s, 'g_pending', 'support', 1, 'USD', 'adjustment', 'x', %L)$$,
                        pg_temp.o('g_pending'), pg_temp.this_month()),
    '42501', NULL, 'witn_admin may not INSERT into witn.credit_lines');
SELECT throws_ok($$UPDATE witn.credit_lines SET amount = 0.01 WHERE outcome_key = 'g_admin'$$, '42501', NULL,
    'witn_admin may not UPDATE witn.credit_lines');
SELECT throws_ok($$DELETE FROM witn.credit_lines WHERE outcome_key = 'g_admin'$$, '42501', NULL,
    'witn_admin may not DELETE from witn.credit_lines');
SELECT throws_ok(format('SELECT * FROM witn.issue_credit(%s, ''adjustment'', 1, ''x'')', pg_temp.o('g_pending')), '42501', NULL,
    'witn_admin may not call the internal witn.issue_credit');
RESET ROLE;
SET LOCAL ROLE witn_ingest;
SELECT throws_ok(format($$INSERT INTO witn.credit_lines (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind,
                          reason, billing_period) VALUES ('globex', %s, 'g_pending', 'support', 1, 'USD', 'adjustment', 'x', %L)$$,
                        :g_pending, pg_temp.this_month()),
    '42501', NULL, 'witn_ingest may not INSERT into witn.credit_lines');
RESET ROLE;
SELECT is((SELECT format('%s %s', count(*), sum(amount) = 10.005) FROM witn.credit_lines WHERE outcome_key IN ('g_admin', 'g_pending')), '2 t',
    'the refused writes changed nothing');

-- A customer sees its own credits and invoices.
SELECT set_config('request.jwt.claims', '{"role": "witn_customer", "customer_key": "acme"}', true);
SET LOCAL ROLE witn_customer;
SELECT is((SELECT string_agg(DISTINCT customer_key, ',') || ' ' || count(*) FROM witn.credit_lines), 'acme 2',
    'witn_customer acme: its two credit lines in witn.credit_lines, nobody else''s');
SELECT is((SELECT string_agg(DISTINCT customer_key, ',') || ' ' || count(*) FROM witn_api.credit_lines), 'acme 2',
    '... and in witn_api.credit_lines');
SELECT is((SELECT string_agg(DISTINCT customer_key, ',') || ' ' || count(*) FROM witn.invoices), 'acme 2',
    '... its two invoice months in witn.invoices');
SELECT is((SELECT string_agg(DISTINCT customer_key, ',') || ' ' || count(*) FROM witn_api.invoices), 'acme 2',
    '... and in witn_api.invoices');
SELECT is((SELECT sum(credits) FROM witn_api.invoices), 10.010, '... with its own credits only');
SELECT is((SELECT string_agg(DISTINCT customer_key, ',') FROM witn.notifications WHERE kind IN ('outcome_credited', 'outcome_reversed')),
    'acme', '... and its own credit notifications');
RESET ROLE;
SELECT set_config('request.jwt.claims', '{"role": "witn_admin", "customer_key": "acme"}', true);
SET LOCAL ROLE witn_customer;
SELECT is((SELECT count(*) FROM witn.credit_lines) + (SELECT count(*) FROM witn_api.invoices), 0::bigint,
    'witn_customer with a token issued for another role sees no credit and no invoice');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true);
SET LOCAL ROLE witn_reader;
SELECT is((SELECT string_agg(DISTINCT customer_key, ',' ORDER BY customer_key) FROM witn_api.credit_lines), 'acme,globex,roundco,tokyo,zeroco',
    'witn_reader sees every customer''s credits');
RESET ROLE;

-- A confirmed outcome whose resolved_at lies ahead (settled with an as_of in the future) has no
-- window yet: an event now is late.
SELECT pg_temp.open_at('globex', 'g_future', 'support', 'resolved', now());
SELECT * FROM witn.settle(now() + interval '2 minutes');
INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g_future', 'reopened');
SELECT is((SELECT format('%s resolved_ahead=%s late=%s reversed=%s', o.status, o.resolved_at > now(), e.late, o.reversed_at IS NOT NULL)
             FROM witn.outcomes o JOIN witn.events e ON e.key = o.key AND e.action = 'reopened' WHERE o.key = 'g_future'),
    'CONFIRMED resolved_ahead=t late=t reversed=f', 'an event before resolved_at is not in the window: late, no reversal');
SELECT is_empty('SELECT * FROM witn.verify()', 'verify, at the end: every outcome matches its log');

-- ---- the billed quantity is final; who issued a credit ------------------------------------------
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method, reversal_condition, reversal_period)
VALUES ('metered_rev', '[{"fact": "used", "operator": "seen"}]', '1 minute', 'sum', '[{"fact": "refunded", "operator": "seen"}]', '7 days');
INSERT INTO witn.rate_card_prices VALUES ('std', 'metered_rev', 2);
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
VALUES ('acme', 'qty_final', 'used', 'metered_rev', '{"attribution": 3}', now() - interval '2 minutes');
SELECT * FROM witn.settle();
INSERT INTO witn.events (customer_key, key, action, properties) VALUES ('acme', 'qty_final', 'used', '{"attribution": 5}');
SELECT is((SELECT quantity || '/' || accepted_events || '/' || (SELECT amount FROM witn.invoice_lines WHERE outcome_id = o.id)
             FROM witn.outcomes o WHERE key = 'qty_final'),
          '3/2/6', 'an event in the window is accepted, but its attribution does not change the billed quantity (3) or the line (6)');
SELECT is((SELECT count(*) FROM witn.replay(pg_temp.o('qty_final')) WHERE matches), 1::bigint,
          'replay agrees: the window event''s attribution is not folded');
SET LOCAL ROLE witn_admin;
SELECT set_config('request.jwt.claims', '{"role": "witn_admin", "sub": "finance@vendor.example"}', true);
SELECT is((SELECT created_by FROM witn.credit_outcome(pg_temp.o('qty_final'), 1, 'who issued it')),
          'finance@vendor.example', 'created_by is the token''s sub claim when there is one');
SELECT set_config('request.jwt.claims', '', true);
SELECT is((SELECT created_by FROM witn.credit_outcome(pg_temp.o('qty_final'), 1, 'who issued it, no token')),
          session_user::text, 'created_by is the session user without claims');
RESET ROLE;

-- ---- an event for a due outcome that settlement has not confirmed yet -----------------------------
-- settles_at passed a minute ago, pg_cron has not run: with a reversal policy the outcome is
-- settled first (as of settles_at, its line and notification), then the event is in its window.
SELECT pg_temp.open_at('acme', 'due_first', 'support', 'resolved', now() - interval '2 minutes');
SELECT pg_temp.open_at('acme', 'due_plain', 'plain', 'resolved', now() - interval '2 minutes');
INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'due_first', 'reopened'), ('acme', 'due_plain', 'reopened');
SELECT is((SELECT status || '/' || (resolved_at = settles_at) || '/' || (reversal_reason IS NOT DISTINCT FROM 'reversal_condition')
             FROM witn.outcomes WHERE key = 'due_first'),
          'CONFIRMED/true/true', 'a due outcome is confirmed as of its settles_at before the event, which reverses it');
SELECT is((SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines WHERE outcome_key = 'due_first'), '1 10.005',
          '... its invoice line written once, at the confirmation');
SELECT is((SELECT string_agg(kind, ' ' ORDER BY id) FROM witn.notifications WHERE outcome_id = pg_temp.o('due_first')),
          'outcome_succeed outcome_reversed', '... and its two notifications, in order');
SELECT is((SELECT late || '/' || after_resolution FROM witn.events WHERE key = 'due_first' AND action = 'reopened'),
          'false/true', '... the event was taken in the reversal window');
SELECT is((SELECT status || '/' || late_events || '/' || (SELECT late FROM witn.events WHERE key = 'due_plain' AND action = 'reopened')
             FROM witn.outcomes WHERE key = 'due_plain'),
          'PENDING/1/true', 'without a reversal policy the event is late and the outcome waits for settlement, as before');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'verify() agrees with the outcomes settled before their events');

SELECT * FROM finish();
ROLLBACK;
