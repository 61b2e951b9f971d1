-- witn 0.3.0 -> 0.4.0: scale-out on Citus. witn.distribute() distributes the tables on a Citus
-- coordinator; the events trigger and settlement work on the shard they are given (and its
-- colocated shards); settle, replay and verify run on every shard; a restore is explicit
-- (session_replication_role = replica) instead of inferred from received_at.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.4.0'" to load this file. \quit

DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.4.0');

DROP FUNCTION @extschema@.verify();
DROP FUNCTION @extschema@.explain(bigint);
DROP FUNCTION @extschema@.replay(bigint);
DROP FUNCTION @extschema@.settle(timestamptz, integer);
DROP FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint, text);

-- The query is in PL/pgSQL: Citus plans a query with an SQL function's parameter in it only
-- with the value in place.
CREATE FUNCTION @extschema@.explain_outcome(wanted bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, status @extschema@.outcome_status,
                   scheduled_resolution @extschema@.outcome_status, settles_at timestamptz,
                   condition_holds boolean, leaf integer, fact text, operator text,
                   description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
        SELECT o.id, o.customer_key, o.key, o.status, o.scheduled_resolution, o.settles_at,
               o.condition_holds, f.leaf, f.fact, f.operator, f.description, f.event_count,
               f.latest_value, f.latest_at, f.passes
          FROM @extschema@.outcomes o
          LEFT JOIN LATERAL @extschema@.explain_facts(o.condition, o.facts) f ON true
         WHERE o.id = wanted
         ORDER BY f.leaf;
END $$;
COMMENT ON FUNCTION @extschema@.explain_outcome(bigint) IS 'Internal to witn.explain().';

CREATE FUNCTION @extschema@.explain(outcome_id bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text, status @extschema@.outcome_status,
                   scheduled_resolution @extschema@.outcome_status, settles_at timestamptz,
                   condition_holds boolean, leaf integer, fact text, operator text,
                   description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.explain_outcome($1)
$$;
COMMENT ON FUNCTION @extschema@.explain(bigint) IS
    'Why an outcome is where it is: one row per leaf of its condition with the fact it saw (count, latest value and when) and whether it passes, beside the outcome''s status, scheduled resolution and settles_at. An empty condition gives one row with null leaf columns.';

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
    PERFORM @extschema@.require_own_transaction('witn.replay() or witn.verify()');
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
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.4.0', shard) b;
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
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.4.0', shard);
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
    lookup constant text[] := ARRAY['currencies', 'rate_cards', 'customers', 'agents', 'rate_card_prices'];
    per_customer constant text[] := ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors'];
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
        'ALTER POLICY customer_own ON @extschema@.notifications USING (customer_key = @extschema@.current_customer_key())'];
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
    FOREACH t IN ARRAY ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors'] LOOP
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
    FOREACH t IN ARRAY lookup LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = ('@extschema@.' || t)::regclass) THEN
            PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
            FOR r IN SELECT * FROM pg_temp.witn_column_grants g WHERE g.rel = ('@extschema@.' || t)::regclass LOOP
                EXECUTE pg_catalog.format('GRANT %s ON %s TO %I', r.privilege_type, r.rel, r.grantee);
            END LOOP;
            PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
            EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING ('@extschema@.' || t)::regclass;
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
    FOREACH t IN ARRAY per_customer LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = ('@extschema@.' || t)::regclass) THEN
            PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
            FOR r IN SELECT * FROM pg_temp.witn_column_grants g WHERE g.rel = ('@extschema@.' || t)::regclass LOOP
                EXECUTE pg_catalog.format('GRANT %s ON %s TO %I', r.privilege_type, r.rel, r.grantee);
            END LOOP;
            PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
            IF t = 'events' THEN
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
COMMENT ON FUNCTION @extschema@.distribute() IS
    'On a Citus coordinator: makes witn''s lookup tables reference tables and its per-customer tables distributed by customer_key (colocated), and gives every node its own id range. Idempotent; run it again after adding a node.';

-- As the install script leaves every function: none for PUBLIC; the same grants as before for
-- the functions replaced.
REVOKE EXECUTE ON FUNCTION @extschema@.replay_on(regclass, bigint, boolean), @extschema@.verify_on(regclass),
    @extschema@.on_every_shard(text), @extschema@.require_own_transaction(text), @extschema@.replay(bigint), @extschema@.replay_outcome(bigint), @extschema@.verify(),
    @extschema@.settle_batch(timestamptz, integer, bigint, text, regclass), @extschema@.shard_of(text, regclass),
    @extschema@.settle_on(regclass, timestamptz, integer), @extschema@.settle(timestamptz, integer),
    @extschema@.distributed(), @extschema@.distribute() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.explain_outcome(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.replay(bigint), @extschema@.verify() TO witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint) TO witn_customer;
GRANT EXECUTE ON FUNCTION @extschema@.explain_outcome(bigint) TO witn_admin, witn_reader, witn_customer;

-- ---- row policies and key guards on Citus ----
-- The key guard checks the outcome shards of its node when it fires on a reference table's
-- shard; the customer claim is refused loudly where it did not arrive; pre_request sends it.
CREATE OR REPLACE FUNCTION @extschema@.protect_referenced_keys() RETURNS trigger
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

CREATE OR REPLACE FUNCTION @extschema@.current_customer_key() RETURNS text
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
GRANT EXECUTE ON FUNCTION @extschema@.pre_request() TO witn_admin, witn_ingest, witn_reader, witn_customer;
