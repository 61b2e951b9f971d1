-- witn 0.5.0 -> 0.6.0: credits and reversals (CONTRACT §19, §20). witn.credit_lines holds credits on
-- confirmed outcomes, written by witn.reverse_outcome, witn.credit_outcome and agents' reversal
-- conditions; witn.invoices nets them. Notifications are keyed by their id (an outcome now has
-- one per resolution and one per credit). A distributed (Citus) database is refused, unchanged.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.6.0'" to load this file. \quit

-- Not on a distributed database: Citus does not carry what an extension script does to
-- distributed tables over to their shards (citusdata/citus#6662), so the update refuses before
-- it changes anything.
DO $guard$
DECLARE
    distributed boolean := false;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
           INTO distributed USING '@extschema@.outcomes'::regclass;
    END IF;
    IF distributed THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'witn: ALTER EXTENSION witn UPDATE is not supported on a distributed database',
            DETAIL = 'witn''s tables here are distributed with Citus, which does not apply an extension script''s changes to their shards.',
            HINT = 'Keep this cluster on the witn 0.5.0 build (library and SQL objects) for now: a distributed database cannot be updated in place yet (docs/scale-out.md, Limits).';
    END IF;
END $guard$;

-- Events a confirmed outcome accepted in its reversal window are marked (witn.replay folds them
-- after the resolution).
ALTER TABLE @extschema@.events ADD COLUMN after_resolution boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN @extschema@.events.after_resolution IS 'Set by witn: the event was accepted by a confirmed outcome in its reversal window (it can reverse it, never re-bill it).';
CREATE OR REPLACE VIEW witn_api.events WITH (security_invoker = true) AS
    SELECT id, customer_key, key, action, agent_key, properties, occurred_at, idempotency_key,
           received_at, late, duplicate_of, after_resolution
      FROM @extschema@.events;

-- Agents' reversal policies, snapshotted into outcomes.
-- One subcommand per ALTER TABLE: Citus takes no other with ADD CONSTRAINT.
ALTER TABLE @extschema@.agents ADD COLUMN reversal_condition @extschema@.condition NULL;
ALTER TABLE @extschema@.agents ADD COLUMN reversal_period interval NULL;
ALTER TABLE @extschema@.agents ADD CONSTRAINT agents_reversal_policy CHECK ((reversal_condition IS NULL) = (reversal_period IS NULL)
        AND (reversal_period IS NULL OR (reversal_period > interval '0' AND reversal_period <= interval '180 days')));
COMMENT ON COLUMN @extschema@.agents.reversal_condition IS 'Optional reversal policy (with reversal_period): once it holds over a confirmed outcome''s accepted events, the outcome is reversed and credited in full.';
COMMENT ON COLUMN @extschema@.agents.reversal_period IS 'How long after resolved_at a confirmed outcome still accepts events that can reverse it: more than 0, at most 180 days; NULL (with reversal_condition) for none.';
CREATE OR REPLACE FUNCTION @extschema@.agents_before_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.settlement_period IS NULL OR NEW.settlement_period <= interval '0'
       OR NEW.settlement_period > interval '180 days' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: settlement_period must be more than 0 and at most 180 days',
            DETAIL = format('agent %s: settlement_period = %s', NEW.key, NEW.settlement_period),
            HINT = 'Use an interval such as ''72 hours''.';
    END IF;
    IF NEW.attribution_method IS NULL
       OR NEW.attribution_method NOT IN ('last', 'first', 'sum', 'max', 'min', 'average') THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: attribution_method must be one of last, first, sum, max, min, average',
            DETAIL = format('agent %s: attribution_method = %s', NEW.key, NEW.attribution_method);
    END IF;
    IF (NEW.reversal_condition IS NULL) <> (NEW.reversal_period IS NULL) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: reversal_condition and reversal_period go together',
            DETAIL = format('agent %s: reversal_condition = %s, reversal_period = %s', NEW.key,
                            coalesce(NEW.reversal_condition::text, 'NULL'), coalesce(NEW.reversal_period::text, 'NULL')),
            HINT = 'Set both (e.g. ''[{"fact": "reopened", "operator": "seen"}]'' and ''7 days''), or neither.';
    END IF;
    IF NEW.reversal_period <= interval '0' OR NEW.reversal_period > interval '180 days' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: reversal_period must be more than 0 and at most 180 days',
            DETAIL = format('agent %s: reversal_period = %s', NEW.key, NEW.reversal_period),
            HINT = 'Use an interval such as ''7 days''.';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.condition::text, NEW.settlement_period, NEW.attribution_method, NEW.reversal_condition::text, NEW.reversal_period)
           IS DISTINCT FROM (OLD.condition::text, OLD.settlement_period, OLD.attribution_method, OLD.reversal_condition::text, OLD.reversal_period) THEN
            NEW.version := OLD.version + 1;
        ELSE
            NEW.version := OLD.version;
        END IF;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

