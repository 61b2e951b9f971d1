-- witn 0.6.0 -> 0.7.0: webhook delivery (CONTRACT §21). witn.webhook_endpoints and
-- witn.webhook_deliveries; every notification is queued for its endpoints in the transaction that
-- writes it, and the delivery worker (witn in shared_preload_libraries) sends it signed, with
-- retries; witn.redeliver() and witn.webhook_status. What-if (CONTRACT §22): witn.simulate and
-- witn.simulate_summary. A distributed (Citus) database is refused, unchanged.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.7.0'" to load this file. \quit

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
            HINT = 'Keep this cluster on the witn 0.6.0 build (library and SQL objects) for now: a distributed database cannot be updated in place yet (docs/scale-out.md, Limits).';
    END IF;
END $guard$;

-- The library of this version.
DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.7.0');
DROP TRIGGER credit_lines_issue ON @extschema@.credit_lines;
CREATE TRIGGER credit_lines_issue BEFORE INSERT ON @extschema@.credit_lines
    FOR EACH ROW EXECUTE FUNCTION @extschema@.credit_lines_issue('0.7.0');

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

CREATE OR REPLACE FUNCTION @extschema@.on_every_shard(command text) RETURNS SETOF text
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

-- witn.distribute() makes the endpoints a reference table and the deliveries distributed.
CREATE OR REPLACE FUNCTION @extschema@.distribute()
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

SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_endpoints_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.webhook_deliveries_id_seq', '');
