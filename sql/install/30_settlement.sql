
-- ---------------------------------------------------------------------------------------------
-- Settlement: due outcomes become CONFIRMED or FAILED, with their invoice line and notification,
-- in one transaction.
-- ---------------------------------------------------------------------------------------------

-- An invoice line's amount, exact (CONTRACT §14), computed by the core as settlement does.
CREATE FUNCTION @extschema@.line_amount(unit_price numeric, quantity numeric) RETURNS numeric
    AS 'MODULE_PATHNAME', 'witn_line_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.line_amount(numeric, numeric) IS
    'The amount of an invoice line: unit_price x quantity, exact and unrounded (rounding happens once, in witn.invoices).';

-- The notification body: the hosted product's webhook, with an id stable for deduplication
-- (one resolution per outcome, so the outcome id names it).
-- Settlement (in C) writes exactly this body; this function describes it for consumers and
-- tests. STABLE and no SET clause, so that queries can inline it; every function it names is
-- schema-qualified.
CREATE FUNCTION @extschema@.notification_payload(o @extschema@.outcomes, created_at timestamptz)
    RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.jsonb_build_object(
        'id', 'ntf_' || o.id,
        'type', CASE o.status WHEN 'CONFIRMED' THEN 'outcome_succeed' ELSE 'outcome_failed' END,
        'created_at', created_at,
        'data', pg_catalog.jsonb_build_object(
            'outcome_id', o.id,
            'outcome_key', o.key,
            'customer_key', o.customer_key,
            'agent_key', o.agent_key,
            'status', o.status,
            'settles_at', o.settles_at,
            'resolved_at', o.resolved_at,
            'quantity', o.quantity,
            'unit_price', o.unit_price,
            'amount', CASE WHEN o.status = 'CONFIRMED' THEN @extschema@.line_amount(o.unit_price, o.quantity) END,
            'currency', o.currency))
$$;
COMMENT ON FUNCTION @extschema@.notification_payload(@extschema@.outcomes, timestamptz) IS
    'The notification body for a resolved outcome: {"id", "type": "outcome_succeed" | "outcome_failed", "created_at", "data": {...}}.';

-- One settlement pass, in C: walks outcomes_due_idx, locks each due outcome (skipping what
-- another session holds), resolves it and writes its invoice line, its notification (the body
-- witn.notification_payload() describes) and its pg_notify, row by row without SQL.
-- Outcomes whose settles_at later events moved past as_of get check_at = settles_at instead.
-- only_outcome narrows it to one outcome for the row-by-row retry in settle_on(); schema_version
-- is the version of these SQL objects (a library of another version refuses to settle); shard
-- is the outcomes table to settle: witn.outcomes (NULL) or, on Citus, one of its shards, with
-- the colocated shards of the other tables. It writes without privilege checks, so no role may
-- call it; settle() does.
CREATE FUNCTION @extschema@.settle_batch(as_of timestamptz, max_outcomes integer, only_outcome bigint,
    schema_version text, shard regclass, OUT confirmed bigint, OUT failed bigint)
    AS 'MODULE_PATHNAME', 'witn_settle_batch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint, text, regclass) IS
    'Internal to witn.settle(): one settlement pass.';

-- The relation standing for witn table `name` beside `shard` (a witn table or, on Citus, one of
-- its shards): the table itself, or its colocated (or reference) shard on this node.
CREATE FUNCTION @extschema@.shard_of(name text, shard regclass) RETURNS regclass
    AS 'MODULE_PATHNAME', 'witn_shard_of' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION @extschema@.shard_of(text, regclass) IS
    'Internal: the relation standing for a witn table beside a shard (itself on a single node).';