ALTER TABLE @extschema@.outcomes ADD COLUMN reversal_condition @extschema@.condition NULL;
ALTER TABLE @extschema@.outcomes ADD COLUMN reversal_period interval NULL;
ALTER TABLE @extschema@.outcomes ADD COLUMN reversed_at timestamptz NULL;
ALTER TABLE @extschema@.outcomes ADD COLUMN reversal_reason text NULL;
COMMENT ON COLUMN @extschema@.outcomes.reversal_condition IS 'The agent''s reversal condition when the outcome opened (contract snapshot); NULL for none.';
COMMENT ON COLUMN @extschema@.outcomes.reversal_period IS 'How long after resolved_at the confirmed outcome accepts events that can reverse it (contract snapshot).';
COMMENT ON COLUMN @extschema@.outcomes.reversed_at IS 'When the confirmed outcome was reversed (witn.reverse_outcome or its reversal condition); its status stays CONFIRMED.';
COMMENT ON COLUMN @extschema@.outcomes.reversal_reason IS 'Why it was reversed: the reason given to witn.reverse_outcome, or reversal_condition.';

-- Credits (CONTRACT §19): written by witn.reverse_outcome, witn.credit_outcome and the reversal
-- condition, through the trigger below, which decides each one under the outcome's row lock.
CREATE TABLE @extschema@.credit_lines (
    id             bigint GENERATED ALWAYS AS IDENTITY,
    customer_key   text NOT NULL,
    outcome_id     bigint NOT NULL,
    outcome_key    text NOT NULL,
    agent_key      text NOT NULL,
    -- NaN sorts above Infinity, so this rules out both.
    amount         numeric NOT NULL CONSTRAINT credit_lines_amount_positive CHECK (amount > 0 AND amount < 'Infinity'),
    currency       text NOT NULL,
    kind           text NOT NULL CONSTRAINT credit_lines_kind_known CHECK (kind IN ('reversal', 'adjustment')),
    reason         text NOT NULL CONSTRAINT credit_lines_reason_given CHECK (btrim(reason) <> ''),
    billing_period date NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL DEFAULT session_user,
    PRIMARY KEY (customer_key, id)
);
CREATE INDEX credit_lines_outcome_idx ON @extschema@.credit_lines (customer_key, outcome_id);
COMMENT ON TABLE @extschema@.credit_lines IS
    'Credits on confirmed outcomes (witn.reverse_outcome, witn.credit_outcome, reversal conditions): never more than the outcome''s amount in total, billed in the month they are issued (never a closed one).';
COMMENT ON COLUMN @extschema@.credit_lines.amount IS 'What is credited, in the invoice line''s currency; exact, unrounded, more than 0.';
COMMENT ON COLUMN @extschema@.credit_lines.kind IS 'reversal (all that was left of the amount; the outcome is marked reversed) or adjustment (a part).';
COMMENT ON COLUMN @extschema@.credit_lines.billing_period IS
    'The invoice month the credit belongs to: the month it was issued in the customer''s timezone, or the earliest open month after it.';
COMMENT ON COLUMN @extschema@.credit_lines.outcome_key IS 'The credited outcome''s key (with customer_key it names the outcome).';
COMMENT ON COLUMN @extschema@.credit_lines.currency IS 'The invoice line''s currency.';
COMMENT ON COLUMN @extschema@.credit_lines.reason IS 'Why it was credited: the reason given, or reversal_condition for a reversal by the agent''s reversal condition.';
COMMENT ON COLUMN @extschema@.credit_lines.created_by IS 'Who issued it: the JWT sub claim when the call carried one (PostgREST), else the session user; as the caller states it, not an authentication.';

