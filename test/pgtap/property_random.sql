-- Randomized property test of the write path (reproducible: setseed). 240 random conditions,
-- each with a random event stream (absent/number/string/bool/null/object values, attributions,
-- explicit settles_at, ties and back-dating that never make the outcome due). Every stream is
-- sent twice, to twin outcome keys: one row per statement ('row_<i>'), and inside one
-- multi-row INSERT ... SELECT carrying every twin's events interleaved ('set_<i>'). Properties:
--   * the twins agree on status, scheduled_resolution, settles_at, facts, quantity and the rest;
--   * both agree with an independent model of the contract written below in PL/pgSQL;
--   * the stored condition_holds equals witn.evaluate(condition, the accepted log);
--   * witn.replay(id).matches, and witn.verify() is empty;
--   * after settlement the twins resolve alike and bill alike.
BEGIN;
SELECT plan(16);
SET LOCAL TimeZone = 'UTC';
SELECT setseed(0.20251123);

INSERT INTO witn.rate_cards (key, currency) VALUES ('pr_card', 'EUR');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('pr_a', 'pr_card'), ('pr_b', 'pr_card');

-- =============================================================================================
-- Generators.
-- =============================================================================================
CREATE FUNCTION pg_temp.pick(choices jsonb) RETURNS jsonb LANGUAGE sql VOLATILE AS $$
    SELECT choices -> floor(random() * jsonb_array_length(choices))::int
$$;

CREATE FUNCTION pg_temp.random_leaf() RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    op text := pg_temp.pick('["seen", "not seen", "count_gte", "count_lte", "count_gt", "count_lt", "count_eq",
                              "match", "gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt"]') #>> '{}';
    leaf jsonb := jsonb_build_object('fact', pg_temp.pick('["a", "b", "c", "d"]'), 'operator', op);
BEGIN
    IF op LIKE 'count_%' THEN
        RETURN leaf || jsonb_build_object('value', floor(random() * 4)::int);
    ELSIF op = 'match' THEN
        RETURN leaf || jsonb_build_object('value', pg_temp.pick('["pass", "fail", "1", 1, 2.0, 2.5, true, false]'));
    ELSIF op NOT IN ('seen', 'not seen') THEN
        RETURN leaf || jsonb_build_object('value', pg_temp.pick('[-1, 0, 1, 2, 2.5, 3, 700, 699.99999999999999999999]'));
    END IF;
    RETURN leaf;
END $$;

CREATE FUNCTION pg_temp.random_properties(occurred_at timestamptz) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    p jsonb := '{}';
    r double precision := random();
BEGIN
    IF r < 0.35 THEN
        p := p || jsonb_build_object('value', pg_temp.pick('[-1, 0, 1, 2, 2.00, 2.5, 3, 4, 700, 699.99999999999999999999, 1e2]'));
    ELSIF r < 0.50 THEN
        p := p || jsonb_build_object('value', pg_temp.pick('["pass", "fail", "1", ""]'));
    ELSIF r < 0.60 THEN
        p := p || jsonb_build_object('value', pg_temp.pick('[true, false]'));
    ELSIF r < 0.67 THEN
        p := p || jsonb_build_object('value', pg_temp.pick('[null, {"x": 1}, [1, 2]]'));
    END IF; -- else: no value
    IF random() < 0.3 THEN
        p := p || jsonb_build_object('attribution', round((random() * 5)::numeric, (random() * 3)::int));
    END IF;
    IF random() < 0.08 THEN
        -- Explicit settlement time, always in the future so the outcome is never due.
        p := p || jsonb_build_object('settles_at', now() + make_interval(mins => 60 + floor(random() * 40000)::int));
    END IF;
    IF random() < 0.1 THEN
        p := p || '{"note": "free-form"}';
    END IF;
    RETURN p;
END $$;

