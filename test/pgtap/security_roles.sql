-- The role model: five NOLOGIN roles, nothing for PUBLIC, each role's privileges exactly, the
-- SECURITY DEFINER functions pinned to pg_catalog, views that respect row level security, and
-- each role's forbidden operations failing with 42501.
BEGIN;
\ir api_request.psql
SELECT plan(62);

-- ---------------------------------------------------------------------------------------------
-- The roles.
-- ---------------------------------------------------------------------------------------------
SELECT results_eq(
    $$ SELECT rolname::text COLLATE "default", rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb
         FROM pg_roles WHERE rolname LIKE 'witn\_%' ORDER BY rolname $$,
    $$ VALUES ('witn_admin', false, false, false, false, false), ('witn_customer', false, false, false, false, false),
              ('witn_ingest', false, false, false, false, false), ('witn_operator', false, false, false, false, false),
              ('witn_reader', false, false, false, false, false) $$,
    'five roles, NOLOGIN, without SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB');
SELECT results_eq(
    $$ SELECT r.rolname::text COLLATE "default", m.rolname::text COLLATE "default" FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
         JOIN pg_roles m ON m.oid = a.member WHERE m.rolname LIKE 'witn\_%' $$,
    $$ VALUES ('witn_operator', 'witn_admin') $$,
    'the one membership among witn roles: witn_admin is a witn_operator');

-- ---------------------------------------------------------------------------------------------
-- PUBLIC: no schema, no table, no sequence; only the pure functions of the condition model.
-- ---------------------------------------------------------------------------------------------
SELECT is_empty(
    $$ SELECT n.nspname FROM pg_namespace n WHERE n.nspname IN ('witn', 'witn_api')
          AND (has_schema_privilege('public', n.oid, 'USAGE') OR has_schema_privilege('public', n.oid, 'CREATE')) $$,
    'PUBLIC has no privilege on the schemas witn and witn_api');
SELECT is_empty(
    $$ SELECT c.oid::regclass, p FROM pg_class c,
              unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
        WHERE c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND c.relkind IN ('r', 'v', 'p')
          AND has_table_privilege('public', c.oid, p) $$,
    'PUBLIC has no privilege on any table or view');
SELECT is_empty(
    $$ SELECT c.oid::regclass, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND a.attacl IS NOT NULL
          AND EXISTS (SELECT FROM aclexplode(a.attacl) x WHERE x.grantee = 0) $$,
    'PUBLIC has no privilege on any column');
SELECT is_empty(
    $$ SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'witn'::regnamespace AND c.relkind = 'S'
          AND (has_sequence_privilege('public', c.oid, 'USAGE') OR has_sequence_privilege('public', c.oid, 'UPDATE')) $$,
    'PUBLIC has no privilege on any sequence');
SELECT set_eq(
    $$ SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)
          AND has_function_privilege('public', p.oid, 'EXECUTE') $$,
    ARRAY['witn.condition_in(cstring)', 'witn.condition_out(witn.condition)', 'witn.condition_recv(internal)',
          'witn.condition_send(witn.condition)', 'witn.evaluate(witn.condition,jsonb)', 'witn.describe(witn.condition)',
          'witn.explain_facts(witn.condition,jsonb)', 'witn.condition_to_json(witn.condition)',
          'witn.event_keys_fit(text,text,text,text,text)', 'witn.timezone_is_known(text)'],
    'PUBLIC may execute the pure functions of the condition model, the event key check and the timezone check, nothing else');

