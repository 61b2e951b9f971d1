-- What-if (CONTRACT §22): witn.simulate and witn.simulate_summary replay an agent's outcomes
-- under draft terms. The product's example conditions under a stricter condition, a shorter or
-- longer settlement window (lateness by each event's received_at), another attribution method
-- and another price; outcomes not due yet; the range; a randomized check that the outcomes' own
-- terms reproduce what the live path did and that draft terms give what the live path does for
-- an agent that has them; the summary; every refusal; that nothing is written or locked against
-- ingestion; who may call it, as PostgREST drives it.
--
-- History is made here in one transaction, where every event arrives at its start (now()). An
-- event of an outcome whose timer has run out arrives late, so an outcome settled before now
-- could take only its first event. pg_temp.play (as a superuser) therefore writes the events
-- that arrived before the outcome was due through the live path with its timer parked in the
-- future, sets each one's received_at to when it arrived, then sets the timer to what the live
-- path made of those events; the events that arrived once it was due go in after that, late as
-- on the live path. witn.verify() checks that every outcome so made is what its log gives.
BEGIN;
\ir api_request.psql
SELECT plan(124);
SET LOCAL TimeZone = 'UTC';

-- ---- helpers ------------------------------------------------------------------------------------
-- Relation locks this backend holds on witn's tables, views and indexes.
CREATE FUNCTION pg_temp.witn_locks() RETURNS TABLE (relation text, mode text) LANGUAGE sql AS $$
    SELECT l.relation::regclass::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
     WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
       AND c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)
$$;
CREATE TEMP TABLE locks_before (relation text, mode text);

-- POST /rpc/<fn> with the body's keys as named arguments, typed as the function's.
CREATE FUNCTION pg_temp.rpc(token jsonb, fn text, body json) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    keys text[] := ARRAY(SELECT k FROM json_object_keys(body) k ORDER BY 1);
    types constant jsonb := '{"agent_key": "text", "opened_from": "timestamp with time zone", "opened_to": "timestamp with time zone",
                              "condition": "witn.condition", "settlement_period": "interval", "attribution_method": "text",
                              "price_per_unit": "numeric"}';
BEGIN
    RETURN pg_temp.request(token ->> 'role', token::text, 'POST', '/rpc/' || fn,
        pg_temp.result_sql(format('SELECT pgrst_call.* FROM (SELECT $1 AS json_data) pgrst_payload, '
            'LATERAL (SELECT %s FROM json_to_record(pgrst_payload.json_data) AS _(%s) LIMIT 1) pgrst_body , '
            'LATERAL "witn_api".%I(%s) pgrst_call',
            (SELECT string_agg(quote_ident(k), ', ') FROM unnest(keys) k),
            (SELECT string_agg(quote_ident(k) || ' ' || (types ->> k), ', ') FROM unnest(keys) k),
            fn, (SELECT string_agg(format('%1$I := pgrst_body.%1$I', k), ', ') FROM unnest(keys) k)), true),
        body);
END $$;

INSERT INTO witn.agents (key, condition) VALUES ('support', '[{"fact": "agent_replied", "operator": "seen"},
    {"fact": "escalated", "operator": "not seen"}, {"fact": "reopened", "operator": "not seen"},
    {"fact": "csat", "operator": "not lte", "value": 3}]');

-- =================================================================================================
-- 1. Before any outcome exists: simulate takes AccessShareLock and nothing else.
-- =================================================================================================
INSERT INTO locks_before SELECT * FROM pg_temp.witn_locks();
SELECT is_empty($$ SELECT * FROM witn.simulate('support', now() - interval '1 year', now() + interval '1 day') $$,
    'an agent without outcomes: no rows');
SELECT is_empty($$ SELECT * FROM pg_temp.witn_locks() EXCEPT SELECT * FROM locks_before
                   EXCEPT SELECT relation, 'AccessShareLock' FROM pg_temp.witn_locks() $$,
    'the only locks simulate took are AccessShareLock');

-- =================================================================================================
-- 2. The product's examples, played ten days ago (72 hours to settle, as the agents default).
-- =================================================================================================
INSERT INTO witn.rate_cards (key, currency) VALUES ('sim_usd', 'USD'), ('sim_eur', 'EUR');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'sim_usd'), ('globex', 'sim_eur');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES
    ('both_sign', '[{"fact": "signed_by_buyer", "operator": "seen"}, {"fact": "signed_by_seller", "operator": "seen"}]', '72 hours'),
    ('not_revoked', '[{"fact": "signed", "operator": "seen"}, {"fact": "revoked", "operator": "not seen"}]', '72 hours'),
    ('min_score', '[{"fact": "csat", "operator": "gte", "value": 4}]', '72 hours'),
    ('inspection', '[{"fact": "inspection", "operator": "match", "value": "pass"}]', '72 hours'),
    ('metered', '[{"fact": "api_call", "operator": "seen"}]', '1 day'),
    ('verification', '[{"fact": "identity_check", "operator": "match", "value": "verified"},
                       {"fact": "credit_score", "operator": "gte", "value": 700},
                       {"fact": "document_signed", "operator": "seen"}]', '72 hours'),
    ('warnings', '[{"fact": "warning", "operator": "count_gte", "value": 3}]', '72 hours'),
    ('always', '[]', '72 hours');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES
    ('sim_usd', 'support', 2.50), ('sim_usd', 'both_sign', 40), ('sim_usd', 'not_revoked', 15),
    ('sim_usd', 'min_score', 3), ('sim_usd', 'inspection', 7.25), ('sim_usd', 'metered', 10),
    ('sim_usd', 'verification', 120), ('sim_usd', 'warnings', 0.5), ('sim_usd', 'always', 1),
    ('sim_eur', 'support', 2), ('sim_eur', 'metered', 8);

-- The model's verdict on each event played: late (it arrived once the outcome was due) or not;
-- NULL for a retry of an idempotency key, which is not applied either way.
CREATE TEMP TABLE played (customer_key text, event_id bigint, late boolean);

