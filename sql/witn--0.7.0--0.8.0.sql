-- witn 0.7.0 -> 0.8.0: operations (CONTRACT §24-§27). The witn_operator role (settlement,
-- retention, redelivery, monitoring; settle() as of a later time than now() only for superusers),
-- retention (witn.purge_events and outcomes.events_purged_at; replay, verify and simulate skip
-- purged outcomes; witn.purge_settlement_errors, witn.purge_webhook_deliveries), the monitoring
-- views, clean removal and version checks. A distributed (Citus) database is refused, unchanged.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.8.0'" to load this file. \quit

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
            HINT = 'Keep this cluster on the witn 0.7.0 build (library and SQL objects) for now: a distributed database cannot be updated in place yet (docs/scale-out.md, Limits).';
    END IF;
END $guard$;

-- The library this session has loaded must be this script's (CONTRACT §27): a session that
-- still holds an older one (the file was replaced under it) fails here, before anything is made.
DO $library$
BEGIN
    IF pg_catalog.to_regprocedure('@extschema@.library_version()') IS NULL THEN
        CREATE FUNCTION @extschema@.library_version() RETURNS text
            AS 'MODULE_PATHNAME', 'witn_library_version' LANGUAGE C STABLE PARALLEL SAFE;
    END IF;
    -- An older library fails here; a newer one (a later release running this script on the way
    -- to its own version) goes on.
    IF pg_catalog.string_to_array(pg_catalog.split_part(@extschema@.library_version(), '-', 1), '.')::integer[]
       < pg_catalog.string_to_array('0.8.0', '.')::integer[] THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
EXCEPTION WHEN undefined_function OR object_not_in_prerequisite_state THEN
    RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
        MESSAGE = 'this session runs an older witn library than witn 0.8.0, which this script needs',
        HINT = 'Reconnect and run it again: a new session loads the installed library. With witn in shared_preload_libraries, restart the server first.';
END $library$;
COMMENT ON FUNCTION @extschema@.library_version() IS
    'The version of the witn library this session has loaded (the SQL objects'' is pg_extension.extversion).';

REVOKE EXECUTE ON FUNCTION @extschema@.library_version() FROM PUBLIC;

-- The library of this version.
DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.8.0');
DROP TRIGGER credit_lines_issue ON @extschema@.credit_lines;
CREATE TRIGGER credit_lines_issue BEFORE INSERT ON @extschema@.credit_lines
    FOR EACH ROW EXECUTE FUNCTION @extschema@.credit_lines_issue('0.8.0');

-- witn_operator (CONTRACT §24), created as the install script creates witn's roles.
DO $$
DECLARE
    role_name text;
    existing record;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['witn_admin', 'witn_ingest', 'witn_reader', 'witn_customer', 'witn_operator'] LOOP
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

-- Retention (CONTRACT §25).
ALTER TABLE @extschema@.outcomes ADD COLUMN events_purged_at timestamptz NULL;
COMMENT ON COLUMN @extschema@.outcomes.events_purged_at IS 'When witn.purge_events deleted this outcome''s events (retention); NULL while they are kept. Its stored facts, invoice line, credits and notifications stay; replay, verify and simulate skip it.';
CREATE INDEX outcomes_purge_idx ON @extschema@.outcomes (resolved_at)
    WHERE resolved_at IS NOT NULL AND events_purged_at IS NULL;

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

