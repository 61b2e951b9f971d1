-- Billing periods (CONTRACT §17): a customer's timezone, validated; every invoice line stores
-- the calendar month of its resolved_at in that timezone, exact at month ends and across DST
-- changes, also when settlement runs late; a later timezone change never moves a written line;
-- witn.invoices groups by it.
BEGIN;
SELECT plan(22);

INSERT INTO witn.rate_cards (key, currency) VALUES ('bp', 'USD');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('bp_agent', '[]', '1 day');
INSERT INTO witn.rate_card_prices VALUES ('bp', 'bp_agent', 2.50);

-- ---- the timezone ------------------------------------------------------------------------------
SELECT is((SELECT column_default FROM information_schema.columns
            WHERE table_schema = 'witn' AND table_name = 'customers' AND column_name = 'timezone'),
          '''UTC''::text', 'witn.customers.timezone defaults to UTC');
SELECT throws_ok($$INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES ('bp_bad', 'bp', 'Mars/Olympus')$$,
    'WT001', 'VALIDATION_ERROR: unknown time zone Mars/Olympus', 'an unknown time zone is refused (WT001)');
SELECT throws_ok($$INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES ('bp_bad', 'bp', 'UTC+3')$$,
    'WT001', 'VALIDATION_ERROR: unknown time zone UTC+3', 'a POSIX offset is not an IANA name (WT001)');
SELECT throws_ok($$INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES ('bp_bad', 'bp', 'europe/berlin')$$,
    'WT001', 'VALIDATION_ERROR: unknown time zone europe/berlin', 'names are case-sensitive, as IANA spells them');
SELECT is((SELECT count(*) FROM witn.customers WHERE key = 'bp_bad'), 0::bigint, 'nothing was written');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('bp_utc', 'bp');
INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES
    ('bp_ny', 'bp', 'America/New_York'), ('bp_berlin', 'bp', 'Europe/Berlin'), ('bp_tokyo', 'bp', 'Asia/Tokyo'),
    ('bp_kiritimati', 'bp', 'Pacific/Kiritimati');
SELECT is((SELECT timezone FROM witn.customers WHERE key = 'bp_utc'), 'UTC', 'a customer without one is in UTC');
SELECT throws_ok($$UPDATE witn.customers SET timezone = 'Nowhere/Land' WHERE key = 'bp_ny'$$,
    'WT001', 'VALIDATION_ERROR: unknown time zone Nowhere/Land', 'an update to an unknown time zone is refused');
SELECT is((SELECT timezone FROM witn.customers WHERE key = 'bp_ny'), 'America/New_York', 'and changes nothing');

-- ---- lines and their month ---------------------------------------------------------------------
-- An outcome of `customer` that resolves at `at` (its only event occurred a day earlier).
CREATE FUNCTION pg_temp.resolve_at(customer text, outcome text, at timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
    VALUES (customer, outcome, 'done', 'bp_agent', at - interval '1 day');
$$;
CREATE FUNCTION pg_temp.period(customer text, outcome text) RETURNS date LANGUAGE sql AS $$
    SELECT billing_period FROM witn.invoice_lines WHERE customer_key = customer AND outcome_key = outcome
$$;
-- New York: EST (UTC-5) in February, EDT (UTC-4) from 8 March 2026.
SELECT pg_temp.resolve_at('bp_ny', 'feb_last_minute', '2026-03-01 04:59:00+00');  -- 23:59 EST, 28 Feb
SELECT pg_temp.resolve_at('bp_ny', 'mar_first_minute', '2026-03-01 05:00:00+00'); -- 00:00 EST, 1 Mar
SELECT pg_temp.resolve_at('bp_ny', 'mar_last_minute', '2026-04-01 03:59:59+00');  -- 23:59:59 EDT, 31 Mar
SELECT pg_temp.resolve_at('bp_ny', 'apr_first', '2026-04-01 04:00:00+00');         -- 00:00 EDT, 1 Apr
-- Berlin: CEST (UTC+2) until 25 October 2026, then CET (UTC+1).
SELECT pg_temp.resolve_at('bp_berlin', 'oct_last', '2026-10-31 22:59:59+00');     -- 23:59:59 CET, 31 Oct
SELECT pg_temp.resolve_at('bp_berlin', 'nov_first', '2026-10-31 23:00:00+00');    -- 00:00 CET, 1 Nov
SELECT pg_temp.resolve_at('bp_tokyo', 'feb_in_tokyo', '2026-01-31 15:00:00+00');  -- 00:00 JST, 1 Feb
SELECT pg_temp.resolve_at('bp_kiritimati', 'year_ahead', '2026-12-31 10:00:00+00'); -- 00:00 LINT (UTC+14), 1 Jan 2027
SELECT pg_temp.resolve_at('bp_utc', 'utc_last', '2026-02-28 23:59:59.999999+00');
-- Settlement runs late: the job of 00:00:30 on 1 March (New York) settles an outcome due at
-- 23:59 on 28 February; it resolves when it was due, and is billed in February.
SELECT pg_temp.resolve_at('bp_ny', 'cron_late', '2026-03-01 04:59:00+00');
SELECT is((SELECT confirmed FROM witn.settle(timestamptz '2026-03-01 00:00:30 America/New_York', NULL)), 5::bigint,
          'the late run settles what was due by then');
SELECT is(pg_temp.period('bp_ny', 'cron_late'), date '2026-02-01',
          'an outcome due at 23:59 on the last day, settled at 00:00:30 the next day, is billed in its month');
SELECT * FROM witn.settle(timestamptz '2027-02-01', NULL);

SELECT is(pg_temp.period('bp_ny', 'feb_last_minute'), date '2026-02-01', 'New York: 23:59 EST on 28 February is February');
SELECT is(pg_temp.period('bp_ny', 'mar_first_minute'), date '2026-03-01', 'New York: 00:00 EST on 1 March is March');
SELECT is(pg_temp.period('bp_ny', 'mar_last_minute'), date '2026-03-01',
          'New York: 23:59:59 EDT on 31 March, after the DST change, is March');
SELECT is(pg_temp.period('bp_ny', 'apr_first'), date '2026-04-01', 'New York: 00:00 EDT on 1 April is April');
SELECT is(pg_temp.period('bp_berlin', 'oct_last'), date '2026-10-01',
          'Berlin: 23:59:59 CET on 31 October, after the DST change, is October');
SELECT is(pg_temp.period('bp_berlin', 'nov_first'), date '2026-11-01', 'Berlin: 00:00 CET on 1 November is November');
SELECT is(pg_temp.period('bp_tokyo', 'feb_in_tokyo'), date '2026-02-01', 'Tokyo: 15:00 UTC on 31 January is February there');
SELECT is(pg_temp.period('bp_kiritimati', 'year_ahead'), date '2027-01-01',
          'Kiritimati (UTC+14): 10:00 UTC on 31 December 2026 is January 2027 there');
SELECT is(pg_temp.period('bp_utc', 'utc_last'), date '2026-02-01', 'UTC: the last microsecond of February is February');

-- A timezone change never moves a written line; later lines follow the new zone.
UPDATE witn.customers SET timezone = 'Asia/Tokyo' WHERE key = 'bp_ny';
SELECT is(pg_temp.period('bp_ny', 'feb_last_minute'), date '2026-02-01', 'a timezone change does not move a written line');
SELECT pg_temp.resolve_at('bp_ny', 'after_move', '2026-05-31 15:30:00+00');          -- 00:30 JST, 1 June
SELECT * FROM witn.settle(timestamptz '2027-02-01', NULL);
SELECT is(pg_temp.period('bp_ny', 'after_move'), date '2026-06-01', 'lines written after it use the new timezone');

-- witn.invoices groups by the stored month.
SELECT results_eq(
    $$ SELECT month, lines, amount FROM witn.invoices WHERE customer_key = 'bp_ny' ORDER BY month $$,
    $$ VALUES (date '2026-02-01', 2::bigint, 5.00), (date '2026-03-01', 2::bigint, 5.00),
              (date '2026-04-01', 1::bigint, 2.50), (date '2026-06-01', 1::bigint, 2.50) $$,
    'witn.invoices: one row per billing period, in the customer''s timezone');

SELECT * FROM finish();
ROLLBACK;
