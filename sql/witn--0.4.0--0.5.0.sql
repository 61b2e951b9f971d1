-- witn 0.4.0 -> 0.5.0: customer time zones and closed months (CONTRACT §17, §18). Every invoice line stores its
-- billing_period, the calendar month of resolved_at in the customer's timezone; lines written
-- before keep their UTC month.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.5.0'" to load this file. \quit

-- An IANA time zone name, as pg_timezone_names lists them; anything else is a clear error
-- (used by the CHECK on witn.customers.timezone, so it raises instead of answering false).
CREATE FUNCTION @extschema@.timezone_is_known(timezone text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_timezone_is_known' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.timezone_is_known(text) IS
    'Backs the check on witn.customers.timezone: true for an IANA time zone name, else VALIDATION_ERROR (WT001).';
-- The check runs with the writing role's rights, like the witn.events key check.
REVOKE EXECUTE ON FUNCTION @extschema@.timezone_is_known(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.timezone_is_known(text) TO PUBLIC;

ALTER TABLE @extschema@.customers ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
    CONSTRAINT customers_timezone_known CHECK (@extschema@.timezone_is_known(timezone));
COMMENT ON COLUMN @extschema@.customers.timezone IS
    'An IANA time zone name (default UTC): the customer''s invoice lines belong to calendar months in it. Changing it never moves a line already written.';

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
ALTER TABLE @extschema@.closed_periods ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_read ON @extschema@.closed_periods FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.closed_periods FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));
REVOKE ALL ON @extschema@.closed_periods FROM PUBLIC;
GRANT SELECT ON @extschema@.closed_periods TO witn_admin, witn_reader, witn_customer;
REVOKE EXECUTE ON FUNCTION @extschema@.closed_periods_lock() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.closed_periods', '');

-- Lines written before 0.5.0 were invoiced by UTC month: they stay there.
ALTER TABLE @extschema@.invoice_lines ADD COLUMN billing_period date;
UPDATE @extschema@.invoice_lines SET billing_period = date_trunc('month', resolved_at AT TIME ZONE 'UTC')::date;
ALTER TABLE @extschema@.invoice_lines ALTER COLUMN billing_period SET NOT NULL;
COMMENT ON COLUMN @extschema@.invoice_lines.billing_period IS
    'The invoice month the line belongs to: the first day of the calendar month of resolved_at in the customer''s timezone when the line was written.';

CREATE OR REPLACE VIEW @extschema@.invoices WITH (security_invoker = true) AS
    SELECT l.customer_key, l.currency,
           l.billing_period AS month,
           count(*) AS lines,
           sum(l.amount) AS amount_exact,
           round(sum(l.amount), coalesce(c.minor_units, 2)) AS amount,
           cp.closed_at
      FROM @extschema@.invoice_lines l
      LEFT JOIN @extschema@.currencies c ON c.code = l.currency
      LEFT JOIN @extschema@.closed_periods cp ON cp.customer_key = l.customer_key AND cp.period = l.billing_period
     GROUP BY l.customer_key, l.currency, l.billing_period, c.minor_units, cp.closed_at;
COMMENT ON VIEW @extschema@.invoices IS
    'Invoice totals per customer, currency and month (the lines'' billing_period: the calendar month of resolved_at in the customer''s timezone). amount is the exact sum rounded once to the currency''s minor units, half away from zero. closed_at: when the month was closed (witn.close_period), NULL while open; a closed month''s figures never change.';

CREATE OR REPLACE VIEW @extschema@.invoice_line_details WITH (security_invoker = true) AS
    SELECT l.id, l.customer_key, l.outcome_id, l.outcome_key, l.agent_key, l.quantity,
           l.unit_price, l.amount, l.currency, l.resolved_at, l.created_at,
           o.opened_at, o.settles_at, o.agent_version, o.attribution_method, l.billing_period
      FROM @extschema@.invoice_lines l
      JOIN @extschema@.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id;

CREATE OR REPLACE VIEW witn_api.invoice_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount,
           currency, resolved_at, created_at, billing_period
      FROM @extschema@.invoice_lines;
CREATE OR REPLACE VIEW witn_api.customers WITH (security_invoker = true) AS
    SELECT key, name, rate_card_key, created_at, updated_at, timezone FROM @extschema@.customers;

GRANT INSERT (timezone), UPDATE (timezone) ON @extschema@.customers, witn_api.customers TO witn_admin;

DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.5.0');

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
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.5.0', shard) b;
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
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.5.0', shard);
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
         ORDER BY k.key
    LOOP
        IF c.ends_at > now() THEN
            RAISE EXCEPTION USING ERRCODE = 'WT001',
                MESSAGE = format('VALIDATION_ERROR: period %s has not ended for customer %s', to_char(wanted, 'YYYY-MM'), c.key),
                DETAIL = format('In %s it ends at %s.', c.timezone, c.ends_at AT TIME ZONE c.timezone),
                HINT = 'Close a month once it has ended in the customer''s timezone.';
        END IF;
    END LOOP;
    -- Key order: two closes of overlapping customers lock them in the same order.
    INSERT INTO @extschema@.closed_periods AS cp (customer_key, period, closed_by)
    SELECT k.key, wanted, closed_by FROM @extschema@.customers k
     WHERE who IS NULL OR k.key = who
     ORDER BY k.key
    ON CONFLICT ON CONSTRAINT closed_periods_pkey DO NOTHING;
    RETURN QUERY
        SELECT cp.* FROM @extschema@.closed_periods cp
         WHERE cp.period = wanted AND (who IS NULL OR cp.customer_key = who)
         ORDER BY cp.customer_key;
END $$;
COMMENT ON FUNCTION @extschema@.close_period(date, text) IS
    'Closes a month (its first day) for one customer or, with NULL, for every customer, once it has ended in each customer''s timezone; idempotent. From then on the month''s invoice never changes: lines that would fall into it are billed in the earliest open month after it.';
REVOKE EXECUTE ON FUNCTION @extschema@.close_period(date, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.close_period(date, text) TO witn_admin;

CREATE OR REPLACE VIEW witn_api.invoices WITH (security_invoker = true) AS
    SELECT customer_key, currency, month, lines, amount_exact, amount, closed_at FROM @extschema@.invoices;

CREATE OR REPLACE FUNCTION @extschema@.distribute()
    RETURNS TABLE (table_name regclass, distribution text)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lookup constant text[] := ARRAY['currencies', 'rate_cards', 'customers', 'agents', 'rate_card_prices'];
    per_customer constant text[] := ARRAY['events', 'outcomes', 'invoice_lines', 'notifications', 'settlement_errors', 'closed_periods'];
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
        'ALTER POLICY customer_own ON @extschema@.closed_periods USING (customer_key = @extschema@.current_customer_key())'];
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

-- POST /rpc/close_period: closing a month through PostgREST (witn_admin).
CREATE FUNCTION witn_api.close_period(period date, customer_key text DEFAULT NULL)
    RETURNS SETOF @extschema@.closed_periods
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.close_period($1, $2)
$$;
COMMENT ON FUNCTION witn_api.close_period(date, text) IS
    'POST /rpc/close_period {"period": "2026-11-01", "customer_key": "acme"} (customer_key left out: every customer): closes the month once it has ended in each customer''s timezone; returns the closed rows. witn_admin only.';
REVOKE EXECUTE ON FUNCTION witn_api.close_period(date, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION witn_api.close_period(date, text) TO witn_admin;