-- Every credit is decided here, on the node that holds the outcome (on Citus the trigger fires
-- on the shard): the outcome is locked, the amount checked against its line and earlier
-- credits by the core, the billing month found as settlement finds it, the outcome marked
-- reversed and the notification written, all in the inserting transaction.
CREATE FUNCTION @extschema@.credit_lines_issue() RETURNS trigger
    AS 'MODULE_PATHNAME', 'witn_credit_lines_issue' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.credit_lines_issue() IS
    'Trigger on witn.credit_lines: decides and completes each credit (amount, billing month, reversal, notification) under the outcome''s lock.';
CREATE TRIGGER credit_lines_issue BEFORE INSERT ON @extschema@.credit_lines
    FOR EACH ROW EXECUTE FUNCTION @extschema@.credit_lines_issue('0.6.0');
ALTER TABLE @extschema@.credit_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON @extschema@.credit_lines FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.credit_lines FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));
GRANT SELECT ON @extschema@.credit_lines TO witn_admin, witn_reader, witn_customer;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines_id_seq', '');
REVOKE ALL ON SEQUENCE @extschema@.credit_lines_id_seq FROM PUBLIC;

-- Notifications: one per resolution (still unique per outcome) and one per credit.
ALTER TABLE @extschema@.notifications DROP CONSTRAINT notifications_pkey;
ALTER TABLE @extschema@.notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (customer_key, id);
ALTER TABLE @extschema@.notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE @extschema@.notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('outcome_succeed', 'outcome_failed', 'outcome_reversed', 'outcome_credited'));
ALTER TABLE @extschema@.notifications ADD COLUMN credit_id bigint NULL;
COMMENT ON COLUMN @extschema@.notifications.credit_id IS 'The credit an outcome_reversed or outcome_credited notification is about; NULL for a resolution, and for a reversal that found nothing left.';
-- One notification per resolution, so one per outcome.
CREATE UNIQUE INDEX notifications_resolution_key ON @extschema@.notifications (customer_key, outcome_id)
    WHERE kind IN ('outcome_succeed', 'outcome_failed');
COMMENT ON TABLE @extschema@.notifications IS
    'Outbox: one row per resolution and one per credit, the hosted product''s webhook body in payload; each is also sent with pg_notify(''witn_outcomes'') in the same transaction.';

-- Invoices net credits: new columns in the middle, so the views are made again.
DROP VIEW witn_api.invoices;
DROP VIEW @extschema@.invoices;
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
CREATE VIEW witn_api.invoices WITH (security_invoker = true) AS
    SELECT customer_key, currency, month, lines, credit_count, charges, credits, amount_exact, amount, closed_at
      FROM @extschema@.invoices;
COMMENT ON VIEW witn_api.invoices IS
    'Invoice totals per customer, currency and month (in the customer''s timezone): charges, credits and amount (charges - credits, rounded once to the currency''s minor units); closed_at once the month is closed. A customer token sees its own.';
REVOKE ALL ON @extschema@.invoices, witn_api.invoices FROM PUBLIC;
GRANT SELECT ON @extschema@.invoices, witn_api.invoices TO witn_admin, witn_reader, witn_customer;

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
REVOKE EXECUTE ON FUNCTION @extschema@.issue_credit(bigint, text, numeric, text), @extschema@.reverse_outcome(bigint, text),
    @extschema@.credit_outcome(bigint, numeric, text), @extschema@.credit_lines_issue() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.reverse_outcome(bigint, text), @extschema@.credit_outcome(bigint, numeric, text)
    TO witn_admin;

