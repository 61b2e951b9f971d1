-- Pricing: the billing quantity by each attribution method, exact money, PRICE_NOT_FOUND, the
-- price and currency snapshot taken when an outcome opens, and the invoice views.
--
-- Times are anchored a day ahead of the transaction's now() (pg_temp.at), so that back-dated
-- events within an outcome are still accepted; witn.settle(as_of => ...) plays the clock.
BEGIN;
SELECT plan(46);

CREATE TEMP TABLE anchor AS SELECT date_trunc('minute', now()) + interval '1 day' AS t;
CREATE FUNCTION pg_temp.at(i interval) RETURNS timestamptz LANGUAGE sql STABLE AS
    $$ SELECT t + i FROM anchor $$;
CREATE FUNCTION pg_temp.outcome(c text, k text) RETURNS witn.outcomes LANGUAGE sql STABLE AS
    $$ SELECT * FROM witn.outcomes WHERE customer_key = c AND key = k $$;
CREATE FUNCTION pg_temp.line(c text, k text) RETURNS witn.invoice_lines LANGUAGE sql STABLE AS
    $$ SELECT * FROM witn.invoice_lines WHERE customer_key = c AND outcome_key = k $$;
CREATE FUNCTION pg_temp.ev(c text, k text, agent text, a text, occurred timestamptz,
                           props jsonb DEFAULT '{}') RETURNS void LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
    VALUES (c, k, a, agent, props, occurred)
$$;

INSERT INTO witn.rate_cards (key, currency) VALUES ('standard', 'USD'), ('euro', 'EUR'), ('bare', 'USD');
INSERT INTO witn.customers (key, rate_card_key)
    VALUES ('acme', 'standard'), ('nocard', NULL), ('barecard', 'bare'), ('snap', 'standard');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('by_last', '[]', '1 hour', 'last'), ('by_first', '[]', '1 hour', 'first'),
    ('by_sum', '[]', '1 hour', 'sum'), ('by_max', '[]', '1 hour', 'max'),
    ('by_min', '[]', '1 hour', 'min'), ('by_average', '[]', '1 hour', 'average'),
    ('gated', '[{"fact": "done", "operator": "seen"}]', '1 hour', 'sum'),
    ('metered', '[{"fact": "api_call", "operator": "seen"}]', '1 hour', 'last');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    SELECT 'standard', key, 2.5 FROM witn.agents WHERE key LIKE 'by\_%';
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('standard', 'gated', 3), ('standard', 'metered', 10), ('euro', 'by_last', 7),
           ('euro', 'metered', 4);

-- ---------------------------------------------------------------------------------------------
-- Each method over the same log. Arrival order:
--   #1 at T        attribution 3
--   #2 at T-30min  attribution 5   (back-dated: earliest so far)
--   #3 at T+10min  attribution 4   (latest so far)
--   #4 at T+10min  attribution 6   (ties #3 on occurred_at, arrives later: the last)
--   #5 at T-30min  attribution 9   (ties #2 on occurred_at, arrives later: not the first)
--   #6 at T+20min  no attribution  (does not count for any method)
-- last 6, first 5, sum 27, max 9, min 3, average 27/5 = 5.4; price 2.5.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.ev('acme', m, m, 'step', pg_temp.at(o), jsonb_build_object('attribution', a))
  FROM unnest(ARRAY['by_last', 'by_first', 'by_sum', 'by_max', 'by_min', 'by_average']) m,
       (VALUES (1, interval '0', 3), (2, interval '-30 minutes', 5), (3, interval '10 minutes', 4),
               (4, interval '10 minutes', 6), (5, interval '-30 minutes', 9)) v(n, o, a)
 ORDER BY m, n;
SELECT pg_temp.ev('acme', m, m, 'step', pg_temp.at('20 minutes'))
  FROM unnest(ARRAY['by_last', 'by_first', 'by_sum', 'by_max', 'by_min', 'by_average']) m;

SELECT is((SELECT count(*) FROM witn.events WHERE customer_key = 'acme' AND (late OR duplicate_of IS NOT NULL)),
          0::bigint, 'every event of the method scenario is accepted (back-dated ones too)');
