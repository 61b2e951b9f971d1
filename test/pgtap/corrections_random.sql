-- Randomized test of credits, reversals and closed months (CONTRACT §17-§20), reproducible
-- (setseed). Five customers in five time zones (USD, JPY and AUD rate cards), three agents: one
-- without a reversal policy, one reversed by the first 'reopened' event within 180 days, one by
-- the second within 45 days. Outcomes are back-dated across September-November 2026 with a
-- settlement period of one hour, so witn.settle() at now() resolves them (a fifth fail their
-- condition). Then a random sequence of numbered steps: credit_outcome of random amounts (some
-- exactly what is left, some more: CREDIT_EXCEEDS_AMOUNT), bad input, reverse_outcome, 'reopened'
-- and 'note' events (in or after the reversal window; automatic reversal), close_period of
-- September, October or November for one customer or all, and new back-dated outcomes settled
-- after some months were closed. An independent model below predicts every step's result.
--
-- Every timestamp written in one transaction is its start (credit_lines.created_at,
-- closed_periods.closed_at), so "before" and "after" are by step number: credit_step and
-- line_step say at which step each credit and invoice line was written, m_closed at which step
-- each month was closed, close_snap what each closed month's invoice was right after each close.
BEGIN;
SELECT plan(28);
SET LOCAL TimeZone = 'UTC';
SELECT setseed(0.0600);

INSERT INTO witn.rate_cards (key, currency) VALUES ('cr_usd', 'USD'), ('cr_jpy', 'JPY'), ('cr_aud', 'AUD');
INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES
    ('cr_utc', 'cr_usd', 'UTC'), ('cr_ny', 'cr_usd', 'America/New_York'), ('cr_berlin', 'cr_usd', 'Europe/Berlin'),
    ('cr_tokyo', 'cr_jpy', 'Asia/Tokyo'), ('cr_sydney', 'cr_aud', 'Australia/Sydney');
INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
    ('cr_plain', '[{"fact": "resolved", "operator": "gte", "value": 2}]', '1 hour', NULL, NULL),
    ('cr_rev', '[{"fact": "resolved", "operator": "gte", "value": 2}]', '1 hour',
     '[{"fact": "reopened", "operator": "seen"}]', '180 days'),
    ('cr_rev2', '[{"fact": "resolved", "operator": "gte", "value": 2}]', '1 hour',
     '[{"fact": "reopened", "operator": "count_gte", "value": 2}]', '45 days');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT c, a, round((0.5 + random() * 30)::numeric, 4)
  FROM unnest(ARRAY['cr_usd', 'cr_jpy', 'cr_aud']) c, unnest(ARRAY['cr_plain', 'cr_rev', 'cr_rev2']) a
 ORDER BY c, a;

-- =============================================================================================
-- The model.
-- =============================================================================================
CREATE TEMP TABLE m_agent (agent text PRIMARY KEY, threshold integer, period interval);
INSERT INTO m_agent VALUES ('cr_plain', NULL, NULL), ('cr_rev', 1, '180 days'), ('cr_rev2', 2, '45 days');

CREATE TEMP TABLE m_outcome (
    id          bigint PRIMARY KEY,
    customer    text NOT NULL,
    key         text NOT NULL,
    agent       text NOT NULL,
    confirmed   boolean NOT NULL,
    line_amount numeric,                       -- NULL: failed, no line
    resolved_at timestamptz NOT NULL,
    credited    numeric NOT NULL DEFAULT 0,
    reversed    text,                          -- NULL, 'manual' or 'condition'
    reopened    integer NOT NULL DEFAULT 0,    -- accepted 'reopened' events
    step        integer NOT NULL               -- 0: the first settlement
);
CREATE TEMP TABLE m_closed (customer text, month date, step integer NOT NULL, PRIMARY KEY (customer, month));
CREATE TEMP TABLE steps (
    step         integer PRIMARY KEY,
    kind         text NOT NULL,
    customer     text,
    outcome_id   bigint,
    month        date,
    amount       numeric,
    exp_result   text, got_result   text,     -- 'ok' or the SQLSTATE (or what settlement did)
    exp_credits  integer, got_credits  integer,  -- credit rows written by the step
    exp_sum      numeric, got_sum      numeric,  -- and their total
    exp_period   date, got_period   date,     -- and their billing month
    exp_reversed boolean, got_reversed boolean,  -- the outcome is reversed after the step
    exp_late     boolean, got_late     boolean   -- the event was late (event steps)
);
CREATE TEMP TABLE credit_step (credit_id bigint PRIMARY KEY, step integer NOT NULL);
CREATE TEMP TABLE line_step (outcome_id bigint PRIMARY KEY, step integer NOT NULL);
CREATE TEMP TABLE close_snap (
    step integer, customer text, month date, present boolean,
    lines bigint, credit_count bigint, charges numeric, credits numeric, amount_exact numeric, amount numeric,
    closed_at timestamptz
);
-- The outcome and its line as settlement left them: credits and reversals never change them.
CREATE TEMP TABLE settled_snap (
    id bigint PRIMARY KEY, status text, settles_at timestamptz, resolved_at timestamptz,
    line_amount numeric, billing_period date
);

