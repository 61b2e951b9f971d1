
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
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.3.0');

-- ---------------------------------------------------------------------------------------------
-- Auditing an outcome: explain, replay, verify.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.explain(outcome_id bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, status @extschema@.outcome_status,
                   scheduled_resolution @extschema@.outcome_status, settles_at timestamptz,
                   condition_holds boolean, leaf integer, fact text, operator text,
                   description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id, o.customer_key, o.key, o.status, o.scheduled_resolution, o.settles_at,
           o.condition_holds, f.leaf, f.fact, f.operator, f.description, f.event_count,
           f.latest_value, f.latest_at, f.passes
      FROM @extschema@.outcomes o
      LEFT JOIN LATERAL @extschema@.explain_facts(o.condition, o.facts) f ON true
     WHERE o.id = $1
     ORDER BY f.leaf
$$;
COMMENT ON FUNCTION @extschema@.explain(bigint) IS
    'Why an outcome is where it is: one row per leaf of its condition with the fact it saw (count, latest value and when) and whether it passes, beside the outcome''s status, scheduled resolution and settles_at. An empty condition gives one row with null leaf columns.';

CREATE FUNCTION @extschema@.replay(outcome_id bigint,
    OUT outcome_id bigint, OUT matches boolean, OUT differences text[])
    AS 'MODULE_PATHNAME', 'witn_replay' LANGUAGE C STABLE STRICT
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.replay(bigint) IS
    'Recomputes an outcome from its event log with the pure evaluator and lists every difference from the stored state (none expected).';

CREATE FUNCTION @extschema@.verify()
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, differences text[])
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT o.id, o.customer_key, o.key, r.differences
      FROM @extschema@.outcomes o
     CROSS JOIN LATERAL @extschema@.replay(o.id) r
     WHERE NOT r.matches
$$;
COMMENT ON FUNCTION @extschema@.verify() IS
    'Replays every outcome; returns the ones whose stored state differs from their log. Empty means consistent.';