SELECT is((pg_temp.outcome('acme', 'by_last')).quantity, 6::numeric,
          'last: latest by occurred_at, ties by arrival (later arrival wins)');
SELECT is((pg_temp.outcome('acme', 'by_first')).quantity, 5::numeric,
          'first: earliest by occurred_at, a back-dated event counts, ties by arrival (earlier arrival wins)');
SELECT is((pg_temp.outcome('acme', 'by_sum')).quantity, 27::numeric, 'sum: every attribution');
SELECT is((pg_temp.outcome('acme', 'by_max')).quantity, 9::numeric, 'max');
SELECT is((pg_temp.outcome('acme', 'by_min')).quantity, 3::numeric, 'min');
SELECT is((pg_temp.outcome('acme', 'by_average')).quantity, 5.4::numeric,
          'average: sum / number of events with an attribution');

-- ---------------------------------------------------------------------------------------------
-- More quantities: exact average, no attribution, any action, exact decimals, zero.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.ev('acme', 'avg-thirds', 'by_average', 'step', pg_temp.at('0'), '{"attribution": 1}');
SELECT pg_temp.ev('acme', 'avg-thirds', 'by_average', 'step', pg_temp.at('1 minute'), '{"attribution": 2}');
SELECT pg_temp.ev('acme', 'avg-thirds', 'by_average', 'step', pg_temp.at('2 minutes'));
SELECT pg_temp.ev('acme', 'avg-thirds', 'by_average', 'step', pg_temp.at('3 minutes'), '{"attribution": 2}');
SELECT is((pg_temp.outcome('acme', 'avg-thirds')).quantity::text, '1.66666666666666666667',
          'average of 1, 2, 2 is 1.66666666666666666667 (20 decimals, rounded)');

SELECT pg_temp.ev('acme', 'plain', 'by_sum', 'step', pg_temp.at('0'));
SELECT pg_temp.ev('acme', 'plain', 'by_sum', 'step', pg_temp.at('1 minute'), '{"value": 7}');
SELECT is((pg_temp.outcome('acme', 'plain')).quantity, 1::numeric, 'no attribution at all: quantity 1');

-- The condition only looks at "done"; attributions on other actions still count.
SELECT pg_temp.ev('acme', 'any-action', 'gated', 'usage', pg_temp.at('0'), '{"attribution": 4}');
SELECT pg_temp.ev('acme', 'any-action', 'gated', 'other', pg_temp.at('1 minute'), '{"attribution": 1.5}');
SELECT pg_temp.ev('acme', 'any-action', 'gated', 'done', pg_temp.at('2 minutes'));
SELECT is((pg_temp.outcome('acme', 'any-action')).quantity, 5.5::numeric,
          'attribution on events of any action counts');
SELECT is((pg_temp.outcome('acme', 'any-action')).status::text, 'PENDING', 'and the condition is decided by "done" alone');

SELECT pg_temp.ev('acme', 'tenths', 'by_sum', 'step', pg_temp.at('0'), '{"attribution": 0.1}');
SELECT pg_temp.ev('acme', 'tenths', 'by_sum', 'step', pg_temp.at('1 minute'), '{"attribution": 0.2}');
SELECT is((pg_temp.outcome('acme', 'tenths')).quantity, 0.3::numeric, 'sum 0.1 + 0.2 = 0.3 exactly');

SELECT pg_temp.ev('acme', 'fine', 'by_last', 'step', pg_temp.at('0'),
                  '{"attribution": 1.00000000000000000000000001}');
SELECT is((pg_temp.outcome('acme', 'fine')).quantity, 1.00000000000000000000000001::numeric,
          'an attribution with 26 decimals is kept exactly');

SELECT pg_temp.ev('acme', 'zero', 'by_last', 'step', pg_temp.at('0'), '{"attribution": 0}');
SELECT is((pg_temp.outcome('acme', 'zero')).quantity, 0::numeric, 'attribution 0: quantity 0');