-- One outcome's events as the live path would have taken them had each arrived at its
-- received_at: a JSON array of {"action", "properties", "occurred", "received", "idempotency"}
-- with occurred and received as intervals before now (received defaults to occurred).
CREATE FUNCTION pg_temp.play(customer text, outcome text, agent text, events jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    period constant interval := (SELECT a.settlement_period FROM witn.agents a WHERE a.key = agent);
    parked constant timestamptz := now() + interval '179 days';
    e jsonb;
    occurred timestamptz;
    received timestamptz;
    settles timestamptz;          -- the timer, as the live path would have moved it
    outcome_id bigint;
    new_id bigint;
    duplicate boolean;
    due boolean := false;         -- an event arrived once the outcome was due: it and the rest are late
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(events) WITH ORDINALITY ORDER BY ordinality LOOP
        occurred := now() - (e ->> 'occurred')::interval;
        received := now() - coalesce(e ->> 'received', e ->> 'occurred')::interval;
        IF outcome_id IS NOT NULL AND NOT due AND received >= settles THEN
            UPDATE witn.outcomes o SET settles_at = settles, check_at = settles WHERE o.customer_key = customer AND o.id = outcome_id;
            due := true;
        END IF;
        INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
        VALUES (customer, outcome, e ->> 'action', agent,
                coalesce(e -> 'properties', '{}'), occurred, outcome || ':' || (e ->> 'idempotency'))
        RETURNING id INTO new_id;
        UPDATE witn.events ev SET received_at = received WHERE ev.customer_key = customer AND ev.id = new_id
        RETURNING ev.duplicate_of IS NOT NULL INTO duplicate;
        INSERT INTO played VALUES (customer, new_id, CASE WHEN NOT duplicate THEN due END);
        IF outcome_id IS NULL THEN
            SELECT o.id INTO outcome_id FROM witn.outcomes o WHERE o.customer_key = customer AND o.key = outcome;
            UPDATE witn.outcomes o SET settles_at = parked, check_at = parked, opened_at = received
             WHERE o.customer_key = customer AND o.id = outcome_id;
            settles := coalesce((e #>> '{properties,settles_at}')::timestamptz, occurred + period);
        ELSIF NOT due AND NOT duplicate THEN
            settles := greatest(settles, coalesce((e #>> '{properties,settles_at}')::timestamptz, occurred + period));
        END IF;
    END LOOP;
    IF NOT due THEN
        UPDATE witn.outcomes o SET settles_at = settles, check_at = settles WHERE o.customer_key = customer AND o.id = outcome_id;
    END IF;
    RETURN outcome_id;
END $$;

-- Each outcome of an agent for a customer as 'key STATUS amount -> SIMULATED amount' ('-': no
-- amount), by key, under the given terms, for every outcome opened in the last year.
CREATE FUNCTION pg_temp.sim(agent text, condition witn.condition DEFAULT NULL, period interval DEFAULT NULL,
                            method text DEFAULT NULL, price numeric DEFAULT NULL, customer text DEFAULT 'acme')
RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(format('%s %s %s -> %s %s', s.key, s.status, coalesce(trim_scale(s.amount)::text, '-'),
                            s.simulated_status, coalesce(trim_scale(s.simulated_amount)::text, '-')) ORDER BY s.key)
      FROM witn.simulate(agent, now() - interval '1 year', now() + interval '1 day', condition, period, method, price) s
     WHERE s.customer_key = customer
$$;

-- Support tickets. A minute between events, as in seed_examples.sql.
DO $$ BEGIN
    PERFORM pg_temp.play('acme', 'csat_5', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "csat", "properties": {"value": 5}, "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'csat_4', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "csat", "properties": {"value": 4}, "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('globex', 'csat_4', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "csat", "properties": {"value": 4}, "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'csat_2', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "csat", "properties": {"value": 2}, "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'no_csat', 'support', '[{"action": "agent_replied", "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'escalated', 'support', '[{"action": "escalated", "occurred": "10 days"},
        {"action": "agent_replied", "occurred": "9 days 23:59"}]');
    -- Reopened four days after the reply, when the 72 hours had run out: late.
    PERFORM pg_temp.play('acme', 'reopen_late', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "reopened", "occurred": "6 days"}]');
    -- Reopened after a day and a half: within the window, it counts.
    PERFORM pg_temp.play('acme', 'reopen_counted', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "reopened", "occurred": "8 days 12:00"}]');
    -- Reopened a day after the reply, but received four days after it: late all the same.
    PERFORM pg_temp.play('acme', 'reopen_sent_late', 'support', '[{"action": "agent_replied", "occurred": "10 days"},
        {"action": "reopened", "occurred": "9 days", "received": "6 days"}]');
    -- Replied an hour ago: not due for 71 hours; escalated an hour ago: the condition does not hold.
    PERFORM pg_temp.play('acme', 'recent', 'support', '[{"action": "agent_replied", "occurred": "1 hour", "received": "0"}]');
    PERFORM pg_temp.play('acme', 'recent_escalated', 'support', '[{"action": "escalated", "occurred": "1 hour", "received": "0"}]');

    PERFORM pg_temp.play('acme', 'deal_both', 'both_sign', '[{"action": "signed_by_buyer", "occurred": "10 days"},
        {"action": "signed_by_seller", "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'deal_one', 'both_sign', '[{"action": "signed_by_seller", "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'contract_kept', 'not_revoked', '[{"action": "signed", "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'contract_revoked', 'not_revoked', '[{"action": "signed", "occurred": "10 days"},
        {"action": "revoked", "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'score_high', 'min_score', '[{"action": "csat", "properties": {"value": 4.8, "attribution": 0.8}, "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'score_low', 'min_score', '[{"action": "csat", "properties": {"value": 3.99}, "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'score_recent', 'min_score', '[{"action": "csat", "properties": {"value": 3}, "occurred": "2 hours", "received": "0"}]');
    PERFORM pg_temp.play('acme', 'inspection_pass', 'inspection', '[{"action": "inspection", "properties": {"value": "pass"}, "occurred": "10 days"}]');
    PERFORM pg_temp.play('acme', 'inspection_redone', 'inspection', '[{"action": "inspection", "properties": {"value": "pass"}, "occurred": "10 days"},
        {"action": "inspection", "properties": {"value": "fail"}, "occurred": "9 days 23:59"}]');
    -- Metered usage: two api_calls (attribution 1.2, then 0.8) and one without attribution.
    PERFORM pg_temp.play(c, c || ':api:nov', 'metered', '[{"action": "api_call", "properties": {"attribution": 1.2}, "occurred": "5 days"},
        {"action": "api_call", "properties": {"attribution": 0.8}, "occurred": "4 days 20:00"}]')
      FROM unnest(ARRAY['acme', 'globex']) c;
    PERFORM pg_temp.play('acme', 'acme:api:dec', 'metered', '[{"action": "api_call", "occurred": "5 days"}]');
    PERFORM pg_temp.play('acme', 'loan_ok', 'verification', '[{"action": "identity_check", "properties": {"value": "verified"}, "occurred": "10 days"},
        {"action": "credit_score", "properties": {"value": 720}, "occurred": "9 days 23:59"},
        {"action": "document_signed", "occurred": "9 days 23:58"}]');
    PERFORM pg_temp.play('acme', 'loan_low_score', 'verification', '[{"action": "identity_check", "properties": {"value": "verified"}, "occurred": "10 days"},
        {"action": "credit_score", "properties": {"value": 699.99999999999999999999}, "occurred": "9 days 23:59"},
        {"action": "document_signed", "occurred": "9 days 23:58"}]');
    PERFORM pg_temp.play('acme', 'noisy', 'warnings', '[{"action": "warning", "occurred": "10 days"},
        {"action": "warning", "occurred": "9 days 23:59"}, {"action": "warning", "occurred": "9 days 23:58"}]');
    PERFORM pg_temp.play('acme', 'quiet', 'warnings', '[{"action": "warning", "occurred": "10 days"},
        {"action": "warning", "occurred": "9 days 23:59"}]');
    PERFORM pg_temp.play('acme', 'anything', 'always', '[{"action": "started", "occurred": "10 days"}]');
END $$;

SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle() $$,
    $$ VALUES (16::bigint, 9::bigint, 0::bigint) $$, 'settlement now: 16 outcomes confirmed, 9 failed');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'every outcome played is what its log gives (verify)');
SELECT is((SELECT string_agg(e.key || ':' || e.action, ' ' ORDER BY e.id) FROM witn.events e WHERE e.late),
    'reopen_late:reopened reopen_sent_late:reopened', 'the late reopens are the only late events');

-- ---- NULL terms: what happened ----------------------------------------------------------------
SELECT is(pg_temp.sim('support'), ARRAY[
    'csat_2 FAILED - -> FAILED -', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 2.5', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> FAILED -', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> FAILED -', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    'support, own terms: every ticket as it was settled (a reopen that occurred in the window but arrived after it stays late), the recent ones PENDING and OPEN');
SELECT is_empty($$
    SELECT s.* FROM witn.agents a, witn.simulate(a.key, now() - interval '1 year', now() + interval '1 day') s
     WHERE s.simulated_status IS DISTINCT FROM s.status OR s.simulated_amount IS DISTINCT FROM s.amount $$,
    'every agent, own terms: simulated status and amount are the actual ones');
SELECT is_empty($$
    SELECT s.outcome_id FROM (SELECT s.* FROM witn.agents a, witn.simulate(a.key, now() - interval '1 year', now() + interval '1 day') s) s
      FULL JOIN (witn.outcomes o LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id)
        ON o.id = s.outcome_id
     WHERE s.outcome_id IS NULL OR o.id IS NULL OR s.customer_key <> o.customer_key OR s.key <> o.key
        OR s.status <> o.status::text OR s.amount IS DISTINCT FROM l.amount OR s.currency <> o.currency $$,
    'one row per outcome: its id, customer, key, status, currency and invoice line amount');

-- ---- a stricter condition ----------------------------------------------------------------------
SELECT is(pg_temp.sim('support', condition => '[{"fact": "agent_replied", "operator": "seen"},
    {"fact": "escalated", "operator": "not seen"}, {"fact": "reopened", "operator": "not seen"},
    {"fact": "csat", "operator": "not lte", "value": 4}]'), ARRAY[
    'csat_2 FAILED - -> FAILED -', 'csat_4 CONFIRMED 2.5 -> FAILED -', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> FAILED -', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> FAILED -', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    'support, csat not lte 4: the ticket rated 4 fails, nothing else changes');
SELECT is(pg_temp.sim('support', condition => '[{"fact": "csat", "operator": "not lte", "value": 4}]', customer => 'globex'),
    ARRAY['csat_4 CONFIRMED 2 -> FAILED -'], 'and so does globex''s (EUR)');
SELECT is(pg_temp.sim('support', condition => '[{"fact": "agent_replied", "operator": "seen"}]'), ARRAY[
    'csat_2 FAILED - -> CONFIRMED 2.5', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 2.5', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> CONFIRMED 2.5', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> CONFIRMED 2.5', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    'support, only agent_replied seen: every ticket with a reply confirms, also the escalated one and the one rated 2');
SELECT is(pg_temp.sim('both_sign', condition => '[{"fact": "signed_by_seller", "operator": "seen"}]'),
    ARRAY['deal_both CONFIRMED 40 -> CONFIRMED 40', 'deal_one FAILED - -> CONFIRMED 40'],
    'both must sign -> the seller alone: the deal with one signature confirms at 40');
SELECT is(pg_temp.sim('not_revoked', condition => '[{"fact": "signed", "operator": "seen"}]'),
    ARRAY['contract_kept CONFIRMED 15 -> CONFIRMED 15', 'contract_revoked FAILED - -> CONFIRMED 15'],
    'signed but not revoked -> signed: the revoked contract confirms');
SELECT is(pg_temp.sim('min_score', condition => '[{"fact": "csat", "operator": "gte", "value": 5}]'),
    ARRAY['score_high CONFIRMED 2.4 -> FAILED -', 'score_low FAILED - -> FAILED -', 'score_recent OPEN - -> OPEN -'],
    'minimum score 4 -> 5: the 4.8 (billed 3 x attribution 0.8) fails');
SELECT is(pg_temp.sim('min_score', condition => '[{"fact": "csat", "operator": "gte", "value": 3.99}]'),
    ARRAY['score_high CONFIRMED 2.4 -> CONFIRMED 2.4', 'score_low FAILED - -> CONFIRMED 3', 'score_recent OPEN - -> OPEN -'],
    'minimum score 4 -> 3.99: the 3.99 confirms, billed 3 x 1 (no attribution)');
SELECT is(pg_temp.sim('inspection', condition => '[{"fact": "inspection", "operator": "match", "value": "fail"}]'),
    ARRAY['inspection_pass CONFIRMED 7.25 -> FAILED -', 'inspection_redone FAILED - -> CONFIRMED 7.25'],
    'inspection match "fail": the latest value decides, pass then fail confirms and pass fails');
SELECT is(pg_temp.sim('verification', condition => '[{"fact": "identity_check", "operator": "match", "value": "verified"},
    {"fact": "credit_score", "operator": "gte", "value": 699.99999999999999999999}, {"fact": "document_signed", "operator": "seen"}]'),
    ARRAY['loan_low_score FAILED - -> CONFIRMED 120', 'loan_ok CONFIRMED 120 -> CONFIRMED 120'],
    'verification with credit_score gte 699.99999999999999999999: the exact score confirms');
SELECT is(pg_temp.sim('verification', condition => '[{"fact": "credit_score", "operator": "gt", "value": 720}]'),
    ARRAY['loan_low_score FAILED - -> FAILED -', 'loan_ok CONFIRMED 120 -> FAILED -'],
    'verification with credit_score gt 720: 720 fails');
SELECT is(pg_temp.sim('warnings', condition => '[{"fact": "warning", "operator": "count_gte", "value": 2}]'),
    ARRAY['noisy CONFIRMED 0.5 -> CONFIRMED 0.5', 'quiet FAILED - -> CONFIRMED 0.5'],
    'warnings count_gte 3 -> 2: two warnings confirm');
SELECT is(pg_temp.sim('warnings', condition => '[{"fact": "warning", "operator": "count_eq", "value": 2}]'),
    ARRAY['noisy CONFIRMED 0.5 -> FAILED -', 'quiet FAILED - -> CONFIRMED 0.5'],
    'warnings count_eq 2: three warnings fail, two confirm');
SELECT is(pg_temp.sim('always', condition => '[{"fact": "finished", "operator": "seen"}]'),
    ARRAY['anything CONFIRMED 1 -> FAILED -'], 'the empty condition -> finished seen: an outcome that never finished fails');

-- ---- another settlement window ------------------------------------------------------------------
SELECT is(pg_temp.sim('support', period => '5 days'), ARRAY[
    'csat_2 FAILED - -> FAILED -', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 2.5', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> FAILED -', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> FAILED -', 'reopen_late CONFIRMED 2.5 -> FAILED -',
    'reopen_sent_late CONFIRMED 2.5 -> FAILED -'],
    '72 hours -> 5 days: the reopens received four days after the reply count, those tickets fail');
SELECT is(pg_temp.sim('support', period => '1 day'), ARRAY[
    'csat_2 FAILED - -> FAILED -', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 2.5', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> FAILED -', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> CONFIRMED 2.5', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    '72 hours -> 1 day: the reopen a day and a half after the reply comes too late, that ticket confirms');
SELECT is(pg_temp.sim('support', period => '4 days') && ARRAY['reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    true, '4 days: the reopen received exactly when the window closes is late (due at settles_at, as on the live path)');
SELECT is(pg_temp.sim('support', period => '4 days 00:00:01') && ARRAY['reopen_late CONFIRMED 2.5 -> FAILED -'],
    true, '4 days and a second: received a second before the window closes, the reopen counts');
SELECT is(pg_temp.sim('support', period => '180 days'), ARRAY[
    'csat_2 FAILED - -> PENDING -', 'csat_4 CONFIRMED 2.5 -> PENDING -', 'csat_5 CONFIRMED 2.5 -> PENDING -',
    'escalated FAILED - -> OPEN -', 'no_csat CONFIRMED 2.5 -> PENDING -', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> PENDING -', 'reopen_late CONFIRMED 2.5 -> PENDING -',
    'reopen_sent_late CONFIRMED 2.5 -> PENDING -'],
    '180 days (the most): nothing would be due yet, every ticket is PENDING or OPEN, nothing billed');
SELECT is(pg_temp.sim('support', period => '30 minutes'), ARRAY[
    'csat_2 FAILED - -> FAILED -', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 2.5', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 2.5',
    'escalated FAILED - -> FAILED -', 'no_csat CONFIRMED 2.5 -> CONFIRMED 2.5', 'recent PENDING - -> CONFIRMED 2.5',
    'recent_escalated OPEN - -> FAILED -', 'reopen_counted FAILED - -> CONFIRMED 2.5', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 2.5',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 2.5'],
    '30 minutes: the tickets of an hour ago are due (the replied one confirms, the escalated one is missed); a csat a minute after the reply still counts');
SELECT is(pg_temp.sim('min_score', period => '1 hour'),
    ARRAY['score_high CONFIRMED 2.4 -> CONFIRMED 2.4', 'score_low FAILED - -> FAILED -', 'score_recent OPEN - -> FAILED -'],
    'min_score, 1 hour: the OPEN outcome of two hours ago is missed');
SELECT is(pg_temp.sim('min_score', period => '3 hours'),
    ARRAY['score_high CONFIRMED 2.4 -> CONFIRMED 2.4', 'score_low FAILED - -> FAILED -', 'score_recent OPEN - -> OPEN -'],
    'min_score, 3 hours: it is not due yet, still OPEN');

-- ---- another attribution method, another price -------------------------------------------------
SELECT is(pg_temp.sim('metered'), ARRAY['acme:api:dec CONFIRMED 10 -> CONFIRMED 10', 'acme:api:nov CONFIRMED 8 -> CONFIRMED 8'],
    'metered, last: 0.8 x 10; no attribution: 1 x 10');
SELECT is(pg_temp.sim('metered', method => 'sum'), ARRAY['acme:api:dec CONFIRMED 10 -> CONFIRMED 10', 'acme:api:nov CONFIRMED 8 -> CONFIRMED 20'],
    'metered, sum: (1.2 + 0.8) x 10 = 20');
SELECT is(pg_temp.sim('metered', method => 'sum', customer => 'globex'), ARRAY['globex:api:nov CONFIRMED 6.4 -> CONFIRMED 16'],
    'metered, sum, globex (EUR 8): 6.4 -> 16');
SELECT is(ARRAY(SELECT m || ' ' || (pg_temp.sim('metered', method => m))[2] FROM unnest(ARRAY['first', 'max', 'min', 'average']) m), ARRAY[
    'first acme:api:nov CONFIRMED 8 -> CONFIRMED 12', 'max acme:api:nov CONFIRMED 8 -> CONFIRMED 12',
    'min acme:api:nov CONFIRMED 8 -> CONFIRMED 8', 'average acme:api:nov CONFIRMED 8 -> CONFIRMED 10'],
    'first 1.2, max 1.2, min 0.8, average 1.0, each x 10');
SELECT is(pg_temp.sim('metered', price => 12.5), ARRAY['acme:api:dec CONFIRMED 10 -> CONFIRMED 12.5', 'acme:api:nov CONFIRMED 8 -> CONFIRMED 10'],
    'metered at 12.5: 0.8 x 12.5 = 10, 1 x 12.5');
SELECT is(pg_temp.sim('metered', price => 12.5, customer => 'globex'), ARRAY['globex:api:nov CONFIRMED 6.4 -> CONFIRMED 10'],
    'the draft price is every customer''s, in the currency of its outcome');
SELECT is(pg_temp.sim('metered', method => 'sum', price => 0.125), ARRAY['acme:api:dec CONFIRMED 10 -> CONFIRMED 0.125', 'acme:api:nov CONFIRMED 8 -> CONFIRMED 0.25'],
    'sum at 0.125: exact, not rounded (2 x 0.125 = 0.25)');
SELECT is(pg_temp.sim('metered', price => 0), ARRAY['acme:api:dec CONFIRMED 10 -> CONFIRMED 0', 'acme:api:nov CONFIRMED 8 -> CONFIRMED 0'],
    'a price of 0: confirmed at 0, not NULL');
SELECT is((SELECT string_agg(s.currency, ' ' ORDER BY s.customer_key) FROM witn.simulate('metered', now() - interval '1 year', now(), price_per_unit => 12.5) s
            WHERE s.key LIKE '%:api:nov'), 'USD EUR', 'the currency column is the outcome''s');
SELECT is(pg_temp.sim('support', condition => '[{"fact": "agent_replied", "operator": "seen"}]', period => '5 days', method => 'max', price => 4), ARRAY[
    'csat_2 FAILED - -> CONFIRMED 4', 'csat_4 CONFIRMED 2.5 -> CONFIRMED 4', 'csat_5 CONFIRMED 2.5 -> CONFIRMED 4',
    'escalated FAILED - -> CONFIRMED 4', 'no_csat CONFIRMED 2.5 -> CONFIRMED 4', 'recent PENDING - -> PENDING -',
    'recent_escalated OPEN - -> OPEN -', 'reopen_counted FAILED - -> CONFIRMED 4', 'reopen_late CONFIRMED 2.5 -> CONFIRMED 4',
    'reopen_sent_late CONFIRMED 2.5 -> CONFIRMED 4'],
    'all four terms at once');

-- ---- the range of opened_at --------------------------------------------------------------------
SELECT is((SELECT string_agg(s.key, ' ' ORDER BY s.key) FROM witn.simulate('support', now() - interval '2 hours', now() + interval '1 second') s),
    'recent recent_escalated', 'opened in the last two hours: the recent tickets');
SELECT is((SELECT count(*) FROM witn.simulate('support', now() - interval '10 days', now() - interval '2 hours')), 9::bigint,
    'opened_from is inclusive: the tickets opened exactly ten days ago are in');
SELECT is((SELECT count(*) FROM witn.simulate('support', now() - interval '1 year', now() - interval '10 days')), 0::bigint,
    'opened_to is exclusive: they are not in a range that ends then');
SELECT is_empty($$ SELECT * FROM witn.simulate('support', now() - interval '100 days', now() - interval '50 days') $$,
    'a range without outcomes: no rows');
SELECT is_empty($$ SELECT * FROM witn.simulate_summary('support', now() - interval '100 days', now() - interval '50 days') $$,
    'and no summary rows');
SELECT is_empty($$ SELECT * FROM witn.simulate('support', now() - interval '10 days', now() - interval '10 days') $$,
    'opened_from = opened_to: no rows');
SELECT is_empty($$ SELECT * FROM witn.simulate('support', now() + interval '1 day', now() - interval '1 year') $$,
    'opened_from after opened_to: no rows');
SELECT is((SELECT string_agg(DISTINCT s.customer_key, ' ') FROM witn.simulate('metered', now() - interval '1 year', now()) s),
    'acme globex', 'every customer''s outcomes of the agent');

-- ---- the summary --------------------------------------------------------------------------------
SELECT results_eq($$ SELECT * FROM witn.simulate_summary('support', now() - interval '1 year', now() + interval '1 day',
                         settlement_period => '5 days', price_per_unit => 3) $$,
    $$ VALUES ('acme', 'USD', 10::bigint, 5::bigint, 5::bigint, 3::bigint, 12.50, 9::numeric, -3.50),
              ('globex', 'EUR', 1::bigint, 1::bigint, 1::bigint, 1::bigint, 2::numeric, 3::numeric, 1::numeric) $$,
    'support at 5 days and 3 a ticket: per customer and currency, outcomes, changed, confirmed then and now, amounts and difference');
SELECT set_eq($$ SELECT * FROM witn.simulate_summary('metered', now() - interval '1 year', now(), NULL, NULL, 'sum', 1.25) $$,
    $$ SELECT customer_key, currency, count(*) AS outcomes,
              count(*) FILTER (WHERE status IS DISTINCT FROM simulated_status OR amount IS DISTINCT FROM simulated_amount) AS changed,
              count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed, count(*) FILTER (WHERE simulated_status = 'CONFIRMED') AS simulated_confirmed,
              coalesce(sum(amount), 0) AS amount, coalesce(sum(simulated_amount), 0) AS simulated_amount,
              coalesce(sum(simulated_amount), 0) - coalesce(sum(amount), 0) AS difference
         FROM witn.simulate('metered', now() - interval '1 year', now(), NULL, NULL, 'sum', 1.25) GROUP BY 1, 2 $$,
    'metered: the summary totals the rows');

-- =================================================================================================
-- 3. Refusals.
-- =================================================================================================
-- 'SQLSTATE message / detail' of the error a statement raises, or 'no error'.
CREATE FUNCTION pg_temp.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
    msg text;
    det text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN state || ' ' || msg || ' / ' || det;
END $$;
CREATE FUNCTION pg_temp.draft_error(condition text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.error_of(format('SELECT * FROM witn.simulate(%L, now() - interval ''1 day'', now(), %L)', 'support', condition))
$$;
CREATE FUNCTION pg_temp.agent_error(condition text) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.error_of(format('UPDATE witn.agents SET condition = %L WHERE key = %L', condition, 'support'))
$$;

SELECT is(pg_temp.draft_error(c), pg_temp.agent_error(c), 'an invalid draft condition is the agents'' error: ' || c)
  FROM unnest(ARRAY['[{"type": "signed", "operator": "seen"}]', '[{"fact": "x"}]', '[{"fact": "", "operator": "seen"}]',
                    '[{"fact": "csat", "operator": "gte"}]', '[{"fact": "a", "operator": "seen", "value": 1}]',
                    '[{"fact": "w", "operator": "count_gte", "value": 1.5}]', '{"fact": "a"}', 'not json']) c;
SELECT alike(pg_temp.draft_error('[{"fact": "x"}]'), 'WT001 VALIDATION_ERROR: %[0]%', '... a VALIDATION_ERROR (WT001) naming the path');

CREATE FUNCTION pg_temp.terms_error(period interval DEFAULT NULL, method text DEFAULT NULL, price numeric DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.error_of(format('SELECT * FROM witn.simulate(%L, now() - interval ''1 day'', now(), NULL, %L, %L, %L)',
                                   'support', period, method, price))
$$;
SELECT is(split_part(pg_temp.terms_error(period => p), ' / ', 1), 'WT001 VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days',
          'settlement_period ' || p || ' is refused')
  FROM unnest(ARRAY['0'::interval, '-1 hour', '180 days 00:00:01', '181 days']) p;
SELECT is(split_part(pg_temp.terms_error(period => '180 days 00:00:01'), ' / ', 1),
          split_part(pg_temp.error_of('UPDATE witn.agents SET settlement_period = ''180 days 00:00:01'' WHERE key = ''support'''), ' / ', 1),
          'the same message as the agents''');
SELECT is(pg_temp.terms_error(period => '180 days'), 'no error', 'settlement_period 180 days is accepted');
-- Months count as 30 days, as for agents.
SELECT is(pg_temp.terms_error(period => p), 'no error', 'settlement_period ' || p || ' is accepted, as an agent''s is')
  FROM unnest(ARRAY['1 month'::interval, '1 mon -29 days']) p;
SELECT is(split_part(pg_temp.terms_error(period => '1 year'), ' / ', 1), 'WT001 VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days',
          'settlement_period 1 year (360 days) is refused');
SELECT is(split_part(pg_temp.terms_error(method => 'median'), ' / ', 1),
          split_part(pg_temp.error_of('UPDATE witn.agents SET attribution_method = ''median'' WHERE key = ''support'''), ' / ', 1),
          'an unknown attribution_method is refused as the agents refuse it');
SELECT alike(pg_temp.terms_error(method => 'median'), 'WT001 VALIDATION_ERROR: attribution_method must be one of %', '... WT001');
SELECT alike(pg_temp.terms_error(method => m), 'WT001 %', 'attribution_method ' || quote_literal(m) || ' is refused')
  FROM unnest(ARRAY['', 'LAST']) m;
SELECT alike(pg_temp.terms_error(price => p), 'WT001 VALIDATION_ERROR: price_per_unit must be %', 'price_per_unit ' || p || ' is refused')
  FROM unnest(ARRAY[-0.01, 'NaN', 'Infinity', '-Infinity']::numeric[]) p;
SELECT alike(pg_temp.error_of(s), 'WT001 VALIDATION_ERROR: ' || n || ' must be present (not NULL)%', n || ' NULL is refused')
  FROM (VALUES ('agent_key', 'SELECT * FROM witn.simulate(NULL, now() - interval ''1 day'', now())'),
               ('opened_from', 'SELECT * FROM witn.simulate(''support'', NULL, now())'),
               ('opened_to', 'SELECT * FROM witn.simulate(''support'', now() - interval ''1 day'', NULL)')) t(n, s);
SELECT alike(pg_temp.error_of('SELECT * FROM witn.simulate_summary(''support'', NULL, now())'), 'WT001 %', 'and by simulate_summary');
SELECT alike(pg_temp.error_of('SELECT * FROM witn.simulate(''nobody'', now() - interval ''1 day'', now())'), 'WT003 AGENT_NOT_FOUND: %',
    'an unknown agent is AGENT_NOT_FOUND (WT003)');
SELECT alike(pg_temp.error_of('SELECT * FROM witn.simulate_summary(''nobody'', now() - interval ''1 day'', now())'), 'WT003 %',
    'and by simulate_summary');

-- =================================================================================================
-- 4. Random histories (setseed): the outcomes' own terms reproduce what the live path did, and
--    draft terms give what the live path does for a twin agent that has them.
-- =================================================================================================
-- Six agents, one per attribution method, each with a twin that differs in condition, settlement
-- period and attribution method and is priced 3.75 everywhere. Every history is played for the
-- agent and for its twin (key '<key>~'), each under its own window: which events arrive late
-- differs. Three batches, settled as of 25 days ago, 7 days ago and 2 days ago, then now.
SELECT setseed(0.2212);
INSERT INTO witn.rate_cards (key, currency) VALUES ('rnd_usd', 'USD'), ('rnd_eur', 'EUR'), ('rnd_jpy', 'JPY');
INSERT INTO witn.customers (key, rate_card_key) VALUES
    ('rnd_1', 'rnd_usd'), ('rnd_2', 'rnd_usd'), ('rnd_3', 'rnd_eur'), ('rnd_4', 'rnd_jpy');
CREATE TEMP TABLE twins (agent text PRIMARY KEY, twin text NOT NULL, condition witn.condition NOT NULL,
                         period interval NOT NULL, method text NOT NULL);
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('rnd_a', '[{"fact": "done", "operator": "count_gte", "value": 2}, {"fact": "reopened", "operator": "not seen"}]', '1 day', 'sum'),
    ('rnd_b', '[{"fact": "score", "operator": "gte", "value": 3}]', '36 hours', 'last'),
    ('rnd_c', '[]', '12 hours', 'max'),
    ('rnd_d', '[{"fact": "done", "operator": "seen"}, {"fact": "score", "operator": "not lte", "value": 2}]', '3 days', 'average'),
    ('rnd_e', '[{"fact": "score", "operator": "match", "value": 4}]', '2 days', 'first'),
    ('rnd_f', '[{"fact": "done", "operator": "seen"}]', '6 hours', 'min');
INSERT INTO twins VALUES
    ('rnd_a', 'rnd_a~', '[{"fact": "done", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}]', '2 days', 'last'),
    ('rnd_b', 'rnd_b~', '[{"fact": "score", "operator": "gte", "value": 4}]', '12 hours', 'sum'),
    ('rnd_c', 'rnd_c~', '[{"fact": "done", "operator": "seen"}]', '1 day', 'first'),
    ('rnd_d', 'rnd_d~', '[{"fact": "done", "operator": "count_gte", "value": 2}]', '1 day', 'min'),
    ('rnd_e', 'rnd_e~', '[{"fact": "score", "operator": "gte", "value": 2}]', '6 hours', 'max'),
    ('rnd_f', 'rnd_f~', '[]', '3 days', 'average');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) SELECT twin, condition, period, method FROM twins;
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT r, t.agent, round((0.5 + random() * 20)::numeric, 3) FROM unnest(ARRAY['rnd_usd', 'rnd_eur', 'rnd_jpy']) r, twins t ORDER BY 1, 2;
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT r, t.twin, 3.75 FROM unnest(ARRAY['rnd_usd', 'rnd_eur', 'rnd_jpy']) r, twins t;

CREATE FUNCTION pg_temp.pick(choices text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT choices[1 + floor(random() * array_length(choices, 1))::int]
$$;
-- A random history: 1 to 7 events, mostly hours apart, some up to two days, a tenth back-dated
-- up to six hours; most received within two hours of occurring, some up to four days later;
-- some with an idempotency key and a retry of it; now and then an explicit settles_at. Nothing
-- is received after now.
CREATE FUNCTION pg_temp.random_history() RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    occurred interval := CASE WHEN random() < 0.2 THEN random() * interval '2 days' ELSE interval '2 days' + random() * interval '43 days' END;
    received interval := occurred;
    history jsonb := '[]';
    e jsonb;
    action text;
    properties jsonb;
    r double precision;
BEGIN
    FOR i IN 1 .. 1 + floor(random() * 7)::int LOOP
        IF i > 1 THEN
            r := random();
            occurred := occurred - CASE WHEN r < 0.1 THEN -random() * interval '6 hours'
                                        WHEN r < 0.7 THEN random() * interval '8 hours' ELSE random() * interval '40 hours' END;
        END IF;
        received := least(received, occurred - CASE WHEN random() < 0.85 THEN random() * interval '2 hours' ELSE random() * interval '4 days' END);
        EXIT WHEN received < interval '0';
        action := pg_temp.pick(ARRAY['done', 'done', 'score', 'score', 'reopened', 'note']);
        properties := '{}';
        IF action = 'score' AND random() < 0.9 THEN
            properties := jsonb_build_object('value', CASE WHEN random() < 0.1 THEN to_jsonb('4'::text) ELSE to_jsonb(1 + floor(random() * 5)::int) END);
        END IF;
        IF random() < 0.6 THEN
            properties := properties || jsonb_build_object('attribution', round((random() * 4)::numeric, floor(random() * 3)::int));
        END IF;
        IF random() < 0.05 THEN
            properties := properties || jsonb_build_object('settles_at', now() - occurred + random() * interval '80 hours');
        END IF;
        e := jsonb_build_object('action', action, 'properties', properties, 'occurred', occurred::text, 'received', received::text);
        IF random() < 0.15 THEN
            e := e || jsonb_build_object('idempotency', 'k' || i);
            history := history || jsonb_build_array(e);
            IF random() < 0.5 THEN
                -- The sender retries: the same event, received up to ten minutes later.
                received := greatest(interval '0', received - random() * interval '10 minutes');
                e := e || jsonb_build_object('received', received::text);
            ELSE
                CONTINUE;
            END IF;
        END IF;
        history := history || jsonb_build_array(e);
    END LOOP;
    RETURN history;
END $$;

CREATE TEMP TABLE histories (n integer PRIMARY KEY, batch integer, agent text, customer text, events jsonb);
INSERT INTO histories
SELECT n, 1 + (n - 1) / 70, 'rnd_' || chr(ascii('a') + n % 6), 'rnd_' || (1 + floor(random() * 4)::int), pg_temp.random_history()
  FROM generate_series(1, 210) n;
DO $$
DECLARE
    h histories;
BEGIN
    FOR b IN 1 .. 3 LOOP
        FOR h IN SELECT * FROM histories WHERE batch = b ORDER BY n LOOP
            PERFORM pg_temp.play(h.customer, 'h' || h.n, h.agent, h.events);
            PERFORM pg_temp.play(h.customer, 'h' || h.n || '~', (SELECT twin FROM twins WHERE agent = h.agent), h.events);
        END LOOP;
        PERFORM witn.settle(now() - (ARRAY[interval '25 days', interval '7 days', interval '2 days'])[b]);
    END LOOP;
END $$;

-- The histories are what they should be, and varied enough to mean something.
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'random histories: every outcome is what its log gives (verify)');
SELECT is_empty($$ SELECT p.event_id FROM played p JOIN witn.events e ON e.customer_key = p.customer_key AND e.id = p.event_id
                    WHERE p.late IS DISTINCT FROM CASE WHEN e.duplicate_of IS NULL THEN e.late END $$,
    'the live path took as late exactly the events that arrived once their outcome was due');
SELECT ok(count(*) FILTER (WHERE status = 'CONFIRMED') >= 100 AND count(*) FILTER (WHERE status = 'FAILED') >= 50
          AND count(*) FILTER (WHERE resolved_at IS NULL AND settles_at > now()) >= 20
          AND count(*) FILTER (WHERE resolved_at IS NULL AND settles_at <= now()) >= 5
          AND count(*) FILTER (WHERE late_events > 0) >= 30 AND count(DISTINCT currency) = 3,
    'confirmed, failed, not due, due but not settled yet, outcomes with late events, three currencies')
  FROM witn.outcomes WHERE customer_key LIKE 'rnd\_%';
SELECT ok((SELECT count(*) FROM witn.events WHERE customer_key LIKE 'rnd\_%' AND duplicate_of IS NOT NULL) >= 10
          AND (SELECT count(*) FROM witn.events WHERE customer_key LIKE 'rnd\_%' AND properties ? 'settles_at') >= 10,
    'retried idempotency keys and explicit settles_at among the events');

CREATE TEMP TABLE rnd_actual AS
SELECT o.id, o.customer_key, o.key, o.agent_key, o.status::text AS status, o.scheduled_resolution::text AS scheduled,
       o.settles_at, o.quantity, o.currency, l.amount
  FROM witn.outcomes o LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
 WHERE o.customer_key LIKE 'rnd\_%';
CREATE FUNCTION pg_temp.rnd_simulated(with_twin_terms boolean, price numeric DEFAULT NULL)
RETURNS TABLE (agent text, outcome_id bigint, customer_key text, key text, status text, simulated_status text,
               amount numeric, simulated_amount numeric, currency text) LANGUAGE sql AS $$
    SELECT a.key, s.* FROM witn.agents a LEFT JOIN twins t ON t.agent = a.key AND with_twin_terms,
           witn.simulate(a.key, now() - interval '1 year', now() + interval '1 day', t.condition, t.period, t.method,
                         coalesce(price, CASE WHEN with_twin_terms THEN 3.75 END)) s
     WHERE a.key LIKE 'rnd\_%' AND (t.agent IS NOT NULL OR NOT with_twin_terms)
$$;

SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(false) s FULL JOIN rnd_actual o ON o.id = s.outcome_id
     WHERE s.outcome_id IS NULL OR o.id IS NULL OR s.agent <> o.agent_key OR s.customer_key <> o.customer_key OR s.key <> o.key
        OR s.status <> o.status OR s.amount IS DISTINCT FROM o.amount OR s.currency <> o.currency $$,
    'random: one row per outcome of each agent, with its actual status, invoice line amount and currency');
SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(false) s JOIN rnd_actual o ON o.id = s.outcome_id
     WHERE o.status IN ('CONFIRMED', 'FAILED') AND (s.simulated_status <> o.status OR s.simulated_amount IS DISTINCT FROM o.amount) $$,
    'random, own terms: every resolved outcome''s simulated status and amount are its status and invoice line');
SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(false) s JOIN rnd_actual o ON o.id = s.outcome_id
     WHERE o.status IN ('OPEN', 'PENDING')
       AND s.simulated_status <> CASE WHEN o.settles_at > now() THEN o.status WHEN o.status = 'OPEN' THEN 'FAILED' ELSE o.scheduled END $$,
    'random, own terms: an outcome not settled yet is simulated as of now (OPEN/PENDING when not due, else its resolution)');
SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(false, 7) s JOIN rnd_actual o ON o.id = s.outcome_id
     WHERE s.simulated_amount IS DISTINCT FROM CASE WHEN s.simulated_status = 'CONFIRMED' THEN 7 * o.quantity END $$,
    'random, at 7 a unit: every confirmed outcome bills 7 x its quantity, in every currency');
SELECT is_empty($$
    WITH own AS MATERIALIZED (SELECT * FROM pg_temp.rnd_simulated(false)),
         drafted AS MATERIALIZED (
             SELECT d.* FROM witn.agents a,
                    witn.simulate(a.key, now() - interval '1 year', now() + interval '1 day', a.condition, a.settlement_period, a.attribution_method) d
              WHERE a.key LIKE 'rnd\_%')
    SELECT * FROM own FULL JOIN drafted d USING (outcome_id)
     WHERE (d.simulated_status, d.simulated_amount) IS DISTINCT FROM (own.simulated_status, own.simulated_amount) $$,
    'random: an agent''s own condition, period and method given as the draft are the same as NULL');

SELECT results_eq($$ SELECT confirmed + failed, errors FROM witn.settle() $$,
    $$ SELECT count(*), 0::bigint FROM rnd_actual WHERE status IN ('OPEN', 'PENDING') AND settles_at <= now() $$,
    'random: settlement now resolves the outcomes that were due');
TRUNCATE rnd_actual;
INSERT INTO rnd_actual
SELECT o.id, o.customer_key, o.key, o.agent_key, o.status::text, o.scheduled_resolution::text, o.settles_at, o.quantity, o.currency, l.amount
  FROM witn.outcomes o LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
 WHERE o.customer_key LIKE 'rnd\_%';
SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(false) s JOIN rnd_actual o ON o.id = s.outcome_id
     WHERE (s.status, s.simulated_status, s.amount) IS DISTINCT FROM (o.status, o.status, o.amount) OR s.simulated_amount IS DISTINCT FROM o.amount $$,
    'random, after settlement: every outcome, own terms, simulated as it is');
SELECT is_empty($$
    SELECT * FROM pg_temp.rnd_simulated(true) s JOIN rnd_actual o ON o.id = s.outcome_id
      JOIN rnd_actual tw ON tw.customer_key = o.customer_key AND tw.key = o.key || '~'
     WHERE (s.simulated_status, s.simulated_amount) IS DISTINCT FROM (tw.status, tw.amount) $$,
    'random, twin terms: every outcome is simulated as its twin came out (status and invoice line)');
SELECT ok((SELECT count(*) FROM pg_temp.rnd_simulated(true) s WHERE s.simulated_status <> s.status) >= 40,
    'and the twin terms change many outcomes'' status');
SELECT set_eq($$ SELECT * FROM witn.simulate_summary('rnd_a', now() - interval '1 year', now() + interval '1 day',
                                                 (SELECT condition FROM twins WHERE agent = 'rnd_a'), '2 days', 'last', 3.75) $$,
    $$ SELECT s.customer_key, s.currency, count(*) AS outcomes,
              count(*) FILTER (WHERE s.status IS DISTINCT FROM s.simulated_status OR s.amount IS DISTINCT FROM s.simulated_amount) AS changed,
              count(*) FILTER (WHERE s.status = 'CONFIRMED') AS confirmed, count(*) FILTER (WHERE s.simulated_status = 'CONFIRMED') AS simulated_confirmed,
              coalesce(sum(s.amount), 0) AS amount, coalesce(sum(s.simulated_amount), 0) AS simulated_amount,
              coalesce(sum(s.simulated_amount), 0) - coalesce(sum(s.amount), 0) AS difference
         FROM pg_temp.rnd_simulated(true) s WHERE s.agent = 'rnd_a' GROUP BY 1, 2 $$,
    'random: simulate_summary is the sum of the rows, per customer and currency');
SELECT is((SELECT count(*) FROM witn.simulate_summary('rnd_a', now() - interval '1 year', now() + interval '1 day')),
          (SELECT count(DISTINCT (customer_key, currency)) FROM rnd_actual WHERE agent_key = 'rnd_a'),
    'one summary row per customer and currency');

-- =================================================================================================
-- 5. Nothing written, nothing locked against ingestion.
-- =================================================================================================
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT format('%s %s %s %s %s %s %s %s',
        (SELECT count(*) || ':' || md5(string_agg(o::text, '|' ORDER BY o.id)) FROM witn.outcomes o),
        (SELECT count(*) || ':' || md5(string_agg(e::text, '|' ORDER BY e.id)) FROM witn.events e),
        (SELECT count(*) || ':' || md5(string_agg(l::text, '|' ORDER BY l.id)) FROM witn.invoice_lines l),
        (SELECT count(*) || ':' || md5(string_agg(n::text, '|' ORDER BY n.id)) FROM witn.notifications n),
        (SELECT count(*) FROM witn.credit_lines), (SELECT count(*) FROM witn.settlement_errors),
        (SELECT count(*) FROM witn.webhook_deliveries), (SELECT md5(string_agg(a::text, '|' ORDER BY a.key)) FROM witn.agents a))
$$;
CREATE TEMP TABLE fingerprints AS SELECT pg_temp.fingerprint() AS before;
TRUNCATE locks_before;
INSERT INTO locks_before SELECT * FROM pg_temp.witn_locks();
CREATE TEMP TABLE row_locks AS SELECT count(*) AS before FROM witn.outcomes WHERE NOT xmax = '0'::xid;
DO $$ BEGIN
    PERFORM count(*) FROM pg_temp.rnd_simulated(true);
    PERFORM count(*) FROM witn.simulate_summary('support', now() - interval '1 year', now(), settlement_period => '1 day');
    PERFORM count(*) FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate', json_build_object('agent_key', 'rnd_b',
        'opened_from', now() - interval '1 year', 'opened_to', now(), 'attribution_method', 'sum'));
END $$;
SELECT is(pg_temp.fingerprint(), (SELECT before FROM fingerprints),
    'simulate wrote nothing: outcomes, events, invoice lines, notifications, credits, errors, deliveries and agents are as they were');
SELECT is_empty($$ SELECT * FROM pg_temp.witn_locks() EXCEPT SELECT * FROM locks_before
                   EXCEPT SELECT relation, 'AccessShareLock' FROM pg_temp.witn_locks() $$,
    'simulate took no lock but AccessShareLock on witn''s relations');
SELECT is_empty($$ SELECT * FROM pg_temp.witn_locks()
                    WHERE mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock') $$,
    'this transaction holds no lock that would block an INSERT into witn.events');
SELECT is((SELECT count(*) FROM witn.outcomes WHERE NOT xmax = '0'::xid), (SELECT before FROM row_locks),
    'and locked no outcome row');

-- =================================================================================================
-- 6. Who may simulate, as PostgREST calls it.
-- =================================================================================================
CREATE TEMP TABLE bodies AS SELECT json_build_object('agent_key', 'support', 'opened_from', now() - interval '1 year',
    'opened_to', now() + interval '1 day', 'condition', '[{"fact": "csat", "operator": "not lte", "value": 4}]'::json,
    'settlement_period', '5 days', 'attribution_method', 'max', 'price_per_unit', 3) AS draft,
    json_build_object('agent_key', 'support', 'opened_from', now() - interval '1 year', 'opened_to', now() + interval '1 day') AS own;

SELECT is((SELECT jsonb_path_query_array(r -> 'body', '$[*].simulated_status') FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate',
               (SELECT draft FROM bodies)) r),
    (SELECT jsonb_agg(s.simulated_status ORDER BY s.outcome_id) FROM witn.simulate('support', now() - interval '1 year', now() + interval '1 day',
         '[{"fact": "csat", "operator": "not lte", "value": 4}]', '5 days', 'max', 3) s),
    'witn_admin: POST /rpc/simulate with every term gives what witn.simulate gives');
SELECT is((SELECT r -> 'body' FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate', (SELECT own FROM bodies)) r),
    (SELECT jsonb_agg(s ORDER BY s.outcome_id) FROM witn.simulate('support', now() - interval '1 year', now() + interval '1 day') s),
    'witn_admin: POST /rpc/simulate without terms (their defaults): every outcome as it is');
SELECT is((SELECT r -> 'body' FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate_summary', (SELECT draft FROM bodies)) r),
    (SELECT jsonb_agg(s) FROM witn.simulate_summary('support', now() - interval '1 year', now() + interval '1 day',
         '[{"fact": "csat", "operator": "not lte", "value": 4}]', '5 days', 'max', 3) s),
    'witn_admin: POST /rpc/simulate_summary');
SELECT is((SELECT r ->> 'status' || ' ' || (r ->> 'code') FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate',
               '{"agent_key": "support", "opened_from": "2026-01-01", "opened_to": "2026-02-01", "settlement_period": "0"}') r),
    '400 WT001', 'witn_admin: a bad draft is a 400');
SELECT is((SELECT r ->> 'status' || ' ' || (r ->> 'code') FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate',
               '{"agent_key": "support", "opened_from": "2026-01-01", "opened_to": "2026-02-01", "condition": [{"fact": "x"}]}') r),
    '400 WT001', 'witn_admin: an invalid draft condition is a 400');
SELECT is((SELECT r ->> 'status' || ' ' || (r ->> 'code') FROM pg_temp.rpc(pg_temp.token('witn_admin'), 'simulate',
               '{"agent_key": "nobody", "opened_from": "2026-01-01", "opened_to": "2026-02-01"}') r),
    '400 WT003', 'witn_admin: an unknown agent is a 400');
SELECT is(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/',
              'SELECT count(*) AS body FROM witn.simulate(''support'', now() - interval ''1 year'', now() + interval ''1 day'', price_per_unit => 1)') #>> '{body}',
    (SELECT count(*)::text FROM witn.outcomes WHERE agent_key = 'support'), 'witn_admin: calls witn.simulate itself');
SELECT is(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/',
              'SELECT count(*) AS body FROM witn.simulate_summary(''support'', now() - interval ''1 year'', now() + interval ''1 day'')') #>> '{body}',
    '2', 'witn_admin: calls witn.simulate_summary itself');

SELECT is(r ->> 'status' || ' ' || (r ->> 'code'), '403 42501', role || ': ' || how || ' is refused (42501)')
  FROM unnest(ARRAY['witn_reader', 'witn_ingest', 'witn_customer']) role,
       LATERAL (VALUES ('POST /rpc/simulate', pg_temp.rpc(pg_temp.token(role, 'acme'), 'simulate', (SELECT own FROM bodies))),
                       ('POST /rpc/simulate_summary', pg_temp.rpc(pg_temp.token(role, 'acme'), 'simulate_summary', (SELECT own FROM bodies))),
                       ('witn.simulate', pg_temp.request(role, pg_temp.token(role, 'acme')::text, 'POST', '/',
                            'SELECT count(*) AS body FROM witn.simulate(''support'', now() - interval ''1 year'', now())')),
                       ('witn.simulate_summary', pg_temp.request(role, pg_temp.token(role, 'acme')::text, 'POST', '/',
                            'SELECT count(*) AS body FROM witn.simulate_summary(''support'', now() - interval ''1 year'', now())')),
                       ('witn.simulate_on', pg_temp.request(role, pg_temp.token(role, 'acme')::text, 'POST', '/',
                            'SELECT count(*) AS body FROM witn.simulate_on(NULL, ''support'', now() - interval ''1 year'', now(), NULL, NULL, NULL, NULL)')))
           AS t(how, r);
SELECT is(pg_temp.request('witn_admin', '{"role": "witn_admin"}', 'POST', '/',
              'SELECT count(*) AS body FROM witn.simulate_on(NULL, ''support'', now() - interval ''1 year'', now(), NULL, NULL, NULL, NULL)') ->> 'code',
    '42501', 'witn_admin may not call the internal witn.simulate_on');

SELECT * FROM finish();
ROLLBACK;