-- ---------------------------------------------------------------------------------------------
-- Each role's privileges, object by object: the role model of docs/postgrest.md.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.privileges(role_name text) RETURNS TABLE (object text, privileges text)
LANGUAGE sql AS $$
    WITH granted AS (
        SELECT c.oid, a.privilege_type AS privilege, NULL::name AS col
          FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
         WHERE a.grantee = role_name::regrole
        UNION ALL
        SELECT c.oid, a.privilege_type, att.attname
          FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid
         CROSS JOIN LATERAL aclexplode(att.attacl) a
         WHERE a.grantee = role_name::regrole
    ), per_privilege AS (
        SELECT oid, privilege,
               privilege || coalesce('(' || string_agg(col, ', ' ORDER BY col) FILTER (WHERE col IS NOT NULL) || ')', '') AS text
          FROM granted GROUP BY oid, privilege
    )
    SELECT c.oid::regclass::text,
           string_agg(p.text, ' ' ORDER BY array_position(
               ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'], p.privilege))
      FROM per_privilege p JOIN pg_class c ON c.oid = p.oid
     WHERE c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)
     GROUP BY c.oid ORDER BY 1
$$;
CREATE FUNCTION pg_temp.executable(role_name text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT p.oid::regprocedure::text FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
     WHERE p.pronamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND a.grantee = role_name::regrole
$$;

SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_ingest') $$, $$ VALUES
    ('witn.events', 'INSERT(action, agent_key, customer_key, idempotency_key, key, occurred_at, properties)'),
    ('witn_api.events', 'INSERT(action, agent_key, customer_key, idempotency_key, key, occurred_at, properties)') $$,
    'witn_ingest: inserts the sender''s columns of events, reads nothing');
SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_customer') $$, $$ VALUES
    ('witn.closed_periods', 'SELECT'), ('witn.credit_lines', 'SELECT'), ('witn.currencies', 'SELECT'), ('witn.events', 'SELECT'),
    ('witn.invoice_line_details', 'SELECT'), ('witn.invoice_lines', 'SELECT'), ('witn.invoices', 'SELECT'),
    ('witn.notifications', 'SELECT'), ('witn.outcomes', 'SELECT'), ('witn_api.credit_lines', 'SELECT'),
    ('witn_api.events', 'SELECT'), ('witn_api.invoice_lines', 'SELECT'),
    ('witn_api.invoices', 'SELECT'), ('witn_api.notifications', 'SELECT'), ('witn_api.outcomes', 'SELECT') $$,
    'witn_customer: reads its outcomes, events, invoice lines, credits, notifications and closed months (rows by policy)');
SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_reader') $$, $$ VALUES
    ('witn.agents', 'SELECT'), ('witn.closed_periods', 'SELECT'), ('witn.credit_lines', 'SELECT'), ('witn.currencies', 'SELECT'),
    ('witn.customers', 'SELECT'), ('witn.events', 'SELECT'),
    ('witn.invoice_line_details', 'SELECT'), ('witn.invoice_lines', 'SELECT'), ('witn.invoices', 'SELECT'),
    ('witn.notifications', 'SELECT'), ('witn.outcomes', 'SELECT'), ('witn.rate_card_prices', 'SELECT'),
    ('witn.rate_cards', 'SELECT'), ('witn.retention_backlog', 'SELECT'), ('witn.settlement_backlog', 'SELECT'), ('witn.settlement_error_summary', 'SELECT'),
    ('witn.settlement_errors', 'SELECT'), ('witn.storage', 'SELECT'), ('witn.webhook_backlog', 'SELECT'),
    ('witn.webhook_deliveries', 'SELECT'),
    ('witn.webhook_endpoints', 'SELECT(created_at, customer_key, description, enabled, event_types, id, updated_at, url)'),
    ('witn.webhook_status', 'SELECT'),
    ('witn_api.agents', 'SELECT'), ('witn_api.credit_lines', 'SELECT'), ('witn_api.currencies', 'SELECT'), ('witn_api.customers', 'SELECT'),
    ('witn_api.events', 'SELECT'), ('witn_api.invoice_lines', 'SELECT'), ('witn_api.invoices', 'SELECT'),
    ('witn_api.notifications', 'SELECT'), ('witn_api.outcomes', 'SELECT'), ('witn_api.rate_card_prices', 'SELECT'),
    ('witn_api.rate_cards', 'SELECT'), ('witn_api.webhook_deliveries', 'SELECT'), ('witn_api.webhook_status', 'SELECT') $$,
    'witn_reader: reads everything but the webhook endpoints'' secrets, writes nothing');
SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_admin') $$, $$ VALUES
    ('witn.agents', 'SELECT INSERT(attribution_method, condition, key, name, reversal_condition, reversal_period, settlement_period) UPDATE(attribution_method, condition, name, reversal_condition, reversal_period, settlement_period) DELETE'),
    ('witn.closed_periods', 'SELECT'), ('witn.credit_lines', 'SELECT'),
    ('witn.currencies', 'SELECT INSERT(code, minor_units)'),
    ('witn.customers', 'SELECT INSERT(key, name, rate_card_key, timezone) UPDATE(name, rate_card_key, timezone) DELETE'),
    ('witn.events', 'SELECT'), ('witn.invoice_line_details', 'SELECT'), ('witn.invoice_lines', 'SELECT'),
    ('witn.invoices', 'SELECT'), ('witn.notifications', 'SELECT'), ('witn.outcomes', 'SELECT'),
    ('witn.rate_card_prices', 'SELECT INSERT(agent_key, price_per_unit, rate_card_key) UPDATE(price_per_unit) DELETE'),
    ('witn.rate_cards', 'SELECT INSERT(currency, key, name) UPDATE(currency, name) DELETE'),
    ('witn.retention_backlog', 'SELECT'), ('witn.settlement_backlog', 'SELECT'), ('witn.settlement_error_summary', 'SELECT'),
    ('witn.settlement_errors', 'SELECT'), ('witn.storage', 'SELECT'), ('witn.webhook_backlog', 'SELECT'), ('witn.webhook_deliveries', 'SELECT DELETE'),
    ('witn.webhook_endpoints', 'SELECT INSERT(customer_key, description, enabled, event_types, secret, url) UPDATE(customer_key, description, enabled, event_types, secret, url) DELETE'),
    ('witn.webhook_status', 'SELECT'),
    ('witn_api.agents', 'SELECT INSERT(attribution_method, condition, key, name, reversal_condition, reversal_period, settlement_period) UPDATE(attribution_method, condition, name, reversal_condition, reversal_period, settlement_period) DELETE'),
    ('witn_api.credit_lines', 'SELECT'), ('witn_api.currencies', 'SELECT INSERT(code, minor_units)'),
    ('witn_api.customers', 'SELECT INSERT(key, name, rate_card_key, timezone) UPDATE(name, rate_card_key, timezone) DELETE'),
    ('witn_api.events', 'SELECT'), ('witn_api.invoice_lines', 'SELECT'), ('witn_api.invoices', 'SELECT'),
    ('witn_api.notifications', 'SELECT'), ('witn_api.outcomes', 'SELECT'),
    ('witn_api.rate_card_prices', 'SELECT INSERT(agent_key, price_per_unit, rate_card_key) UPDATE(price_per_unit) DELETE'),
    ('witn_api.rate_cards', 'SELECT INSERT(currency, key, name) UPDATE(currency, name) DELETE'),
    ('witn_api.webhook_deliveries', 'SELECT DELETE'),
    ('witn_api.webhook_endpoints', 'SELECT INSERT(customer_key, description, enabled, event_types, secret, url) UPDATE(customer_key, description, enabled, event_types, secret, url) DELETE'),
    ('witn_api.webhook_status', 'SELECT') $$,
    'witn_admin: reads everything, writes the lookup tables but not their keys, adds currencies, registers webhook endpoints (not their ids or timestamps) and deletes old deliveries');
SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_operator') $$, $$ VALUES
    ('witn.retention_backlog', 'SELECT'), ('witn.settlement_backlog', 'SELECT'), ('witn.settlement_error_summary', 'SELECT'),
    ('witn.settlement_errors', 'SELECT'), ('witn.storage', 'SELECT'), ('witn.webhook_backlog', 'SELECT'),
    ('witn.webhook_deliveries', 'SELECT'),
    ('witn.webhook_endpoints', 'SELECT(created_at, customer_key, description, enabled, event_types, id, updated_at, url)'),
    ('witn.webhook_status', 'SELECT') $$,
    'witn_operator: reads the monitoring views, settlement errors and webhook deliveries (not the endpoints'' secrets), no customer''s business rows');
