-- Operations (CONTRACT §24, §25): witn_operator runs settlement, retention, redelivery and the
-- monitoring views with nothing else granted; settle() as of a later time than now() is a
-- superuser's; a role that may not settle is told what to grant. witn.purge_events deletes the
-- events of outcomes resolved before a time whose reversal period has ended, in bounded batches;
-- the outcomes, lines, credits and notifications stay; explain still explains; replay, verify and
-- simulate skip them and say so; a late event after the purge changes nothing. Settlement errors
-- and delivered webhooks have their purges. The monitoring views count what they should.
BEGIN;
SELECT plan(68);
SET LOCAL TimeZone = 'UTC';

-- A month of history, settled as of now: every outcome's events occurred 30 or 20 days ago.
INSERT INTO witn.rate_cards (key, currency) VALUES ('ops_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'ops_usd'), ('globex', 'ops_usd');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('support', '[{"fact": "replied", "operator": "seen"}]', '1 day');
-- Confirmed outcomes of this agent stay reversible for 25 days after they resolve.
INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
    ('onboard', '[{"fact": "activated", "operator": "seen"}]', '1 day', '[{"fact": "churned", "operator": "seen"}]', '25 days');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('ops_usd', 'support', 2), ('ops_usd', 'onboard', 5);

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT c, 'old-' || i, 'replied', 'support', now() - interval '30 days'
  FROM unnest(ARRAY['acme', 'globex']) c, generate_series(1, 5) i;
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT 'acme', 'old-' || i, 'note', 'support', now() - interval '30 days' + interval '1 hour'
  FROM generate_series(1, 5) i;
-- Failed: no reply.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'silent', 'opened', 'support', now() - interval '30 days');
-- Newer: resolved 19 days ago.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'newer', 'replied', 'support', now() - interval '20 days');
-- onboard: confirmed 29 days ago, still in its 25-day window? No: 29 > 25, it has ended.
-- confirmed 19 days ago: in its window. Failed 29 days ago: no window.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES
    ('acme', 'onb-ended', 'activated', 'onboard', now() - interval '30 days'),
    ('acme', 'onb-window', 'activated', 'onboard', now() - interval '20 days'),
    ('acme', 'onb-failed', 'started', 'onboard', now() - interval '30 days');
-- Open: not due.
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'open', 'replied', 'support');
SELECT results_eq('SELECT confirmed, failed, errors FROM witn.settle()', $$ VALUES (13::bigint, 2::bigint, 0::bigint) $$,
    'the history settles: 13 confirmed, 2 failed');
CREATE TEMP TABLE before_purge AS
    SELECT o.id, o.key, o.customer_key, o.status, o.resolved_at, o.facts, o.accepted_events,
           (SELECT count(*) FROM witn.events e WHERE e.customer_key = o.customer_key AND e.key = o.key) AS events
      FROM witn.outcomes o;
CREATE TEMP TABLE lines_before AS SELECT * FROM witn.invoice_lines;
CREATE TEMP TABLE notifications_before AS SELECT * FROM witn.notifications;

-- ---------------------------------------------------------------------------------------------
-- witn_operator: settlement.
-- ---------------------------------------------------------------------------------------------
SELECT is((SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL), 1::bigint, 'the history is settled but for the open outcome');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'witn.settle(timestamptz, integer)'::regprocedure), false,
    'settle() runs with its caller''s rights (and checks current_user); a witn_operator goes through settle_as_operator');
SET LOCAL ROLE witn_operator;
SELECT lives_ok('SELECT witn.settle()', 'witn_operator settles, as of now(), with no other grant');
SELECT lives_ok('SELECT witn.settle(now() - interval ''1 hour'', 10)', 'and as of an earlier time');
SELECT throws_ok('SELECT witn.settle(now() + interval ''1 day'')', '42501',
    'permission denied: witn.settle() as of a time later than now() is for superusers only',
    'witn_operator may not settle ahead of the clock');
RESET ROLE;
SET LOCAL ROLE witn_admin;
SELECT lives_ok('SELECT witn.settle()', 'witn_admin settles (it is a witn_operator)');
SELECT throws_ok('SELECT witn.settle(now() + interval ''1 minute'')', '42501', NULL, 'nor may witn_admin settle ahead');
RESET ROLE;
SELECT lives_ok('SELECT witn.settle(now() + interval ''1 minute'')', 'a superuser may (a test database)');