-- The seeds' metered example: price_per_unit 10, attribution 1.2, bills 12.
SELECT pg_temp.ev('acme', 'acme:api:nov', 'metered', 'api_call', pg_temp.at('0'), '{"attribution": 1.2}');

-- ---------------------------------------------------------------------------------------------
-- Money at settlement: amount = unit_price x quantity, exact.
-- ---------------------------------------------------------------------------------------------
SELECT is((SELECT format('%s/%s/%s', confirmed, failed, errors) FROM witn.settle(pg_temp.at('2 hours'))),
          '13/0/0', 'everything above confirms');
SELECT results_eq(
    $$ SELECT outcome_key, quantity, unit_price, amount, currency FROM witn.invoice_lines
        WHERE outcome_key LIKE 'by\_%' ORDER BY outcome_key $$,
    $$ VALUES ('by_average', 5.4, 2.5, 13.5, 'USD'), ('by_first', 5, 2.5, 12.5, 'USD'),
              ('by_last', 6, 2.5, 15, 'USD'), ('by_max', 9, 2.5, 22.5, 'USD'),
              ('by_min', 3, 2.5, 7.5, 'USD'), ('by_sum', 27, 2.5, 67.5, 'USD') $$,
    'each method''s line: quantity, unit_price, amount = price x quantity');
SELECT is((pg_temp.line('acme', 'avg-thirds')).amount, 2.5 * 1.66666666666666666667,
          'average amount = price x 1.66666666666666666667 exactly');
SELECT is((pg_temp.line('acme', 'avg-thirds')).amount::text, '4.166666666666666666675',
          'no rounding on the line: 4.166666666666666666675');
SELECT is((pg_temp.line('acme', 'plain')).amount, 2.5, 'no attribution: amount = price');
SELECT is((pg_temp.line('acme', 'any-action')).amount, 16.5, 'any action: 3 x 5.5');
SELECT is((pg_temp.line('acme', 'tenths')).amount, 0.75, '2.5 x 0.3 = 0.75 exactly');
SELECT is((pg_temp.line('acme', 'fine')).amount, 2.500000000000000000000000025,
          '2.5 x 1.00000000000000000000000001 exactly');
SELECT is((pg_temp.line('acme', 'zero')).amount, 0::numeric, 'quantity 0: a line with amount 0');
SELECT is((pg_temp.line('acme', 'acme:api:nov')).amount, 12::numeric, 'metered: 10 x 1.2 = 12');
SELECT ok((pg_temp.line('acme', 'acme:api:nov')).amount::text IN ('12', '12.0'),
          'metered: amount is exactly 12 (no binary floating point)');
SELECT is((SELECT count(*) FROM witn.invoice_lines WHERE amount <> unit_price * quantity), 0::bigint,
          'every line: amount = unit_price x quantity');
SELECT is((SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o ON o.id = l.outcome_id
            WHERE (l.quantity, l.unit_price, l.currency) IS DISTINCT FROM (o.quantity, o.unit_price, o.currency)),
          0::bigint, 'every line carries its outcome''s quantity, unit_price and currency');

-- ---------------------------------------------------------------------------------------------
-- PRICE_NOT_FOUND: no rate card, or no price on it for the agent. Nothing is written.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE counts AS
    SELECT (SELECT count(*) FROM witn.events) AS events, (SELECT count(*) FROM witn.outcomes) AS outcomes;
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('nocard', 'x', 'step', 'by_last') $$,
    'WT005', NULL, 'customer without a rate card: WT005');
SELECT throws_like(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('nocard', 'x', 'step', 'by_last') $$,
    'PRICE_NOT_FOUND%', 'customer without a rate card: message starts with PRICE_NOT_FOUND');
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('barecard', 'x', 'step', 'by_last') $$,
    'WT005', NULL, 'rate card without a price for the agent: WT005');
SELECT throws_like(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('barecard', 'x', 'step', 'by_last') $$,
    'PRICE_NOT_FOUND%', 'rate card without a price for the agent: message starts with PRICE_NOT_FOUND');
