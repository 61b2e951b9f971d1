
-- ---------------------------------------------------------------------------------------------
-- Roles. Five NOLOGIN roles, meant to be granted to PostgREST's authenticator (or to an
-- application's login role):
--   witn_admin     customers, agents, rate cards, prices, new currencies; reads everything;
--                  is also a witn_operator
--   witn_operator  runs the product without owning it (CONTRACT §24): settlement, retention,
--                  redelivery and the monitoring views (sql/install/55_operations.sql)
--   witn_ingest    adds events, nothing else
--   witn_reader    reads everything (finance)
--   witn_customer  reads its own outcomes, explanations, events, invoice lines and
--                  notifications: Row Level Security keyed by the customer_key claim in
--                  request.jwt.claims
-- Roles belong to the cluster, not to a database: a second database finds them already there,
-- and DROP EXTENSION leaves them. Where extension scripts must not create roles, create them
-- before CREATE EXTENSION (docs/postgrest.md); the script then only grants.
-- ---------------------------------------------------------------------------------------------
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

-- Nothing for PUBLIC: every privilege below is granted to a witn role by name. Only the pure
-- functions of the condition model stay callable by anyone.
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA @extschema@ FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    @extschema@.condition_in(cstring), @extschema@.condition_out(@extschema@.condition),
    @extschema@.condition_recv(internal), @extschema@.condition_send(@extschema@.condition),
    @extschema@.evaluate(@extschema@.condition, jsonb), @extschema@.describe(@extschema@.condition),
    @extschema@.explain_facts(@extschema@.condition, jsonb),
    -- the witn.events key check and the witn.customers timezone check run with the writing
    -- role's rights
    @extschema@.event_keys_fit(text, text, text, text, text), @extschema@.timezone_is_known(text)
    TO PUBLIC;

GRANT USAGE ON SCHEMA @extschema@ TO witn_admin, witn_ingest, witn_reader, witn_customer;

-- witn_admin and witn_reader read everything.
GRANT SELECT ON ALL TABLES IN SCHEMA @extschema@ TO witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint), @extschema@.replay(bigint), @extschema@.verify()
    TO witn_admin, witn_reader;
-- Closing a month and correcting invoices are the admin's.
GRANT EXECUTE ON FUNCTION @extschema@.close_period(date, text), @extschema@.reverse_outcome(bigint, text),
    @extschema@.credit_outcome(bigint, numeric, text)
    TO witn_admin;

-- witn_admin writes the lookup tables. Keys cannot be changed once created: events and
-- invoice lines refer to them by value. Currencies can be added, not edited: a changed
-- minor_units would re-round invoices already issued.
GRANT INSERT (key, name, rate_card_key, timezone), UPDATE (name, rate_card_key, timezone), DELETE
    ON @extschema@.customers TO witn_admin;
GRANT INSERT (key, name, condition, settlement_period, attribution_method, reversal_condition, reversal_period),
      UPDATE (name, condition, settlement_period, attribution_method, reversal_condition, reversal_period), DELETE
    ON @extschema@.agents TO witn_admin;
GRANT INSERT (key, name, currency), UPDATE (name, currency), DELETE
    ON @extschema@.rate_cards TO witn_admin;
GRANT INSERT (rate_card_key, agent_key, price_per_unit), UPDATE (price_per_unit), DELETE
    ON @extschema@.rate_card_prices TO witn_admin;
GRANT INSERT (code, minor_units) ON @extschema@.currencies TO witn_admin;

-- witn_ingest adds events: the columns a sender may set, and nothing it could read back.
-- received_at, late and duplicate_of are witn's to set.
GRANT INSERT (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    ON @extschema@.events TO witn_ingest;

-- witn_customer reads its own rows of these (policies below); currencies for invoice totals.
GRANT SELECT ON @extschema@.outcomes, @extschema@.events, @extschema@.invoice_lines,
    @extschema@.notifications, @extschema@.invoice_line_details, @extschema@.invoices,
    @extschema@.currencies, @extschema@.closed_periods, @extschema@.credit_lines
    TO witn_customer;
GRANT EXECUTE ON FUNCTION @extschema@.explain(bigint) TO witn_customer;
-- explain's query, which runs with the caller's rights and row policies.
GRANT EXECUTE ON FUNCTION @extschema@.explain_outcome(bigint) TO witn_admin, witn_reader, witn_customer;

-- ---------------------------------------------------------------------------------------------
-- Row Level Security on the tables that hold a customer's data. The policies grant; a role
-- without one sees and writes nothing. The events trigger and witn.settle() are SECURITY
-- DEFINER, owned by the (superuser) extension owner, so they write outcomes, invoice lines and
-- notifications whatever the caller may see.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.current_customer_key() RETURNS text
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
COMMENT ON FUNCTION @extschema@.current_customer_key() IS
    'The customer_key claim of the request''s JWT (request.jwt.claims, as PostgREST sets it), or NULL when there is none or the token was issued for another role than the current one.';
REVOKE EXECUTE ON FUNCTION @extschema@.current_customer_key() FROM PUBLIC;

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
GRANT EXECUTE ON FUNCTION @extschema@.current_customer_key(), @extschema@.pre_request()
    TO witn_admin, witn_ingest, witn_reader, witn_customer;

ALTER TABLE @extschema@.outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.closed_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE @extschema@.credit_lines ENABLE ROW LEVEL SECURITY;

-- The claim is read once per statement (an InitPlan), not once per row.
CREATE POLICY staff_read ON @extschema@.outcomes FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.outcomes FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.events FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.events FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));
-- An ingest token may be scoped to one customer by a customer_key claim; without one it sends
-- events for every customer.
CREATE POLICY ingest_add ON @extschema@.events FOR INSERT TO witn_ingest
    WITH CHECK ((SELECT @extschema@.current_customer_key()) IS NULL
                OR customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.invoice_lines FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.invoice_lines FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.closed_periods FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.closed_periods FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.notifications FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.notifications FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));

CREATE POLICY staff_read ON @extschema@.credit_lines FOR SELECT TO witn_admin, witn_reader USING (true);
CREATE POLICY customer_own ON @extschema@.credit_lines FOR SELECT TO witn_customer
    USING (customer_key = (SELECT @extschema@.current_customer_key()));
