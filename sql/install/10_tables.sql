
-- ---------------------------------------------------------------------------------------------
-- Lookup tables: rate cards, customers, agents, prices. Small; reference tables on Citus.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE @extschema@.currencies (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_units smallint NOT NULL CHECK (minor_units BETWEEN 0 AND 4),
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.currencies IS
    'ISO 4217 currencies and their minor units: invoice totals are rounded to these, half away from zero. Add rows for currencies not listed.';
INSERT INTO @extschema@.currencies (code, minor_units, builtin)
SELECT code, minor_units, true FROM (VALUES
    ('USD', 2), ('EUR', 2), ('GBP', 2), ('CHF', 2), ('CAD', 2), ('AUD', 2), ('NZD', 2),
    ('SEK', 2), ('NOK', 2), ('DKK', 2), ('PLN', 2), ('CZK', 2), ('INR', 2), ('CNY', 2),
    ('BRL', 2), ('MXN', 2), ('SGD', 2), ('HKD', 2), ('ZAR', 2), ('JPY', 0), ('KRW', 0),
    ('ISK', 0), ('CLP', 0), ('VND', 0), ('BHD', 3), ('KWD', 3), ('OMR', 3), ('JOD', 3),
    ('TND', 3)) AS c (code, minor_units);

CREATE TABLE @extschema@.rate_cards (
    key        text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    name       text,
    currency   text NOT NULL REFERENCES @extschema@.currencies (code),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.rate_cards IS
    'Pricing templates. A rate card has one currency and a price per agent (witn.rate_card_prices); a customer is assigned one rate card.';

-- An IANA time zone name, as pg_timezone_names lists them; anything else is a clear error
-- (used by the CHECK on witn.customers.timezone, so it raises instead of answering false).
CREATE FUNCTION @extschema@.timezone_is_known(timezone text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_timezone_is_known' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.timezone_is_known(text) IS
    'Backs the check on witn.customers.timezone: true for an IANA time zone name, else VALIDATION_ERROR (WT001).';

CREATE TABLE @extschema@.customers (
    key           text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    name          text,
    rate_card_key text NULL REFERENCES @extschema@.rate_cards (key) ON UPDATE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
        timezone      text NOT NULL DEFAULT 'UTC' CONSTRAINT customers_timezone_known CHECK (@extschema@.timezone_is_known(timezone))
);
COMMENT ON TABLE @extschema@.customers IS
    'The companies or people you bill, by a key you choose. rate_card_key decides their prices.';
COMMENT ON COLUMN @extschema@.customers.timezone IS
    'An IANA time zone name (default UTC): the customer''s invoice lines belong to calendar months in it. Changing it never moves a line already written.';

CREATE TABLE @extschema@.agents (
    key                text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    name               text,
    condition          @extschema@.condition NOT NULL DEFAULT '[]',
    settlement_period  interval NOT NULL DEFAULT '72 hours'
        CONSTRAINT agents_settlement_period_range
        CHECK (settlement_period > interval '0' AND settlement_period <= interval '180 days'),
    attribution_method text NOT NULL DEFAULT 'last'
        CONSTRAINT agents_attribution_method_known
        -- The list is the core's (src/core/attribution.hpp), filled in by the build.
        CHECK (attribution_method IN (@ATTRIBUTION_METHODS_SQL@)),
    version            integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    reversal_condition @extschema@.condition NULL,
    reversal_period    interval NULL,
    CONSTRAINT agents_reversal_policy CHECK ((reversal_condition IS NULL) = (reversal_period IS NULL)
        AND (reversal_period IS NULL OR (reversal_period > interval '0' AND reversal_period <= interval '180 days')))
);
COMMENT ON TABLE @extschema@.agents IS
    'Contract templates: the billable condition, the settlement window and how the billing quantity is picked. Edits apply to outcomes opened afterwards.';
COMMENT ON COLUMN @extschema@.agents.condition IS 'The billable condition; validated when the agent is created or updated.';
COMMENT ON COLUMN @extschema@.agents.settlement_period IS 'How long after the latest event an outcome settles: more than 0, at most 180 days.';
COMMENT ON COLUMN @extschema@.agents.attribution_method IS 'How properties.attribution values become the billing quantity: last, first, sum, max, min or average (no attribution: 1).';
COMMENT ON COLUMN @extschema@.agents.reversal_condition IS 'Optional reversal policy (with reversal_period): once it holds over a confirmed outcome''s accepted events, the outcome is reversed and credited in full.';
COMMENT ON COLUMN @extschema@.agents.reversal_period IS 'How long after resolved_at a confirmed outcome still accepts events that can reverse it: more than 0, at most 180 days; NULL (with reversal_condition) for none.';
COMMENT ON COLUMN @extschema@.agents.version IS 'Incremented on every change of the contract; outcomes record the version they were opened under.';

CREATE TABLE @extschema@.rate_card_prices (
    rate_card_key  text NOT NULL REFERENCES @extschema@.rate_cards (key) ON UPDATE CASCADE ON DELETE CASCADE,
    agent_key      text NOT NULL REFERENCES @extschema@.agents (key) ON UPDATE CASCADE ON DELETE CASCADE,
    -- NaN sorts above Infinity, so this rules out both.
    price_per_unit numeric NOT NULL CHECK (price_per_unit >= 0 AND price_per_unit < 'Infinity'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rate_card_key, agent_key),
    CONSTRAINT rate_card_prices_keys_length CHECK (length(rate_card_key) <= 255 AND length(agent_key) <= 255)
);
COMMENT ON TABLE @extschema@.rate_card_prices IS
    'The price per unit of an agent''s confirmed outcome on a rate card, in the rate card''s currency. Snapshotted when an outcome opens.';

-- updated_at follows every change of a lookup row.
CREATE FUNCTION @extschema@.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER rate_cards_touch BEFORE UPDATE ON @extschema@.rate_cards
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();
CREATE TRIGGER customers_touch BEFORE UPDATE ON @extschema@.customers
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();
CREATE TRIGGER rate_card_prices_touch BEFORE UPDATE ON @extschema@.rate_card_prices
    FOR EACH ROW EXECUTE FUNCTION @extschema@.touch_updated_at();

-- Readable VALIDATION_ERRORs for agent contracts (the CHECK constraints stay as the backstop),
-- and the version counter that tells outcomes which contract they were opened under.
CREATE FUNCTION @extschema@.agents_before_write() RETURNS trigger
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
       OR NEW.attribution_method NOT IN (@ATTRIBUTION_METHODS_SQL@) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: attribution_method must be one of @ATTRIBUTION_METHODS_TEXT@',
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
CREATE TRIGGER agents_before_write BEFORE INSERT OR UPDATE ON @extschema@.agents
    FOR EACH ROW EXECUTE FUNCTION @extschema@.agents_before_write();

-- ---------------------------------------------------------------------------------------------
-- The event log and the outcomes it drives.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE @extschema@.events (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    customer_key    text NOT NULL,
    key             text NOT NULL,
    action          text NOT NULL,
    agent_key       text,
    properties      jsonb NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    late            boolean NOT NULL DEFAULT false,
    duplicate_of    bigint,
    after_resolution boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_key, id)
);
CREATE INDEX events_outcome_idx ON @extschema@.events (customer_key, key, id);
CREATE INDEX events_idempotency_idx ON @extschema@.events (customer_key, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
COMMENT ON TABLE @extschema@.events IS
    'The append-only event log and the write path: INSERT (or COPY) events here; triggers keep witn.outcomes current in the same transaction.';
COMMENT ON COLUMN @extschema@.events.key IS 'The outcome key (1 to 255 characters); with customer_key it names the outcome.';
COMMENT ON COLUMN @extschema@.events.action IS 'What happened; the condition''s leaves refer to it as their fact.';
COMMENT ON COLUMN @extschema@.events.agent_key IS 'Required on an outcome''s first event; later events may omit it but may not name another agent.';
COMMENT ON COLUMN @extschema@.events.properties IS 'Free-form JSON object (at most 256 KiB). Reserved: value (compared by the condition), attribution (billing quantity), settles_at (explicit settlement time).';
COMMENT ON COLUMN @extschema@.events.idempotency_key IS 'Optional. An event whose key was already accepted for this customer is recorded as a duplicate and not applied again.';
COMMENT ON COLUMN @extschema@.events.late IS 'Set by witn: the event arrived after its outcome was resolved or due, and did not change it.';
COMMENT ON COLUMN @extschema@.events.after_resolution IS 'Set by witn: the event was accepted by a confirmed outcome in its reversal window (it can reverse it, never re-bill it).';
COMMENT ON COLUMN @extschema@.events.duplicate_of IS 'Set by witn: the id of the earlier event with the same idempotency_key; this one was not applied.';

CREATE TABLE @extschema@.outcomes (
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    customer_key         text NOT NULL,
    key                  text NOT NULL,
    agent_key            text NOT NULL,
    status               @extschema@.outcome_status NOT NULL DEFAULT 'OPEN',
    scheduled_resolution @extschema@.outcome_status,
    settles_at           timestamptz NOT NULL,
    resolved_at          timestamptz,
    condition            @extschema@.condition NOT NULL,
    settlement_period    interval NOT NULL,
    attribution_method   text NOT NULL,
    agent_version        integer NOT NULL,
    unit_price           numeric NOT NULL,
    currency             text NOT NULL,
    quantity             numeric NOT NULL DEFAULT 1,
    condition_holds      boolean NOT NULL DEFAULT false,
    accepted_events      bigint NOT NULL DEFAULT 0,
    late_events          bigint NOT NULL DEFAULT 0,
    facts                jsonb NOT NULL DEFAULT '{}',
    attribution          jsonb NOT NULL DEFAULT '{"n": 0}',
    last_event_id        bigint,
    opened_at            timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- When settlement next looks at the outcome; never after settles_at (see outcomes_due_idx).
    check_at             timestamptz NOT NULL,
    -- The agent's reversal policy when the outcome opened (CONTRACT §20), and its reversal
    -- (CONTRACT §19): set once, by witn.reverse_outcome or the reversal condition.
    reversal_condition   @extschema@.condition NULL,
    reversal_period      interval NULL,
    reversed_at          timestamptz NULL,
    reversal_reason      text NULL,
    -- When witn.purge_events deleted its events (CONTRACT §25): the outcome, its lines, credits
    -- and notifications stay; replay, verify and simulate skip it.
    events_purged_at     timestamptz NULL,
    -- id first: witn.explain/replay look outcomes up by id alone. resolved_at is set exactly
    -- when status becomes CONFIRMED or FAILED (settlement is its only writer; witn.verify
    -- checks it).
    PRIMARY KEY (id, customer_key),
    UNIQUE (customer_key, key)
) WITH (fillfactor = 90);
-- No foreign keys to customers and agents: the events trigger checks both when it opens an
-- outcome, and a key-share lock on the customer row per new outcome would serialize concurrent
-- writers. witn.protect_referenced_keys() below keeps referenced customers and agents in place.
-- Settlement finds due outcomes through this index only: its cost does not grow with the number
-- of outcomes that are not due. It indexes check_at, not settles_at: every event moves
-- settles_at, and an indexed column that changes makes each event's update of the outcome
-- rewrite all three indexes (no HOT update). check_at is set to settles_at when the outcome
-- opens and when settlement finds it not yet due, so it never lies after settles_at and every
-- due outcome is found. Room on each page (fillfactor 90) lets those updates stay on the page.
CREATE INDEX outcomes_due_idx ON @extschema@.outcomes (check_at) WHERE resolved_at IS NULL;
-- What witn.purge_events may purge, oldest first. resolved_at and events_purged_at are set once
-- (by settlement, by the purge), never by an event's update, so events' updates stay HOT.
CREATE INDEX outcomes_purge_idx ON @extschema@.outcomes (resolved_at)
    WHERE resolved_at IS NOT NULL AND events_purged_at IS NULL;
COMMENT ON TABLE @extschema@.outcomes IS
    'One row per (customer_key, key): its status, the contract and price it was opened under, the facts its events established and when it settles.';
COMMENT ON COLUMN @extschema@.outcomes.scheduled_resolution IS 'What a PENDING outcome becomes at settles_at: CONFIRMED if the condition holds after its latest event, else FAILED.';
COMMENT ON COLUMN @extschema@.outcomes.settles_at IS 'When the outcome settles: the latest accepted event''s occurred_at plus the settlement period (or its properties.settles_at), never moved earlier.';
COMMENT ON COLUMN @extschema@.outcomes.check_at IS 'When settlement next looks at the outcome: settles_at as it was when the outcome opened or was last checked; never later than settles_at.';
COMMENT ON COLUMN @extschema@.outcomes.resolved_at IS 'Equal to settles_at once settled: when the outcome was decided, not when a job ran.';
COMMENT ON COLUMN @extschema@.outcomes.condition IS 'The agent''s condition when the outcome opened (contract snapshot).';
COMMENT ON COLUMN @extschema@.outcomes.unit_price IS 'The customer''s rate-card price for the agent when the outcome opened (price snapshot).';
COMMENT ON COLUMN @extschema@.outcomes.quantity IS 'The billing quantity so far, by attribution_method over every accepted event''s properties.attribution (1 when none).';
COMMENT ON COLUMN @extschema@.outcomes.facts IS 'Per action the condition mentions: accepted event count and the latest value (by occurred_at, ties by arrival). Kept incrementally; witn.replay recomputes it from the log.';
COMMENT ON COLUMN @extschema@.outcomes.reversal_condition IS 'The agent''s reversal condition when the outcome opened (contract snapshot); NULL for none.';
COMMENT ON COLUMN @extschema@.outcomes.reversal_period IS 'How long after resolved_at the confirmed outcome accepts events that can reverse it (contract snapshot).';
COMMENT ON COLUMN @extschema@.outcomes.reversed_at IS 'When the confirmed outcome was reversed (witn.reverse_outcome or its reversal condition); its status stays CONFIRMED.';
COMMENT ON COLUMN @extschema@.outcomes.reversal_reason IS 'Why it was reversed: the reason given to witn.reverse_outcome, or reversal_condition.';
COMMENT ON COLUMN @extschema@.outcomes.events_purged_at IS 'When witn.purge_events deleted this outcome''s events (retention); NULL while they are kept. Its stored facts, invoice line, credits and notifications stay; replay, verify and simulate skip it.';
COMMENT ON COLUMN @extschema@.outcomes.attribution IS 'Running state of properties.attribution (count, sum, min, max, first, last) behind quantity.';

CREATE TABLE @extschema@.invoice_lines (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    customer_key text NOT NULL,
    outcome_id   bigint NOT NULL,
    outcome_key  text NOT NULL,
    agent_key    text NOT NULL,
    quantity     numeric NOT NULL,
    unit_price   numeric NOT NULL,
    amount       numeric NOT NULL,
    currency     text NOT NULL,
    resolved_at  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The first day of the calendar month of resolved_at in the customer's timezone when the
    -- line was written: a later timezone change never moves it.
    billing_period date NOT NULL,
    -- One line per outcome is the key; id numbers lines in the order they were written.
    PRIMARY KEY (customer_key, outcome_id)
);
CREATE INDEX invoice_lines_period_idx ON @extschema@.invoice_lines (customer_key, resolved_at);
COMMENT ON COLUMN @extschema@.invoice_lines.billing_period IS
    'The invoice month the line belongs to: the first day of the calendar month of resolved_at in the customer''s timezone when the line was written.';
COMMENT ON TABLE @extschema@.invoice_lines IS
    'Exactly one line per confirmed outcome, written in the transaction that confirmed it. amount = unit_price x quantity, exact, unrounded.';

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
    FOR EACH ROW EXECUTE FUNCTION @extschema@.credit_lines_issue('0.8.0');

-- Closed months (CONTRACT §18): a closed month's invoice never changes again. Settlement bills
-- a line that would fall into a closed month in the earliest open month after it.
CREATE TABLE @extschema@.closed_periods (
    customer_key text NOT NULL,
    period       date NOT NULL CONSTRAINT closed_periods_first_day CHECK (period = date_trunc('month', period)::date),
    closed_at    timestamptz NOT NULL DEFAULT now(),
    closed_by    text NOT NULL DEFAULT current_user,
    PRIMARY KEY (customer_key, period)
);
COMMENT ON TABLE @extschema@.closed_periods IS
    'The customers'' closed invoice months, written by witn.close_period(): nothing lands in a closed month any more.';

-- The lock that orders closing a customer's month and billing its lines: a close takes it
-- exclusively (this trigger, on the node that holds the customer's rows), settlement shares it
-- before it reads the customer's closed months (src/pg/settlement.cpp, same key). So a line is
-- either billed before the close commits, and the close sees it, or after, and sees the close.
CREATE FUNCTION @extschema@.closed_periods_lock() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.customer_key COLLATE "C", 8606516082016908649));
    RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.closed_periods_lock() IS
    'Trigger on witn.closed_periods: the close of a customer''s month waits for its running settlements and holds new ones until it commits.';
CREATE TRIGGER closed_periods_lock BEFORE INSERT ON @extschema@.closed_periods
    FOR EACH ROW EXECUTE FUNCTION @extschema@.closed_periods_lock();

CREATE TABLE @extschema@.notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    customer_key text NOT NULL,
    outcome_id   bigint NOT NULL,
    kind         text NOT NULL CONSTRAINT notifications_kind_check
        CHECK (kind IN ('outcome_succeed', 'outcome_failed', 'outcome_reversed', 'outcome_credited')),
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The credit an outcome_reversed / outcome_credited notification is about (NULL for a
    -- reversal that found nothing left to credit).
    credit_id    bigint NULL,
    PRIMARY KEY (customer_key, id)
);
-- One notification per resolution, so one per outcome.
CREATE UNIQUE INDEX notifications_resolution_key ON @extschema@.notifications (customer_key, outcome_id)
    WHERE kind IN ('outcome_succeed', 'outcome_failed');
COMMENT ON COLUMN @extschema@.notifications.credit_id IS 'The credit an outcome_reversed or outcome_credited notification is about; NULL for a resolution, and for a reversal that found nothing left.';
COMMENT ON TABLE @extschema@.notifications IS
    'Outbox: one row per resolution and one per credit, the hosted product''s webhook body in payload; each is also sent with pg_notify(''witn_outcomes'') in the same transaction.';

CREATE TABLE @extschema@.settlement_errors (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    customer_key text NOT NULL,
    outcome_id   bigint NOT NULL,
    sqlstate     text NOT NULL,
    message      text NOT NULL,
    detail       text,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_key, id)
);
COMMENT ON TABLE @extschema@.settlement_errors IS
    'Outcomes witn.settle() could not settle, and why. The outcome stays due and is retried by the next run.';