CREATE FUNCTION pg_temp.error_of(role text, statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text; msg text; hint text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    BEGIN
        EXECUTE statement;
        RESET ROLE;
        RETURN 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
        RESET ROLE;
        RETURN state || ': ' || msg || ' | ' || coalesce(hint, '');
    END;
END $$;
SELECT is(pg_temp.error_of('witn_ingest', 'SELECT witn.settle()'),
    '42501: permission denied: witn.settle() is witn_operator''s, and witn_ingest is not one | GRANT witn_operator TO witn_ingest;',
    'witn_ingest calling settle() is refused with the GRANT that would allow it');
SELECT is(pg_temp.error_of('witn_reader', 'SELECT witn.purge_events(now() - interval ''1 year'')'),
    '42501: permission denied for function purge_events | ',
    'witn_reader may not purge (PostgreSQL''s own refusal: the purges are granted to witn_operator)');
SELECT is(left(pg_temp.error_of('witn_customer', 'SELECT witn.purge_settlement_errors(now())'), 5), '42501',
    'witn_customer may not purge settlement errors');

SELECT is(pg_temp.error_of('witn_operator', 'SELECT witn.settle_as_operator(now() + interval ''1 day'', NULL)'),
    '42501: permission denied: witn.settle() as of a time later than now() is for superusers only | Call witn.settle() without as_of (it settles as of now()); settling ahead is for test databases, as a superuser.',
    'nor by calling settle_as_operator directly');
SELECT is(left(pg_temp.error_of('witn_reader', 'SELECT witn.settle_as_operator(now(), NULL)'), 5), '42501',
    'settle_as_operator is witn_operator''s only');
-- A security-restricted operation (here an index expression that a superuser's ANALYZE or
-- autovacuum evaluates as the table's owner) runs with the owner's rights: a non-operator's
-- function cannot settle, let alone ahead, through a superuser.
CREATE ROLE ops_mal_test;
GRANT witn_reader TO ops_mal_test;
CREATE SCHEMA ops_mal AUTHORIZATION ops_mal_test;
SET LOCAL ROLE ops_mal_test;
CREATE FUNCTION ops_mal.f(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM witn.settle(now() + interval '1 day');
    RETURN x;
END $f$;
CREATE TABLE ops_mal.t (x integer);
INSERT INTO ops_mal.t VALUES (1), (2);
RESET ROLE;
SELECT throws_ok('CREATE INDEX ON ops_mal.t (ops_mal.f(x))', '42501',
    'permission denied: witn.settle() is witn_operator''s, and ops_mal_test is not one',
    'settle() called in a security-restricted operation started by a superuser is refused: it runs as the table''s owner');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE key = 'open' AND resolved_at IS NOT NULL), 0::bigint, 'and settles nothing');

-- A login role given witn_operator, as docs/operations.md says, and nothing else.
CREATE ROLE ops_login_test LOGIN;
GRANT witn_operator TO ops_login_test;
SELECT is(pg_temp.error_of('ops_login_test', 'SELECT witn.settle()'), 'no error', 'a login role with GRANT witn_operator settles');
SELECT is(pg_temp.error_of('ops_login_test', 'SELECT * FROM witn.settlement_backlog'), 'no error', 'and reads the monitoring views');
SELECT is(left(pg_temp.error_of('ops_login_test', 'SELECT count(*) FROM witn.outcomes'), 5), '42501',
    'but not the outcomes (no customer''s business rows)');
SELECT is(left(pg_temp.error_of('ops_login_test', 'SELECT secret FROM witn.webhook_endpoints'), 5), '42501',
    'nor the webhook endpoints'' secrets');
SELECT is(left(pg_temp.error_of('ops_login_test', 'DELETE FROM witn.events'), 5), '42501', 'nor delete events directly');
SELECT is(left(pg_temp.error_of('ops_login_test', 'SELECT witn.close_period(''2026-01-01'')'), 5), '42501', 'nor close months');

-- ---------------------------------------------------------------------------------------------
-- The monitoring views.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq('SELECT due, checks_due FROM witn.settlement_backlog', $$ VALUES (0::bigint, 0::bigint) $$,
    'settlement_backlog: nothing due once settled');
UPDATE witn.outcomes SET settles_at = now() - interval '10 minutes', check_at = now() - interval '10 minutes'
 WHERE key = 'open';
SELECT results_eq('SELECT due, checks_due, oldest_due_at, oldest_due_age FROM witn.settlement_backlog',
    $$ VALUES (1::bigint, 1::bigint, now() - interval '10 minutes', interval '10 minutes') $$,
    'settlement_backlog: an outcome due 10 minutes ago and not settled shows, with its age');
UPDATE witn.outcomes SET settles_at = now() + interval '1 day', check_at = now() + interval '1 day' WHERE key = 'open';

INSERT INTO witn.settlement_errors (customer_key, outcome_id, sqlstate, message, occurred_at) VALUES
    ('acme', 1, 'XX000', 'boom', now() - interval '40 days'),
    ('acme', 1, 'XX000', 'boom', now() - interval '1 day'),
    ('globex', 2, '55000', 'version', now());
SELECT results_eq('SELECT sqlstate, errors, outcomes, first_at, last_at FROM witn.settlement_error_summary ORDER BY sqlstate',
    $$ VALUES ('55000', 1::bigint, 1::bigint, now(), now()),
              ('XX000', 2::bigint, 1::bigint, now() - interval '40 days', now() - interval '1 day') $$,
    'settlement_error_summary: errors per SQLSTATE, the outcomes, first and last');
SET LOCAL ROLE witn_operator;
SELECT is(witn.purge_settlement_errors(now() - interval '30 days'), 1::bigint, 'purge_settlement_errors deletes the older ones (as witn_operator)');
RESET ROLE;
SELECT is((SELECT count(*) FROM witn.settlement_errors), 2::bigint, 'and keeps the rest');
SELECT throws_ok('SELECT witn.purge_settlement_errors(NULL)', 'WT001', NULL, 'a NULL time is refused');

INSERT INTO witn.webhook_endpoints (url) VALUES ('http://127.0.0.1:9/hook');
SELECT is((SELECT count(*) FROM witn.webhook_deliveries), 0::bigint, 'no deliveries before the endpoint');
INSERT INTO witn.webhook_deliveries (customer_key, notification_id, endpoint_id, status, attempts, next_attempt_at, delivered_at, created_at)
SELECT n.customer_key, n.id, (SELECT id FROM witn.webhook_endpoints), s.status, s.attempts, s.next_at, s.delivered_at, now() - s.age
  FROM (SELECT * FROM witn.notifications ORDER BY id LIMIT 5) n
  JOIN (VALUES (1, 'delivered', 1, NULL::timestamptz, now() - interval '40 days', interval '40 days'),
               (2, 'delivered', 1, NULL, now() - interval '2 days', interval '2 days'),
               (3, 'pending', 0, now() - interval '1 minute', NULL, interval '5 minutes'),
               (4, 'pending', 2, now() + interval '1 hour', NULL, interval '2 hours'),
               (5, 'failed', 8, NULL, NULL, interval '50 days')) s(i, status, attempts, next_at, delivered_at, age)
    ON s.i = (SELECT count(*) FROM witn.notifications m WHERE m.id <= n.id);
SELECT results_eq('SELECT pending, due, retrying, oldest_pending_at, oldest_pending_age, failed FROM witn.webhook_backlog',
    $$ VALUES (2::bigint, 1::bigint, 1::bigint, now() - interval '2 hours', interval '2 hours', 1::bigint) $$,
    'webhook_backlog: pending, due, retrying, the oldest pending one and failed');
SET LOCAL ROLE witn_operator;
SELECT is(witn.purge_webhook_deliveries(now() - interval '30 days'), 1::bigint, 'purge_webhook_deliveries deletes the delivered ones older than the time');
RESET ROLE;
SELECT results_eq('SELECT status, count(*) FROM witn.webhook_deliveries GROUP BY 1 ORDER BY 1',
    $$ VALUES ('delivered', 1::bigint), ('failed', 1::bigint), ('pending', 2::bigint) $$,
    'pending and failed deliveries stay, whatever their age');
SELECT is((SELECT count(*) FROM witn.notifications), (SELECT count(*) FROM notifications_before), 'their notifications stay');

ANALYZE witn.events, witn.outcomes;
SELECT ok((SELECT rows_estimate = (SELECT count(*) FROM witn.events) AND total_bytes > 0 FROM witn.storage WHERE table_name = 'events'),
    'storage: witn.events with its rows (as of ANALYZE) and bytes');
SELECT set_eq('SELECT table_name FROM witn.storage',
    $$ SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'witn'::regnamespace AND c.relkind = 'r' $$,
    'storage: one row per witn table');

-- ---------------------------------------------------------------------------------------------
-- Retention: witn.purge_events.
-- ---------------------------------------------------------------------------------------------
-- Purgeable before 25 days ago: the 10 old support outcomes (acme's with a late note too),
-- silent (failed), onb-ended (resolved 29 days ago, its 25-day window ended 4 days ago) and
-- onb-failed: 13 outcomes, 18 events. Not: newer (resolved 19 days ago, after the time),
-- onb-window (in its window), open.
SELECT results_eq('SELECT outcomes_with_events FROM witn.retention_backlog', $$ VALUES (14::bigint) $$,
    'retention_backlog: the resolved outcomes past their reversal period with events kept (any time)');
SELECT throws_ok('SELECT witn.purge_events(NULL)', 'WT001', NULL, 'purge_events: a NULL time is refused');
SELECT throws_ok('SELECT witn.purge_events(now() + interval ''1 day'')', 'WT001',
    'VALIDATION_ERROR: resolved_before must not be later than now()', 'a time later than now() is refused');
SELECT throws_ok('SELECT witn.purge_events(now(), 0)', 'WT001', 'VALIDATION_ERROR: max_outcomes must be at least 1', 'max_outcomes 0 is refused');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE events_purged_at IS NOT NULL), 0::bigint, 'and nothing was purged by the refusals');