-- Settles one outcomes table (witn.outcomes, or on Citus one shard, where it runs on the
-- shard's node): one batch, and when something in it fails, outcome by outcome so that one bad
-- row is reported and skipped while the rest settle.
CREATE FUNCTION @extschema@.settle_on(shard regclass, as_of timestamptz, max_outcomes integer,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    due record;
    one record;
    state text;
    msg text;
    det text;
BEGIN
    shard := coalesce(shard, '@extschema@.outcomes'::regclass);
    errors := 0;
    BEGIN
        SELECT b.confirmed, b.failed INTO confirmed, failed
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.8.0', shard) b;
        RETURN;
    EXCEPTION
        -- a library and SQL objects of different versions: the whole call fails, with what to
        -- do, rather than every due outcome being filed as a settlement error
        WHEN object_not_in_prerequisite_state THEN RAISE;
        WHEN OTHERS THEN NULL;
    END;
    confirmed := 0;
    failed := 0;
    FOR due IN EXECUTE format(
        'SELECT o.customer_key, o.id FROM %s o
          WHERE o.resolved_at IS NULL AND o.check_at <= $1 AND o.settles_at <= $1
          ORDER BY o.check_at LIMIT $2', shard) USING as_of, max_outcomes
    LOOP
        BEGIN
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.8.0', shard);
            confirmed := confirmed + one.confirmed;
            failed := failed + one.failed;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
            errors := errors + 1;
            EXECUTE format('INSERT INTO %s (customer_key, outcome_id, sqlstate, message, detail)
                            VALUES ($1, $2, $3, $4, $5)', @extschema@.shard_of('settlement_errors', shard))
              USING due.customer_key, due.id, state, msg, nullif(det, '');
            RAISE WARNING 'witn: outcome % (customer %) not settled: %', due.id, due.customer_key, msg
                USING DETAIL = coalesce(det, ''), HINT = 'See witn.settlement_errors; it is retried on the next run.';
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.settle_on(regclass, timestamptz, integer) IS
    'Internal to witn.settle(): settles one outcomes table or shard.';

-- The settlement of every outcome due at as_of, here or (Citus) on every shard's node, with the
-- rights of its caller: witn.settle() calls it for a superuser, witn.settle_as_operator() (as
-- witn's owner) for a witn_operator. Values go to the other nodes as text, in one style.
CREATE FUNCTION @extschema@.settle_all(as_of timestamptz, max_outcomes integer,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    shard record;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: as_of must not be null';
    END IF;
    IF max_outcomes IS NOT NULL AND max_outcomes < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: max_outcomes must be NULL (no limit) or at least 0',
            DETAIL = format('max_outcomes = %s', max_outcomes);
    END IF;
    IF NOT @extschema@.distributed() THEN
        SELECT s.confirmed, s.failed, s.errors INTO confirmed, failed, errors
          FROM @extschema@.settle_on(NULL, as_of, max_outcomes) s;
        RETURN;
    END IF;
    -- Citus: every shard settles on its node, all shards in parallel, each in a transaction of
    -- its own there (its outcomes, lines, notifications and errors are colocated); max_outcomes
    -- applies per shard.
    PERFORM @extschema@.require_own_transaction('witn.settle()');
    confirmed := 0;
    failed := 0;
    errors := 0;
    FOR shard IN
        SELECT r.shardid, r.success, r.result
          FROM run_command_on_shards('@extschema@.outcomes', format(
               'SELECT row_to_json(s) FROM @extschema@.settle_on(%L::regclass, %L::timestamptz, %s) s',
               '%s', as_of, coalesce(max_outcomes::text, 'NULL'))) r
    LOOP
        IF shard.success THEN
            confirmed := confirmed + (shard.result::jsonb ->> 'confirmed')::bigint;
            failed := failed + (shard.result::jsonb ->> 'failed')::bigint;
            errors := errors + (shard.result::jsonb ->> 'errors')::bigint;
        ELSE
            errors := errors + 1;
            RAISE WARNING 'witn: shard % of witn.outcomes not settled: %', shard.shardid, shard.result
                USING HINT = 'Its due outcomes stay due and are settled by the next run once the node answers.';
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.settle_all(timestamptz, integer) IS
    'Internal to witn.settle(): settles what is due at as_of here, or on every shard (Citus), with the caller''s rights.';

-- witn_operator's settlement (CONTRACT §24), as witn's owner: never ahead of the clock, whoever
-- calls it (only a superuser settles ahead, through witn.settle() with its own rights).
CREATE FUNCTION @extschema@.settle_as_operator(as_of timestamptz, max_outcomes integer,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF as_of > now() THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'permission denied: witn.settle() as of a time later than now() is for superusers only',
            DETAIL = format('as_of = %s, now() = %s', as_of, now()),
            HINT = 'Call witn.settle() without as_of (it settles as of now()); settling ahead is for test databases, as a superuser.';
    END IF;
    SELECT s.confirmed, s.failed, s.errors INTO confirmed, failed, errors
      FROM @extschema@.settle_all(as_of, max_outcomes) s;
END $$;
COMMENT ON FUNCTION @extschema@.settle_as_operator(timestamptz, integer) IS
    'Internal to witn.settle(): a witn_operator''s settlement, as witn''s owner, never as of a later time than now().';

-- The caller is current_user: the role whose rights this statement runs with (a PostgREST
-- request's role, a pg_cron job's user, the owner of a security-restricted operation). A
-- superuser settles with its own rights, at any as_of; a witn_operator through
-- settle_as_operator(); anyone else is told what to grant.
CREATE FUNCTION @extschema@.settle(as_of timestamptz DEFAULT now(), max_outcomes integer DEFAULT NULL,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        SELECT s.confirmed, s.failed, s.errors INTO confirmed, failed, errors
          FROM @extschema@.settle_all(as_of, max_outcomes) s;
        RETURN;
    END IF;
    IF NOT has_function_privilege(current_user, '@extschema@.settle_as_operator(timestamptz, integer)', 'EXECUTE') THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = format('permission denied: witn.settle() is witn_operator''s, and %s is not one', current_user),
            DETAIL = 'Settlement, retention and redelivery are granted to witn_operator (witn_admin is one too).',
            HINT = format('GRANT witn_operator TO %I;', current_user);
    END IF;
    SELECT s.confirmed, s.failed, s.errors INTO confirmed, failed, errors
      FROM @extschema@.settle_as_operator(as_of, max_outcomes) s;
END $$;
COMMENT ON FUNCTION @extschema@.settle(timestamptz, integer) IS
    'Settles every outcome due at as_of (at most max_outcomes, NULL for all; on Citus per shard): OPEN -> FAILED, PENDING -> scheduled_resolution, resolved_at = settles_at, one invoice line per confirmation, one notification per resolution, all in this transaction (on Citus, in one transaction per shard on its node, all shards in parallel). Safe to run concurrently and repeatedly. Returns counts; outcomes that fail are recorded in witn.settlement_errors and skipped. witn_operator''s; as of a later time than now() only a superuser''s.';

-- Closing a month (CONTRACT §18), for one customer or for all: once it has ended in the
-- customer's timezone; idempotent. SECURITY DEFINER: witn_admin calls it, nobody writes
-- witn.closed_periods directly.
CREATE FUNCTION @extschema@.close_period(period date, customer_key text DEFAULT NULL)
    RETURNS SETOF @extschema@.closed_periods
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    wanted constant date := $1;
    who constant text := $2;
    c record;
    closed_by constant text := session_user;
BEGIN
    IF wanted IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: period must not be null',
            HINT = 'Name the month by its first day, e.g. DATE ''2026-11-01''.';
    END IF;
    IF wanted <> date_trunc('month', wanted)::date THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = format('VALIDATION_ERROR: period %s is not the first day of a month', wanted),
            HINT = format('Use %s for that month.', date_trunc('month', wanted)::date);
    END IF;
    IF who IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.customers k WHERE k.key = who) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT002', MESSAGE = format('CUSTOMER_NOT_FOUND: no customer %s', who),
            DETAIL = format('customer_key %s', who);
    END IF;
    -- Every customer's month must have ended in its timezone: otherwise nothing is closed.
    FOR c IN
        SELECT k.key, k.timezone, ((wanted + interval '1 month')::timestamp AT TIME ZONE k.timezone) AS ends_at
          FROM @extschema@.customers k
         WHERE who IS NULL OR k.key = who
         ORDER BY k.key COLLATE "C"
    LOOP
        IF c.ends_at > now() THEN
            RAISE EXCEPTION USING ERRCODE = 'WT001',
                MESSAGE = format('VALIDATION_ERROR: period %s has not ended for customer %s', to_char(wanted, 'YYYY-MM'), c.key),
                DETAIL = format('In %s it ends at %s.', c.timezone, c.ends_at AT TIME ZONE c.timezone),
                HINT = 'Close a month once it has ended in the customer''s timezone.';
        END IF;
    END LOOP;
    -- Key order, bytewise: two closes of overlapping customers, and the events trigger reversing
    -- outcomes of several customers in one statement, take the customers' locks in the same order.
    INSERT INTO @extschema@.closed_periods AS cp (customer_key, period, closed_by)
    SELECT k.key, wanted, closed_by FROM @extschema@.customers k
     WHERE who IS NULL OR k.key = who
     ORDER BY k.key COLLATE "C"
    ON CONFLICT ON CONSTRAINT closed_periods_pkey DO NOTHING;
    RETURN QUERY
        SELECT cp.* FROM @extschema@.closed_periods cp
         WHERE cp.period = wanted AND (who IS NULL OR cp.customer_key = who)
         ORDER BY cp.customer_key;
END $$;
COMMENT ON FUNCTION @extschema@.close_period(date, text) IS
    'Closes a month (its first day) for one customer or, with NULL, for every customer, once it has ended in each customer''s timezone; idempotent. From then on the month''s invoice never changes: lines that would fall into it are billed in the earliest open month after it.';

-- ---------------------------------------------------------------------------------------------
-- Invoices.
-- ---------------------------------------------------------------------------------------------
CREATE VIEW @extschema@.invoice_line_details WITH (security_invoker = true) AS
    SELECT l.id, l.customer_key, l.outcome_id, l.outcome_key, l.agent_key, l.quantity,
           l.unit_price, l.amount, l.currency, l.resolved_at, l.created_at,
           o.opened_at, o.settles_at, o.agent_version, o.attribution_method, l.billing_period
      FROM @extschema@.invoice_lines l
      JOIN @extschema@.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id;
COMMENT ON VIEW @extschema@.invoice_line_details IS
    'Invoice lines with the terms of the outcome behind each: what a customer audits.';

-- A month's invoice nets its charges (invoice lines) and credits, each summed exactly, and rounds
-- the difference once to the currency's minor units, half away from zero: a fully credited
-- outcome nets to exactly zero, and no per-line rounding adds up to a cent.
CREATE VIEW @extschema@.invoices WITH (security_invoker = true) AS
    SELECT m.customer_key, m.currency, m.month,
           sum(m.lines)::bigint AS lines,
           sum(m.credit_count)::bigint AS credit_count,
           sum(m.charges) AS charges,
           sum(m.credits) AS credits,
           sum(m.charges) - sum(m.credits) AS amount_exact,
           round(sum(m.charges) - sum(m.credits), coalesce(c.minor_units, 2)) AS amount,
           cp.closed_at
      FROM (SELECT l.customer_key, l.currency, l.billing_period AS month, 1 AS lines, 0 AS credit_count,
                   l.amount AS charges, 0::numeric AS credits
              FROM @extschema@.invoice_lines l
            UNION ALL
            SELECT k.customer_key, k.currency, k.billing_period, 0, 1, 0::numeric, k.amount
              FROM @extschema@.credit_lines k) m
      LEFT JOIN @extschema@.currencies c ON c.code = m.currency
      LEFT JOIN @extschema@.closed_periods cp ON cp.customer_key = m.customer_key AND cp.period = m.month
     GROUP BY m.customer_key, m.currency, m.month, c.minor_units, cp.closed_at;
COMMENT ON VIEW @extschema@.invoices IS
    'Invoice totals per customer, currency and month (billing_period: the calendar month in the customer''s timezone, or the earliest open one after a closed month). charges: the exact sum of the month''s invoice lines; credits: of its credit lines; amount: charges - credits rounded once to the currency''s minor units, half away from zero. closed_at: when the month was closed (witn.close_period), NULL while open; a closed month''s figures never change.';

-- ---------------------------------------------------------------------------------------------
-- Corrections (CONTRACT §19). The functions name the outcome and the credit; the trigger on
-- witn.credit_lines (10_tables.sql, in C) decides it on the outcome's node, under its lock.
-- SECURITY DEFINER: witn_admin calls them, nobody writes witn.credit_lines directly.
-- ---------------------------------------------------------------------------------------------
-- Not SECURITY DEFINER itself: only the two definer functions below call it (nobody else may).
CREATE FUNCTION @extschema@.issue_credit(outcome_id bigint, kind text, amount numeric, reason text)
    RETURNS SETOF @extschema@.credit_lines
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    customer text;
    issued @extschema@.credit_lines;
    note jsonb;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: outcome_id must not be null',
            DETAIL = format('witn.%s', CASE $2 WHEN 'reversal' THEN 'reverse_outcome' ELSE 'credit_outcome' END),
            HINT = 'Name the confirmed outcome to credit by its witn.outcomes.id.';
    END IF;
    SELECT o.customer_key INTO customer FROM @extschema@.outcomes o WHERE o.id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'WT008', MESSAGE = format('OUTCOME_NOT_FOUND: no outcome %s', $1),
            DETAIL = format('outcome_id %s', $1);
    END IF;
    -- The amount of a reversal, the currency, the keys and the month are the trigger's to fill.
    INSERT INTO @extschema@.credit_lines (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind,
                                          reason, billing_period, created_by)
    VALUES (customer, $1, '', '', $3, '', $2, $4, DATE '1970-01-01',
            -- who: the token's subject through PostgREST (its login role is the authenticator)
            coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', session_user))
    RETURNING * INTO issued;
    IF @extschema@.distributed() THEN
        -- On Citus the trigger ran on the outcome's node inside this distributed transaction,
        -- which that node commits with PREPARE TRANSACTION, and PostgreSQL refuses to prepare a
        -- transaction that notified: the coordinator sends the notification, in this transaction.
        SELECT n.payload INTO note FROM @extschema@.notifications n
         WHERE n.customer_key = customer AND n.outcome_id = $1
           AND (n.credit_id = issued.id OR (issued.id IS NULL AND n.kind = 'outcome_reversed'))
         ORDER BY n.id DESC LIMIT 1;
        PERFORM pg_notify('witn_outcomes', CASE WHEN current_setting('witn.pg_notify', true) = 'wake'
                                                THEN '{"type": "notifications", "count": 1}' ELSE note::text END);
    END IF;
    IF issued.id IS NOT NULL THEN
        RETURN NEXT issued;
    END IF;
END $$;
COMMENT ON FUNCTION @extschema@.issue_credit(bigint, text, numeric, text) IS
    'Internal to witn.reverse_outcome and witn.credit_outcome: writes the credit row its trigger decides.';

-- PL/pgSQL, not SQL: its query's plan is kept from call to call.
CREATE FUNCTION @extschema@.reverse_outcome(outcome_id bigint, reason text)
    RETURNS SETOF @extschema@.credit_lines
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT * FROM @extschema@.issue_credit($1, 'reversal', NULL, $2);
END $$;
COMMENT ON FUNCTION @extschema@.reverse_outcome(bigint, text) IS
    'Reverses a confirmed outcome: credits what is left of its amount (no row when nothing is), sets reversed_at and reversal_reason (status stays CONFIRMED) and writes an outcome_reversed notification, in this transaction. Once per outcome (ALREADY_REVERSED, WT012).';

CREATE FUNCTION @extschema@.credit_outcome(outcome_id bigint, amount numeric, reason text)
    RETURNS @extschema@.credit_lines
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    issued @extschema@.credit_lines;
BEGIN
    SELECT * INTO issued FROM @extschema@.issue_credit($1, 'adjustment', $2, $3);
    RETURN issued;
END $$;
COMMENT ON FUNCTION @extschema@.credit_outcome(bigint, numeric, text) IS
    'Credits part of a confirmed outcome''s amount (more than 0, at most what is left: CREDIT_EXCEEDS_AMOUNT, WT011) and writes an outcome_credited notification, in this transaction. The credit is billed in the month it is issued, or the earliest open one after it.';