CREATE TEMP TABLE prop_case (
    i         integer PRIMARY KEY,
    customer  text NOT NULL,
    agent     text NOT NULL,
    condition jsonb NOT NULL,
    period    interval NOT NULL,
    method    text NOT NULL
);
CREATE TEMP TABLE prop_event (
    i           integer NOT NULL,
    seq         integer NOT NULL,
    action      text NOT NULL,
    properties  jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (i, seq)
);

-- Streams start a day ago, a minute apart; a quarter of the events are back-dated (up to ten
-- hours), a quarter share the previous event's occurred_at. With a settlement period of at least
-- three days, and explicit settles_at in the future, no outcome becomes due.
DO $$
DECLARE
    n_leaves integer;
    n_events integer;
    at timestamptz;
    previous timestamptz;
    previous_action text;
    action text;
    r double precision;
BEGIN
    FOR i IN 1..240 LOOP
        n_leaves := floor(random() * 5)::int;
        INSERT INTO prop_case (i, customer, agent, condition, period, method)
        SELECT i, CASE WHEN random() < 0.5 THEN 'pr_a' ELSE 'pr_b' END, 'pr_agent_' || i,
               coalesce((SELECT jsonb_agg(pg_temp.random_leaf()) FROM generate_series(1, n_leaves)), '[]'),
               (pg_temp.pick('["3 days", "30 days", "180 days"]') #>> '{}')::interval,
               pg_temp.pick('["last", "first", "sum", "max", "min", "average"]') #>> '{}';
        n_events := 1 + floor(random() * 15)::int;
        previous := NULL;
        FOR seq IN 1..n_events LOOP
            r := random();
            IF previous IS NOT NULL AND r < 0.25 THEN
                at := previous;
            ELSIF r < 0.5 THEN
                at := now() - interval '1 day' + make_interval(mins => seq)
                      - make_interval(secs => floor(random() * 36000));
            ELSE
                at := now() - interval '1 day' + make_interval(mins => seq);
            END IF;
            -- Half the ties repeat the previous action: ties that decide a latest value.
            IF at = previous AND random() < 0.5 THEN
                action := previous_action;
            ELSE
                action := pg_temp.pick('["a", "b", "c", "d", "e"]') #>> '{}';
            END IF;
            INSERT INTO prop_event (i, seq, action, properties, occurred_at)
            VALUES (i, seq, action, pg_temp.random_properties(at), at);
            previous := at;
            previous_action := action;
        END LOOP;
    END LOOP;
END $$;

INSERT INTO witn.agents (key, condition, settlement_period, attribution_method)
SELECT agent, condition::witn.condition, period, method FROM prop_case;
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT 'pr_card', agent, round((random() * 100)::numeric, 2) FROM prop_case;

-- =============================================================================================
-- The model: the contract's semantics written independently of witn's C++ core.
-- =============================================================================================
-- One leaf over a log (a JSON array of events in arrival order).
CREATE FUNCTION pg_temp.model_leaf(leaf jsonb, log jsonb) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    op text := leaf ->> 'operator';
    threshold jsonb := leaf -> 'value';
    n bigint;
    v jsonb;
    x numeric;
    t numeric;
BEGIN
    SELECT count(*) INTO n FROM jsonb_array_elements(log) e(x) WHERE e.x ->> 'action' = leaf ->> 'fact';
    -- The latest by occurred_at, ties by arrival; v is NULL when it has no value at all.
    SELECT e.x -> 'properties' -> 'value' INTO v
      FROM jsonb_array_elements(log) WITH ORDINALITY e(x, arrival)
     WHERE e.x ->> 'action' = leaf ->> 'fact'
     ORDER BY (e.x ->> 'occurred_at')::timestamptz DESC, e.arrival DESC
     LIMIT 1;
    CASE op
        WHEN 'seen' THEN RETURN n > 0;
        WHEN 'not seen' THEN RETURN n = 0;
        WHEN 'count_gte' THEN RETURN n >= (threshold #>> '{}')::numeric;
        WHEN 'count_lte' THEN RETURN n <= (threshold #>> '{}')::numeric;
        WHEN 'count_gt' THEN RETURN n > (threshold #>> '{}')::numeric;
        WHEN 'count_lt' THEN RETURN n < (threshold #>> '{}')::numeric;
        WHEN 'count_eq' THEN RETURN n = (threshold #>> '{}')::numeric;
        WHEN 'match' THEN
            RETURN n > 0 AND v IS NOT NULL AND jsonb_typeof(v) = jsonb_typeof(threshold)
               AND CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric = (threshold #>> '{}')::numeric
                        ELSE v = threshold END;
        ELSE NULL;
    END CASE;
    IF n = 0 THEN
        RETURN op LIKE 'not %';             -- missing value allowed
    END IF;
    IF v IS NULL OR jsonb_typeof(v) <> 'number' THEN
        RETURN false;                       -- present without a number: never qualifies
    END IF;
    x := (v #>> '{}')::numeric;
    t := (threshold #>> '{}')::numeric;
    RETURN CASE op WHEN 'gte' THEN x >= t WHEN 'lte' THEN x <= t WHEN 'gt' THEN x > t WHEN 'lt' THEN x < t
                   WHEN 'not gte' THEN x < t WHEN 'not lte' THEN x > t WHEN 'not gt' THEN x <= t
                   WHEN 'not lt' THEN x >= t END;
END $$;

CREATE FUNCTION pg_temp.model_holds(condition jsonb, log jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(bool_and(pg_temp.model_leaf(leaf, log)), true) FROM jsonb_array_elements(condition) leaf
$$;

-- The outcome a case should end up as: the state machine, the timer, the quantity.
CREATE FUNCTION pg_temp.model_outcome(case_i integer,
    OUT status text, OUT scheduled text, OUT settles_at timestamptz, OUT holds boolean, OUT quantity numeric,
    OUT accepted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c prop_case;
    e prop_event;
    log jsonb := '[]';
    proposed timestamptz;
BEGIN
    SELECT * INTO c FROM prop_case WHERE i = case_i;
    status := 'OPEN';
    accepted := 0;
    FOR e IN SELECT * FROM prop_event WHERE i = case_i ORDER BY seq LOOP
        log := log || jsonb_build_array(jsonb_build_object('action', e.action, 'properties', e.properties,
                                                           'occurred_at', e.occurred_at));
        holds := pg_temp.model_holds(c.condition, log);
        IF status = 'OPEN' AND holds THEN
            status := 'PENDING';
        END IF;
        IF status = 'PENDING' THEN
            scheduled := CASE WHEN holds THEN 'CONFIRMED' ELSE 'FAILED' END;
        END IF;
        proposed := coalesce((e.properties ->> 'settles_at')::timestamptz, e.occurred_at + c.period);
        settles_at := CASE WHEN accepted = 0 THEN proposed ELSE greatest(settles_at, proposed) END;
        accepted := accepted + 1;
    END LOOP;
    WITH a AS (
        SELECT (properties ->> 'attribution')::numeric AS q, occurred_at, seq
          FROM prop_event WHERE i = case_i AND properties ? 'attribution'
    )
    SELECT CASE c.method
               WHEN 'last' THEN (SELECT q FROM a ORDER BY occurred_at DESC, seq DESC LIMIT 1)
               WHEN 'first' THEN (SELECT q FROM a ORDER BY occurred_at, seq LIMIT 1)
               WHEN 'sum' THEN (SELECT sum(q) FROM a)
               WHEN 'max' THEN (SELECT max(q) FROM a)
               WHEN 'min' THEN (SELECT min(q) FROM a)
               WHEN 'average' THEN (SELECT round(sum(q)::numeric(1000, 40) / count(*), 20) FROM a)
           END
      INTO quantity;
    quantity := coalesce(quantity, 1);
END $$;

-- =============================================================================================
-- Send every stream twice.
-- =============================================================================================
-- (a) One row per statement; the agent on the first event, sometimes repeated later.
DO $$
DECLARE
    e record;
BEGIN
    FOR e IN SELECT c.customer, c.agent, v.* FROM prop_event v JOIN prop_case c USING (i) ORDER BY v.i, v.seq LOOP
        INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
        VALUES (e.customer, 'row_' || e.i, e.action,
                CASE WHEN e.seq = 1 OR random() < 0.3 THEN e.agent END, e.properties, e.occurred_at);
    END LOOP;
END $$;

-- (b) One statement for all twins, their rows interleaved; each twin's rows in its own order.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
SELECT c.customer, 'set_' || v.i, v.action, CASE WHEN v.seq = 1 THEN c.agent END, v.properties, v.occurred_at
  FROM prop_event v JOIN prop_case c USING (i)
 ORDER BY v.seq, v.i;

CREATE TEMP VIEW prop_outcome AS
SELECT c.i, split_part(o.key, '_', 1) AS way, o.*,
       -- facts without the arrival ids, which differ between twins by construction
       (SELECT coalesce(jsonb_object_agg(f.key, f.value - 'seq'), '{}') FROM jsonb_each(o.facts) f) AS facts_by_value
  FROM prop_case c
  JOIN witn.outcomes o ON o.customer_key = c.customer AND o.key IN ('row_' || c.i, 'set_' || c.i);

-- =============================================================================================
-- Properties.
-- =============================================================================================
SELECT is((SELECT count(*) FROM prop_outcome), 480::bigint, '240 random cases, two outcomes each');
SELECT is((SELECT count(*) FROM witn.events WHERE late OR duplicate_of IS NOT NULL), 0::bigint,
          'no generated event is late or a duplicate');

SELECT is_empty($$
    SELECT r.i, r.status, s.status, r.scheduled_resolution, s.scheduled_resolution, r.settles_at, s.settles_at,
           r.facts_by_value, s.facts_by_value, r.quantity, s.quantity
      FROM prop_outcome r JOIN prop_outcome s ON s.i = r.i AND s.way = 'set'
     WHERE r.way = 'row'
       AND (r.status, r.scheduled_resolution, r.settles_at, r.facts_by_value, r.quantity, r.condition_holds,
            r.accepted_events, r.late_events, r.agent_key, r.unit_price, r.condition::text, r.attribution_method)
           IS DISTINCT FROM
           (s.status, s.scheduled_resolution, s.settles_at, s.facts_by_value, s.quantity, s.condition_holds,
            s.accepted_events, s.late_events, s.agent_key, s.unit_price, s.condition::text, s.attribution_method)
$$, 'row-by-row and one-statement twins agree on status, scheduled_resolution, settles_at, facts, quantity and the rest');

SELECT is_empty($$
    SELECT o.i, o.key, o.status, o.scheduled_resolution, o.settles_at, o.condition_holds, o.quantity, o.accepted_events, m.*
      FROM prop_outcome o CROSS JOIN LATERAL pg_temp.model_outcome(o.i) m
     WHERE (o.status::text, o.scheduled_resolution::text, o.settles_at, o.condition_holds, o.accepted_events)
           IS DISTINCT FROM (m.status, m.scheduled, m.settles_at, m.holds, m.accepted)
        OR o.quantity <> m.quantity
$$, 'every outcome is what the independent model of the contract says');

SELECT is_empty($$
    SELECT o.i, o.key, o.condition_holds
      FROM prop_outcome o
     WHERE o.condition_holds IS DISTINCT FROM witn.evaluate(o.condition, (
               SELECT jsonb_agg(jsonb_build_object('action', e.action, 'properties', e.properties,
                                                   'occurred_at', e.occurred_at) ORDER BY e.id)
                 FROM witn.events e
                WHERE e.customer_key = o.customer_key AND e.key = o.key AND NOT e.late AND e.duplicate_of IS NULL))
$$, 'stored condition_holds = witn.evaluate(condition, the outcome''s accepted log)');

SELECT is_empty($$
    SELECT o.i, o.key, r.differences FROM prop_outcome o CROSS JOIN LATERAL witn.replay(o.id) r WHERE NOT r.matches
$$, 'witn.replay(id).matches for every outcome');
SELECT is_empty($$ SELECT * FROM witn.verify() $$, 'witn.verify() is empty');

-- The sample exercises what it claims to.
SELECT is((SELECT count(DISTINCT l ->> 'operator') FROM prop_case, jsonb_array_elements(condition) l), 16::bigint,
          'coverage: all 16 operators appear');
SELECT ok((SELECT count(*) FILTER (WHERE status = 'OPEN') >= 20
              AND count(*) FILTER (WHERE scheduled_resolution = 'CONFIRMED') >= 20
              AND count(*) FILTER (WHERE scheduled_resolution = 'FAILED') >= 20
             FROM prop_outcome WHERE way = 'row'),
          'coverage: at least 20 cases each end OPEN, PENDING/CONFIRMED and PENDING/FAILED');
SELECT ok((SELECT count(*) FROM prop_case WHERE condition = '[]') >= 10, 'coverage: some empty conditions');
SELECT ok((SELECT count(*) FROM (
               SELECT DISTINCT e.i, e.action FROM prop_event e
                WHERE e.occurred_at = (SELECT max(occurred_at) FROM prop_event x WHERE x.i = e.i AND x.action = e.action)
                GROUP BY e.i, e.action HAVING count(DISTINCT e.properties -> 'value') > 1) t) >= 30,
          'coverage: many latest values decided by arrival order (ties on occurred_at with different values)');
SELECT ok((SELECT count(*) FROM prop_event a JOIN prop_event b ON b.i = a.i AND b.seq = a.seq + 1 AND b.occurred_at < a.occurred_at) >= 100,
          'coverage: many back-dated events');
SELECT ok((SELECT count(*) FROM prop_event WHERE properties ? 'settles_at') >= 50
          AND (SELECT count(*) FROM prop_event WHERE properties ? 'attribution') >= 200,
          'coverage: explicit settles_at and attributions');

-- =============================================================================================
-- Settlement: the twins resolve alike and bill alike.
-- =============================================================================================
CREATE TEMP TABLE prop_expected AS
SELECT id, CASE WHEN scheduled_resolution = 'CONFIRMED' THEN 'CONFIRMED' ELSE 'FAILED' END AS final
  FROM prop_outcome;
SELECT results_eq($$ SELECT confirmed, failed, errors FROM witn.settle(now() + interval '200 days') $$,
                  $$ SELECT count(*) FILTER (WHERE final = 'CONFIRMED'), count(*) FILTER (WHERE final = 'FAILED'), 0::bigint
                       FROM prop_expected $$,
                  'settlement confirms exactly the PENDING/CONFIRMED outcomes and fails the rest');
SELECT is_empty($$
    SELECT o.i, o.key, o.status, x.final FROM prop_outcome o JOIN prop_expected x USING (id)
     WHERE o.status::text <> x.final OR o.resolved_at <> o.settles_at
$$, 'every outcome resolved to its scheduled resolution (OPEN -> FAILED) as of its settles_at');
SELECT is_empty($$
    SELECT r.i, lr.amount, ls.amount
      FROM prop_outcome r JOIN prop_outcome s ON s.i = r.i AND s.way = 'set'
      LEFT JOIN witn.invoice_lines lr ON lr.customer_key = r.customer_key AND lr.outcome_id = r.id
      LEFT JOIN witn.invoice_lines ls ON ls.customer_key = s.customer_key AND ls.outcome_id = s.id
     WHERE r.way = 'row'
       AND ((lr.id IS NULL) <> (ls.id IS NULL) OR lr.amount <> ls.amount OR lr.amount <> r.unit_price * r.quantity)
$$, 'the twins bill alike: both or neither invoiced, amount = unit_price x quantity');

SELECT * FROM finish();
ROLLBACK;