CREATE OR REPLACE FUNCTION @extschema@.settle_all(as_of timestamptz, max_outcomes integer,
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

CREATE OR REPLACE FUNCTION @extschema@.settle_as_operator(as_of timestamptz, max_outcomes integer,
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

CREATE OR REPLACE FUNCTION @extschema@.settle(as_of timestamptz DEFAULT now(), max_outcomes integer DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION @extschema@.verify_on(shard regclass)
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

CREATE OR REPLACE FUNCTION @extschema@.verify()
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

COMMENT ON FUNCTION @extschema@.replay(bigint) IS
    'Recomputes an outcome from its event log with the pure evaluator and lists every difference from the stored state (none expected). An outcome whose events were purged (witn.purge_events) is not replayed: matches is NULL and differences says when they were purged.';

CREATE OR REPLACE FUNCTION @extschema@.simulate(agent_key text, opened_from timestamptz, opened_to timestamptz,
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
        PERFORM @extschema@.purged_skipped('witn.simulate()', $1, $2, $3);
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
    PERFORM @extschema@.purged_skipped('witn.simulate()', $1, $2, $3);
END $$;
COMMENT ON FUNCTION @extschema@.simulate(text, timestamptz, timestamptz, @extschema@.condition, interval, text, numeric) IS
    'What-if: replays the logs of the agent''s outcomes opened in [opened_from, opened_to) under the given terms (NULL: each outcome''s own) and returns, per outcome, its status and amount and what they would be as of now (OPEN/PENDING when not due yet). Writes nothing.';

-- ---------------------------------------------------------------------------------------------
-- Running witn (CONTRACT §24, §25): the operator role's rights, retention and the monitoring
-- views. witn_operator runs the product without owning it: GRANT witn_operator TO a login role
-- is all it takes (its schema and function rights are granted here). Rights are checked for
-- current_user, as PostgreSQL checks them: the purges are granted to witn_operator; settle()
-- checks for itself (sql/install/30_settlement.sql), to tell other roles what to grant.
-- ---------------------------------------------------------------------------------------------

DO $$
BEGIN
    -- witn_admin runs the product too. Roles are cluster-wide: a second database finds it done.
    IF NOT pg_catalog.pg_has_role('witn_admin', 'witn_operator', 'MEMBER') THEN
        GRANT witn_operator TO witn_admin;
    END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Retention (CONTRACT §25). The event log is what grows: witn.purge_events deletes the events of
-- outcomes resolved before a time whose reversal period has ended, a bounded batch per call.
-- ---------------------------------------------------------------------------------------------
-- One outcomes table or (Citus) shard, with its colocated events shard. Outcomes already locked
-- (an event or a credit on them right now) are skipped, so a purge never waits for ingestion and
-- an event for a purged outcome waits at most for one batch.
CREATE FUNCTION @extschema@.purge_on(shard regclass, resolved_before timestamptz, max_outcomes integer,
    OUT outcomes bigint, OUT events bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    events_shard regclass;
BEGIN
    shard := coalesce(shard, '@extschema@.outcomes'::regclass);
    events_shard := @extschema@.shard_of('events', shard);
    EXECUTE format(
        'WITH picked AS (
             SELECT o.id, o.customer_key FROM %1$s o
              WHERE o.resolved_at IS NOT NULL AND o.events_purged_at IS NULL AND o.resolved_at < $1
                AND (o.status <> ''CONFIRMED'' OR o.reversal_period IS NULL OR o.resolved_at + o.reversal_period <= $3)
              ORDER BY o.resolved_at LIMIT $2
                FOR UPDATE SKIP LOCKED),
         marked AS (
             UPDATE %1$s o SET events_purged_at = $3 FROM picked p
              WHERE o.id = p.id AND o.customer_key = p.customer_key
             RETURNING o.customer_key, o.key),
         gone AS (
             DELETE FROM %2$s e USING marked m WHERE e.customer_key = m.customer_key AND e.key = m.key
             RETURNING 1)
         SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM gone)', shard, events_shard)
       INTO outcomes, events USING resolved_before, max_outcomes, now();
END $$;
COMMENT ON FUNCTION @extschema@.purge_on(regclass, timestamptz, integer) IS
    'Internal to witn.purge_events(): purges one outcomes table or shard.';

-- Values go to the other nodes (Citus) as text, in one style.
CREATE FUNCTION @extschema@.purge_events(resolved_before timestamptz, max_outcomes integer DEFAULT 10000)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    deleted bigint := 0;
    shard record;
BEGIN
    IF resolved_before IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: resolved_before must not be null',
            HINT = 'Name the time before which resolved outcomes lose their events, e.g. now() - interval ''13 months''.';
    END IF;
    IF resolved_before > now() THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: resolved_before must not be later than now()',
            DETAIL = format('resolved_before = %s, now() = %s', resolved_before, now());
    END IF;
    IF max_outcomes IS NULL OR max_outcomes < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: max_outcomes must be at least 1',
            DETAIL = format('max_outcomes = %s', coalesce(max_outcomes::text, 'NULL')),
            HINT = 'A purge works in bounded batches: call it again (or from pg_cron) until it returns 0.';
    END IF;
    IF NOT @extschema@.distributed() THEN
        SELECT p.events INTO deleted FROM @extschema@.purge_on(NULL, resolved_before, max_outcomes) p;
        RETURN deleted;
    END IF;
    -- Citus: every shard on its node, in a transaction of its own there; max_outcomes per shard.
    PERFORM @extschema@.require_own_transaction('witn.purge_events()');
    FOR shard IN
        SELECT r.shardid, r.success, r.result
          FROM run_command_on_shards('@extschema@.outcomes', format(
               'SELECT p.events FROM @extschema@.purge_on(%L::regclass, %L::timestamptz, %s) p',
               '%s', resolved_before, max_outcomes)) r
    LOOP
        IF NOT shard.success THEN
            RAISE WARNING 'witn: shard % of witn.outcomes not purged: %', shard.shardid, shard.result
                USING HINT = 'The other shards were purged; this one is purged by the next call once its node answers.';
            CONTINUE;
        END IF;
        deleted := deleted + shard.result::bigint;
    END LOOP;
    RETURN deleted;
END $$;
COMMENT ON FUNCTION @extschema@.purge_events(timestamptz, integer) IS
    'Retention: deletes the events of at most max_outcomes outcomes (on Citus, per shard) resolved before resolved_before whose reversal period has ended, oldest first, and returns how many events it deleted. The outcomes, invoice lines, credits and notifications stay; each records events_purged_at. Call it until it returns 0; it never waits for ingestion.';

-- Outcomes whose events witn.purge_events deleted are not replayed (CONTRACT §25): a notice
-- says how many were skipped (of one agent's range; NULL agent: of every outcome).
CREATE FUNCTION @extschema@.purged_skipped(what text, agent_key text DEFAULT NULL,
    opened_from timestamptz DEFAULT NULL, opened_to timestamptz DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    skipped bigint;
BEGIN
    SELECT count(*) INTO skipped FROM @extschema@.outcomes o
     WHERE o.events_purged_at IS NOT NULL
       AND ($2 IS NULL OR (o.agent_key = $2 AND o.opened_at >= $3 AND o.opened_at < $4));
    IF skipped > 0 THEN
        RAISE NOTICE 'witn: % skipped % outcomes whose events were purged', what, skipped
            USING DETAIL = 'witn.purge_events deleted their events (outcomes.events_purged_at); their stored state, invoice lines and credits stay.';
    END IF;
    RETURN skipped;
END $$;
COMMENT ON FUNCTION @extschema@.purged_skipped(text, text, timestamptz, timestamptz) IS
    'Internal: says (NOTICE) how many outcomes replay, verify or simulate skipped because their events were purged.';
REVOKE EXECUTE ON FUNCTION @extschema@.purged_skipped(text, text, timestamptz, timestamptz) FROM PUBLIC;

-- Settlement errors and delivered webhook deliveries: rows kept for looking back, deleted by
-- age. Pending and failed deliveries stay (they are the work, and the ones to look at).
CREATE FUNCTION @extschema@.purge_settlement_errors(occurred_before timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
BEGIN
    IF occurred_before IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: occurred_before must not be null';
    END IF;
    DELETE FROM @extschema@.settlement_errors WHERE occurred_at < occurred_before;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;
COMMENT ON FUNCTION @extschema@.purge_settlement_errors(timestamptz) IS
    'Retention: deletes the settlement errors recorded before occurred_before; returns how many.';

CREATE FUNCTION @extschema@.purge_webhook_deliveries(delivered_before timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
BEGIN
    IF delivered_before IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: delivered_before must not be null';
    END IF;
    DELETE FROM @extschema@.webhook_deliveries WHERE status = 'delivered' AND delivered_at < delivered_before;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;
COMMENT ON FUNCTION @extschema@.purge_webhook_deliveries(timestamptz) IS
    'Retention: deletes the deliveries delivered before delivered_before (pending and failed ones stay); returns how many. Their notifications stay.';

-- ---------------------------------------------------------------------------------------------
-- Monitoring. Each view shows counts only and reads with witn's rights (the only views that
-- are not security_invoker: no customer's row shows through them), so witn_operator needs
-- nothing else to watch the product.
-- ---------------------------------------------------------------------------------------------
CREATE VIEW @extschema@.settlement_backlog AS
    SELECT count(*) FILTER (WHERE o.settles_at <= now()) AS due,
           min(o.settles_at) FILTER (WHERE o.settles_at <= now()) AS oldest_due_at,
           now() - min(o.settles_at) FILTER (WHERE o.settles_at <= now()) AS oldest_due_age,
           count(*) AS checks_due
      FROM @extschema@.outcomes o
     WHERE o.resolved_at IS NULL AND o.check_at <= now();
COMMENT ON VIEW @extschema@.settlement_backlog IS
    'Settlement''s backlog: outcomes due (settles_at passed) and not settled yet, the oldest one''s settles_at and age, and checks_due (due ones plus those settlement will look at again). With pg_cron every minute, due stays near 0 and oldest_due_age under a minute or two.';

CREATE VIEW @extschema@.settlement_error_summary AS
    SELECT e.sqlstate, min(e.message) AS message, count(*) AS errors,
           count(DISTINCT (e.customer_key, e.outcome_id)) AS outcomes,
           min(e.occurred_at) AS first_at, max(e.occurred_at) AS last_at
      FROM @extschema@.settlement_errors e
     GROUP BY e.sqlstate;
COMMENT ON VIEW @extschema@.settlement_error_summary IS
    'witn.settlement_errors by SQLSTATE: how many errors, for how many outcomes, first and last. Each outcome is retried by every run; the rows stay until witn.purge_settlement_errors().';

CREATE VIEW @extschema@.webhook_backlog AS
    SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
           count(*) FILTER (WHERE d.status = 'pending' AND d.next_attempt_at <= now()) AS due,
           count(*) FILTER (WHERE d.status = 'pending' AND d.attempts > 0) AS retrying,
           min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest_pending_at,
           now() - min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest_pending_age,
           count(*) FILTER (WHERE d.status = 'failed') AS failed
      FROM @extschema@.webhook_deliveries d
     WHERE d.status IN ('pending', 'failed');
COMMENT ON VIEW @extschema@.webhook_backlog IS
    'Webhook delivery''s backlog over every endpoint: pending, due now, retrying, the oldest pending one''s age, and failed (given up). Per endpoint: witn.webhook_status.';

-- Sizes and row counts of witn's tables (on Citus, over every shard), and what retention could
-- take now: the outcomes whose events witn.purge_events may delete.
-- SECURITY DEFINER: on Citus it asks every shard's node, which the roles that watch cannot log
-- in to.
CREATE FUNCTION @extschema@.storage_of() RETURNS TABLE (table_name text, rows_estimate bigint, total_bytes bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    citus boolean := @extschema@.distributed();
    distributed boolean;
BEGIN
    FOR t IN
        SELECT c.oid, c.relname, c.reltuples
          FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
          JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'witn'
         WHERE c.relkind IN ('r', 'p') AND c.relnamespace = '@extschema@'::regnamespace
         ORDER BY c.relname
    LOOP
        table_name := t.relname;
        distributed := false;
        IF citus THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)'
               INTO distributed USING t.oid;
        END IF;
        IF distributed THEN
            EXECUTE 'SELECT citus_total_relation_size($1)' INTO total_bytes USING t.oid;
            EXECUTE 'SELECT sum(nullif(s.result, '''')::bigint) FROM run_command_on_shards($1, $2) s WHERE s.success'
               INTO rows_estimate
              USING t.oid, 'SELECT nullif(greatest(reltuples, -1), -1)::bigint FROM pg_class WHERE oid = ''%s''::regclass';
        ELSE
            total_bytes := pg_total_relation_size(t.oid);
            -- -1: never vacuumed or analyzed yet, so unknown
            rows_estimate := nullif(greatest(t.reltuples, -1), -1)::bigint;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.storage_of() IS 'Internal to witn.storage.';

CREATE VIEW @extschema@.storage AS
    SELECT s.table_name, s.rows_estimate, s.total_bytes, pg_size_pretty(s.total_bytes) AS total_size
      FROM @extschema@.storage_of() s;
COMMENT ON VIEW @extschema@.storage IS
    'witn''s tables: estimated rows (from the last VACUUM or ANALYZE; NULL before the first) and bytes on disk with indexes and TOAST (on Citus, over every shard). Sample it daily to see growth; witn.events is the one that grows with traffic, and witn.purge_events the one that shrinks it.';

CREATE VIEW @extschema@.retention_backlog AS
    SELECT count(*) AS outcomes_with_events,
           min(o.resolved_at) AS oldest_resolved_at
      FROM @extschema@.outcomes o
     WHERE o.resolved_at IS NOT NULL AND o.events_purged_at IS NULL
       AND (o.status <> 'CONFIRMED' OR o.reversal_period IS NULL OR o.resolved_at + o.reversal_period <= now());
COMMENT ON VIEW @extschema@.retention_backlog IS
    'Resolved outcomes past their reversal period whose events are still kept, and the oldest one''s resolved_at: what witn.purge_events(resolved_before) can take, oldest first.';

-- ---------------------------------------------------------------------------------------------
-- witn_operator's rights. Settlement errors and deliveries hold no customer's business data (no
-- row policies: staff only); the monitoring views show counts only.
-- ---------------------------------------------------------------------------------------------
REVOKE ALL ON @extschema@.settlement_backlog, @extschema@.settlement_error_summary, @extschema@.webhook_backlog,
    @extschema@.storage, @extschema@.retention_backlog FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    @extschema@.purge_on(regclass, timestamptz, integer), @extschema@.purge_events(timestamptz, integer),
    @extschema@.purge_settlement_errors(timestamptz), @extschema@.purge_webhook_deliveries(timestamptz),
    @extschema@.storage_of(), @extschema@.settle_all(timestamptz, integer),
    @extschema@.settle_as_operator(timestamptz, integer) FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO witn_operator;
-- Every witn role may call settle(): it settles for a witn_operator (through
-- settle_as_operator) and tells the others what to grant.
GRANT EXECUTE ON FUNCTION @extschema@.settle(timestamptz, integer)
    TO witn_operator, witn_admin, witn_ingest, witn_reader, witn_customer;
GRANT EXECUTE ON FUNCTION @extschema@.settle_as_operator(timestamptz, integer), @extschema@.purge_events(timestamptz, integer),
    @extschema@.purge_settlement_errors(timestamptz), @extschema@.purge_webhook_deliveries(timestamptz),
    @extschema@.redeliver(bigint, bigint)
    TO witn_operator;
GRANT SELECT ON @extschema@.settlement_backlog, @extschema@.settlement_error_summary, @extschema@.webhook_backlog,
    @extschema@.storage, @extschema@.retention_backlog
    TO witn_operator, witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION @extschema@.storage_of() TO witn_operator, witn_admin, witn_reader;
GRANT SELECT ON @extschema@.settlement_errors, @extschema@.webhook_deliveries, @extschema@.webhook_status
    TO witn_operator;
GRANT SELECT (id, url, event_types, customer_key, enabled, description, created_at, updated_at)
    ON @extschema@.webhook_endpoints TO witn_operator;

-- pg_cron anywhere: credentials through the foreign server witn_cron (a user mapping) or witn.cron_conninfo.

CREATE OR REPLACE FUNCTION @extschema@.cron_settings(OUT database_name text, OUT socket_directory text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    database_name := current_setting('cron.database_name', true);
    socket_directory := nullif(split_part(current_setting('unix_socket_directories'), ',', 1), '');
EXCEPTION WHEN insufficient_privilege THEN
    SELECT o.option_value INTO database_name
      FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o
     WHERE s.srvname = 'witn_cron' AND o.option_name = 'dbname';
    database_name := coalesce(database_name, '?');  -- there is one, but this role cannot know it
END $$;
COMMENT ON FUNCTION @extschema@.cron_settings() IS
    'Internal: the database pg_cron lives in and this server''s first unix socket directory.';

CREATE OR REPLACE FUNCTION @extschema@.cron_remote_statement(statement text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text;
    socket_dir text;
    dblink_schema text;
    conninfo text := nullif(btrim(current_setting('witn.cron_conninfo', true)), '');
BEGIN
    SELECT database_name, socket_directory INTO cron_db, socket_dir FROM @extschema@.cron_settings();
    IF to_regnamespace('cron') IS NOT NULL THEN
        RETURN 'SELECT (' || statement || ')::text';
    END IF;
    IF cron_db = '?' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = format('CRON_NOT_AVAILABLE: %s may not read cron.database_name, so witn cannot tell where pg_cron is', current_user),
            HINT = format('Create the foreign server witn_cron with a user mapping for %s (docs/operations.md, pg_cron setup), or run in the cron database, as the user the job should run as: %s;',
                          current_user, statement);
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
    IF EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'witn_cron') THEN
        -- dblink takes a foreign server's name for a connection string: the server's options
        -- and the current user's mapping make it.
        conninfo := 'witn_cron';
    ELSIF conninfo IS NOT NULL THEN
        IF conninfo ~* '(^|\s)password\s*=' OR conninfo ~* '^postgres(ql)?://[^/@]*:[^/@]*@'
           OR conninfo ~* '^postgres(ql)?://[^?]*\?(.*&)?password=' THEN
            RAISE EXCEPTION USING ERRCODE = 'WT009',
                MESSAGE = 'CRON_NOT_AVAILABLE: witn.cron_conninfo holds a password',
                DETAIL = 'Every user of the database can read a setting.',
                HINT = 'Remove the password from witn.cron_conninfo and give it in a user mapping of the foreign server witn_cron instead (docs/operations.md, pg_cron setup).';
        END IF;
    ELSE
        conninfo := format('dbname=%s port=%s user=%s', quote_literal(cron_db),
                           current_setting('port'), quote_literal(current_user));
        IF socket_dir IS NOT NULL THEN
            conninfo := conninfo || format(' host=%s', quote_literal(socket_dir));
        END IF;
    END IF;
    RETURN format('SELECT r FROM %I.dblink(%L, %L) AS t(r text)',
                  dblink_schema, conninfo, 'SELECT (' || statement || ')::text');
END $$;
COMMENT ON FUNCTION @extschema@.cron_remote_statement(text) IS
    'Internal: the statement that runs a statement where pg_cron lives (here, or through dblink).';

CREATE OR REPLACE FUNCTION @extschema@.cron_call(statement text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce((@extschema@.cron_settings()).database_name, current_database());
    remote text := @extschema@.cron_remote_statement(statement);
    result text;
    failed_state text;
    failed_message text;
    failed_detail text;
BEGIN
    BEGIN
        EXECUTE remote INTO result;
        RETURN result;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT,
                                failed_detail = PG_EXCEPTION_DETAIL;
    END;
    failed_message := failed_message || coalesce(nullif(': ' || btrim(failed_detail), ': '), '');
    IF failed_state LIKE '22%' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: pg_cron rejected the call: ' || failed_message,
            HINT = 'Use cron format, e.g. ''* * * * *'' for every minute.';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'WT009',
        MESSAGE = CASE WHEN remote LIKE '%.dblink(%'
                       THEN format('CRON_NOT_AVAILABLE: could not run the call in database %s through dblink', cron_db)
                       ELSE format('CRON_NOT_AVAILABLE: pg_cron refused the call in database %s', cron_db) END,
        DETAIL = format('SQLSTATE %s: %s', failed_state, failed_message),
        HINT = format('Give witn a way into database %s (a user mapping for the foreign server witn_cron, docs/operations.md, pg_cron setup), or run there, as the user the job should run as: %s;',
                      cron_db, statement);
END $$;
COMMENT ON FUNCTION @extschema@.cron_call(text) IS 'Internal: runs a statement where pg_cron lives.';

CREATE OR REPLACE FUNCTION @extschema@.schedule_settlement(schedule text DEFAULT '* * * * *') RETURNS bigint
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
    'Schedules witn.settle() in this database with pg_cron (default: every minute) and returns the job id. Calling it again replaces the schedule. Works when pg_cron lives in another database (through dblink: the foreign server witn_cron, witn.cron_conninfo, or the unix socket).';

CREATE OR REPLACE FUNCTION @extschema@.unschedule_settlement() RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- False when there is nothing to remove (cron.unschedule itself would raise).
    RETURN @extschema@.cron_call(format(
        'SELECT coalesce(bool_or(cron.unschedule(jobid)), false) FROM cron.job'
        ' WHERE jobname = %L AND username = current_user', @extschema@.cron_job_name()))::boolean;
END $$;
COMMENT ON FUNCTION @extschema@.unschedule_settlement() IS
    'Removes the pg_cron job created by witn.schedule_settlement() for this database.';

REVOKE EXECUTE ON FUNCTION @extschema@.cron_settings(), @extschema@.cron_remote_statement(text) FROM PUBLIC;


-- ---------------------------------------------------------------------------------------------
-- Removal (CONTRACT §26): after DROP EXTENSION witn nothing of it remains in the database. The
-- event trigger below (src/pg/removal.cpp) makes the schema witn a member of the extension for
-- that drop, so that it goes with it, and removes witn's pg_cron jobs (those for this database
-- whose name starts with "witn-") when the dropping transaction commits, wherever pg_cron lives.
-- ---------------------------------------------------------------------------------------------

-- What the commit of a DROP runs to remove this database's witn jobs: {the statement to run
-- here, the same to run by hand in the cron database, the cron database}; NULL when there is
-- nothing to remove. When pg_cron cannot be reached through dblink the drop is refused (WT009),
-- with what to run instead; without dblink (witn scheduled nothing from here) it warns.
CREATE FUNCTION @extschema@.cron_removal_statement() RETURNS text[]
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce((@extschema@.cron_settings()).database_name, current_database());
    jobs text := format('FROM cron.job WHERE database = %L AND jobname LIKE %L', current_database(), 'witn-%');
    found bigint;
    failed_message text;
    failed_detail text;
BEGIN
    IF to_regnamespace('cron') IS NULL AND (@extschema@.cron_settings()).database_name IS NULL THEN
        RETURN NULL; -- pg_cron is not loaded: there is no job
    END IF;
    IF current_setting('application_name') LIKE 'citus\_internal gpid=%' THEN
        RETURN NULL; -- a Citus node dropping witn for its coordinator, where the jobs are
    END IF;
    BEGIN
        found := @extschema@.cron_call('SELECT count(*) ' || jobs)::bigint;
    EXCEPTION WHEN SQLSTATE 'WT009' THEN
        GET STACKED DIAGNOSTICS failed_message = MESSAGE_TEXT, failed_detail = PG_EXCEPTION_DETAIL;
        -- Without dblink, witn could not have scheduled anything from here: say what to run if a
        -- job was made by hand, and go on. With dblink, jobs may exist and would stay behind,
        -- failing every minute: refused, with both ways out.
        IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'dblink') THEN
            RAISE WARNING 'witn: could not look for witn''s pg_cron jobs of this database: %', failed_message
                USING DETAIL = coalesce(failed_detail, ''),
                      HINT = format('If you scheduled any by hand, run in database %s once the drop has committed: SELECT cron.unschedule(jobid) %s;',
                                    cron_db, jobs);
            RETURN NULL;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = 'CRON_NOT_AVAILABLE: DROP EXTENSION witn cannot reach pg_cron to remove this database''s jobs; nothing was dropped',
            DETAIL = failed_message || coalesce(': ' || failed_detail, ''),
            HINT = format('Make pg_cron reachable from this database and drop again; or run in database %s: SELECT cron.unschedule(jobid) %s; then here: ALTER EVENT TRIGGER witn_removal DISABLE; DROP EXTENSION witn; DROP SCHEMA witn;',
                          cron_db, jobs);
    END;
    IF found = 0 THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[@extschema@.cron_remote_statement('SELECT count(cron.unschedule(jobid)) ' || jobs),
                 'SELECT cron.unschedule(jobid) ' || jobs, cron_db];
END $$;
COMMENT ON FUNCTION @extschema@.cron_removal_statement() IS
    'Internal: how DROP EXTENSION witn removes this database''s witn pg_cron jobs when it commits.';
REVOKE EXECUTE ON FUNCTION @extschema@.cron_removal_statement() FROM PUBLIC;

CREATE FUNCTION @extschema@.removal_trigger() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'witn_removal_trigger';
COMMENT ON FUNCTION @extschema@.removal_trigger() IS
    'Internal: the witn_removal event trigger (DROP EXTENSION witn drops the schema witn and witn''s pg_cron jobs).';
REVOKE EXECUTE ON FUNCTION @extschema@.removal_trigger() FROM PUBLIC;

CREATE EVENT TRIGGER witn_removal ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION @extschema@.removal_trigger();
COMMENT ON EVENT TRIGGER witn_removal IS
    'DROP EXTENSION witn: drops the schema witn with the extension and removes witn''s pg_cron jobs of this database at commit.';