-- settle() is executable by every witn role: it checks current_user itself (a witn_operator
-- settles through settle_as_operator) and tells the others what to grant.
CREATE TEMP VIEW operator_calls AS SELECT 'witn.settle(timestamp with time zone,integer)'::text AS f;
SELECT set_eq($$ SELECT pg_temp.executable('witn_ingest') $$,
              $$ SELECT unnest(ARRAY['witn.current_customer_key()', 'witn.pre_request()']) UNION ALL SELECT f FROM operator_calls $$,
              'witn_ingest executes current_customer_key() (its insert policy) and pre_request() (PostgREST on Citus) only, besides the operator calls that refuse it with a hint');
SELECT set_eq($$ SELECT pg_temp.executable('witn_operator') $$,
              $$ SELECT unnest(ARRAY['witn.redeliver(bigint,bigint)', 'witn.storage_of()',
                    'witn.settle_as_operator(timestamp with time zone,integer)',
                    'witn.purge_events(timestamp with time zone,integer)', 'witn.purge_settlement_errors(timestamp with time zone)',
                    'witn.purge_webhook_deliveries(timestamp with time zone)']) UNION ALL SELECT f FROM operator_calls $$,
              'witn_operator executes settle (through settle_as_operator), the purges and redeliver');
SELECT set_eq($$ SELECT pg_temp.executable('witn_customer') $$,
              $$ SELECT unnest(ARRAY['witn.current_customer_key()', 'witn.pre_request()', 'witn.explain(bigint)',
                    'witn.explain_outcome(bigint)', 'witn_api.explain_outcome(bigint)']) UNION ALL SELECT f FROM operator_calls $$,
              'witn_customer executes explain and explain_outcome (rows by policy)');
SELECT set_eq($$ SELECT pg_temp.executable('witn_reader') $$,
              $$ SELECT unnest(ARRAY['witn.current_customer_key()', 'witn.pre_request()', 'witn.explain(bigint)',
                    'witn.explain_outcome(bigint)', 'witn.replay(bigint)', 'witn.verify()',
                    'witn_api.explain_outcome(bigint)', 'witn.storage_of()']) UNION ALL SELECT f FROM operator_calls $$,
              'witn_reader executes the audit functions');
SELECT set_eq($$ SELECT pg_temp.executable('witn_admin') $$,
              $$ SELECT unnest(ARRAY['witn.current_customer_key()', 'witn.pre_request()', 'witn.explain(bigint)',
                    'witn.explain_outcome(bigint)', 'witn.replay(bigint)', 'witn.verify()', 'witn.storage_of()',
                    'witn.close_period(date,text)', 'witn_api.close_period(date,text)',
                    'witn.reverse_outcome(bigint,text)', 'witn_api.reverse_outcome(bigint,text)',
                    'witn.credit_outcome(bigint,numeric,text)', 'witn_api.credit_outcome(bigint,numeric,text)',
                    'witn_api.explain_outcome(bigint)', 'witn.redeliver(bigint,bigint)', 'witn_api.redeliver(bigint,bigint)',
                    'witn.webhook_secret()', 'witn.webhook_endpoint_check(text,text,text[])',
                    'witn.simulate(text,timestamp with time zone,timestamp with time zone,witn.condition,interval,text,numeric)',
                    'witn.simulate_summary(text,timestamp with time zone,timestamp with time zone,witn.condition,interval,text,numeric)',
                    'witn_api.simulate(text,timestamp with time zone,timestamp with time zone,witn.condition,interval,text,numeric)',
                    'witn_api.simulate_summary(text,timestamp with time zone,timestamp with time zone,witn.condition,interval,text,numeric)'])
                 UNION ALL SELECT f FROM operator_calls $$,
              'witn_admin executes the audit functions, closes months, corrects invoices, redelivers webhooks, simulates draft terms and (for its endpoints'' default and trigger) makes and checks secrets, settles and purges (as a witn_operator), not the scheduling functions');

