-- Closing a month (CONTRACT §18): witn.close_period for one customer or all, once the month has
-- ended in the customer's timezone, idempotent; a closed month's invoice never changes again;
-- lines that would fall into a closed month are billed in the earliest open one; witn.invoices
-- shows closed_at; only witn_admin closes.
BEGIN;
SELECT plan(27);

INSERT INTO witn.rate_cards (key, currency) VALUES ('cp', 'USD');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('cp_agent', '[]', '1 day');
INSERT INTO witn.rate_card_prices VALUES ('cp', 'cp_agent', 10);
INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES
    ('cp_utc', 'cp', 'UTC'), ('cp_berlin', 'cp', 'Europe/Berlin'), ('cp_late', 'cp', 'Europe/Berlin');

CREATE FUNCTION pg_temp.resolve_at(customer text, outcome text, at timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
    VALUES (customer, outcome, 'done', 'cp_agent', at - interval '1 day');
$$;
CREATE FUNCTION pg_temp.period(customer text, outcome text) RETURNS date LANGUAGE sql AS $$
    SELECT billing_period FROM witn.invoice_lines WHERE customer_key = customer AND outcome_key = outcome
$$;
CREATE FUNCTION pg_temp.invoice(customer text, month date) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT lines || ' ' || amount_exact || ' ' || amount FROM witn.invoices i
                      WHERE i.customer_key = customer AND i.month = $2), 'none')
$$;

-- ---- bad input: a clear error, nothing written --------------------------------------------------
SELECT throws_ok($$SELECT * FROM witn.close_period(NULL)$$, 'WT001', 'VALIDATION_ERROR: period must not be null',
    'a NULL period is refused');
SELECT throws_ok($$SELECT * FROM witn.close_period('2026-10-15', 'cp_utc')$$, 'WT001',
    'VALIDATION_ERROR: period 2026-10-15 is not the first day of a month', 'a period that is not a month''s first day is refused');
SELECT throws_ok($$SELECT * FROM witn.close_period('2026-10-01', 'nobody')$$, 'WT002', 'CUSTOMER_NOT_FOUND: no customer nobody',
    'an unknown customer is refused');
SELECT throws_ok(format($$SELECT * FROM witn.close_period(%L, 'cp_berlin')$$, date_trunc('month', now() AT TIME ZONE 'Europe/Berlin')::date),
    'WT001', format('VALIDATION_ERROR: period %s has not ended for customer cp_berlin', to_char(now() AT TIME ZONE 'Europe/Berlin', 'YYYY-MM')),
    'the current month cannot be closed yet');
SELECT throws_ok(format($$SELECT * FROM witn.close_period(%L)$$, date_trunc('month', now() + interval '1 month')::date),
    'WT001', NULL, 'closing a future month for every customer is refused');
SELECT is((SELECT count(*) FROM witn.closed_periods), 0::bigint, 'and nothing was closed');

-- ---- closing --------------------------------------------------------------------------------
SELECT pg_temp.resolve_at('cp_utc', 'sep', '2026-09-15 12:00+00');
SELECT * FROM witn.settle(timestamptz '2026-09-30 00:00+00', NULL);
SELECT is(pg_temp.invoice('cp_utc', '2026-09-01'), '1 10 10.00', 'September has one line before the close');
SELECT results_eq($$SELECT customer_key, period FROM witn.close_period('2026-09-01', 'cp_utc')$$,
    $$VALUES ('cp_utc'::text, date '2026-09-01')$$, 'close_period closes the month for the customer and returns it');
SELECT isnt((SELECT closed_at FROM witn.invoices WHERE customer_key = 'cp_utc' AND month = '2026-09-01'), NULL,
    'witn.invoices shows when the month was closed');
SELECT is((SELECT closed_by FROM witn.closed_periods WHERE customer_key = 'cp_utc'), session_user::text, 'and who closed it');
SELECT is((SELECT closed_at FROM witn.close_period('2026-09-01', 'cp_utc')),
          (SELECT closed_at FROM witn.closed_periods WHERE customer_key = 'cp_utc' AND period = '2026-09-01'),
          'closing again is idempotent: the first close stands');
SELECT is((SELECT count(*) FROM witn.closed_periods), 1::bigint, 'one closed month');

