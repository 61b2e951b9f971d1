-- The three ways of ingesting events that test/bench/run.sh compares, in one database:
--   floor : bench.floor_events, shaped like witn.events (columns, defaults, indexes), nothing else;
--   naive : bench.naive_events + a PL/pgSQL row trigger that, like the hosted product's consumer,
--           re-reads the outcome's whole log on every event and evaluates the condition leaf by
--           leaf (what a DBA would write without witn);
--   witn  : witn.events with the extension's CHECK constraint and statement trigger.
-- Plus reference points (ref_*: witn's writes in plain SQL, see below) and the generator of the
-- benchmark's events, identical for all engines.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION witn;
CREATE SCHEMA bench;

-- ---------------------------------------------------------------------------------------------
-- Contracts: 100 customers on one rate card, one agent with the support-ticket condition.
-- ---------------------------------------------------------------------------------------------
\set condition '[{"fact": "agent_replied", "operator": "seen"}, {"fact": "escalated", "operator": "not seen"}, {"fact": "reopened", "operator": "not seen"}, {"fact": "csat", "operator": "not lte", "value": 3}]'

INSERT INTO witn.rate_cards (key, name, currency) VALUES ('standard', 'Standard', 'USD');
INSERT INTO witn.customers (key, name, rate_card_key)
SELECT 'customer-' || i, 'Customer ' || i, 'standard' FROM generate_series(0, 99) i;
INSERT INTO witn.agents (key, name, condition, settlement_period)
VALUES ('support', 'Support tickets', :'condition', '72 hours');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
VALUES ('standard', 'support', 0.99);

-- ---------------------------------------------------------------------------------------------
-- Floor: the event table alone.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE bench.floor_events (LIKE witn.events
    INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMPRESSION);

-- ---------------------------------------------------------------------------------------------
-- Naive: the seeds' algorithm as a PL/pgSQL row trigger, with its own lookup tables.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE bench.naive_events (LIKE witn.events
    INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMPRESSION);

CREATE TABLE bench.naive_agents (
    key               text PRIMARY KEY,
    condition         jsonb NOT NULL,
    settlement_period interval NOT NULL
);
CREATE TABLE bench.naive_customers (key text PRIMARY KEY, rate_card_key text NOT NULL);
CREATE TABLE bench.naive_prices (
    rate_card_key  text NOT NULL,
    agent_key      text NOT NULL,
    price_per_unit numeric NOT NULL,
    currency       text NOT NULL,
    PRIMARY KEY (rate_card_key, agent_key)
);
INSERT INTO bench.naive_agents VALUES ('support', :'condition', '72 hours');
INSERT INTO bench.naive_customers SELECT key, rate_card_key FROM witn.customers;
INSERT INTO bench.naive_prices VALUES ('standard', 'support', 0.99, 'USD');

CREATE TABLE bench.naive_outcomes (
    customer_key         text NOT NULL,
    key                  text NOT NULL,
    agent_key            text NOT NULL,
    status               text NOT NULL DEFAULT 'OPEN',
    scheduled_resolution text,
    settles_at           timestamptz NOT NULL,
    resolved_at          timestamptz,
    condition            jsonb NOT NULL,
    settlement_period    interval NOT NULL,
    unit_price           numeric NOT NULL,
    currency             text NOT NULL,
    quantity             numeric NOT NULL DEFAULT 1,
    condition_holds      boolean NOT NULL DEFAULT false,
    accepted_events      bigint NOT NULL DEFAULT 0,
    late_events          bigint NOT NULL DEFAULT 0,
    opened_at            timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_key, key)
);
CREATE INDEX naive_outcomes_due_idx ON bench.naive_outcomes (settles_at) WHERE resolved_at IS NULL;

-- On every event: lock (or open) the outcome, re-read its log up to this event, fold counts and
-- latest values (by occurred_at, ties by arrival), evaluate each leaf, write the outcome back
-- with the timer reset. Attribution: 'last'. No idempotency keys, no properties.settles_at.
CREATE FUNCTION bench.naive_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o         bench.naive_outcomes%ROWTYPE;
    facts     text[];
    ops       text[];
    vals      jsonb[];
    cnt       int[];
    latest    jsonb[];
    latest_at timestamptz[];
    n         int;
    ev        record;
    holds     boolean := true;
    pass      boolean;
    num       numeric;
    bound     numeric;
    qty       numeric;
    qty_at    timestamptz;
    accepted  bigint := 0;