CREATE TEMP TABLE purged (batch integer, events bigint);
GRANT ALL ON purged TO witn_operator;
SET LOCAL ROLE witn_operator;
INSERT INTO purged VALUES (1, witn.purge_events(now() - interval '25 days', 4));
RESET ROLE;
SELECT is((SELECT count(*) FROM witn.outcomes WHERE events_purged_at = now()), 4::bigint, 'a batch of 4 purges 4 outcomes, which record events_purged_at');
SELECT is((SELECT events FROM purged), (SELECT sum(b.events) FROM before_purge b JOIN witn.outcomes o ON o.id = b.id WHERE o.events_purged_at IS NOT NULL)::bigint,
    'and returns how many events it deleted: theirs');
SET LOCAL ROLE witn_operator;
INSERT INTO purged SELECT i, witn.purge_events(now() - interval '25 days', 4) FROM generate_series(2, 4) i;
SELECT is((SELECT sum(events) FROM purged), 18::numeric, 'the next batches take the rest: 18 events of 13 outcomes');
SELECT is(witn.purge_events(now() - interval '25 days'), 0::bigint, 'then there is nothing left to purge: 0');
RESET ROLE;
SELECT results_eq('SELECT key FROM witn.outcomes WHERE events_purged_at IS NOT NULL ORDER BY key',
    $$ SELECT key FROM before_purge WHERE key LIKE 'old-%' OR key IN ('silent', 'onb-ended', 'onb-failed') ORDER BY key $$,
    'the purged outcomes: resolved before the time, their reversal period ended (or none)');
