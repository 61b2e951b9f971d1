
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
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.8.0');

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
          WHERE o.events_purged_at IS NULL AND NOT r.matches ORDER BY o.id', shard) USING shard;
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
    'Recomputes an outcome from its event log with the pure evaluator and lists every difference from the stored state (none expected). An outcome whose events were purged (witn.purge_events) is not replayed: matches is NULL and differences says when they were purged.';

CREATE FUNCTION @extschema@.verify()
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, differences text[])
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT @extschema@.distributed() THEN
        RETURN QUERY SELECT * FROM @extschema@.verify_on(NULL);
        PERFORM @extschema@.purged_skipped('witn.verify()');
        RETURN;
    END IF;
    RETURN QUERY
        SELECT (v ->> 'outcome_id')::bigint, v ->> 'customer_key', v ->> 'outcome_key',
               ARRAY(SELECT jsonb_array_elements_text(v -> 'differences'))
          FROM @extschema@.on_every_shard(format(
               'SELECT coalesce(json_agg(v), ''[]'') FROM @extschema@.verify_on(%L::regclass) v', '%s')) s,
               jsonb_array_elements(s::jsonb) v
         ORDER BY 1;
    PERFORM @extschema@.purged_skipped('witn.verify()');
END $$;
COMMENT ON FUNCTION @extschema@.verify() IS
    'Replays every outcome; returns the ones whose stored state differs from their log. Empty means consistent. Outcomes whose events were purged (witn.purge_events) are skipped, with a NOTICE saying how many.';
