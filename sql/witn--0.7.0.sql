-- witn install script. Assembled from sql/install/*.sql; every object is schema-qualified and
-- the script never relies on search_path.
\echo Use "CREATE EXTENSION witn" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- witn.condition: a validated billable condition, stored as canonical JSON.
-- ---------------------------------------------------------------------------------------------
CREATE TYPE @extschema@.condition;

CREATE FUNCTION @extschema@.condition_in(cstring) RETURNS @extschema@.condition
    AS 'MODULE_PATHNAME', 'witn_condition_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_out(@extschema@.condition) RETURNS cstring
    AS 'MODULE_PATHNAME', 'witn_condition_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_recv(internal) RETURNS @extschema@.condition
    AS 'MODULE_PATHNAME', 'witn_condition_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_send(@extschema@.condition) RETURNS bytea
    AS 'MODULE_PATHNAME', 'witn_condition_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.condition (
    INPUT = @extschema@.condition_in,
    OUTPUT = @extschema@.condition_out,
    RECEIVE = @extschema@.condition_recv,
    SEND = @extschema@.condition_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.condition IS
    'A billable condition: a JSON array of leaves {fact, operator, value?} joined by AND. Validated on input; output is canonical JSON.';

-- Through text: jsonb's output is valid condition input, and the condition's is valid jsonb.
CREATE CAST (@extschema@.condition AS jsonb) WITH INOUT AS ASSIGNMENT;
CREATE CAST (jsonb AS @extschema@.condition) WITH INOUT AS ASSIGNMENT;

CREATE TYPE @extschema@.outcome_status AS ENUM ('OPEN', 'PENDING', 'CONFIRMED', 'FAILED');
COMMENT ON TYPE @extschema@.outcome_status IS
    'OPEN: accepting events, condition not yet met. PENDING: condition met at least once, waiting for settlement. CONFIRMED and FAILED are terminal.';

CREATE FUNCTION @extschema@.evaluate(condition @extschema@.condition, events jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_evaluate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.evaluate(@extschema@.condition, jsonb) IS
    'Whether the condition holds over an event log: a JSON array of {"action", "properties": {"value", ...}, "occurred_at"} in arrival order.';

CREATE FUNCTION @extschema@.describe(condition @extschema@.condition) RETURNS text
    AS 'MODULE_PATHNAME', 'witn_describe' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.describe(@extschema@.condition) IS
    'The condition in words, with the dashboard labels: "csat is missing or has value above 3 AND escalated is not seen".';

CREATE FUNCTION @extschema@.explain_facts(condition @extschema@.condition, facts jsonb,
    OUT leaf integer, OUT fact text, OUT operator text, OUT description text,
    OUT event_count bigint, OUT latest_value jsonb, OUT latest_at timestamptz, OUT passes boolean)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'witn_explain_facts' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.explain_facts(@extschema@.condition, jsonb) IS
    'One row per leaf of the condition: the fact it sees in an outcome''s facts (count, latest value and when) and whether it passes.';

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
        CHECK (attribution_method IN ('last', 'first', 'sum', 'max', 'min', 'average')),
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
    FOR EACH ROW EXECUTE FUNCTION @extschema@.credit_lines_issue('0.7.0');

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

-- ---------------------------------------------------------------------------------------------
-- The write path: one statement trigger validates the statement's events and applies them to
-- their outcomes. A bad row fails the whole statement: nothing is written.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.event_keys_fit(customer_key text, key text, action text,
    agent_key text, idempotency_key text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_event_keys_fit' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.event_keys_fit(text, text, text, text, text) IS
    'Backs the events_keys_fit constraint: keys are 1 to 255 characters (PAYLOAD_TOO_LARGE or VALIDATION_ERROR otherwise), checked before the row reaches an index.';
ALTER TABLE @extschema@.events ADD CONSTRAINT events_keys_fit
    CHECK (@extschema@.event_keys_fit(customer_key, key, action, agent_key, idempotency_key));

CREATE FUNCTION @extschema@.events_apply() RETURNS trigger
    AS 'MODULE_PATHNAME', 'witn_events_apply' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.events_apply() IS
    'Statement trigger on witn.events: validates the inserted events, then opens, updates and times their outcomes, in the inserting transaction.';

-- The argument stamps the version of these SQL objects: a library of another version refuses
-- to apply events (55000, saying what to do) instead of writing what this schema does not hold.
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.7.0');

-- ---------------------------------------------------------------------------------------------
-- Auditing an outcome: explain, replay, verify.
-- ---------------------------------------------------------------------------------------------
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

-- replay_on and verify_on work on one outcomes table: witn.outcomes (NULL), or on Citus one
-- of its shards, on the shard's node. replay and verify run them here, or on every shard.
CREATE FUNCTION @extschema@.replay_on(shard regclass, outcome_id bigint, missing_ok boolean,
    OUT outcome_id bigint, OUT matches boolean, OUT differences text[])
    AS 'MODULE_PATHNAME', 'witn_replay' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.replay_on(regclass, bigint, boolean) IS
    'Internal to witn.replay(): replays one outcome of one outcomes table or shard (all null when missing_ok and it is not there).';

CREATE FUNCTION @extschema@.verify_on(shard regclass)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, differences text[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    shard := coalesce(shard, '@extschema@.outcomes'::regclass);
    RETURN QUERY EXECUTE format(
        'SELECT o.id, o.customer_key, o.key, r.differences FROM %s o
          CROSS JOIN LATERAL @extschema@.replay_on($1, o.id, false) r
          WHERE NOT r.matches ORDER BY o.id', shard) USING shard;
END $$;
COMMENT ON FUNCTION @extschema@.verify_on(regclass) IS
    'Internal to witn.verify(): verifies one outcomes table or shard.';

-- Work on every shard runs in transactions of its own on the shards' nodes: it cannot see what
-- the calling transaction wrote and is not undone with it. So on Citus it must be called in a
-- transaction that has not touched distributed tables yet; anything else is refused.
CREATE FUNCTION @extschema@.require_own_transaction(what text) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT transaction_number FROM pg_catalog.get_current_transaction_id()) <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = '25001',
            MESSAGE = format('%s runs in a transaction of its own on Citus', what),
            DETAIL = 'This transaction already used distributed tables; the shards are settled and read in transactions of their own on their nodes, which would not see its writes.',
            HINT = format('Commit first, then call %s alone (as pg_cron does).', what);
    END IF;
END $$;
COMMENT ON FUNCTION @extschema@.require_own_transaction(text) IS
    'Internal (Citus): refuses work on every shard inside a transaction that already used distributed tables.';

-- On Citus, a command for every shard of witn.outcomes, run on the shard's node (all shards in
-- parallel; %s in the command is the shard): each shard's one-value result. A shard whose node
-- fails is an error, not a gap in the answer.
CREATE FUNCTION @extschema@.on_every_shard(command text) RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    PERFORM @extschema@.require_own_transaction('witn.replay(), witn.verify() or witn.simulate()');
    FOR r IN SELECT * FROM run_command_on_shards('@extschema@.outcomes', command) LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION USING ERRCODE = '58000',
                MESSAGE = format('witn: shard %s of witn.outcomes did not answer: %s', r.shardid, r.result),
                HINT = 'Check that every Citus node is up (SELECT * FROM citus_check_cluster_node_health()).';
        END IF;
        RETURN NEXT r.result;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.on_every_shard(text) IS
    'Internal: runs a command on every shard of witn.outcomes (Citus) and returns their results.';

CREATE FUNCTION @extschema@.replay_outcome(wanted bigint,
    OUT outcome_id bigint, OUT matches boolean, OUT differences text[])
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found jsonb;
BEGIN
    IF NOT @extschema@.distributed() THEN
        SELECT r.outcome_id, r.matches, r.differences INTO outcome_id, matches, differences
          FROM @extschema@.replay_on(NULL, wanted, false) r;
        RETURN;
    END IF;
    SELECT s::jsonb INTO found
      FROM @extschema@.on_every_shard(format(
           'SELECT row_to_json(r) FROM @extschema@.replay_on(%L::regclass, %s, true) r', '%s', wanted)) s
     WHERE s::jsonb ->> 'outcome_id' IS NOT NULL;
    IF found IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT008', MESSAGE = format('OUTCOME_NOT_FOUND: no outcome %s', wanted),
            DETAIL = format('outcome_id %s', wanted);
    END IF;
    outcome_id := (found ->> 'outcome_id')::bigint;
    matches := (found ->> 'matches')::boolean;
    differences := ARRAY(SELECT jsonb_array_elements_text(found -> 'differences'));
END $$;
COMMENT ON FUNCTION @extschema@.replay_outcome(bigint) IS 'Internal to witn.replay(): here, or on every shard (Citus).';

-- SECURITY DEFINER: on Citus it runs on every shard's node, as witn's owner (the roles that
-- may call it cannot log in to other nodes).
CREATE FUNCTION @extschema@.replay(outcome_id bigint,
    OUT outcome_id bigint, OUT matches boolean, OUT differences text[])
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.replay_outcome($1)
$$;
COMMENT ON FUNCTION @extschema@.replay(bigint) IS
    'Recomputes an outcome from its event log with the pure evaluator and lists every difference from the stored state (none expected).';

CREATE FUNCTION @extschema@.verify()
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, differences text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT @extschema@.distributed() THEN
        RETURN QUERY SELECT * FROM @extschema@.verify_on(NULL);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT (v ->> 'outcome_id')::bigint, v ->> 'customer_key', v ->> 'outcome_key',
               ARRAY(SELECT jsonb_array_elements_text(v -> 'differences'))
          FROM @extschema@.on_every_shard(format(
               'SELECT coalesce(json_agg(v), ''[]'') FROM @extschema@.verify_on(%L::regclass) v', '%s')) s,
               jsonb_array_elements(s::jsonb) v
         ORDER BY 1;
END $$;
COMMENT ON FUNCTION @extschema@.verify() IS
    'Replays every outcome; returns the ones whose stored state differs from their log. Empty means consistent.';
-- ---------------------------------------------------------------------------------------------
-- Scale-out on Citus (docs/scale-out.md). witn.distribute() on a Citus coordinator makes the
-- lookup tables reference tables and the per-customer tables distributed by customer_key,
-- colocated; from then on the events trigger works per shard on the worker that holds it,
-- and settle/replay/verify run on every shard.
-- ---------------------------------------------------------------------------------------------

-- Whether witn's tables are distributed (Citus): false on a single node.
CREATE FUNCTION @extschema@.distributed() RETURNS boolean
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
       INTO found USING '@extschema@.outcomes'::regclass;
    RETURN found;
END $$;
COMMENT ON FUNCTION @extschema@.distributed() IS
    'Whether witn''s tables are distributed with Citus (witn.distribute() has run).';

CREATE FUNCTION @extschema@.distribute()
    RETURNS TABLE (table_name regclass, distribution text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lookup constant text[] := ARRAY['currencies', 'rate_cards', 'customers', 'agents', 'rate_card_prices', 'webhook_endpoints'];
    per_customer constant text[] := ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors', 'closed_periods', 'credit_lines', 'webhook_deliveries'];
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
    FOREACH t IN ARRAY ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors', 'credit_lines', 'webhook_endpoints', 'webhook_deliveries'] LOOP
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
    webhook_status constant text := $view$
CREATE OR REPLACE VIEW @extschema@.webhook_status WITH (security_invoker = true) AS
    SELECT e.id AS endpoint_id, e.url, e.enabled,
           coalesce(q.pending, 0) AS pending,
           coalesce(q.due, 0) AS due,
           coalesce(q.retrying, 0) AS retrying,
           q.oldest_pending_at,
           now() - q.oldest_pending_at AS oldest_pending_age,
           coalesce(q.failed, 0) AS failed,
           l.last_attempt_at, l.last_response_code, l.last_error,
           q.last_delivered_at
      FROM @extschema@.webhook_endpoints e
      LEFT JOIN (
          SELECT d.endpoint_id, count(*) FILTER (WHERE d.status = 'pending') AS pending,
                 count(*) FILTER (WHERE d.status = 'pending' AND d.next_attempt_at <= now()) AS due,
                 count(*) FILTER (WHERE d.status = 'pending' AND d.attempts > 0) AS retrying,
                 min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest_pending_at,
                 count(*) FILTER (WHERE d.status = 'failed') AS failed,
                 max(d.delivered_at) AS last_delivered_at
            FROM @extschema@.webhook_deliveries d GROUP BY d.endpoint_id) q ON q.endpoint_id = e.id
      LEFT JOIN (
          SELECT DISTINCT ON (d.endpoint_id) d.endpoint_id, d.last_attempt_at, d.last_response_code, d.last_error
            FROM @extschema@.webhook_deliveries d
           WHERE d.status <> 'delivered' AND d.last_attempt_at IS NOT NULL
           ORDER BY d.endpoint_id, d.last_attempt_at DESC) l ON l.endpoint_id = e.id
$view$;
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
    -- witn.webhook_status: Citus cannot plan a lateral subquery on the deliveries correlated on
    -- endpoint_id (not the distribution column); per-endpoint aggregates it can (each shard's
    -- partial aggregates, merged on the coordinator). The view stays on the coordinator.
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    EXECUTE webhook_status;
    PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
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
COMMENT ON FUNCTION @extschema@.distribute() IS
    'On a Citus coordinator: makes witn''s lookup tables reference tables and its per-customer tables distributed by customer_key (colocated), and gives every node its own id range. Idempotent; run it again after adding a node.';

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
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.7.0', shard) b;
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
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.7.0', shard);
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

CREATE FUNCTION @extschema@.settle(as_of timestamptz DEFAULT now(), max_outcomes integer DEFAULT NULL,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
COMMENT ON FUNCTION @extschema@.settle(timestamptz, integer) IS
    'Settles every outcome due at as_of (at most max_outcomes, NULL for all; on Citus per shard): OPEN -> FAILED, PENDING -> scheduled_resolution, resolved_at = settles_at, one invoice line per confirmation, one notification per resolution, all in this transaction (on Citus, in one transaction per shard on its node, all shards in parallel). Safe to run concurrently and repeatedly. Returns counts; outcomes that fail are recorded in witn.settlement_errors and skipped.';

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

-- ---------------------------------------------------------------------------------------------
-- pg_cron: run witn.settle() every minute. pg_cron lives in one database per cluster
-- (cron.database_name); when that is not this one, the job is created there through dblink
-- with cron.schedule_in_database. Nothing here is needed to install witn.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.cron_job_name() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'witn-settle:' || current_database()
$$;
COMMENT ON FUNCTION @extschema@.cron_job_name() IS 'The pg_cron job name witn uses for this database.';

-- Runs a query (a SELECT returning one value) in the pg_cron database: here when pg_cron is
-- installed here, else through dblink. Returns the value as text.
CREATE FUNCTION @extschema@.cron_call(statement text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
    dblink_schema text;
    socket_dir text := nullif(split_part(current_setting('unix_socket_directories'), ',', 1), '');
    conninfo text;
    result text;
BEGIN
    IF to_regnamespace('cron') IS NOT NULL THEN
        EXECUTE 'SELECT (' || statement || ')::text' INTO result;
        RETURN result;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = 'CRON_NOT_AVAILABLE: pg_cron is not loaded in this cluster',
            HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    END IF;
    SELECT n.nspname INTO dblink_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'dblink';
    IF dblink_schema IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = format('CRON_NOT_AVAILABLE: pg_cron lives in database %s, not here', cron_db),
            DETAIL = format('cron.database_name = %s, current database = %s', cron_db, current_database()),
            HINT = format('CREATE EXTENSION dblink in this database and call again, or run in database %s: %s;',
                          cron_db, statement);
    END IF;
    conninfo := format('dbname=%s port=%s user=%s', quote_literal(cron_db),
                       current_setting('port'), quote_literal(current_user));
    IF socket_dir IS NOT NULL THEN
        conninfo := conninfo || format(' host=%s', quote_literal(socket_dir));
    END IF;
    EXECUTE format('SELECT r FROM %I.dblink($1, $2) AS t(r text)', dblink_schema)
       INTO result USING conninfo, 'SELECT (' || statement || ')::text';
    RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.cron_call(text) IS 'Internal: runs a statement where pg_cron lives.';

CREATE FUNCTION @extschema@.schedule_settlement(schedule text DEFAULT '* * * * *') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF schedule IS NULL OR btrim(schedule) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: schedule must be a cron schedule',
            HINT = 'Use cron format, e.g. ''* * * * *'' for every minute.';
    END IF;
    RETURN @extschema@.cron_call(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        @extschema@.cron_job_name(), schedule, 'SELECT witn.settle()', current_database()))::bigint;
END $$;
COMMENT ON FUNCTION @extschema@.schedule_settlement(text) IS
    'Schedules witn.settle() in this database with pg_cron (default: every minute) and returns the job id. Calling it again replaces the schedule. Works when pg_cron lives in another database (through dblink).';

CREATE FUNCTION @extschema@.unschedule_settlement() RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- False when there is nothing to remove (cron.unschedule itself would raise).
    RETURN @extschema@.cron_call(format(
        'SELECT coalesce(bool_or(cron.unschedule(jobid)), false) FROM cron.job'
        ' WHERE jobname = %L AND username = current_user', @extschema@.cron_job_name()))::boolean;
END $$;
COMMENT ON FUNCTION @extschema@.unschedule_settlement() IS
    'Removes the pg_cron job created by witn.schedule_settlement() for this database.';

-- ---------------------------------------------------------------------------------------------
-- Roles. Four NOLOGIN roles, meant to be granted to PostgREST's authenticator (or to an
-- application's login role):
--   witn_admin     customers, agents, rate cards, prices, new currencies; reads everything
--   witn_ingest    adds events, nothing else
--   witn_reader    reads everything (finance)
--   witn_customer  reads its own outcomes, explanations, events, invoice lines and
--                  notifications: Row Level Security keyed by the customer_key claim in
--                  request.jwt.claims
-- Roles belong to the cluster, not to a database: a second database finds them already there,
-- and DROP EXTENSION leaves them. Where extension scripts must not create roles, create them
-- before CREATE EXTENSION (docs/postgrest.md); the script then only grants.
-- ---------------------------------------------------------------------------------------------
DO $$
DECLARE
    role_name text;
    existing record;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['witn_admin', 'witn_ingest', 'witn_reader', 'witn_customer'] LOOP
        SELECT r.rolcanlogin, r.rolsuper, r.rolbypassrls INTO existing
          FROM pg_catalog.pg_roles r WHERE r.rolname = role_name;
        IF NOT FOUND THEN
            BEGIN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- another database's CREATE EXTENSION created it at the same moment
            END;
        ELSIF existing.rolcanlogin OR existing.rolsuper OR existing.rolbypassrls THEN
            -- A login role can set request.jwt.claims itself; superuser and BYPASSRLS skip the
            -- row policies. Either way the role model below no longer holds.
            RAISE WARNING 'witn: role % already exists with LOGIN, SUPERUSER or BYPASSRLS', role_name
                USING DETAIL = 'witn''s roles are meant to be NOLOGIN and subject to row level security.',
                      HINT = pg_catalog.format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS;', role_name);
        END IF;
    END LOOP;
END $$;

-- Nothing for PUBLIC: every privilege below is granted to a witn role by name. Only the pure
-- functions of the condition model stay callable by anyone.
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.condition_in(cstring), @extschema@.condition_out(@extschema@.condition),
    @extschema@.condition_recv(internal), @extschema@.condition_send(@extschema@.condition),
    @extschema@.evaluate(@extschema@.condition, jsonb), @extschema@.describe(@extschema@.condition),
    @extschema@.explain_facts(@extschema@.condition, jsonb),
    -- the witn.events key check and the witn.customers timezone check run with the writing
    -- role's rights
    @extschema@.event_keys_fit(text, text, text, text, text), @extschema@.timezone_is_known(text)
    TO PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO witn_admin, witn_ingest, witn_reader, witn_customer;

-- witn_admin and witn_reader read everything.
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.replay(bigint), @extschema@.verify()
    TO witn_admin, witn_reader;
-- Closing a month and correcting invoices are the admin's.
GRANT EXECUTE ON FUNCTION @extschema@.close_period(date, text), @extschema@.reverse_outcome(bigint, text),
    @extschema@.credit_outcome(bigint, numeric, text)
    TO witn_admin;

-- witn_admin writes the lookup tables. Keys cannot be changed once created: events and
-- invoice lines refer to them by value. Currencies can be added, not edited: a changed
-- minor_units would re-round invoices already issued.
GRANT INSERT (key, name, rate_card_key, timezone), UPDATE (name, rate_card_key, timezone), DELETE
    ON @extschema@.customers TO witn_admin;
GRANT INSERT (key, name, condition, settlement_period, attribution_method, reversal_condition, reversal_period),
      UPDATE (name, condition, settlement_period, attribution_method, reversal_condition, reversal_period), DELETE
    ON @extschema@.agents TO witn_admin;
GRANT INSERT (key, name, currency), UPDATE (name, currency), DELETE
    ON @extschema@.rate_cards TO witn_admin;
GRANT INSERT (rate_card_key, agent_key, price_per_unit), UPDATE (price_per_unit), DELETE
    ON @extschema@.rate_card_prices TO witn_admin;
GRANT INSERT (code, minor_units) ON @extschema@.currencies TO witn_admin;

-- witn_ingest adds events: the columns a sender may set, and nothing it could read back.
-- received_at, late and duplicate_of are witn's to set.
GRANT INSERT (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    ON @extschema@.events TO witn_ingest;

-- witn_customer reads its own rows of these (policies below); currencies for invoice totals.
GRANT SELECT ON @extschema@.outcomes, @extschema@.events, @extschema@.invoice_lines,
    @extschema@.notifications, @extschema@.invoice_line_details, @extschema@.invoices,
    @extschema@.currencies, @extschema@.closed_periods, @extschema@.credit_lines
    TO witn_customer;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint) TO witn_customer;
-- explain's query, which runs with the caller's rights and row policies.
GRANT EXECUTE ON FUNCTION @extschema@.explain_outcome(bigint) TO witn_admin, witn_reader, witn_customer;

-- ---------------------------------------------------------------------------------------------
-- Row Level Security on the tables that hold a customer's data. The policies grant; a role
-- without one sees and writes nothing. The events trigger and witn.settle() are SECURITY
-- DEFINER, owned by the (superuser) extension owner, so they write outcomes, invoice lines and
-- notifications whatever the caller may see.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.current_customer_key() RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
BEGIN
    -- On Citus a policy is checked on the worker, in a connection the coordinator opened; the
    -- claim is there only if the request sent it (witn.pre_request()). Without it the answer
    -- would be "no customer": for a customer token no rows, for an ingest token no scope.
    IF claims IS NULL AND current_setting('application_name') LIKE 'citus\_internal gpid=%' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'witn: the request''s JWT claims did not reach this Citus node',
            HINT = 'Set PostgREST''s db-pre-request to witn.pre_request, or run SELECT witn.pre_request() after setting request.jwt.claims (docs/scale-out.md).';
    END IF;
    RETURN CASE WHEN claims ->> 'role' = current_user THEN claims ->> 'customer_key' END;
END $$;
COMMENT ON FUNCTION @extschema@.current_customer_key() IS
    'The customer_key claim of the request''s JWT (request.jwt.claims, as PostgREST sets it), or NULL when there is none or the token was issued for another role than the current one.';
REVOKE EXECUTE ON FUNCTION @extschema@.current_customer_key() FROM PUBLIC;

-- PostgREST's db-pre-request on Citus: sends the request's claims on to the workers, where the
-- row policies read them. Citus propagates SET LOCAL (citus.propagate_set_commands = local), not
-- set_config(), so it re-issues them as SET LOCAL. No SET clause (its SET LOCAL must outlive
-- it): every name in it is schema-qualified. A no-op on a single node.
CREATE FUNCTION @extschema@.pre_request() RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    claims text := pg_catalog.current_setting('request.jwt.claims', true);
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE 'SET LOCAL citus.propagate_set_commands = local';
    IF claims IS NOT NULL THEN
        EXECUTE pg_catalog.format('SET LOCAL request.jwt.claims = %L', claims);
    END IF;
END $$;
COMMENT ON FUNCTION @extschema@.pre_request() IS
    'PostgREST db-pre-request on Citus: passes request.jwt.claims on to the workers (a no-op on a single node).';
REVOKE EXECUTE ON FUNCTION @extschema@.pre_request() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.current_customer_key(), @extschema@.pre_request()
    TO witn_admin, witn_ingest, witn_reader, witn_customer;

ALTER TABLE @extschema@.outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.closed_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.credit_lines ENABLE ROW LEVEL SECURITY;

-- The claim is read once per statement (an InitPlan), not once per row.
CREATE POLICY staff_read ON @extschema@.outcomes FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.outcomes FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.events FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.events FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));
-- An ingest token may be scoped to one customer by a customer_key claim; without one it sends
-- events for every customer.
CREATE POLICY ingest_add ON @extschema@.events FOR INSERT TO witn_ingest
    WITH CHECK ((SELECT @extschema@.current_customer_key()) IS NULL
                OR customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.invoice_lines FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.invoice_lines FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.closed_periods FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.closed_periods FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.notifications FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.notifications FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.credit_lines FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.credit_lines FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

-- ---------------------------------------------------------------------------------------------
-- Webhook delivery (CONTRACT §21, docs/webhooks.md). witn_admin registers endpoints; every
-- notification is queued, in the transaction that writes it, for every endpoint whose filters
-- match (witn.webhook_deliveries); the delivery worker (with witn in shared_preload_libraries)
-- POSTs it signed as Standard Webhooks say, outside that transaction, and records every attempt.
-- ---------------------------------------------------------------------------------------------

-- A new endpoint secret: "whsec_" and the base64 of 32 random bytes (pg_strong_random).
CREATE FUNCTION @extschema@.webhook_secret() RETURNS text
    AS 'MODULE_PATHNAME', 'witn_webhook_secret' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.webhook_secret() IS
    'A new Standard Webhooks endpoint secret: whsec_ and the base64 of 32 random bytes.';

CREATE TABLE @extschema@.webhook_endpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url          text NOT NULL,
    secret       text NOT NULL DEFAULT @extschema@.webhook_secret(),
    -- NULL: every kind of notification; else the kinds to deliver.
    event_types  text[] NULL,
    -- NULL: every customer's notifications; else one customer's.
    customer_key text NULL,
    enabled      boolean NOT NULL DEFAULT true,
    description  text NULL CONSTRAINT webhook_endpoints_description_length CHECK (length(description) <= 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.webhook_endpoints IS
    'Where notifications are delivered as signed webhooks (Standard Webhooks), filtered by kind (event_types) and customer; witn_admin only. A disabled endpoint''s deliveries wait until it is enabled again.';
COMMENT ON COLUMN @extschema@.webhook_endpoints.secret IS
    'The signing secret, whsec_ and the base64 of 24 to 64 bytes (made by witn.webhook_secret() when not given). Readable by witn_admin only.';

-- The URL, the secret and the kinds are checked by the core (webhook_url_host, webhook_key,
-- check_event_types); the host against witn.webhook_allowed_hosts.
CREATE FUNCTION @extschema@.webhook_endpoint_check(url text, secret text, event_types text[]) RETURNS void
    AS 'MODULE_PATHNAME', 'witn_webhook_endpoint_check' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.webhook_endpoint_check(text, text, text[]) IS
    'Internal: checks an endpoint''s URL (http or https, an allowed host), secret (whsec_) and event types; VALIDATION_ERROR (WT001) otherwise.';

CREATE FUNCTION @extschema@.webhook_endpoints_before_write() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Checked when written: an endpoint whose host was later taken off witn.webhook_allowed_hosts
    -- can still be disabled or described.
    IF TG_OP = 'INSERT' OR (NEW.url, NEW.secret, NEW.event_types) IS DISTINCT FROM (OLD.url, OLD.secret, OLD.event_types) THEN
        PERFORM @extschema@.webhook_endpoint_check(NEW.url, NEW.secret, NEW.event_types);
    END IF;
    IF length(NEW.description) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: description must be at most 1000 characters',
            DETAIL = format('at description (%s characters)', length(NEW.description));
    END IF;
    IF NEW.customer_key IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.customer_key IS DISTINCT FROM OLD.customer_key)
       AND NOT EXISTS (SELECT 1 FROM @extschema@.customers c WHERE c.key = NEW.customer_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT002',
            MESSAGE = format('CUSTOMER_NOT_FOUND: no customer %s', NEW.customer_key),
            DETAIL = 'witn.webhook_endpoints.customer_key',
            HINT = 'Leave customer_key NULL for every customer''s notifications, or name an existing customer.';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.webhook_endpoints_before_write() IS
    'Trigger on witn.webhook_endpoints: checks URL, secret, event types and customer; keeps updated_at.';
CREATE TRIGGER webhook_endpoints_before_write BEFORE INSERT OR UPDATE ON @extschema@.webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION @extschema@.webhook_endpoints_before_write();

CREATE TABLE @extschema@.webhook_deliveries (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    customer_key       text NOT NULL,
    notification_id    bigint NOT NULL,
    endpoint_id        bigint NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    -- When the next attempt is due (pending); NULL once delivered or failed.
    next_attempt_at    timestamptz NULL DEFAULT now(),
    last_attempt_at    timestamptz NULL,
    -- The HTTP status of the last attempt (NULL when there was no response), and what went wrong.
    last_response_code integer NULL,
    last_error         text NULL,
    delivered_at       timestamptz NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_key, id),
    CONSTRAINT webhook_deliveries_due_when_pending CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The worker's queue: each endpoint's pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON @extschema@.webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_notification ON @extschema@.webhook_deliveries (customer_key, notification_id);
COMMENT ON TABLE @extschema@.webhook_deliveries IS
    'One row per notification and endpoint: queued with the notification, then pending until a 2xx answer (delivered) or until every wait of witn.webhook_retry_schedule is used (failed). attempts and last_* record the attempts; witn.redeliver() queues again.';

-- An endpoint whose deliveries are kept is not deleted (they would point nowhere); on Citus the
-- trigger fires on each node's copy of the reference table and checks the node's shards.
CREATE FUNCTION @extschema@.webhook_endpoints_protect() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kept bigint := 0;
    n bigint;
    shard regclass;
BEGIN
    IF TG_TABLE_NAME = 'webhook_endpoints' THEN
        SELECT count(*) INTO kept FROM @extschema@.webhook_deliveries d WHERE d.endpoint_id = OLD.id;
    ELSE
        FOR shard IN EXECUTE
            'SELECT pg_catalog.format(''%I.%I'', ''@extschema@'', ''webhook_deliveries_'' || s.shardid)::regclass
               FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p USING (shardid)
              WHERE s.logicalrelid = ''@extschema@.webhook_deliveries''::regclass
                AND p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)'
        LOOP
            EXECUTE pg_catalog.format('SELECT count(*) FROM %s d WHERE d.endpoint_id = $1', shard) INTO n USING OLD.id;
            kept := kept + n;
        END LOOP;
    END IF;
    IF kept > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('webhook endpoint %s has deliveries and cannot be deleted', OLD.id),
            DETAIL = format('%s rows of witn.webhook_deliveries refer to it.', kept),
            HINT = format('Disable it (UPDATE witn.webhook_endpoints SET enabled = false WHERE id = %s), or delete its deliveries first (DELETE FROM witn.webhook_deliveries WHERE endpoint_id = %s).', OLD.id, OLD.id);
    END IF;
    RETURN OLD;
END $$;
COMMENT ON FUNCTION @extschema@.webhook_endpoints_protect() IS
    'Trigger on witn.webhook_endpoints: an endpoint with deliveries cannot be deleted (disable it, or delete its deliveries first).';
CREATE TRIGGER webhook_endpoints_protect BEFORE DELETE ON @extschema@.webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION @extschema@.webhook_endpoints_protect();

-- witn.redeliver(): queues a notification again, for one endpoint or every endpoint it goes to.
-- A delivery still pending is made due now; otherwise a new pending delivery is added (the
-- delivered or failed one stays, with its attempts).
CREATE FUNCTION @extschema@.redeliver(notification_id bigint, endpoint_id bigint DEFAULT NULL)
    RETURNS SETOF @extschema@.webhook_deliveries
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    note record;
    e record;
    queued @extschema@.webhook_deliveries;
    found_one boolean := false;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: notification_id: a witn.notifications id',
            HINT = 'Name the notification to deliver again by its witn.notifications.id.';
    END IF;
    SELECT n.customer_key, n.kind INTO note FROM @extschema@.notifications n WHERE n.id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'WT013', MESSAGE = format('NOTIFICATION_NOT_FOUND: no notification %s', $1),
            DETAIL = format('notification_id %s', $1);
    END IF;
    IF $2 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.webhook_endpoints w WHERE w.id = $2) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT014', MESSAGE = format('WEBHOOK_ENDPOINT_NOT_FOUND: no webhook endpoint %s', $2),
            DETAIL = format('endpoint_id %s', $2);
    END IF;
    FOR e IN
        SELECT w.id, (w.customer_key IS NULL OR w.customer_key = note.customer_key)
                     AND (w.event_types IS NULL OR note.kind = ANY (w.event_types)) AS matches
          FROM @extschema@.webhook_endpoints w
         WHERE $2 IS NULL OR w.id = $2
         ORDER BY w.id
    LOOP
        IF NOT e.matches THEN
            CONTINUE WHEN $2 IS NULL;
            RAISE EXCEPTION USING ERRCODE = 'WT001',
                MESSAGE = format('VALIDATION_ERROR: endpoint_id: webhook endpoint %s does not take notification %s', e.id, $1),
                DETAIL = format('The notification is an %s for customer %s; the endpoint''s customer_key or event_types leave it out.', note.kind, note.customer_key),
                HINT = 'Redeliver to an endpoint whose filters match, or leave endpoint_id out for all of them.';
        END IF;
        found_one := true;
        UPDATE @extschema@.webhook_deliveries d SET next_attempt_at = now()
         WHERE d.customer_key = note.customer_key
           AND d.id = (SELECT min(p.id) FROM @extschema@.webhook_deliveries p
                        WHERE p.customer_key = note.customer_key AND p.notification_id = $1
                          AND p.endpoint_id = e.id AND p.status = 'pending')
        RETURNING * INTO queued;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.webhook_deliveries (customer_key, notification_id, endpoint_id)
            VALUES (note.customer_key, $1, e.id)
            RETURNING * INTO queued;
        END IF;
        RETURN NEXT queued;
    END LOOP;
    IF NOT found_one AND $2 IS NULL THEN
        RAISE NOTICE 'witn: no webhook endpoint takes notification %', $1
            USING HINT = 'Add one to witn.webhook_endpoints.';
    END IF;
END $$;
COMMENT ON FUNCTION @extschema@.redeliver(bigint, bigint) IS
    'Queues a notification again for one webhook endpoint, or for every endpoint whose filters take it: a pending delivery is made due now, otherwise a new pending delivery is added. Returns the queued deliveries. witn_admin only.';

-- Monitoring: one row per endpoint (docs/operations.md shows alerts on it).
CREATE VIEW @extschema@.webhook_status WITH (security_invoker = true) AS
    SELECT e.id AS endpoint_id, e.url, e.enabled,
           coalesce(q.pending, 0) AS pending,
           coalesce(q.due, 0) AS due,
           coalesce(q.retrying, 0) AS retrying,
           q.oldest_pending_at,
           now() - q.oldest_pending_at AS oldest_pending_age,
           coalesce(f.failed, 0) AS failed,
           l.last_attempt_at, l.last_response_code, l.last_error,
           s.last_delivered_at
      FROM @extschema@.webhook_endpoints e
      LEFT JOIN LATERAL (
          SELECT count(*) AS pending, count(*) FILTER (WHERE d.next_attempt_at <= now()) AS due,
                 count(*) FILTER (WHERE d.attempts > 0) AS retrying, min(d.created_at) AS oldest_pending_at
            FROM @extschema@.webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending') q ON true
      LEFT JOIN LATERAL (
          SELECT count(*) AS failed FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.status = 'failed') f ON true
      LEFT JOIN LATERAL (
          SELECT d.last_attempt_at, d.last_response_code, d.last_error FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.last_attempt_at IS NOT NULL AND d.status <> 'delivered'
           ORDER BY d.last_attempt_at DESC LIMIT 1) l ON true
      LEFT JOIN LATERAL (
          SELECT max(d.delivered_at) AS last_delivered_at FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.status = 'delivered') s ON true;
COMMENT ON VIEW @extschema@.webhook_status IS
    'Per webhook endpoint: its backlog (pending, due now, retrying, the oldest pending delivery and its age), failed deliveries, the last failed attempt''s response or error, and the last delivery.';

-- The delivery worker of this database is started at commit (a database where witn was just
-- installed is picked up at once); false when witn is not in shared_preload_libraries.
CREATE FUNCTION @extschema@.webhook_wake() RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_webhook_wake' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.webhook_wake() IS
    'Internal: asks the delivery launcher to start this database''s webhook worker when the transaction commits; false when witn is not preloaded.';

REVOKE ALL ON @extschema@.webhook_endpoints, @extschema@.webhook_deliveries, @extschema@.webhook_status FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.webhook_secret(), @extschema@.webhook_endpoint_check(text, text, text[]),
    @extschema@.webhook_endpoints_before_write(), @extschema@.webhook_endpoints_protect(),
    @extschema@.redeliver(bigint, bigint), @extschema@.webhook_wake() FROM PUBLIC;
-- witn_admin registers endpoints and reads their secrets; the others never see a secret.
GRANT SELECT, DELETE ON @extschema@.webhook_endpoints TO witn_admin;
GRANT INSERT (url, secret, event_types, customer_key, enabled, description),
      UPDATE (url, secret, event_types, customer_key, enabled, description)
    ON @extschema@.webhook_endpoints TO witn_admin;
GRANT EXECUTE ON FUNCTION @extschema@.webhook_secret(), @extschema@.webhook_endpoint_check(text, text, text[]),
    @extschema@.redeliver(bigint, bigint) TO witn_admin;
-- Deliveries hold no secret: staff read them; witn_admin deletes old ones (docs/operations.md).
GRANT SELECT ON @extschema@.webhook_deliveries, @extschema@.webhook_status TO witn_admin, witn_reader;
GRANT DELETE ON @extschema@.webhook_deliveries TO witn_admin;
-- The status view reads endpoints without their secrets.
GRANT SELECT (id, url, event_types, customer_key, enabled, description, created_at, updated_at)
    ON @extschema@.webhook_endpoints TO witn_reader;

SELECT @extschema@.webhook_wake();

-- ---------------------------------------------------------------------------------------------
-- What-if (CONTRACT §22): witn.simulate replays the logs of an agent's outcomes under draft terms
-- with the core's own state machine (simulate_outcome) and compares with what happened;
-- witn.simulate_summary totals it per customer and currency. Read-only, no locks beyond a
-- reader's; witn_admin's (also as witn_api RPCs).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.simulate_on(shard regclass, agent_key text, opened_from timestamptz, opened_to timestamptz,
    condition @extschema@.condition, settlement_period interval, attribution_method text, price_per_unit numeric)
    RETURNS TABLE (outcome_id bigint, customer_key text, key text, status text, simulated_status text,
                   amount numeric, simulated_amount numeric, currency text)
    AS 'MODULE_PATHNAME', 'witn_simulate' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.simulate_on(regclass, text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'Internal to witn.simulate(): one outcomes table or (Citus) shard.';

-- SECURITY DEFINER: on Citus it runs on every shard's node, as witn's owner (the roles that may
-- call it cannot log in to other nodes); it reads what witn_admin reads.
CREATE FUNCTION @extschema@.simulate(agent_key text, opened_from timestamptz, opened_to timestamptz,
    condition @extschema@.condition DEFAULT NULL, settlement_period interval DEFAULT NULL,
    attribution_method text DEFAULT NULL, price_per_unit numeric DEFAULT NULL)
    RETURNS TABLE (outcome_id bigint, customer_key text, key text, status text, simulated_status text,
                   amount numeric, simulated_amount numeric, currency text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    -- Timestamps and intervals go to the other nodes as text: in one unambiguous style.
    SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    IF $1 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.agents a WHERE a.key = $1) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT003', MESSAGE = format('AGENT_NOT_FOUND: no agent %s', $1),
            DETAIL = 'agent_key', HINT = 'Simulate an agent of witn.agents; its outcomes opened in the range are replayed.';
    END IF;
    IF NOT @extschema@.distributed() THEN
        RETURN QUERY SELECT * FROM @extschema@.simulate_on(NULL, $1, $2, $3, $4, $5, $6, $7) s ORDER BY s.outcome_id;
        RETURN;
    END IF;
    -- The draft is checked here first (on the coordinator's empty table), so that a bad one is
    -- the same error as on one node.
    PERFORM count(*) FROM @extschema@.simulate_on(NULL, $1, $2, $3, $4, $5, $6, $7);
    RETURN QUERY
        SELECT (v ->> 'outcome_id')::bigint, v ->> 'customer_key', v ->> 'key', v ->> 'status',
               v ->> 'simulated_status', (v ->> 'amount')::numeric, (v ->> 'simulated_amount')::numeric,
               v ->> 'currency'
          -- The shard goes in for %s by a second format(): a % in the values is doubled.
          FROM @extschema@.on_every_shard(format(
               'SELECT coalesce(json_agg(s), ''[]'') FROM @extschema@.simulate_on(%s::regclass, %s, %s, %s, %s, %s, %s, %s) s',
               '%L', replace(quote_nullable($1), '%', '%%'), replace(quote_nullable($2), '%', '%%'),
               replace(quote_nullable($3), '%', '%%'), replace(quote_nullable($4), '%', '%%'),
               replace(quote_nullable($5), '%', '%%'), replace(quote_nullable($6), '%', '%%'),
               replace(quote_nullable($7), '%', '%%'))) r,
               jsonb_array_elements(r::jsonb) v
         ORDER BY 1;
END $$;
COMMENT ON FUNCTION @extschema@.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'What-if: replays the logs of the agent''s outcomes opened in [opened_from, opened_to) under the given terms (NULL: each outcome''s own) and returns, per outcome, its status and amount and what they would be as of now (OPEN/PENDING when not due yet). Writes nothing.';

CREATE FUNCTION @extschema@.simulate_summary(agent_key text, opened_from timestamptz, opened_to timestamptz,
    condition @extschema@.condition DEFAULT NULL, settlement_period interval DEFAULT NULL,
    attribution_method text DEFAULT NULL, price_per_unit numeric DEFAULT NULL)
    RETURNS TABLE (customer_key text, currency text, outcomes bigint, changed bigint, confirmed bigint,
                   simulated_confirmed bigint, amount numeric, simulated_amount numeric, difference numeric)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.customer_key, s.currency, count(*),
           count(*) FILTER (WHERE s.status IS DISTINCT FROM s.simulated_status OR s.amount IS DISTINCT FROM s.simulated_amount),
           count(*) FILTER (WHERE s.status = 'CONFIRMED'), count(*) FILTER (WHERE s.simulated_status = 'CONFIRMED'),
           coalesce(sum(s.amount), 0), coalesce(sum(s.simulated_amount), 0),
           coalesce(sum(s.simulated_amount), 0) - coalesce(sum(s.amount), 0)
      FROM @extschema@.simulate($1, $2, $3, $4, $5, $6, $7) s
     GROUP BY s.customer_key, s.currency
     ORDER BY s.customer_key, s.currency
$$;
COMMENT ON FUNCTION @extschema@.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'witn.simulate() totalled per customer and currency: outcomes, how many change, confirmed now and simulated, amounts and their difference (exact).';

REVOKE EXECUTE ON FUNCTION
    @extschema@.simulate_on(regclass, text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric),
    @extschema@.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric),
    @extschema@.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric),
    @extschema@.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric)
    TO witn_admin;

-- ---------------------------------------------------------------------------------------------
-- witn_api: what PostgREST exposes (db-schemas = "witn_api"). Views over witn's tables, all
-- security_invoker so that the caller's privileges and row policies apply, plus one RPC.
-- docs/postgrest.md shows the HTTP calls.
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA witn_api;
COMMENT ON SCHEMA witn_api IS
    'witn''s HTTP API for PostgREST: events to POST, outcomes, invoice lines and notifications to GET, explain_outcome to call, and the admin objects.';
REVOKE ALL ON SCHEMA witn_api FROM PUBLIC;
GRANT USAGE ON SCHEMA witn_api TO witn_admin, witn_ingest, witn_reader, witn_customer;

-- Responses show a condition as a JSON array, not as a string holding one: json_agg and
-- row_to_json, which build PostgREST's responses, use a type's cast to json when it has one.
CREATE FUNCTION @extschema@.condition_to_json(@extschema@.condition) RETURNS json
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT $1::pg_catalog.text::pg_catalog.json
$$;
COMMENT ON FUNCTION @extschema@.condition_to_json(@extschema@.condition) IS
    'The condition as json; backs the cast from witn.condition to json.';
CREATE CAST (@extschema@.condition AS pg_catalog.json) WITH FUNCTION @extschema@.condition_to_json(@extschema@.condition);

-- The write path. Single and bulk POST insert here; the events trigger does the rest.
CREATE VIEW witn_api.events WITH (security_invoker = true) AS
    SELECT id, customer_key, key, action, agent_key, properties, occurred_at, idempotency_key,
           received_at, late, duplicate_of, after_resolution
      FROM @extschema@.events;
-- For PostgREST's "Prefer: missing=default": a bulk POST whose objects leave out properties or
-- occurred_at gets these instead of NULL.
ALTER VIEW witn_api.events ALTER COLUMN properties SET DEFAULT '{}';
ALTER VIEW witn_api.events ALTER COLUMN occurred_at SET DEFAULT now();
COMMENT ON VIEW witn_api.events IS
    'POST events here (one object or an array): customer_key, key, action, agent_key (required on an outcome''s first event), properties, occurred_at, idempotency_key. Customers GET their own.';

CREATE VIEW witn_api.outcomes WITH (security_invoker = true) AS
    SELECT id, customer_key, key, agent_key, status, scheduled_resolution, settles_at, resolved_at,
           condition, @extschema@.describe(condition) AS condition_description,
           settlement_period, attribution_method, agent_version, unit_price, currency, quantity,
           condition_holds, accepted_events, late_events, facts, opened_at, updated_at,
           reversal_condition, reversal_period, reversed_at, reversal_reason
      FROM @extschema@.outcomes;
COMMENT ON VIEW witn_api.outcomes IS
    'Outcomes with their status, the contract and price they were opened under, and when they settle. A customer token sees its own.';

CREATE VIEW witn_api.invoice_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount,
           currency, resolved_at, created_at, billing_period
      FROM @extschema@.invoice_lines;
COMMENT ON VIEW witn_api.invoice_lines IS
    'One line per confirmed outcome: amount = unit_price x quantity, exact. A customer token sees its own.';

CREATE VIEW witn_api.invoices WITH (security_invoker = true) AS
    SELECT customer_key, currency, month, lines, credit_count, charges, credits, amount_exact, amount, closed_at
      FROM @extschema@.invoices;
COMMENT ON VIEW witn_api.invoices IS
    'Invoice totals per customer, currency and month (in the customer''s timezone): charges, credits and amount (charges - credits, rounded once to the currency''s minor units); closed_at once the month is closed. A customer token sees its own.';

CREATE VIEW witn_api.credit_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason,
           billing_period, created_at, created_by
      FROM @extschema@.credit_lines;
COMMENT ON VIEW witn_api.credit_lines IS
    'Credits on confirmed outcomes (reversals and adjustments), each billed in the month it was issued. A customer token sees its own.';

CREATE VIEW witn_api.notifications WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, kind, payload, created_at, credit_id
      FROM @extschema@.notifications;
COMMENT ON VIEW witn_api.notifications IS
    'One notification per resolved outcome and one per credit, the webhook body in payload. A customer token sees its own.';

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

-- Admin objects: the lookup tables, keys immutable (see 40_roles.sql).
CREATE VIEW witn_api.customers WITH (security_invoker = true) AS
    SELECT key, name, rate_card_key, created_at, updated_at, timezone FROM @extschema@.customers;
COMMENT ON VIEW witn_api.customers IS 'The customers you bill, by your key, and the rate card that prices them.';

CREATE VIEW witn_api.agents WITH (security_invoker = true) AS
    SELECT key, name, condition, settlement_period, attribution_method, version, created_at,
           updated_at, reversal_condition, reversal_period
      FROM @extschema@.agents;
COMMENT ON VIEW witn_api.agents IS
    'Agent contracts: condition (a JSON array of leaves, validated), settlement_period, attribution_method. Edits apply to outcomes opened afterwards.';

CREATE VIEW witn_api.rate_cards WITH (security_invoker = true) AS
    SELECT key, name, currency, created_at, updated_at FROM @extschema@.rate_cards;
COMMENT ON VIEW witn_api.rate_cards IS 'Pricing templates, one currency each.';

CREATE VIEW witn_api.rate_card_prices WITH (security_invoker = true) AS
    SELECT rate_card_key, agent_key, price_per_unit, created_at, updated_at
      FROM @extschema@.rate_card_prices;
COMMENT ON VIEW witn_api.rate_card_prices IS 'The price per unit of an agent''s confirmed outcome on a rate card.';

CREATE VIEW witn_api.currencies WITH (security_invoker = true) AS
    SELECT code, minor_units FROM @extschema@.currencies;
COMMENT ON VIEW witn_api.currencies IS 'ISO 4217 currencies and their minor units; add the ones missing.';

-- The views pass the same privileges through as 40_roles.sql grants on the tables below them:
-- both are checked (security_invoker).
-- POST /rpc/close_period: closing a month through PostgREST (witn_admin).
CREATE FUNCTION witn_api.close_period(period date, customer_key text DEFAULT NULL)
    RETURNS SETOF @extschema@.closed_periods
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.close_period($1, $2)
$$;
COMMENT ON FUNCTION witn_api.close_period(date, text) IS
    'POST /rpc/close_period {"period": "2026-11-01", "customer_key": "acme"} (customer_key left out: every customer): closes the month once it has ended in each customer''s timezone; returns the closed rows. witn_admin only.';

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

REVOKE ALL ON ALL TABLES IN SCHEMA witn_api FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA witn_api FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA witn_api TO witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION witn_api.explain_outcome(bigint) TO witn_admin, witn_reader, witn_customer;
GRANT EXECUTE ON FUNCTION witn_api.close_period(date, text), witn_api.reverse_outcome(bigint, text),
    witn_api.credit_outcome(bigint, numeric, text)
    TO witn_admin;

GRANT INSERT (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    ON witn_api.events TO witn_ingest;

GRANT SELECT ON witn_api.events, witn_api.outcomes, witn_api.invoice_lines, witn_api.invoices,
    witn_api.notifications, witn_api.credit_lines
    TO witn_customer;

GRANT INSERT (key, name, rate_card_key, timezone), UPDATE (name, rate_card_key, timezone), DELETE
    ON witn_api.customers TO witn_admin;
GRANT INSERT (key, name, condition, settlement_period, attribution_method, reversal_condition, reversal_period),
      UPDATE (name, condition, settlement_period, attribution_method, reversal_condition, reversal_period), DELETE
    ON witn_api.agents TO witn_admin;
GRANT INSERT (key, name, currency), UPDATE (name, currency), DELETE
    ON witn_api.rate_cards TO witn_admin;
GRANT INSERT (rate_card_key, agent_key, price_per_unit), UPDATE (price_per_unit), DELETE
    ON witn_api.rate_card_prices TO witn_admin;
GRANT INSERT (code, minor_units) ON witn_api.currencies TO witn_admin;

-- Webhooks (45_webhooks.sql): endpoints are witn_admin's, secrets included; deliveries, their
-- status and POST /rpc/redeliver as in the witn schema.
CREATE VIEW witn_api.webhook_endpoints WITH (security_invoker = true) AS
    SELECT id, url, secret, event_types, customer_key, enabled, description, created_at, updated_at
      FROM @extschema@.webhook_endpoints;
COMMENT ON VIEW witn_api.webhook_endpoints IS
    'Webhook endpoints (witn_admin only): POST {"url": "https://...", "event_types": ["outcome_succeed"], "customer_key": null}; the secret is made when not given. PATCH enabled to pause one.';
CREATE VIEW witn_api.webhook_deliveries WITH (security_invoker = true) AS
    SELECT id, customer_key, notification_id, endpoint_id, status, attempts, next_attempt_at, last_attempt_at,
           last_response_code, last_error, delivered_at, created_at
      FROM @extschema@.webhook_deliveries;
COMMENT ON VIEW witn_api.webhook_deliveries IS
    'One row per notification and webhook endpoint: pending, delivered or failed, with its attempts.';
CREATE VIEW witn_api.webhook_status WITH (security_invoker = true) AS
    SELECT * FROM @extschema@.webhook_status;
COMMENT ON VIEW witn_api.webhook_status IS
    'Per webhook endpoint: backlog, oldest pending age, failures and the last error.';
CREATE FUNCTION witn_api.redeliver(notification_id bigint, endpoint_id bigint DEFAULT NULL)
    RETURNS SETOF @extschema@.webhook_deliveries
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.redeliver($1, $2)
$$;
COMMENT ON FUNCTION witn_api.redeliver(bigint, bigint) IS
    'POST /rpc/redeliver {"notification_id": 42, "endpoint_id": 1} (endpoint_id left out: every endpoint that takes it): queues the notification again; returns the queued deliveries. witn_admin only.';
REVOKE ALL ON witn_api.webhook_endpoints, witn_api.webhook_deliveries, witn_api.webhook_status FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION witn_api.redeliver(bigint, bigint) FROM PUBLIC;
GRANT SELECT, DELETE ON witn_api.webhook_endpoints TO witn_admin;
GRANT INSERT (url, secret, event_types, customer_key, enabled, description),
      UPDATE (url, secret, event_types, customer_key, enabled, description)
    ON witn_api.webhook_endpoints TO witn_admin;
GRANT SELECT ON witn_api.webhook_deliveries, witn_api.webhook_status TO witn_admin, witn_reader;
GRANT DELETE ON witn_api.webhook_deliveries TO witn_admin;
GRANT EXECUTE ON FUNCTION witn_api.redeliver(bigint, bigint) TO witn_admin;

-- What-if (47_simulate.sql): POST /rpc/simulate and /rpc/simulate_summary (witn_admin).
CREATE FUNCTION witn_api.simulate(agent_key text, opened_from timestamptz, opened_to timestamptz,
    condition @extschema@.condition DEFAULT NULL, settlement_period interval DEFAULT NULL,
    attribution_method text DEFAULT NULL, price_per_unit numeric DEFAULT NULL)
    RETURNS TABLE (outcome_id bigint, customer_key text, key text, status text, simulated_status text,
                   amount numeric, simulated_amount numeric, currency text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.simulate($1, $2, $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION witn_api.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'POST /rpc/simulate {"agent_key": "support", "opened_from": "2026-11-01T00:00:00Z", "opened_to": "2026-12-01T00:00:00Z", "condition": [...]}: each outcome''s status and amount, and what they would be under the draft terms (NULL: its own). witn_admin only.';
CREATE FUNCTION witn_api.simulate_summary(agent_key text, opened_from timestamptz, opened_to timestamptz,
    condition @extschema@.condition DEFAULT NULL, settlement_period interval DEFAULT NULL,
    attribution_method text DEFAULT NULL, price_per_unit numeric DEFAULT NULL)
    RETURNS TABLE (customer_key text, currency text, outcomes bigint, changed bigint, confirmed bigint,
                   simulated_confirmed bigint, amount numeric, simulated_amount numeric, difference numeric)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.simulate_summary($1, $2, $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION witn_api.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'POST /rpc/simulate_summary (the arguments of /rpc/simulate): totals per customer and currency. witn_admin only.';
REVOKE EXECUTE ON FUNCTION
    witn_api.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric),
    witn_api.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    witn_api.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric),
    witn_api.simulate_summary(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric)
    TO witn_admin;

-- ---------------------------------------------------------------------------------------------
-- pg_dump: the tables below hold user data, so pg_dump dumps their rows (and their id
-- sequences' positions) although they belong to the extension. Restored witn.events rows carry
-- their original received_at; the events trigger recognises them and does not apply them again
-- (their effect is already in the restored witn.outcomes).
-- ---------------------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.currencies', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rate_cards', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.agents', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.rate_card_prices', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.invoice_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.settlement_errors', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.closed_periods', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outcomes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.invoice_lines_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.notifications_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.settlement_errors_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_lines_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries_id_seq', '');