SELECT is((SELECT count(*) FROM witn.events e JOIN witn.outcomes o USING (customer_key, key) WHERE o.events_purged_at IS NOT NULL),
    0::bigint, 'their events are gone');
SELECT results_eq(
    $$ SELECT b.key, b.events FROM before_purge b JOIN witn.outcomes o ON o.id = b.id
        WHERE o.events_purged_at IS NULL ORDER BY 1 $$,
    $$ SELECT b.key, (SELECT count(*) FROM witn.events e WHERE e.customer_key = b.customer_key AND e.key = b.key)
         FROM before_purge b JOIN witn.outcomes o ON o.id = b.id WHERE o.events_purged_at IS NULL ORDER BY 1 $$,
    'every other outcome keeps all its events');
SELECT is((SELECT count(*) FROM witn.outcomes o JOIN before_purge b ON b.id = o.id
            WHERE (o.status, o.resolved_at, o.facts, o.accepted_events) IS DISTINCT FROM (b.status, b.resolved_at, b.facts, b.accepted_events)),
    0::bigint, 'the outcomes keep their status, resolved_at, facts and counts');
SELECT set_eq('SELECT * FROM witn.invoice_lines', 'SELECT * FROM lines_before', 'the invoice lines stay, unchanged');
SELECT set_eq('SELECT * FROM witn.notifications', 'SELECT * FROM notifications_before', 'the notifications stay, unchanged');
SELECT results_eq('SELECT outcomes_with_events FROM witn.retention_backlog', $$ VALUES (1::bigint) $$,
    'retention_backlog now counts only newer (resolved 19 days ago), which a later time may take');

