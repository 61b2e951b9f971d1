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