-- Customers and agents that outcomes refer to cannot be deleted or renamed (what foreign keys
-- would do, without their cost on the write path).
-- SECURITY DEFINER: the check must see every outcome, whatever the caller's row policies.
CREATE FUNCTION @extschema@.protect_referenced_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    referenced boolean := false;
    -- customers or agents; on Citus the trigger fires on a reference table's shard on every
    -- node (customers_102008), and each node checks the outcome shards it holds.
    tab constant text := CASE WHEN TG_TABLE_NAME LIKE 'customers%' THEN 'customers' ELSE 'agents' END;
    shard regclass;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.key = OLD.key THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME IN ('customers', 'agents') THEN
        IF tab = 'customers' THEN
            SELECT EXISTS (SELECT 1 FROM @extschema@.outcomes o WHERE o.customer_key = OLD.key) INTO referenced;
        ELSE
            SELECT EXISTS (SELECT 1 FROM @extschema@.outcomes o WHERE o.agent_key = OLD.key) INTO referenced;
        END IF;
    ELSE
        FOR shard IN EXECUTE
            'SELECT pg_catalog.format(''%I.%I'', ''@extschema@'', ''outcomes_'' || s.shardid)::regclass
               FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p USING (shardid)
              WHERE s.logicalrelid = ''@extschema@.outcomes''::regclass
                AND p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)'
        LOOP
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s o WHERE o.%I = $1)', shard,
                                      CASE tab WHEN 'customers' THEN 'customer_key' ELSE 'agent_key' END)
               INTO referenced USING OLD.key;
            EXIT WHEN referenced;
        END LOOP;
    END IF;
    IF referenced THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('%s %s has outcomes and cannot be %s', rtrim(tab, 's'), OLD.key,
                             CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'renamed' END),
            DETAIL = format('witn.outcomes refers to %s.key = %s', tab, OLD.key),
            HINT = 'Outcomes and invoice lines keep referring to it; keep the row.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER customers_protect BEFORE DELETE OR UPDATE OF key ON @extschema@.customers
    FOR EACH ROW EXECUTE FUNCTION @extschema@.protect_referenced_keys();