-- explain, replay, verify, simulate.
SELECT results_eq(
    $$ SELECT status::text, fact, event_count, passes FROM witn.explain((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'old-1')) $$,
    $$ VALUES ('CONFIRMED', 'replied', 1::bigint, true) $$,
    'explain still shows a purged outcome''s stored facts');
SELECT results_eq(
    $$ SELECT matches, differences FROM witn.replay((SELECT id FROM witn.outcomes WHERE customer_key = 'acme' AND key = 'old-1')) $$,
    $$ VALUES (NULL::boolean, ARRAY['not replayed: its events were purged at ' || now()::text || ' (witn.purge_events)']) $$,
    'replay skips a purged outcome and says so (matches NULL, not a difference)');
SELECT results_eq($$ SELECT matches FROM witn.replay((SELECT id FROM witn.outcomes WHERE key = 'newer')) $$, ARRAY[true],
    'an outcome with its events still replays');
SELECT is_empty('SELECT * FROM witn.verify()', 'verify() is clean: purged outcomes are skipped, not reported');
SELECT is(witn.purged_skipped('witn.verify()'), 13::bigint, 'and it says how many it skipped (a NOTICE of this count)');
-- Every outcome opened now (opened_at is when the first event arrived).
SELECT results_eq($$ SELECT key FROM witn.simulate('support', now() - interval '1 day', now() + interval '1 day') ORDER BY key $$,
    $$ VALUES ('newer'), ('open') $$, 'simulate skips the purged outcomes of its range and replays the others');
SELECT is(witn.purged_skipped('witn.simulate()', 'support', now() - interval '1 day', now() + interval '1 day'), 11::bigint,
    'the count simulate''s NOTICE gives for that range');
SELECT results_eq($$ SELECT outcomes FROM witn.simulate_summary('support', now() - interval '1 day', now() + interval '1 day') $$,
    $$ VALUES (2::bigint) $$, 'simulate_summary likewise');

-- An event for a purged outcome arrives late and changes nothing billed; a credit still works.
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'old-2', 'replied', 'support');
SELECT results_eq($$ SELECT o.status::text, o.late_events, e.late FROM witn.outcomes o JOIN witn.events e USING (customer_key, key)
                      WHERE o.customer_key = 'acme' AND o.key = 'old-2' $$,
    $$ VALUES ('CONFIRMED', 2::bigint, true) $$, 'a later event for a purged outcome is stored late (its second; the note was late too); the outcome is unchanged');
SELECT is((SELECT count(*) FROM witn.invoice_lines), (SELECT count(*) FROM lines_before), 'and bills nothing');
SELECT lives_ok($$ SELECT witn.reverse_outcome((SELECT id FROM witn.outcomes WHERE customer_key = 'globex' AND key = 'old-3'), 'after purge') $$,
    'a purged outcome can still be reversed (its credit needs its invoice line, not its events)');
SELECT is((SELECT amount FROM witn.credit_lines WHERE reason = 'after purge'), 2::numeric, 'for its full amount');
SELECT is_empty('SELECT * FROM witn.verify()', 'verify() is still clean');

-- The confirmed outcome in its window is purged once the window has ended.
UPDATE witn.outcomes SET resolved_at = resolved_at - interval '30 days', settles_at = settles_at - interval '30 days'
 WHERE key = 'onb-window';
SELECT is(witn.purge_events(now() - interval '25 days'), 1::bigint, 'once a reversal window has ended, its outcome is purged too');

-- Only an operator may purge, and a superuser without SET ROLE is one.
SELECT is(pg_temp.error_of('witn_admin', 'SELECT witn.purge_events(now() - interval ''10 days'')'), 'no error', 'witn_admin purges (it is a witn_operator)');
SELECT is(pg_temp.error_of('witn_operator', format('SELECT witn.redeliver(%s)', (SELECT min(id) FROM witn.notifications))), 'no error',
    'witn_operator redelivers');
SELECT is(pg_temp.error_of('witn_operator', 'SELECT * FROM witn.webhook_status'), 'no error', 'and reads webhook_status');

SELECT * FROM finish();
ROLLBACK;