-- ---------------------------------------------------------------------------------------------
-- Definer rights, views and row level security.
-- ---------------------------------------------------------------------------------------------
SELECT set_eq(
    $$ SELECT p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND p.prosecdef $$,
    ARRAY['witn.events_apply()', 'witn.settle_as_operator(timestamp with time zone,integer)',
          'witn.replay(bigint)', 'witn.verify()', 'witn.protect_referenced_keys()', 'witn.close_period(date,text)',
          'witn.reverse_outcome(bigint,text)', 'witn.credit_outcome(bigint,numeric,text)',
          'witn.webhook_endpoints_protect()', 'witn.redeliver(bigint,bigint)',
          'witn.simulate(text,timestamp with time zone,timestamp with time zone,witn.condition,interval,text,numeric)',
          'witn.purge_events(timestamp with time zone,integer)', 'witn.purge_settlement_errors(timestamp with time zone)',
          'witn.purge_webhook_deliveries(timestamp with time zone)', 'witn.storage_of()'],
    'fifteen SECURITY DEFINER functions: the events trigger, a witn_operator''s settlement, replay, verify, simulate and storage_of (on Citus they run on every shard''s node as the owner), the referenced-key guard, close_period, the corrections, redeliver and the purges (nobody writes witn.closed_periods, witn.credit_lines or witn.webhook_deliveries directly, nor deletes events), and the webhook endpoints'' delete guard (it counts the deliveries on every node''s shards)');
SELECT is_empty(
    $$ SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND p.prosecdef
          AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false) $$,
    'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
-- An internal SQL function may leave search_path alone so that it can be inlined: it is then
-- only ever planned inside a function that pins it (security_search_path.sql exercises those).
SELECT is_empty(
    $$ SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)
          AND p.prolang IN (SELECT oid FROM pg_language WHERE lanname IN ('sql', 'plpgsql'))
          AND (has_function_privilege('public', p.oid, 'EXECUTE')
               OR EXISTS (SELECT FROM pg_roles r WHERE r.rolname LIKE 'witn\_%' AND has_function_privilege(r.oid, p.oid, 'EXECUTE')))
          AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
          -- its SET LOCAL must outlive it, which a SET clause would undo: every name in it is
          -- schema-qualified (checked below)
          AND p.oid <> 'witn.pre_request()'::regprocedure $$,
    'every SQL and PL/pgSQL function that PUBLIC or a witn role may call pins search_path = pg_catalog, pg_temp');
SELECT unalike(regexp_replace(pg_get_functiondef('witn.pre_request()'::regprocedure),
                              '(pg_catalog|witn)\.[a-z_]+\(|''[^'']*''|\mIF\M|\mNOT\M|\mIS\M|\mNULL\M|\mTHEN\M', '', 'g'),
               '%(%', 'witn.pre_request() calls no function without its schema');
SELECT is_empty(
    $$ SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace) AND c.relkind = 'v'
          AND NOT coalesce(c.reloptions @> ARRAY['security_invoker=true'], false)
          AND c.oid NOT IN ('witn.settlement_backlog'::regclass, 'witn.settlement_error_summary'::regclass,
                            'witn.webhook_backlog'::regclass, 'witn.storage'::regclass, 'witn.retention_backlog'::regclass) $$,
    'every view is security_invoker (the caller''s privileges and row policies apply), but the monitoring views, which show counts only');
SELECT results_eq(
    $$ SELECT c.relname::text COLLATE "default", c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
        WHERE c.relnamespace = 'witn'::regnamespace AND c.relkind = 'r' AND c.relrowsecurity ORDER BY 1 $$,
    $$ VALUES ('closed_periods', true, false), ('credit_lines', true, false), ('events', true, false), ('invoice_lines', true, false),
              ('notifications', true, false), ('outcomes', true, false) $$,
    'row level security on the tables that hold a customer''s data (not forced: the owner''s definer functions write them)');