SELECT throws_ok(
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key)
       VALUES ('acme', 'fine-too', 'step', 'by_last'), ('barecard', 'y', 'step', 'by_last') $$,
    'WT005', NULL, 'one unpriced row fails the whole statement');
SELECT is((SELECT count(*) FROM witn.events), (SELECT events FROM counts), 'PRICE_NOT_FOUND: no event written');
SELECT is((SELECT count(*) FROM witn.outcomes), (SELECT outcomes FROM counts), 'PRICE_NOT_FOUND: no outcome written');

-- ---------------------------------------------------------------------------------------------
-- Price and currency are snapshotted when the outcome opens.
-- ---------------------------------------------------------------------------------------------
SELECT pg_temp.ev('snap', 'before', 'by_last', 'step', pg_temp.at('3 hours'));
UPDATE witn.rate_card_prices SET price_per_unit = 99 WHERE rate_card_key = 'standard' AND agent_key = 'by_last';
UPDATE witn.rate_cards SET currency = 'GBP' WHERE key = 'standard';
SELECT pg_temp.ev('snap', 'before', 'by_last', 'step', pg_temp.at('3 hours 5 minutes'), '{"attribution": 2}');
SELECT pg_temp.ev('snap', 'repriced', 'by_last', 'step', pg_temp.at('3 hours'));
UPDATE witn.customers SET rate_card_key = 'euro' WHERE key = 'snap';
SELECT pg_temp.ev('snap', 'before', 'by_last', 'step', pg_temp.at('3 hours 10 minutes'), '{"attribution": 3}');
SELECT pg_temp.ev('snap', 'moved', 'by_last', 'step', pg_temp.at('3 hours'));

SELECT results_eq(
    $$ SELECT key, unit_price, currency, accepted_events FROM witn.outcomes WHERE customer_key = 'snap' ORDER BY key $$,
    $$ VALUES ('before', 2.5::numeric, 'USD', 3::bigint), ('moved', 7, 'EUR', 1), ('repriced', 99, 'GBP', 1) $$,
    'edits to prices, the card''s currency or the customer''s card do not reach an open outcome; new outcomes use them');
SELECT is((SELECT format('%s/%s/%s', confirmed, failed, errors) FROM witn.settle(pg_temp.at('5 hours'))),
          '3/0/0', 'the snapshot outcomes confirm');
SELECT results_eq(
    $$ SELECT outcome_key, quantity, unit_price, amount, currency FROM witn.invoice_lines
        WHERE customer_key = 'snap' ORDER BY outcome_key $$,
    $$ VALUES ('before', 3::numeric, 2.5, 7.5, 'USD'), ('moved', 1, 7, 7, 'EUR'), ('repriced', 1, 99, 99, 'GBP') $$,
    'the invoice line is written at the snapshotted price and currency');

-- ---------------------------------------------------------------------------------------------
-- Invoice views: per customer, currency and UTC month; the exact sum rounded once.
-- ---------------------------------------------------------------------------------------------
TRUNCATE witn.invoice_lines, witn.notifications;
INSERT INTO witn.rate_cards (key, currency)
    VALUES ('thirds', 'USD'), ('yen', 'JPY'), ('dinar', 'KWD'), ('halfcent', 'USD');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('inv', '[]', '1 hour');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('thirds', 'inv', 0.333), ('yen', 'inv', 0.25), ('dinar', 'inv', 1.2345), ('halfcent', 'inv', 0.005);
INSERT INTO witn.customers (key, rate_card_key) VALUES ('inv_usd', 'thirds'), ('inv_jpy', 'yen'),
    ('inv_kwd', 'dinar'), ('inv_half', 'halfcent'), ('inv_usd2', 'thirds');