CREATE TRIGGER agents_protect BEFORE DELETE OR UPDATE OF key ON @extschema@.agents
    FOR EACH ROW EXECUTE FUNCTION @extschema@.protect_referenced_keys();

-- Invoice lines and notifications are written by settlement from the outcome row itself, in
-- its transaction, so they cannot refer to a missing outcome; what keeps them from being
-- orphaned later is that a resolved outcome is history and cannot be deleted or re-keyed.
-- (Foreign keys would cost a lookup per written line and notification.)
CREATE FUNCTION @extschema@.protect_resolved_outcomes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.resolved_at IS NOT NULL AND (TG_OP = 'DELETE' OR (NEW.customer_key, NEW.id, NEW.key)
                                        IS DISTINCT FROM (OLD.customer_key, OLD.id, OLD.key)) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('outcome %s is resolved and cannot be %s', OLD.id,
                             CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 're-keyed' END),
            DETAIL = format('customer %s, key %s, resolved at %s', OLD.customer_key, OLD.key, OLD.resolved_at),
            HINT = 'Invoice lines and notifications refer to it.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER outcomes_protect BEFORE DELETE OR UPDATE OF customer_key, id, key ON @extschema@.outcomes
    FOR EACH ROW EXECUTE FUNCTION @extschema@.protect_resolved_outcomes();