-- An outcome due in the closed September, settled late, is billed in October; October closed
-- too, it goes to November.
SELECT pg_temp.resolve_at('cp_utc', 'sep_late', '2026-09-29 23:00+00');
SELECT pg_temp.resolve_at('cp_utc', 'sep_later', '2026-09-29 23:30+00');
SELECT * FROM witn.settle(timestamptz '2026-09-29 23:10+00', NULL);
SELECT is(pg_temp.period('cp_utc', 'sep_late'), date '2026-10-01', 'a line due in a closed month is billed in the next open one');
SELECT * FROM witn.close_period('2026-10-01', 'cp_utc');
SELECT * FROM witn.settle(timestamptz '2026-10-02', NULL);
SELECT is(pg_temp.period('cp_utc', 'sep_later'), date '2026-11-01', '... the earliest open one, past every closed month');
SELECT is(pg_temp.invoice('cp_utc', '2026-09-01'), '1 10 10.00', 'the closed September''s invoice did not change');
SELECT is(pg_temp.invoice('cp_utc', '2026-10-01'), '1 10 10.00', 'nor October''s, closed with the line it had');
SELECT is(pg_temp.invoice('cp_utc', '2026-11-01'), '1 10 10.00', 'November has the line that came after');
SELECT is((SELECT resolved_at FROM witn.invoice_lines WHERE outcome_key = 'sep_later'), timestamptz '2026-09-29 23:30+00',
    'the line keeps its resolved_at: only its billing period moved');

-- ---- a month end in a non-UTC timezone, after a DST change, with the job running late -------
-- Berlin left summer time on 25 October 2026. Both outcomes are due at 23:59:59 CET on
-- 31 October (22:59:59 UTC); settlement runs at 00:00:30 on 1 November (23:00:30 UTC).
SELECT pg_temp.resolve_at('cp_berlin', 'oct_end', '2026-10-31 22:59:59+00');
SELECT pg_temp.resolve_at('cp_late', 'oct_end', '2026-10-31 22:59:59+00');
-- cp_late's October is closed first (it has ended in Berlin by then: 23:00 UTC).
SELECT * FROM witn.close_period('2026-10-01', 'cp_late');
SELECT * FROM witn.settle(timestamptz '2026-11-01 00:00:30 Europe/Berlin', NULL);
SELECT is(pg_temp.period('cp_berlin', 'oct_end'), date '2026-10-01',
    'Berlin: due at 23:59:59 CET on 31 October, settled at 00:00:30, is billed in October');
SELECT is(pg_temp.period('cp_late', 'oct_end'), date '2026-11-01',
    'Berlin, October closed: the same line is billed in November');

-- ---- every customer at once ----------------------------------------------------------------
SELECT is((SELECT count(*) FROM witn.close_period('2026-08-01')), 3::bigint, 'closing a month for all closes it for every customer');
SELECT is((SELECT count(*) FROM witn.closed_periods WHERE period = '2026-08-01'), 3::bigint, 'one row per customer');
SELECT is((SELECT count(*) FROM witn.close_period('2026-08-01')), 3::bigint, 'and again, idempotently');

-- ---- a timezone change does not reopen or move anything ------------------------------------
UPDATE witn.customers SET timezone = 'Pacific/Kiritimati' WHERE key = 'cp_utc';
SELECT is(pg_temp.invoice('cp_utc', '2026-09-01') || ' / ' || pg_temp.invoice('cp_utc', '2026-10-01'),
    '1 10 10.00 / 1 10 10.00', 'a timezone change leaves closed months as they were');

-- ---- roles ---------------------------------------------------------------------------------
SELECT ok(has_function_privilege('witn_admin', 'witn.close_period(date, text)', 'EXECUTE'), 'witn_admin may close months');
SELECT ok(NOT has_function_privilege('witn_reader', 'witn.close_period(date, text)', 'EXECUTE')
          AND NOT has_function_privilege('witn_ingest', 'witn.close_period(date, text)', 'EXECUTE')
          AND NOT has_function_privilege('witn_customer', 'witn.close_period(date, text)', 'EXECUTE'),
          'no other role may');
SET LOCAL ROLE witn_admin;
SELECT throws_ok($$INSERT INTO witn.closed_periods (customer_key, period) VALUES ('cp_berlin', '2026-07-01')$$, '42501', NULL,
    'nobody writes witn.closed_periods directly, not even witn_admin');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