CREATE FUNCTION pg_temp.pick(choices text[]) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT choices[1 + floor(random() * array_length(choices, 1))::int]
$$;
CREATE FUNCTION pg_temp.tz(customer text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT timezone FROM witn.customers WHERE key = customer
$$;
-- The earliest month from `from_month` on that is not closed for the customer (per the model).
CREATE FUNCTION pg_temp.open_month(customer text, from_month date) RETURNS date LANGUAGE plpgsql AS $$
DECLARE
    m date := from_month;
BEGIN
    WHILE EXISTS (SELECT 1 FROM m_closed c WHERE c.customer = $1 AND c.month = m) LOOP
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN m;
END $$;
CREATE FUNCTION pg_temp.month_of(customer text, at timestamptz) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT date_trunc('month', at AT TIME ZONE pg_temp.tz(customer))::date
$$;

-- A new outcome, back-dated into September-November in the customer's timezone (a fifth of
-- them around a local month end, on either side of it), resolved one hour later.
CREATE FUNCTION pg_temp.new_outcome(s integer, outcome text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    customer text := pg_temp.pick(ARRAY['cr_utc', 'cr_ny', 'cr_berlin', 'cr_tokyo', 'cr_sydney']);
    agent text := pg_temp.pick(ARRAY['cr_plain', 'cr_rev', 'cr_rev', 'cr_rev2', 'cr_rev2']);
    at timestamptz;
    value integer := 1 + floor(random() * 5)::int;   -- 1 fails the condition
    quantity numeric := round((0.5 + random() * 3)::numeric, floor(random() * 4)::int);
    price numeric;
    new_id bigint;
BEGIN
    IF random() < 0.2 THEN
        at := ((pg_temp.pick(ARRAY['2026-10-01', '2026-11-01', '2026-12-01']))::timestamp AT TIME ZONE pg_temp.tz(customer))
              - interval '90 minutes' + make_interval(mins => floor(random() * 60)::int);
    ELSE
        at := (timestamp '2026-09-01 00:00' + random() * interval '89 days') AT TIME ZONE pg_temp.tz(customer);
    END IF;
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
    VALUES (customer, outcome, 'resolved', agent, jsonb_build_object('value', value, 'attribution', quantity), at);
    SELECT o.id INTO new_id FROM witn.outcomes o WHERE o.customer_key = customer AND o.key = outcome;
    SELECT p.price_per_unit INTO price
      FROM witn.rate_card_prices p JOIN witn.customers c ON c.rate_card_key = p.rate_card_key
     WHERE c.key = customer AND p.agent_key = agent;
    INSERT INTO m_outcome (id, customer, key, agent, confirmed, line_amount, resolved_at, step)
    VALUES (new_id, customer, outcome, agent, value >= 2, CASE WHEN value >= 2 THEN price * quantity END,
            at + interval '1 hour', s);
    RETURN new_id;
END $$;

CREATE FUNCTION pg_temp.snap_settled(outcome bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO settled_snap
    SELECT o.id, o.status::text, o.settles_at, o.resolved_at, l.amount, l.billing_period
      FROM witn.outcomes o LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
     WHERE o.id = outcome;
$$;

-- =============================================================================================
-- Step 0: 120 outcomes, settled at now().
-- =============================================================================================
DO $$ BEGIN PERFORM pg_temp.new_outcome(0, 'o' || g) FROM generate_series(1, 120) g; END $$;
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle() $$,
    $$ SELECT count(*) FILTER (WHERE confirmed), count(*) FILTER (WHERE NOT confirmed), 0::bigint FROM m_outcome $$,
    'the first settlement confirms the outcomes whose condition holds and fails the others');
INSERT INTO line_step SELECT outcome_id, 0 FROM witn.invoice_lines;
DO $$ BEGIN PERFORM pg_temp.snap_settled(id) FROM m_outcome; END $$;

-- =============================================================================================
-- Steps 1..700.
-- =============================================================================================
DO $$
DECLARE
    o m_outcome;
    a m_agent;
    st steps;
    remaining numeric;
    r double precision;
    last_credit bigint := coalesce((SELECT max(id) FROM witn.credit_lines), 0);
    returned bigint;
    ev_id bigint;
    ev_late boolean;
    ev_after boolean;
    reason text;
    cust text;
    new_id bigint;
    settled record;
    in_window boolean;
    failed_outcomes integer;
BEGIN
    FOR s IN 1..700 LOOP
        st := ROW(s, NULL, NULL, NULL, NULL, NULL, 'ok', NULL, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        r := random();
        -- Mostly confirmed outcomes; sometimes any (failed ones have nothing to credit).
        IF random() < 0.85 THEN
            SELECT * INTO o FROM m_outcome WHERE confirmed ORDER BY id
             OFFSET floor(random() * (SELECT count(*) FROM m_outcome WHERE confirmed)) LIMIT 1;
        ELSE
            SELECT * INTO o FROM m_outcome ORDER BY id OFFSET floor(random() * (SELECT count(*) FROM m_outcome)) LIMIT 1;
        END IF;
        SELECT * INTO a FROM m_agent WHERE agent = o.agent;
        remaining := CASE WHEN o.confirmed AND o.reversed IS NULL THEN o.line_amount - o.credited ELSE 0 END;
        st.customer := o.customer;
        st.outcome_id := o.id;
        st.exp_reversed := o.reversed IS NOT NULL;

        IF r < 0.45 THEN
            -- ---- credit_outcome -------------------------------------------------------------
            st.kind := 'credit';
            r := random();
            st.amount := CASE
                WHEN r < 0.12 AND remaining > 0 THEN remaining                                 -- exactly what is left
                WHEN r < 0.30 THEN remaining + round((0.0001 + random() * 2)::numeric, 4)      -- more than that
                ELSE greatest(0.0001, round((random() * coalesce(o.line_amount, 5) * 0.35)::numeric, floor(random() * 5)::int))
            END;
            st.exp_result := CASE WHEN NOT o.confirmed THEN 'WT010' WHEN st.amount > remaining THEN 'WT011' ELSE 'ok' END;
            IF st.exp_result = 'ok' THEN
                st.exp_credits := 1;
                st.exp_sum := st.amount;
                st.exp_period := pg_temp.open_month(o.customer, pg_temp.month_of(o.customer, now()));
            END IF;
            BEGIN
                PERFORM witn.credit_outcome(o.id, st.amount, 'goodwill ' || s);
                st.got_result := 'ok';
            EXCEPTION WHEN OTHERS THEN
                st.got_result := SQLSTATE;
            END;
            IF st.got_result = 'ok' THEN
                UPDATE m_outcome SET credited = credited + st.amount WHERE id = o.id;
            END IF;

        ELSIF r < 0.49 THEN
            -- ---- bad input on an outcome with something left: WT001, nothing written -------
            st.kind := 'bad input';
            SELECT * INTO o FROM m_outcome WHERE confirmed AND reversed IS NULL AND credited < line_amount ORDER BY id
             OFFSET floor(random() * (SELECT count(*) FROM m_outcome WHERE confirmed AND reversed IS NULL AND credited < line_amount))
             LIMIT 1;
            st.customer := o.customer;
            st.outcome_id := o.id;
            st.exp_reversed := false;
            st.exp_result := 'WT001';
            r := random();
            BEGIN
                IF r < 0.15 THEN
                    st.amount := 0;
                    PERFORM witn.credit_outcome(o.id, 0, 'zero');
                ELSIF r < 0.3 THEN
                    st.amount := -1;
                    PERFORM witn.credit_outcome(o.id, -1, 'negative');
                ELSIF r < 0.4 THEN
                    PERFORM witn.credit_outcome(o.id, 'NaN', 'not a number');
                ELSIF r < 0.5 THEN
                    PERFORM witn.credit_outcome(o.id, NULL, 'no amount');
                ELSIF r < 0.6 THEN
                    PERFORM witn.credit_outcome(o.id, 0.01, '   ');
                ELSIF r < 0.7 THEN
                    PERFORM witn.credit_outcome(o.id, 0.01, NULL);
                ELSIF r < 0.8 THEN
                    PERFORM witn.credit_outcome(o.id, 0.01, 'reversal_condition');
                ELSIF r < 0.9 THEN
                    PERFORM witn.reverse_outcome(o.id, 'reversal_condition');
                ELSE
                    PERFORM witn.reverse_outcome(o.id, repeat('x', 1001));
                END IF;
                st.got_result := 'ok';
            EXCEPTION WHEN OTHERS THEN
                st.got_result := SQLSTATE;
            END;

        ELSIF r < 0.59 THEN
            -- ---- reverse_outcome ------------------------------------------------------------
            st.kind := 'reverse';
            st.exp_result := CASE WHEN NOT o.confirmed THEN 'WT010' WHEN o.reversed IS NOT NULL THEN 'WT012' ELSE 'ok' END;
            IF st.exp_result = 'ok' THEN
                st.exp_reversed := true;
                IF remaining > 0 THEN
                    st.exp_credits := 1;
                    st.exp_sum := remaining;
                    st.exp_period := pg_temp.open_month(o.customer, pg_temp.month_of(o.customer, now()));
                END IF;
            END IF;
            BEGIN
                SELECT count(*) INTO returned FROM witn.reverse_outcome(o.id, 'refund ' || s);
                st.got_result := CASE WHEN returned = st.exp_credits THEN 'ok' ELSE 'ok, returned ' || returned || ' rows' END;
            EXCEPTION WHEN OTHERS THEN
                st.got_result := SQLSTATE;
            END;
            IF st.got_result LIKE 'ok%' THEN
                UPDATE m_outcome SET credited = line_amount, reversed = 'manual' WHERE id = o.id;
            END IF;

        ELSIF r < 0.84 THEN
            -- ---- an event for a resolved outcome: 'reopened' (may reverse it) or 'note' -----
            st.kind := CASE WHEN random() < 0.8 THEN 'reopened' ELSE 'note' END;
            in_window := o.confirmed AND a.threshold IS NOT NULL
                         AND now() >= o.resolved_at AND now() < o.resolved_at + a.period;
            st.exp_late := NOT in_window;
            IF in_window AND st.kind = 'reopened' THEN
                UPDATE m_outcome SET reopened = reopened + 1 WHERE id = o.id;
                IF o.reversed IS NULL AND o.reopened + 1 >= a.threshold THEN
                    st.exp_reversed := true;
                    IF remaining > 0 THEN
                        st.exp_credits := 1;
                        st.exp_sum := remaining;
                        st.exp_period := pg_temp.open_month(o.customer, pg_temp.month_of(o.customer, now()));
                    END IF;
                END IF;
            END IF;
            BEGIN
                INSERT INTO witn.events (customer_key, key, action) VALUES (o.customer, o.key, st.kind) RETURNING id INTO ev_id;
                SELECT e.late, e.after_resolution INTO ev_late, ev_after FROM witn.events e
                 WHERE e.customer_key = o.customer AND e.id = ev_id;
                st.got_late := ev_late;
                st.got_result := CASE WHEN ev_after = NOT ev_late THEN 'ok'
                                      ELSE format('late = %s, after_resolution = %s', ev_late, ev_after) END;
            EXCEPTION WHEN OTHERS THEN
                st.got_result := SQLSTATE;
            END;
            IF st.exp_reversed AND o.reversed IS NULL THEN
                UPDATE m_outcome SET credited = line_amount, reversed = 'condition' WHERE id = o.id;
            END IF;

        ELSIF r < 0.875 THEN
            -- ---- close a past month, for one customer or (sometimes) all --------------------
            st.kind := 'close';
            st.outcome_id := NULL;
            st.exp_reversed := NULL;
            cust := CASE WHEN random() < 0.1 THEN NULL
                         ELSE pg_temp.pick(ARRAY['cr_utc', 'cr_ny', 'cr_berlin', 'cr_tokyo', 'cr_sydney']) END;
            st.customer := cust;
            st.month := pg_temp.pick(ARRAY['2026-09-01', '2026-10-01', '2026-11-01'])::date;
            st.exp_result := CASE WHEN EXISTS (
                    SELECT 1 FROM witn.customers k WHERE (cust IS NULL OR k.key = cust)
                       AND ((st.month + interval '1 month')::timestamp AT TIME ZONE k.timezone) > now())
                THEN 'WT001' ELSE 'ok' END;
            BEGIN
                PERFORM witn.close_period(st.month, cust);
                st.got_result := 'ok';
            EXCEPTION WHEN OTHERS THEN
                st.got_result := SQLSTATE;
            END;
            IF st.got_result = 'ok' THEN
                INSERT INTO m_closed
                SELECT k.key, st.month, s FROM witn.customers k WHERE cust IS NULL OR k.key = cust
                ON CONFLICT DO NOTHING;
                -- The closed month's invoice right after the close (none: no line or credit).
                INSERT INTO close_snap
                SELECT s, k.key, st.month, i.customer_key IS NOT NULL, i.lines, i.credit_count, i.charges, i.credits,
                       i.amount_exact, i.amount, i.closed_at
                  FROM witn.customers k
                  LEFT JOIN witn.invoices i ON i.customer_key = k.key AND i.month = st.month
                 WHERE cust IS NULL OR k.key = cust;
            END IF;

        ELSE
            -- ---- a new back-dated outcome, settled now: billed in the earliest open month ---
            st.kind := 'late outcome';
            new_id := pg_temp.new_outcome(s, 'late_' || s);
            SELECT * INTO o FROM m_outcome WHERE id = new_id;
            st.customer := o.customer;
            st.outcome_id := o.id;
            st.exp_reversed := false;
            st.exp_result := CASE WHEN o.confirmed
                THEN 'confirmed in ' || pg_temp.open_month(o.customer, pg_temp.month_of(o.customer, o.resolved_at))
                ELSE 'failed' END;
            SELECT * INTO settled FROM witn.settle();
            st.got_result := CASE
                WHEN (settled.confirmed, settled.failed, settled.errors) = (1, 0, 0)
                    THEN 'confirmed in ' || (SELECT l.billing_period FROM witn.invoice_lines l
                                               WHERE l.customer_key = o.customer AND l.outcome_id = o.id)
                WHEN (settled.confirmed, settled.failed, settled.errors) = (0, 1, 0) THEN 'failed'
                ELSE format('settle() returned %s', settled) END;
            INSERT INTO line_step SELECT l.outcome_id, s FROM witn.invoice_lines l
             WHERE l.customer_key = o.customer AND l.outcome_id = o.id;
            PERFORM pg_temp.snap_settled(o.id);
        END IF;

        -- What the step wrote: credit rows, and whether its outcome is reversed now.
        SELECT count(*), coalesce(sum(c.amount), 0), max(c.billing_period)
          INTO st.got_credits, st.got_sum, st.got_period
          FROM witn.credit_lines c WHERE c.id > last_credit;
        INSERT INTO credit_step SELECT c.id, s FROM witn.credit_lines c WHERE c.id > last_credit;
        last_credit := coalesce((SELECT max(id) FROM witn.credit_lines), 0);
        IF st.outcome_id IS NOT NULL THEN
            SELECT x.reversed_at IS NOT NULL INTO st.got_reversed FROM witn.outcomes x WHERE x.id = st.outcome_id;
        END IF;
        INSERT INTO steps SELECT st.*;
    END LOOP;
END $$;

-- =============================================================================================
-- Every step did what the model says.
-- =============================================================================================
SELECT is_empty($$
    SELECT * FROM steps
     WHERE (exp_result, exp_credits, exp_sum, exp_period, exp_reversed, exp_late)
           IS DISTINCT FROM (got_result, got_credits, got_sum, got_period, got_reversed, got_late)
     ORDER BY step
$$, 'every step (credit, bad input, reversal, event, close, late outcome) did what the model predicts');
SELECT is_empty($$
    SELECT m.id, m.credited, sum(c.amount), m.reversed, o.reversed_at, o.reversal_reason
      FROM m_outcome m JOIN witn.outcomes o ON o.id = m.id
      LEFT JOIN witn.credit_lines c ON c.customer_key = m.customer AND c.outcome_id = m.id
     GROUP BY m.id, m.credited, m.reversed, o.reversed_at, o.reversal_reason
    HAVING coalesce(sum(c.amount), 0) <> m.credited
        OR (m.reversed IS NULL) <> (o.reversed_at IS NULL)
        OR (m.reversed = 'condition') <> (o.reversal_reason = 'reversal_condition')
$$, 'per outcome, the credits and the reversal are the model''s (reversal_reason reversal_condition exactly for automatic ones)');

-- =============================================================================================
-- Closed months.
-- =============================================================================================
SELECT is_empty($$
    SELECT s.*, i.*
      FROM close_snap s
      LEFT JOIN witn.invoices i ON i.customer_key = s.customer AND i.month = s.month
     WHERE (s.present, s.lines, s.credit_count, s.charges, s.credits, s.amount_exact, s.amount, s.closed_at)
           IS DISTINCT FROM (i.customer_key IS NOT NULL, i.lines, i.credit_count, i.charges, i.credits,
                             i.amount_exact, i.amount, i.closed_at)
$$, 'every closed month''s invoice row is what it was right after each close');
SELECT is_empty($$
    SELECT c.id, c.customer_key, c.billing_period, cs.step, m.step AS closed_at_step
      FROM witn.credit_lines c JOIN credit_step cs ON cs.credit_id = c.id
      JOIN m_closed m ON m.customer = c.customer_key AND m.month = c.billing_period
     WHERE m.step < cs.step
$$, 'no credit issued after its month was closed landed in that month (by step order)');
SELECT is_empty($$
    SELECT l.outcome_id, l.customer_key, l.billing_period, ls.step, m.step AS closed_at_step
      FROM witn.invoice_lines l JOIN line_step ls ON ls.outcome_id = l.outcome_id
      JOIN m_closed m ON m.customer = l.customer_key AND m.month = l.billing_period
     WHERE m.step < ls.step
$$, 'no invoice line settled after its month was closed landed in that month (by step order)');
SELECT is_empty($$
    SELECT c.id, c.created_at, p.closed_at FROM witn.credit_lines c
      JOIN witn.closed_periods p ON p.customer_key = c.customer_key AND p.period = c.billing_period
     WHERE c.created_at > p.closed_at
$$, 'no credit line was created after the close of its month (by timestamp: all one transaction here)');
SELECT is_empty($$
    SELECT c.customer, c.month, c.step, p.period FROM m_closed c
      FULL JOIN witn.closed_periods p ON p.customer_key = c.customer AND p.period = c.month
     WHERE c.customer IS NULL OR p.customer_key IS NULL
$$, 'witn.closed_periods holds exactly the months the steps closed');
SELECT is_empty($$
    SELECT l.outcome_id, l.billing_period, pg_temp.month_of(l.customer_key, l.resolved_at)
      FROM witn.invoice_lines l JOIN line_step ls USING (outcome_id)
     WHERE ls.step = 0 AND l.billing_period <> pg_temp.month_of(l.customer_key, l.resolved_at)
$$, 'lines of the first settlement are billed in the calendar month of resolved_at in the customer''s timezone');
SELECT is_empty($$
    SELECT c.id, c.customer_key, c.billing_period FROM witn.credit_lines c
     WHERE c.billing_period <> pg_temp.month_of(c.customer_key, c.created_at)
$$, 'every credit is billed in the month it was issued in the customer''s timezone (never closed here)');

-- =============================================================================================
-- Invoices.
-- =============================================================================================
SELECT is_empty($$
    WITH t AS (
        SELECT customer_key, currency, billing_period AS month, count(*) AS lines, 0 AS credit_count,
               sum(amount) AS charges, 0 AS credits
          FROM witn.invoice_lines GROUP BY 1, 2, 3
        UNION ALL
        SELECT customer_key, currency, billing_period, 0, count(*), 0, sum(amount)
          FROM witn.credit_lines GROUP BY 1, 2, 3
    ), m AS (
        SELECT customer_key, currency, month, sum(lines) AS lines, sum(credit_count) AS credit_count,
               sum(charges) AS charges, sum(credits) AS credits
          FROM t GROUP BY 1, 2, 3
    )
    SELECT m.*, i.* FROM m FULL JOIN witn.invoices i USING (customer_key, currency, month)
     WHERE (m.lines, m.credit_count, m.charges, m.credits, m.charges - m.credits)
           IS DISTINCT FROM (i.lines, i.credit_count, i.charges, i.credits, i.amount_exact)
$$, 'every month''s figures are the exact sums of its invoice_lines and credit_lines (by billing_period)');
SELECT is_empty($$
    SELECT * FROM witn.invoices WHERE currency = 'USD' AND amount IS DISTINCT FROM round(charges - credits, 2)
$$, 'USD: amount = round(charges - credits, 2)');
SELECT is_empty($$
    SELECT i.* FROM witn.invoices i JOIN witn.currencies c ON c.code = i.currency
     WHERE i.amount IS DISTINCT FROM round(i.charges - i.credits, c.minor_units)
$$, 'every currency (JPY: 0 minor units): amount = round(charges - credits, minor units)');
SELECT is_empty($$
    SELECT i.* FROM witn.invoices i
      LEFT JOIN witn.closed_periods p ON p.customer_key = i.customer_key AND p.period = i.month
     WHERE i.closed_at IS DISTINCT FROM p.closed_at
$$, 'witn.invoices.closed_at is the month''s close (NULL while open)');

-- =============================================================================================
-- Credits never exceed the line.
-- =============================================================================================
SELECT is_empty($$
    SELECT l.outcome_id, l.amount, sum(c.amount) FROM witn.invoice_lines l
      JOIN witn.credit_lines c ON c.customer_key = l.customer_key AND c.outcome_id = l.outcome_id
     GROUP BY l.outcome_id, l.amount HAVING sum(c.amount) > l.amount
$$, 'total credits per outcome never exceed its line amount');
SELECT is_empty($$
    SELECT c.* FROM witn.credit_lines c
      LEFT JOIN witn.invoice_lines l ON l.customer_key = c.customer_key AND l.outcome_id = c.outcome_id
      LEFT JOIN witn.outcomes o ON o.customer_key = c.customer_key AND o.id = c.outcome_id
     WHERE l.outcome_id IS NULL OR o.status <> 'CONFIRMED' OR c.currency <> l.currency
        OR c.outcome_key <> o.key OR c.agent_key <> o.agent_key
$$, 'every credit is on a confirmed outcome with a line, in its currency, with its keys');
SELECT is_empty($$
    SELECT o.id, l.amount, (SELECT sum(c.amount) FROM witn.credit_lines c WHERE c.customer_key = o.customer_key AND c.outcome_id = o.id)
      FROM witn.outcomes o JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
     WHERE o.reversed_at IS NOT NULL
       AND l.amount IS DISTINCT FROM (SELECT sum(c.amount) FROM witn.credit_lines c WHERE c.customer_key = o.customer_key AND c.outcome_id = o.id)
$$, 'every reversed outcome has credited = its line amount');
SELECT is_empty($$
    SELECT o.id FROM witn.outcomes o
     WHERE (SELECT count(*) FROM witn.credit_lines c WHERE c.customer_key = o.customer_key AND c.outcome_id = o.id AND c.kind = 'reversal')
           > (o.reversed_at IS NOT NULL)::int
        OR (o.reversed_at IS NOT NULL AND (o.status <> 'CONFIRMED' OR o.reversal_reason IS NULL OR o.reversed_at <> now()))
$$, 'at most one reversal credit per outcome, only on reversed ones; reversed outcomes stay CONFIRMED with a reason and reversed_at');
SELECT is_empty($$
    SELECT s.*, o.status, o.settles_at, o.resolved_at, l.amount, l.billing_period
      FROM settled_snap s JOIN witn.outcomes o ON o.id = s.id
      LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
     WHERE (s.status, s.settles_at, s.resolved_at, s.line_amount, s.billing_period)
           IS DISTINCT FROM (o.status::text, o.settles_at, o.resolved_at, l.amount, l.billing_period)
$$, 'credits, reversals and events after resolution never change status, settles_at, resolved_at or the line');
SELECT is_empty($$
    SELECT m.id, m.confirmed, o.status, m.line_amount, l.amount
      FROM m_outcome m JOIN witn.outcomes o ON o.id = m.id
      LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
     WHERE o.status::text <> CASE WHEN m.confirmed THEN 'CONFIRMED' ELSE 'FAILED' END
        OR m.line_amount IS DISTINCT FROM l.amount OR o.resolved_at <> m.resolved_at
$$, 'every outcome resolved as the model says, with line amount = price x attribution');

-- =============================================================================================
-- Notifications: one per credit row, plus one per reversal.
-- =============================================================================================
SELECT is_empty($$
    SELECT c.id, c.kind, count(n.id) FROM witn.credit_lines c
      LEFT JOIN witn.notifications n ON n.customer_key = c.customer_key AND n.credit_id = c.id
     GROUP BY c.id, c.kind
    HAVING count(n.id) <> 1
        OR bool_or(n.kind <> CASE c.kind WHEN 'adjustment' THEN 'outcome_credited' ELSE 'outcome_reversed' END)
$$, 'every credit row has exactly one notification of its kind');
SELECT is_empty($$
    SELECT o.id, count(n.id) FROM witn.outcomes o
      LEFT JOIN witn.notifications n ON n.customer_key = o.customer_key AND n.outcome_id = o.id AND n.kind = 'outcome_reversed'
     GROUP BY o.id, o.reversed_at HAVING count(n.id) <> (o.reversed_at IS NOT NULL)::int
$$, 'every reversed outcome has exactly one outcome_reversed notification (also with nothing left), others none');
SELECT is((SELECT count(*) FROM witn.notifications WHERE kind IN ('outcome_credited', 'outcome_reversed')),
          (SELECT count(*) FROM witn.credit_lines WHERE kind = 'adjustment')
          + (SELECT count(*) FROM witn.outcomes WHERE reversed_at IS NOT NULL),
          'credit notifications: one per adjustment plus one per reversal, nothing else');
SELECT is_empty($$
    SELECT n.id, n.payload FROM witn.notifications n
      JOIN witn.outcomes o ON o.customer_key = n.customer_key AND o.id = n.outcome_id
      JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
      LEFT JOIN witn.credit_lines c ON c.customer_key = n.customer_key AND c.id = n.credit_id
     WHERE n.kind IN ('outcome_credited', 'outcome_reversed')
       AND (n.payload ->> 'id' IS DISTINCT FROM CASE n.kind WHEN 'outcome_credited' THEN 'ntf_' || o.id || '_credit_' || c.id
                                                            ELSE 'ntf_' || o.id || '_reversed' END
            OR n.payload ->> 'type' IS DISTINCT FROM n.kind
            OR (n.payload #>> '{data,amount}')::numeric IS DISTINCT FROM l.amount
            OR (n.payload #>> '{data,credit,amount}')::numeric IS DISTINCT FROM c.amount
            OR (n.payload #>> '{data,credit,billing_period}')::date IS DISTINCT FROM c.billing_period
            -- credited: all credits of the outcome up to this one
            OR (n.payload #>> '{data,credited}')::numeric IS DISTINCT FROM
               CASE WHEN c.id IS NULL THEN l.amount
                    ELSE (SELECT sum(x.amount) FROM witn.credit_lines x
                           WHERE x.customer_key = c.customer_key AND x.outcome_id = c.outcome_id AND x.id <= c.id) END
            OR (n.payload #>> '{data,remaining}')::numeric IS DISTINCT FROM
               l.amount - (n.payload #>> '{data,credited}')::numeric
            OR (n.kind = 'outcome_reversed' AND ((n.payload #>> '{data,remaining}')::numeric <> 0
                                                 OR n.payload #>> '{data,reason}' IS DISTINCT FROM o.reversal_reason
                                                 OR (n.payload #>> '{data,reversed_at}')::timestamptz IS DISTINCT FROM o.reversed_at))
            OR (n.kind = 'outcome_reversed' AND c.id IS NULL AND n.payload #> '{data,credit}' <> 'null'))
$$, 'credit notification payloads: id, amount, credit, credited (running total), remaining, reason, reversed_at');

-- =============================================================================================
-- The books balance; the sample exercises what it claims to.
-- =============================================================================================
SELECT is_empty($$ SELECT o.id, r.differences FROM witn.outcomes o CROSS JOIN LATERAL witn.replay(o.id) r WHERE NOT r.matches $$,
    'witn.replay(id).matches for every outcome (events in the reversal window, reversals by condition)');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'witn.verify() returns zero rows');
SELECT is((SELECT count(*) FROM witn.settlement_errors), 0::bigint, 'no settlement errors');

SELECT ok((SELECT count(*) FILTER (WHERE kind = 'credit' AND got_result = 'ok') >= 100
              AND count(*) FILTER (WHERE kind = 'credit' AND got_result = 'WT011') >= 40
              AND count(*) FILTER (WHERE kind = 'credit' AND got_result = 'WT010') >= 5
              AND count(*) FILTER (WHERE kind = 'credit' AND got_result = 'ok' AND exp_sum = amount
                                     AND amount = (SELECT line_amount FROM m_outcome m WHERE m.id = steps.outcome_id)) >= 1
              AND count(*) FILTER (WHERE kind = 'bad input') >= 10
              AND count(*) FILTER (WHERE kind = 'reverse' AND got_result = 'ok') >= 10
              AND count(*) FILTER (WHERE kind = 'reverse' AND got_result = 'ok' AND got_credits = 0) >= 1
              AND count(*) FILTER (WHERE kind = 'reverse' AND got_result = 'WT012') >= 5
              AND count(*) FILTER (WHERE kind = 'reopened' AND got_late) >= 20
              AND count(*) FILTER (WHERE kind = 'reopened' AND NOT got_late) >= 50
              AND count(*) FILTER (WHERE kind = 'note' AND NOT got_late) >= 5
              AND count(*) FILTER (WHERE kind = 'close' AND got_result = 'ok') >= 15
              AND count(*) FILTER (WHERE kind = 'late outcome' AND exp_result LIKE 'confirmed%') >= 10
             FROM steps)
          AND (SELECT count(*) FROM m_outcome WHERE reversed = 'condition') >= 10
          AND (SELECT count(*) FROM m_outcome m JOIN m_agent a USING (agent) WHERE reversed = 'condition' AND a.threshold = 2) >= 2
          AND (SELECT count(DISTINCT customer || month) FROM m_closed) >= 12
          AND (SELECT count(*) FROM witn.invoice_lines l JOIN line_step ls USING (outcome_id)
                WHERE ls.step > 0 AND l.billing_period > pg_temp.month_of(l.customer_key, l.resolved_at)) >= 3,
          'coverage: credits (ok, exceeding, not confirmed, exactly the whole line), bad input, reversals (also with '
          'nothing left, twice), events in and after the window, reversals by one and by two reopened events, closes, '
          'late lines moved past closed months');

-- The counts, for the record.
SELECT diag((SELECT count(*) FROM steps) || ' steps: ' || string_agg(k, ', ')) FROM (
    SELECT kind || CASE WHEN got_late THEN ' late' WHEN NOT got_late THEN ' in window' ELSE '' END || ' ' || got_result
           || ' x' || count(*) AS k
      FROM steps GROUP BY kind, got_late, got_result ORDER BY kind, got_late, got_result) t;
SELECT diag(format('%s lines billed past their calendar month (closed), %s reversals by a second reopened event',
    (SELECT count(*) FROM witn.invoice_lines l WHERE l.billing_period > pg_temp.month_of(l.customer_key, l.resolved_at)),
    (SELECT count(*) FROM m_outcome m JOIN m_agent a USING (agent) WHERE reversed = 'condition' AND a.threshold = 2)));
SELECT diag(format('%s outcomes (%s confirmed), %s credit rows, %s reversed (%s by condition), %s closed months, %s invoice rows',
    (SELECT count(*) FROM m_outcome), (SELECT count(*) FROM m_outcome WHERE confirmed),
    (SELECT count(*) FROM witn.credit_lines), (SELECT count(*) FROM m_outcome WHERE reversed IS NOT NULL),
    (SELECT count(*) FROM m_outcome WHERE reversed = 'condition'), (SELECT count(*) FROM m_closed),
    (SELECT count(*) FROM witn.invoices)));

SELECT * FROM finish();
ROLLBACK;