SELECT results_eq(
    $$ SELECT tablename::text COLLATE "default", policyname::text COLLATE "default", cmd COLLATE "default", roles::text COLLATE "default" FROM pg_policies
        WHERE schemaname = 'witn' ORDER BY 1, 2 $$,
    $$ VALUES ('closed_periods', 'customer_own', 'SELECT', '{witn_customer}'),
              ('closed_periods', 'staff_read', 'SELECT', '{witn_admin,witn_reader}'),
              ('credit_lines', 'customer_own', 'SELECT', '{witn_customer}'),
              ('credit_lines', 'staff_read', 'SELECT', '{witn_admin,witn_reader}'),
              ('events', 'customer_own', 'SELECT', '{witn_customer}'), ('events', 'ingest_add', 'INSERT', '{witn_ingest}'),
              ('events', 'staff_read', 'SELECT', '{witn_admin,witn_reader}'),
              ('invoice_lines', 'customer_own', 'SELECT', '{witn_customer}'),
              ('invoice_lines', 'staff_read', 'SELECT', '{witn_admin,witn_reader}'),
              ('notifications', 'customer_own', 'SELECT', '{witn_customer}'),
              ('notifications', 'staff_read', 'SELECT', '{witn_admin,witn_reader}'),
              ('outcomes', 'customer_own', 'SELECT', '{witn_customer}'),
              ('outcomes', 'staff_read', 'SELECT', '{witn_admin,witn_reader}') $$,
    'the policies: staff read all, a customer its own rows, ingest adds events');
-- A table with a customer_key but no row level security must be staff-only: settlement_errors
-- and webhook_deliveries are operations' records (a customer sees its notifications in
-- witn.notifications), and an endpoint's customer_key is a filter, not whose row it is.
SELECT results_eq(
    $$ SELECT c.relname::text COLLATE "default" FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relnamespace = 'witn'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
          AND a.attname = 'customer_key' AND NOT a.attisdropped ORDER BY 1 $$,
    $$ VALUES ('settlement_errors'), ('webhook_deliveries'), ('webhook_endpoints') $$,
    'the tables with a customer_key and no row level security: settlement errors and webhooks');
SELECT is_empty(
    $$ SELECT c.oid::regclass, r.rolname FROM pg_class c, pg_roles r
        WHERE c.relnamespace IN ('witn'::regnamespace, 'witn_api'::regnamespace)
          AND c.relname IN ('settlement_errors', 'webhook_deliveries', 'webhook_endpoints', 'webhook_status')
          AND r.rolname IN ('witn_customer', 'witn_ingest')
          AND (has_table_privilege(r.oid, c.oid, 'SELECT') OR has_any_column_privilege(r.oid, c.oid, 'SELECT')) $$,
    'and neither witn_customer nor witn_ingest may read them (nor the views over them)');