-- Back-dated into 2025: each outcome is due at once and resolves at occurred_at + 1 hour.
-- In Auckland (UTC+13 in summer) 2025-01-31 23:30 UTC is already February: the month is UTC's.
SET LOCAL timezone = 'Pacific/Auckland';
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES
    ('inv_usd', 'u1', 'step', 'inv', '2025-01-05 10:00+00'),
    ('inv_usd', 'u2', 'step', 'inv', '2025-01-20 10:00+00'),
    ('inv_usd', 'u3', 'step', 'inv', '2025-01-31 22:30+00'),
    ('inv_usd', 'u4', 'step', 'inv', '2025-01-31 23:00+00'),
    ('inv_usd2', 'v1', 'step', 'inv', '2025-01-10 10:00+00'),
    ('inv_jpy', 'j1', 'step', 'inv', '2025-03-01 10:00+00'),
    ('inv_jpy', 'j2', 'step', 'inv', '2025-03-02 10:00+00'),
    ('inv_kwd', 'k1', 'step', 'inv', '2025-03-01 10:00+00'),
    ('inv_half', 'h1', 'step', 'inv', '2025-03-01 10:00+00');
SELECT is((SELECT format('%s/%s/%s', confirmed, failed, errors) FROM witn.settle()), '9/0/0',
          'the back-dated invoice outcomes settle at once');
SELECT is((pg_temp.line('inv_usd', 'u4')).resolved_at, '2025-02-01 00:00+00'::timestamptz,
          'u4 resolves exactly at midnight UTC, February 1');
SELECT results_eq(
    $$ SELECT customer_key, currency, month, lines, amount_exact, amount::text FROM witn.invoices
        ORDER BY customer_key, month $$,
    $$ VALUES ('inv_half', 'USD', '2025-03-01'::date, 1::bigint, 0.005, '0.01'),
              ('inv_jpy', 'JPY', '2025-03-01'::date, 2::bigint, 0.50, '1'),
              ('inv_kwd', 'KWD', '2025-03-01'::date, 1::bigint, 1.2345, '1.235'),
              ('inv_usd', 'USD', '2025-01-01'::date, 3::bigint, 0.999, '1.00'),
              ('inv_usd', 'USD', '2025-02-01'::date, 1::bigint, 0.333, '0.33'),
              ('inv_usd2', 'USD', '2025-01-01'::date, 1::bigint, 0.333, '0.33') $$,
    'witn.invoices: per customer, currency and UTC month; exact sum rounded once to minor units, half away from zero');
SELECT is((SELECT amount FROM witn.invoices WHERE customer_key = 'inv_usd' AND month = '2025-01-01'),
          1.00, 'three lines of 0.333 USD: 1.00, not 3 x 0.33');
SELECT is((SELECT sum(round(amount, 2)) FROM witn.invoice_lines WHERE customer_key = 'inv_usd'
            AND resolved_at < '2025-02-01+00'), 0.99,
          '(rounding each line would have given 0.99)');
RESET timezone;

SELECT set_eq(
    $$ SELECT attname::text FROM pg_attribute WHERE attrelid = 'witn.invoice_line_details'::regclass
        AND attnum > 0 AND NOT attisdropped $$,
    ARRAY['id', 'customer_key', 'outcome_id', 'outcome_key', 'agent_key', 'quantity', 'unit_price',
          'amount', 'currency', 'resolved_at', 'created_at', 'opened_at', 'settles_at',
          'agent_version', 'attribution_method', 'billing_period'],
    'witn.invoice_line_details: the line and the terms of its outcome');
SELECT is((SELECT count(*) FROM witn.invoice_line_details), (SELECT count(*) FROM witn.invoice_lines),
          'witn.invoice_line_details: one row per line');
SELECT is((SELECT count(*) FROM witn.invoice_line_details d JOIN witn.outcomes o ON o.id = d.outcome_id
            WHERE (d.opened_at, d.settles_at, d.agent_version, d.attribution_method, d.resolved_at)
                  IS DISTINCT FROM (o.opened_at, o.settles_at, o.agent_version, o.attribution_method, o.resolved_at)),
          0::bigint, 'witn.invoice_line_details: the outcome''s opened_at, settles_at, agent_version, attribution_method');
SELECT is((SELECT sum(amount) FROM witn.invoice_line_details WHERE customer_key = 'inv_usd'),
          (SELECT sum(amount_exact) FROM witn.invoices WHERE customer_key = 'inv_usd'),
          'the details add up to the invoices'' exact amounts');

SELECT * FROM finish();
ROLLBACK;