-- explain shows a confirmed outcome's reversal condition too: two more columns.
DROP FUNCTION witn_api.explain_outcome(bigint);
DROP FUNCTION @extschema@.explain(bigint);
DROP FUNCTION @extschema@.explain_outcome(bigint);
-- The query is in PL/pgSQL: Citus plans a query with an SQL function's parameter in it only
-- with the value in place.
CREATE FUNCTION @extschema@.explain_outcome(wanted bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, status @extschema@.outcome_status,
                   scheduled_resolution @extschema@.outcome_status, settles_at timestamptz,
                   condition_holds boolean, leaf integer, fact text, operator text,
                   description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean, condition_name text, reversed_at timestamptz)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
        SELECT o.id, o.customer_key, o.key, o.status, o.scheduled_resolution, o.settles_at,
               o.condition_holds, f.leaf, f.fact, f.operator, f.description, f.event_count,
               f.latest_value, f.latest_at, f.passes, 'condition'::text, o.reversed_at
          FROM @extschema@.outcomes o
          LEFT JOIN LATERAL @extschema@.explain_facts(o.condition, o.facts) f ON true
         WHERE o.id = wanted
         ORDER BY f.leaf;
    -- A confirmed outcome with a reversal policy: its reversal condition's leaves too.
    RETURN QUERY
        SELECT o.id, o.customer_key, o.key, o.status, o.scheduled_resolution, o.settles_at,
               o.condition_holds, f.leaf, f.fact, f.operator, f.description, f.event_count,
               f.latest_value, f.latest_at, f.passes, 'reversal_condition'::text, o.reversed_at
          FROM @extschema@.outcomes o
          LEFT JOIN LATERAL @extschema@.explain_facts(o.reversal_condition, o.facts) f ON true
         WHERE o.id = wanted AND o.status = 'CONFIRMED' AND o.reversal_condition IS NOT NULL
         ORDER BY f.leaf;
END $$;
COMMENT ON FUNCTION @extschema@.explain_outcome(bigint) IS 'Internal to witn.explain().';

CREATE FUNCTION @extschema@.explain(outcome_id bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, status @extschema@.outcome_status,
                   scheduled_resolution @extschema@.outcome_status, settles_at timestamptz,
                   condition_holds boolean, leaf integer, fact text, operator text,
                   description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean, condition_name text, reversed_at timestamptz)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.explain_outcome($1)
$$;
COMMENT ON FUNCTION @extschema@.explain(bigint) IS
    'Why an outcome is where it is: one row per leaf of its condition with the fact it saw (count, latest value and when) and whether it passes, beside the outcome''s status, scheduled resolution and settles_at. An empty condition gives one row with null leaf columns. A confirmed outcome with a reversal policy also has a row per leaf of its reversal condition (condition_name = reversal_condition), and reversed_at.';
CREATE FUNCTION witn_api.explain_outcome(outcome_id bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text,
                   status @extschema@.outcome_status, scheduled_resolution @extschema@.outcome_status,
                   settles_at timestamptz, condition_holds boolean, leaf integer, fact text,
                   operator text, description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean, condition_name text, reversed_at timestamptz)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.explain($1)
$$;
COMMENT ON FUNCTION witn_api.explain_outcome(bigint) IS
    'POST /rpc/explain_outcome {"outcome_id": ...}: one row per leaf of the outcome''s condition, the fact it saw and whether it passes. Empty for an outcome the caller may not see.';