-- ---------------------------------------------------------------------------------------------
-- Forbidden operations fail with 42501 (PostgREST: 403), whatever the way in.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.rate_cards (key, currency) VALUES ('sr_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'sr_usd');
INSERT INTO witn.agents (key, condition) VALUES ('support', '[]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('sr_usd', 'support', 1);
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'o1', 'done', 'support');
SELECT witn.settle(now() + interval '4 days');

CREATE FUNCTION pg_temp.denied(role text, statement text) RETURNS text LANGUAGE sql AS $$
    SELECT is(pg_temp.request(role, json_build_object('role', role)::text, 'POST', '/', statement) ->> 'code', '42501',
              role || ' may not: ' || statement)
$$;
SELECT pg_temp.denied('witn_ingest', 'SELECT count(*) FROM witn.events');
SELECT pg_temp.denied('witn_ingest', 'UPDATE witn.events SET late = true');
SELECT pg_temp.denied('witn_ingest', 'DELETE FROM witn.events');
SELECT pg_temp.denied('witn_ingest', 'UPDATE witn.outcomes SET status = ''CONFIRMED''');
SELECT pg_temp.denied('witn_ingest', 'INSERT INTO witn.invoice_lines (customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount, currency, resolved_at) VALUES (''acme'', 1, ''o1'', ''support'', 1, 1, 1, ''USD'', now())');
SELECT pg_temp.denied('witn_ingest', 'UPDATE witn.agents SET condition = ''[]''');
SELECT pg_temp.denied('witn_ingest', 'UPDATE witn.rate_card_prices SET price_per_unit = 0');
SELECT pg_temp.denied('witn_ingest', 'INSERT INTO witn.events (customer_key, key, action, agent_key, received_at) VALUES (''acme'', ''o2'', ''done'', ''support'', now() - interval ''1 day'')');
SELECT pg_temp.denied('witn_ingest', 'SELECT witn.settle(now() + interval ''1 year'')');
SELECT pg_temp.denied('witn_ingest', 'CREATE TABLE witn.mine (x int)');
SELECT pg_temp.denied('witn_ingest', 'CREATE VIEW witn_api.mine AS SELECT 1');
SELECT pg_temp.denied('witn_customer', 'INSERT INTO witn.events (customer_key, key, action) VALUES (''acme'', ''o1'', ''done'')');
SELECT pg_temp.denied('witn_customer', 'UPDATE witn.invoice_lines SET amount = 0');
SELECT pg_temp.denied('witn_customer', 'SELECT count(*) FROM witn.customers');
SELECT pg_temp.denied('witn_customer', 'SELECT count(*) FROM witn.settlement_errors');
SELECT pg_temp.denied('witn_customer', 'SELECT * FROM witn.replay(1)');
SELECT pg_temp.denied('witn_customer', 'SELECT * FROM witn.verify()');
SELECT pg_temp.denied('witn_reader', 'INSERT INTO witn.customers (key) VALUES (''r'')');
SELECT pg_temp.denied('witn_reader', 'UPDATE witn.notifications SET payload = ''{}''');
SELECT pg_temp.denied('witn_reader', 'SELECT witn.settle()');
SELECT pg_temp.denied('witn_reader', 'SELECT count(secret) FROM witn.webhook_endpoints');
SELECT pg_temp.denied('witn_reader', 'SELECT * FROM witn.redeliver(1)');
SELECT pg_temp.denied('witn_customer', 'SELECT count(*) FROM witn_api.webhook_deliveries');
SELECT pg_temp.denied('witn_admin', 'UPDATE witn.webhook_deliveries SET status = ''delivered'', next_attempt_at = NULL');
SELECT pg_temp.denied('witn_admin', 'INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES (''acme'', ''o2'', ''done'', ''support'')');
SELECT pg_temp.denied('witn_admin', 'UPDATE witn.outcomes SET unit_price = 0');
SELECT pg_temp.denied('witn_admin', 'DELETE FROM witn.invoice_lines');
SELECT pg_temp.denied('witn_admin', 'UPDATE witn.customers SET key = ''acme2''');
SELECT pg_temp.denied('witn_admin', 'TRUNCATE witn.events');
SELECT pg_temp.denied('witn_admin', 'SELECT witn.settle(now() + interval ''1 year'')');
SELECT pg_temp.denied('witn_admin', 'SELECT witn.schedule_settlement()');
SELECT pg_temp.denied('witn_admin', 'SELECT witn.cron_call(''1'')');

-- ---------------------------------------------------------------------------------------------
-- Another database of the cluster: the roles are there already; the install only grants.
-- ---------------------------------------------------------------------------------------------
SELECT lives_ok('DROP EXTENSION witn', 'DROP EXTENSION witn');
SELECT is((SELECT count(*) FROM pg_roles WHERE rolname LIKE 'witn\_%'), 5::bigint, 'DROP EXTENSION leaves the roles to the cluster');
SELECT lives_ok('CREATE EXTENSION witn', 'CREATE EXTENSION witn where the roles already exist');
SELECT results_eq($$ SELECT * FROM pg_temp.privileges('witn_ingest') $$, $$ VALUES
    ('witn.events', 'INSERT(action, agent_key, customer_key, idempotency_key, key, occurred_at, properties)'),
    ('witn_api.events', 'INSERT(action, agent_key, customer_key, idempotency_key, key, occurred_at, properties)') $$,
    'the reinstalled extension granted the existing roles again');

SELECT * FROM finish();
ROLLBACK;