BEGIN
    SELECT * INTO o FROM bench.naive_outcomes
     WHERE customer_key = NEW.customer_key AND key = NEW.key FOR UPDATE;
    IF NOT FOUND THEN
        IF NEW.agent_key IS NULL THEN
            RAISE EXCEPTION 'agent_key is required on an outcome''s first event';
        END IF;
        INSERT INTO bench.naive_outcomes (customer_key, key, agent_key, settles_at, condition,
                                          settlement_period, unit_price, currency)
        SELECT NEW.customer_key, NEW.key, a.key, NEW.occurred_at + a.settlement_period, a.condition,
               a.settlement_period, p.price_per_unit, p.currency
          FROM bench.naive_customers c
          JOIN bench.naive_prices p ON p.rate_card_key = c.rate_card_key AND p.agent_key = NEW.agent_key
          JOIN bench.naive_agents a ON a.key = NEW.agent_key
         WHERE c.key = NEW.customer_key
        ON CONFLICT (customer_key, key) DO NOTHING;
        SELECT * INTO o FROM bench.naive_outcomes
         WHERE customer_key = NEW.customer_key AND key = NEW.key FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no customer, agent or price for %/%', NEW.customer_key, NEW.agent_key;
        END IF;
    ELSIF o.resolved_at IS NOT NULL OR o.settles_at <= now() THEN
        UPDATE bench.naive_outcomes SET late_events = late_events + 1
         WHERE customer_key = NEW.customer_key AND key = NEW.key;
        UPDATE bench.naive_events SET late = true WHERE customer_key = NEW.customer_key AND id = NEW.id;
        RETURN NULL;
    END IF;
    IF NEW.agent_key IS NOT NULL AND NEW.agent_key <> o.agent_key THEN
        RAISE EXCEPTION 'outcome % belongs to agent %', NEW.key, o.agent_key;
    END IF;

    SELECT coalesce(array_agg(l ->> 'fact' ORDER BY ord), '{}'),
           coalesce(array_agg(l ->> 'operator' ORDER BY ord), '{}'),
           coalesce(array_agg(l -> 'value' ORDER BY ord), '{}')
      INTO facts, ops, vals
      FROM jsonb_array_elements(o.condition) WITH ORDINALITY AS t(l, ord);
    n := coalesce(array_length(facts, 1), 0);
    cnt := array_fill(0, ARRAY[n]);
    latest := array_fill(NULL::jsonb, ARRAY[n]);
    latest_at := array_fill(NULL::timestamptz, ARRAY[n]);

    FOR ev IN
        SELECT e.action, e.properties, e.occurred_at FROM bench.naive_events e
         WHERE e.customer_key = NEW.customer_key AND e.key = NEW.key AND e.id <= NEW.id
           AND NOT e.late AND e.duplicate_of IS NULL
         ORDER BY e.id
    LOOP
        accepted := accepted + 1;
        FOR i IN 1 .. n LOOP
            IF ev.action = facts[i] THEN
                cnt[i] := cnt[i] + 1;
                IF latest_at[i] IS NULL OR ev.occurred_at >= latest_at[i] THEN
                    latest_at[i] := ev.occurred_at;
                    latest[i] := ev.properties -> 'value';
                END IF;
            END IF;
        END LOOP;
        IF ev.properties ? 'attribution' AND (qty_at IS NULL OR ev.occurred_at >= qty_at) THEN
            qty := (ev.properties ->> 'attribution')::numeric;
            qty_at := ev.occurred_at;
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        num := CASE WHEN jsonb_typeof(latest[i]) = 'number' THEN (latest[i] #>> '{}')::numeric END;
        bound := CASE WHEN jsonb_typeof(vals[i]) = 'number' THEN (vals[i] #>> '{}')::numeric END;
        pass := CASE ops[i]
            WHEN 'seen'      THEN cnt[i] > 0
            WHEN 'not seen'  THEN cnt[i] = 0
            WHEN 'count_gte' THEN cnt[i] >= bound
            WHEN 'count_lte' THEN cnt[i] <= bound
            WHEN 'count_gt'  THEN cnt[i] > bound
            WHEN 'count_lt'  THEN cnt[i] < bound
            WHEN 'count_eq'  THEN cnt[i] = bound
            WHEN 'match'     THEN cnt[i] > 0 AND latest[i] = vals[i]
            WHEN 'gte'       THEN num >= bound
            WHEN 'lte'       THEN num <= bound
            WHEN 'gt'        THEN num > bound
            WHEN 'lt'        THEN num < bound
            WHEN 'not gte'   THEN cnt[i] = 0 OR num < bound
            WHEN 'not lte'   THEN cnt[i] = 0 OR num > bound
            WHEN 'not gt'    THEN cnt[i] = 0 OR num <= bound
            WHEN 'not lt'    THEN cnt[i] = 0 OR num >= bound
        END;
        holds := holds AND coalesce(pass, false);
    END LOOP;

    UPDATE bench.naive_outcomes SET
        status = CASE WHEN o.status = 'OPEN' AND holds THEN 'PENDING' ELSE o.status END,
        scheduled_resolution = CASE WHEN o.status = 'OPEN' AND NOT holds THEN NULL
                                    WHEN holds THEN 'CONFIRMED' ELSE 'FAILED' END,
        condition_holds = holds,
        settles_at = greatest(o.settles_at, NEW.occurred_at + o.settlement_period),
        quantity = coalesce(qty, 1),
        accepted_events = accepted,
        updated_at = now()
     WHERE customer_key = NEW.customer_key AND key = NEW.key;
    RETURN NULL;
END $$;

CREATE TRIGGER naive_apply AFTER INSERT ON bench.naive_events
    FOR EACH ROW EXECUTE FUNCTION bench.naive_apply();

-- ---------------------------------------------------------------------------------------------
-- Reference points: the rows witn writes, written by plain SQL on tables shaped like witn's
-- (same columns, defaults, indexes and fillfactor), without evaluating anything:
--   ref state : per event, the event row plus an upsert of its outcome row (what any design that
--               keeps every outcome's state current in the inserting transaction must write);
--               single-row in ref_state_one.pgbench; for batches (INSERT ... SELECT, COPY) run.sh
--               builds one statement: the events into bench.floor_events and, grouped by outcome,
--               one upsert per outcome into bench.ref_outcomes (ref_insert_from, ref_copy_from);
--   ref settle: per settled outcome, its update, its invoice line and its notification (payload
--               built as witn.notification_payload builds it) and a pg_notify, in one set-based
--               statement.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE bench.ref_outcomes (LIKE witn.outcomes
    INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMPRESSION)
    WITH (fillfactor = 90);
CREATE TABLE bench.ref_lines (LIKE witn.invoice_lines INCLUDING ALL);

-- The documents and evaluated columns a batch reference writes into each outcome row, per
-- scenario: copied by bench.ref_sample() from one of the outcomes witn wrote for the same
-- scenario (the most common size among its first 1,000), so that the reference's rows are as
-- wide as witn's (facts, attribution) without the reference computing them.
CREATE TABLE bench.ref_docs (
    scenario             text PRIMARY KEY,
    status               witn.outcome_status NOT NULL,
    scheduled_resolution witn.outcome_status,
    condition_holds      boolean NOT NULL,
    quantity             numeric NOT NULL,
    facts                jsonb NOT NULL,
    attribution          jsonb NOT NULL
);
CREATE FUNCTION bench.ref_sample(scenario text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bench.ref_docs
    SELECT $1, o.status, o.scheduled_resolution, o.condition_holds, o.quantity, o.facts, o.attribution
      FROM (SELECT * FROM witn.outcomes ORDER BY id LIMIT 1000) o
     ORDER BY count(*) OVER (PARTITION BY pg_column_size(o.facts), pg_column_size(o.attribution)) DESC, o.id
     LIMIT 1
    ON CONFLICT (scenario) DO UPDATE
       SET status = excluded.status, scheduled_resolution = excluded.scheduled_resolution,
           condition_holds = excluded.condition_holds, quantity = excluded.quantity,
           facts = excluded.facts, attribution = excluded.attribution
$$;
CREATE TABLE bench.ref_notifications (LIKE witn.notifications INCLUDING ALL);

-- "ref settle": settles the due rows of bench.ref_outcomes as of as_of; returns how many.
CREATE FUNCTION bench.ref_settle(as_of timestamptz) RETURNS bigint LANGUAGE sql AS $$
    WITH resolved AS (
        UPDATE bench.ref_outcomes o
           SET status = CASE WHEN o.status = 'OPEN' THEN 'FAILED'::witn.outcome_status
                             ELSE coalesce(o.scheduled_resolution, 'CONFIRMED') END,
               resolved_at = o.settles_at, updated_at = now()
         WHERE o.resolved_at IS NULL AND o.check_at <= as_of AND o.settles_at <= as_of
        RETURNING o.*
    ), lines AS (
        -- The invoice month as witn bills it: the calendar month of resolved_at in the
        -- customer's timezone (no month is closed in the benchmark).
        INSERT INTO bench.ref_lines (customer_key, outcome_id, outcome_key, agent_key, quantity,
                                     unit_price, amount, currency, resolved_at, billing_period)
        SELECT r.customer_key, r.id, r.key, r.agent_key, r.quantity, r.unit_price,
               r.unit_price * r.quantity, r.currency, r.resolved_at,
               date_trunc('month', r.resolved_at AT TIME ZONE k.timezone)::date
          FROM resolved r JOIN witn.customers k ON k.key = r.customer_key
         WHERE r.status = 'CONFIRMED'
    ), notes AS (
        INSERT INTO bench.ref_notifications (customer_key, outcome_id, kind, payload)
        SELECT r.customer_key, r.id,
               CASE r.status WHEN 'CONFIRMED' THEN 'outcome_succeed' ELSE 'outcome_failed' END,
               jsonb_build_object(
                   'id', 'ntf_' || r.id,
                   'type', CASE r.status WHEN 'CONFIRMED' THEN 'outcome_succeed' ELSE 'outcome_failed' END,
                   'created_at', now(),
                   'data', jsonb_build_object(
                       'outcome_id', r.id, 'outcome_key', r.key, 'customer_key', r.customer_key,
                       'agent_key', r.agent_key, 'status', r.status, 'settles_at', r.settles_at,
                       'resolved_at', r.resolved_at, 'quantity', r.quantity, 'unit_price', r.unit_price,
                       'amount', CASE WHEN r.status = 'CONFIRMED' THEN r.unit_price * r.quantity END,
                       'currency', r.currency))
          FROM resolved r
        RETURNING payload
    )
    SELECT count(pg_notify('witn_outcomes', n.payload::text)) FROM notes n
$$;

-- ---------------------------------------------------------------------------------------------
-- The benchmark's events: n_events in arrival order, spread round-robin over
-- n_events / per_outcome outcomes of 100 customers. Each outcome's ten-event cycle is
-- ticket_opened, agent_replied and customer_replied turns, a note (escalated on every 13th
-- outcome, reopened on every 17th) and a csat with a value of 1 to 5 and an attribution.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION bench.events(n_events bigint, per_outcome bigint, prefix text, base timestamptz)
    RETURNS TABLE (customer_key text, key text, action text, agent_key text, properties jsonb,
                   occurred_at timestamptz)
    LANGUAGE sql STABLE AS $$
    SELECT 'customer-' || (g.o % 100),
           prefix || g.o,
           CASE WHEN g.s % 10 = 8 AND g.o % 13 = 0 THEN 'escalated'
                WHEN g.s % 10 = 8 AND g.o % 17 = 0 THEN 'reopened'
                ELSE (ARRAY['ticket_opened', 'agent_replied', 'customer_replied', 'agent_replied',
                            'customer_replied', 'agent_replied', 'customer_replied', 'agent_replied',
                            'note_added', 'csat'])[g.s % 10 + 1] END,
           'support',
           CASE WHEN g.s % 10 = 9
                THEN jsonb_build_object('value', 1 + (g.o + g.s / 10) % 5, 'attribution', 1)
                ELSE jsonb_build_object('channel', (ARRAY['email', 'chat', 'phone'])[g.o % 3 + 1],
                                        'agent', 'agent-' || g.o % 50) END,
           base + g.s * interval '1 second'
      FROM (SELECT i % (n_events / per_outcome) AS o, i / (n_events / per_outcome) AS s
              FROM generate_series(0::bigint, n_events - 1) i) g
$$;

-- Table and index bytes per event, and the number of events, of an engine's tables.
CREATE FUNCTION bench.footprint(events regclass, outcomes regclass, OUT n_events bigint,
    OUT events_bytes numeric, OUT outcomes_bytes numeric)
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', events) INTO n_events;
    events_bytes := round(pg_total_relation_size(events)::numeric / greatest(n_events, 1), 1);
    outcomes_bytes := CASE WHEN outcomes IS NULL THEN 0
                           ELSE round(pg_total_relation_size(outcomes)::numeric / greatest(n_events, 1), 1) END;
END $$;