REVOKE EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.explain_outcome(bigint), witn_api.explain_outcome(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.explain_outcome(bigint), witn_api.explain_outcome(bigint)
    TO witn_admin, witn_reader, witn_customer;

-- The API: outcomes, agents and notifications gain columns; credits and corrections.
CREATE OR REPLACE VIEW witn_api.outcomes WITH (security_invoker = true) AS
    SELECT id, customer_key, key, agent_key, status, scheduled_resolution, settles_at, resolved_at,
           condition, @extschema@.describe(condition) AS condition_description,
           settlement_period, attribution_method, agent_version, unit_price, currency, quantity,
           condition_holds, accepted_events, late_events, facts, opened_at, updated_at,
           reversal_condition, reversal_period, reversed_at, reversal_reason
      FROM @extschema@.outcomes;
CREATE OR REPLACE VIEW witn_api.notifications WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, kind, payload, created_at, credit_id
      FROM @extschema@.notifications;
COMMENT ON VIEW witn_api.notifications IS
    'One notification per resolved outcome and one per credit, the webhook body in payload. A customer token sees its own.';
CREATE OR REPLACE VIEW witn_api.agents WITH (security_invoker = true) AS
    SELECT key, name, condition, settlement_period, attribution_method, version, created_at,
           updated_at, reversal_condition, reversal_period
      FROM @extschema@.agents;
GRANT INSERT (reversal_condition, reversal_period), UPDATE (reversal_condition, reversal_period)
    ON @extschema@.agents, witn_api.agents TO witn_admin;
CREATE VIEW witn_api.credit_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason,
           billing_period, created_at, created_by
      FROM @extschema@.credit_lines;
COMMENT ON VIEW witn_api.credit_lines IS
    'Credits on confirmed outcomes (reversals and adjustments), each billed in the month it was issued. A customer token sees its own.';
REVOKE ALL ON witn_api.credit_lines FROM PUBLIC;
GRANT SELECT ON witn_api.credit_lines TO witn_admin, witn_reader, witn_customer;
-- POST /rpc/reverse_outcome and /rpc/credit_outcome: corrections through PostgREST (witn_admin).
CREATE FUNCTION witn_api.reverse_outcome(outcome_id bigint, reason text)
    RETURNS SETOF @extschema@.credit_lines
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.reverse_outcome($1, $2)
$$;
COMMENT ON FUNCTION witn_api.reverse_outcome(bigint, text) IS
    'POST /rpc/reverse_outcome {"outcome_id": 42, "reason": "..."}: credits what is left of a confirmed outcome and marks it reversed; returns the credit (none when nothing was left). witn_admin only.';
CREATE FUNCTION witn_api.credit_outcome(outcome_id bigint, amount numeric, reason text)
    RETURNS @extschema@.credit_lines
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.credit_outcome($1, $2, $3)
$$;
COMMENT ON FUNCTION witn_api.credit_outcome(bigint, numeric, text) IS
    'POST /rpc/credit_outcome {"outcome_id": 42, "amount": 5.00, "reason": "..."}: credits part of a confirmed outcome''s amount; returns the credit. witn_admin only.';
REVOKE EXECUTE ON FUNCTION witn_api.reverse_outcome(bigint, text), witn_api.credit_outcome(bigint, numeric, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION witn_api.reverse_outcome(bigint, text), witn_api.credit_outcome(bigint, numeric, text) TO witn_admin;

-- Closing months takes the customers' locks in byte order, as the events trigger does.
CREATE OR REPLACE FUNCTION @extschema@.close_period(period date, customer_key text DEFAULT NULL)
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

-- The library of this version.
DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.6.0');

CREATE OR REPLACE FUNCTION @extschema@.settle_on(shard regclass, as_of timestamptz, max_outcomes integer,
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
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.6.0', shard) b;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    confirmed := 0;
    failed := 0;
    FOR due IN EXECUTE format(
        'SELECT o.customer_key, o.id FROM %s o
          WHERE o.resolved_at IS NULL AND o.check_at <= $1 AND o.settles_at <= $1
          ORDER BY o.check_at LIMIT $2', shard) USING as_of, max_outcomes
    LOOP
        BEGIN
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.6.0', shard);
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

CREATE OR REPLACE FUNCTION @extschema@.distribute()
    RETURNS TABLE (table_name regclass, distribution text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lookup constant text[] := ARRAY['currencies', 'rate_cards', 'customers', 'agents', 'rate_card_prices'];
    per_customer constant text[] := ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors', 'closed_periods', 'credit_lines'];
    -- Citus cannot make a table with foreign keys to local tables a reference table, nor keep
    -- a policy with a subquery: the lookup tables' keys are dropped and re-added around
    -- create_reference_table, and the customer policies read the claim without a subquery.
    prepare constant text[] := ARRAY[
        'ALTER TABLE @extschema@.rate_cards DROP CONSTRAINT IF EXISTS rate_cards_currency_fkey',
        'ALTER TABLE @extschema@.customers DROP CONSTRAINT IF EXISTS customers_rate_card_key_fkey',
        'ALTER TABLE @extschema@.rate_card_prices DROP CONSTRAINT IF EXISTS rate_card_prices_rate_card_key_fkey',
        'ALTER TABLE @extschema@.rate_card_prices DROP CONSTRAINT IF EXISTS rate_card_prices_agent_key_fkey',
        'ALTER POLICY customer_own ON @extschema@.outcomes USING (customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY customer_own ON @extschema@.events USING (customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY ingest_add ON @extschema@.events WITH CHECK (@extschema@.current_customer_key() IS NULL OR customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY customer_own ON @extschema@.invoice_lines USING (customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY customer_own ON @extschema@.notifications USING (customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY customer_own ON @extschema@.closed_periods USING (customer_key = @extschema@.current_customer_key())',
        'ALTER POLICY customer_own ON @extschema@.credit_lines USING (customer_key = @extschema@.current_customer_key())'];
    foreign_keys constant text[] := ARRAY[
        'ALTER TABLE @extschema@.rate_cards ADD CONSTRAINT rate_cards_currency_fkey FOREIGN KEY (currency) REFERENCES @extschema@.currencies (code)',
        'ALTER TABLE @extschema@.customers ADD CONSTRAINT customers_rate_card_key_fkey FOREIGN KEY (rate_card_key) REFERENCES @extschema@.rate_cards (key) ON UPDATE CASCADE',
        'ALTER TABLE @extschema@.rate_card_prices ADD CONSTRAINT rate_card_prices_rate_card_key_fkey FOREIGN KEY (rate_card_key) REFERENCES @extschema@.rate_cards (key) ON UPDATE CASCADE ON DELETE CASCADE',
        'ALTER TABLE @extschema@.rate_card_prices ADD CONSTRAINT rate_card_prices_agent_key_fkey FOREIGN KEY (agent_key) REFERENCES @extschema@.agents (key) ON UPDATE CASCADE ON DELETE CASCADE'];
    -- Every node makes ids from its own sequences: node group g gets [g * 2^48 + 1, (g + 1) * 2^48).
    id_ranges constant text := $cmd$DO $do$
DECLARE
    g bigint := (SELECT groupid FROM pg_catalog.pg_dist_local_group);
    t text;
    seq text;
BEGIN
    -- The node's own sequences, not Citus's idea of them: nothing to propagate.
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    FOREACH t IN ARRAY ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors', 'credit_lines'] LOOP
        seq := pg_catalog.pg_get_serial_sequence('@extschema@.' || t, 'id');
        IF (SELECT s.seqmax FROM pg_catalog.pg_sequence s WHERE s.seqrelid = seq::regclass) <> ((g + 1) << 48) - 1 THEN
            IF g = 0 THEN
                EXECUTE format('ALTER SEQUENCE %s MAXVALUE %s', seq, (1::bigint << 48) - 1);
            ELSE
                EXECUTE format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START %s RESTART', seq,
                               (g << 48) + 1, ((g + 1) << 48) - 1, (g << 48) + 1);
            END IF;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
END $do$ $cmd$;
    fresh boolean;
    t text;
    c text;
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'CITUS_NOT_AVAILABLE: Citus is not installed in this database',
            HINT = 'Install Citus 12.1, add citus first to shared_preload_libraries, CREATE EXTENSION citus on every node, add the workers (citus_add_node) and run witn.distribute() on the coordinator.';
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO fresh;
    IF NOT fresh THEN
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = 'witn.distribute() runs on the Citus coordinator',
            HINT = 'Connect to the coordinator and run it there.';
    END IF;
    -- Settings distribution needs, for this transaction only.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    fresh := NOT @extschema@.distributed();
    IF fresh THEN
        FOREACH c IN ARRAY prepare LOOP
            EXECUTE c;
            FOR r IN EXECUTE 'SELECT * FROM pg_catalog.run_command_on_workers($1)' USING c LOOP
                IF NOT r.success THEN
                    RAISE EXCEPTION 'witn.distribute(): on node %:%: %', r.nodename, r.nodeport, r.result;
                END IF;
            END LOOP;
        END LOOP;
    END IF;
    -- Column privileges (witn_ingest's INSERT into some columns of witn.events, witn_admin's
    -- writes of the lookup tables) are checked where a statement is planned, on the table
    -- itself; Citus does not give them to the shards, which would then refuse what it routes.
    -- Each shard gets them as table privileges: shards made here from a table-level grant given
    -- for that moment only, existing ones (a re-run, after a shard move) directly.
    CREATE TEMP TABLE witn_column_grants ON COMMIT DROP AS
        SELECT c.oid::regclass AS rel, a.privilege_type, a.grantee::regrole::text AS grantee,
               pg_catalog.string_agg(pg_catalog.quote_ident(att.attname), ', ' ORDER BY att.attnum) AS columns,
               NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = c.oid) AS fresh
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute att ON att.attrelid = c.oid
         CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a
         WHERE c.oid = ANY (ARRAY(SELECT ('@extschema@.' || x)::regclass FROM unnest(lookup || per_customer) x))
         GROUP BY 1, 2, 3, 5;
    -- The lookup tables become reference tables, then the per-customer tables are distributed,
    -- colocated with witn.events; the lookup tables' foreign keys come back after.
    FOREACH t IN ARRAY lookup || per_customer LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = ('@extschema@.' || t)::regclass) THEN
            PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
            FOR r IN SELECT * FROM pg_temp.witn_column_grants g WHERE g.rel = ('@extschema@.' || t)::regclass LOOP
                EXECUTE pg_catalog.format('GRANT %s ON %s TO %I', r.privilege_type, r.rel, r.grantee);
            END LOOP;
            PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
            IF t = ANY (lookup) THEN
                EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING ('@extschema@.' || t)::regclass;
            ELSIF t = 'events' THEN
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''customer_key'')'
                  USING ('@extschema@.' || t)::regclass;
            ELSE
                EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''customer_key'', colocate_with => ''@extschema@.events'')'
                  USING ('@extschema@.' || t)::regclass;
            END IF;
            -- The table itself keeps its column privileges.
            PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
            FOR r IN SELECT * FROM pg_temp.witn_column_grants g WHERE g.rel = ('@extschema@.' || t)::regclass LOOP
                EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %I', r.privilege_type, r.rel, r.grantee);
                EXECUTE pg_catalog.format('GRANT %s (%s) ON %s TO %I', r.privilege_type, r.columns, r.rel, r.grantee);
            END LOOP;
            PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
        END IF;
    END LOOP;
    IF fresh THEN
        FOREACH c IN ARRAY foreign_keys LOOP
            EXECUTE c;
        END LOOP;
    END IF;
    -- The shards made in an earlier run (moved since, perhaps): every placement.
    FOR r IN SELECT * FROM pg_temp.witn_column_grants g WHERE NOT g.fresh LOOP
        FOR c IN EXECUTE 'SELECT s.result FROM pg_catalog.run_command_on_placements($1, $2) s WHERE NOT s.success'
            USING r.rel, pg_catalog.format('GRANT %s ON %%s TO %I', r.privilege_type, r.grantee)
        LOOP
            RAISE EXCEPTION 'witn.distribute(): granting % on the shards of % to %: %', r.privilege_type, r.rel, r.grantee, c;
        END LOOP;
    END LOOP;
    DROP TABLE pg_temp.witn_column_grants;
    -- witn_admin writes the lookup tables, whose foreign keys make Citus lock the referenced
    -- reference tables' shards on every node, which it lets only roles with table-wide
    -- UPDATE, DELETE or TRUNCATE on them do; witn_admin's rights are per column. Skipping that
    -- check for witn_admin, in this database only, lets it write what its grants allow.
    EXECUTE pg_catalog.format('ALTER ROLE witn_admin IN DATABASE %I SET citus.skip_advisory_lock_permission_checks = on',
                              pg_catalog.current_database());
    EXECUTE id_ranges;
    FOR r IN EXECUTE 'SELECT * FROM pg_catalog.run_command_on_workers($1)' USING id_ranges LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'witn.distribute(): on node %:%: %', r.nodename, r.nodeport, r.result;
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT p.logicalrelid::regclass,
               CASE p.partmethod WHEN 'n' THEN 'reference' ELSE 'distributed by customer_key' END
          FROM pg_catalog.pg_dist_partition p
         WHERE p.logicalrelid::regclass::text LIKE '@extschema@.%'
         ORDER BY p.partmethod DESC, p.logicalrelid::text;
END $$;
