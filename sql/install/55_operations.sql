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
