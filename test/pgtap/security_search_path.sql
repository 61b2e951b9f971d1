-- search_path hijacking: a schema of look-alike operators and functions, first in the caller's
-- search_path, must never be used by witn's functions; above all not by the SECURITY DEFINER
-- ones, which run as the extension owner (a superuser). Every look-alike raises, so a function
-- that resolved one would fail.
BEGIN;
\ir api_request.psql
SELECT plan(19);
SET LOCAL TimeZone = 'UTC';

INSERT INTO witn.rate_cards (key, currency) VALUES ('sp_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'sp_usd'), ('globex', 'sp_usd');
INSERT INTO witn.agents (key, condition, attribution_method) VALUES
    ('support', '[{"fact": "csat", "operator": "gte", "value": 4}, {"fact": "escalated", "operator": "not seen"}]', 'sum');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('sp_usd', 'support', 2.5);
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key) VALUES
    ('acme', 'a-1', 'opened', 'support', '{"attribution": 1}', 'sp-1'),
    ('globex', 'g-1', 'opened', 'support', '{}', NULL);

-- ---------------------------------------------------------------------------------------------
-- The attacker's schema: the operators and functions witn's SQL uses, by the same names and
-- exact argument types (so that they would win over pg_catalog's if it came later in the path).
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA hijack;
GRANT USAGE ON SCHEMA hijack TO PUBLIC;
DO $$
DECLARE
    f record;
    n integer := 0;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('=', 'text', 'text', 'boolean'), ('<>', 'text', 'text', 'boolean'), ('=', 'bigint', 'bigint', 'boolean'),
        ('<>', 'bigint', 'bigint', 'boolean'), ('>', 'bigint', 'bigint', 'boolean'), ('=', 'integer', 'integer', 'boolean'),
        ('=', 'text', 'name', 'boolean'), ('=', 'jsonb', 'jsonb', 'boolean'),
        ('<=', 'timestamptz', 'timestamptz', 'boolean'), ('<', 'timestamptz', 'timestamptz', 'boolean'),
        ('>', 'timestamptz', 'timestamptz', 'boolean'), ('+', 'timestamptz', 'interval', 'timestamptz'),
        ('=', 'witn.outcome_status', 'witn.outcome_status', 'boolean'), ('*', 'numeric', 'numeric', 'numeric'),
        ('||', 'text', 'text', 'text'), ('||', 'text', 'bigint', 'text'), ('->>', 'jsonb', 'text', 'text'),
        ('->', 'jsonb', 'text', 'jsonb')) AS o(op, l, r, result)
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION hijack.op%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L',
                       n, f.l, f.r, f.result,
                       format('BEGIN RAISE EXCEPTION ''HIJACKED: %s(%s, %s)''; END', f.op, f.l, f.r));
        EXECUTE format('CREATE OPERATOR hijack.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = hijack.op%s)',
                       f.op, f.l, f.r, n);
    END LOOP;
    FOR f IN SELECT * FROM (VALUES
        ('now', '', 'timestamptz'), ('current_setting', 'text, boolean', 'text'), ('current_setting', 'text', 'text'),
        ('pg_notify', 'text, text', 'void'), ('length', 'text', 'integer'), ('lower', 'text', 'text'),
        ('nextval', 'regclass', 'bigint'), ('jsonb_typeof', 'jsonb', 'text'), ('to_jsonb', 'text', 'jsonb'),
        ('round', 'numeric, integer', 'numeric'), ('date_trunc', 'text, timestamp', 'timestamp'),
        ('pg_advisory_xact_lock', 'bigint', 'void'), ('extract', 'text, interval', 'numeric'),
        ('greatest', 'bigint, bigint', 'bigint')) AS f(name, args, result)
    LOOP
        EXECUTE format('CREATE FUNCTION hijack.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L', f.name, f.args, f.result,
                       format('BEGIN RAISE EXCEPTION ''HIJACKED: %s(%s)''; END', f.name, f.args));
    END LOOP;
END $$;

-- A request made with the attacker's search_path; 'ok' or the error it raised.
CREATE FUNCTION pg_temp.hijacked(role text, statement text, customer_key text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(r ->> 'message', 'ok')
      FROM pg_temp.request(role, pg_temp.token(role, customer_key)::text, 'POST', '/', statement, NULL,
                           'hijack, pg_catalog, public') r
$$;

-- The trap works: unpinned SQL resolves the look-alikes.
CREATE FUNCTION pg_temp.naive_match(a text) RETURNS boolean LANGUAGE sql AS $$ SELECT a = 'x' $$;
SELECT is(pg_temp.hijacked('witn_reader', 'SELECT pg_temp.naive_match(''y'') AS body'), 'HIJACKED: =(text, text)',
          'a function without a pinned search_path uses the attacker''s =');
SELECT is(pg_temp.hijacked('witn_reader', 'SELECT pg_catalog.now() AS body'), 'ok',
          'a schema-qualified call does not');

-- ---------------------------------------------------------------------------------------------
-- The SECURITY DEFINER functions.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.hijacked('witn_ingest', $$
    INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key) VALUES
        ('acme', 'a-1', 'csat', NULL, '{"value": 5, "attribution": 2}', 'sp-2'),
        ('acme', 'a-1', 'opened', 'support', '{"attribution": 1}', 'sp-1'),
        ('acme', 'a-2', 'csat', 'support', '{"value": 3}', NULL),
        ('globex', 'g-1', 'csat', NULL, '{"value": 4}', NULL) RETURNING 1 $$),
    'ok', 'events trigger (SECURITY DEFINER): new outcome, existing outcomes, an idempotent retry');
SELECT is((SELECT string_agg(format('%s/%s %s q=%s n=%s', customer_key, key, status, quantity, accepted_events), ' ' ORDER BY key)
             FROM witn.outcomes),
          'acme/a-1 PENDING q=3 n=2 acme/a-2 OPEN q=1 n=1 globex/g-1 PENDING q=1 n=2',
          'events trigger: the events were applied as without the attacker''s schema');
SELECT is(pg_temp.hijacked('witn_ingest', $$
    INSERT INTO witn_api.events (customer_key, key, action) VALUES ('globex', 'g-1', 'escalated') RETURNING 1 $$),
    'ok', 'events trigger through witn_api.events');
SELECT is(pg_temp.hijacked(current_user, format('SELECT confirmed AS body FROM witn.settle(%L::timestamptz)',
                                                now() + interval '4 days')),
          'ok', 'witn.settle (SECURITY DEFINER)');
SELECT is((SELECT string_agg(format('%s/%s %s', customer_key, key, status), ' ' ORDER BY key) FROM witn.outcomes),
          'acme/a-1 CONFIRMED acme/a-2 FAILED globex/g-1 FAILED', 'settle: every outcome settled as without the attacker''s schema');
SELECT is((SELECT string_agg(format('%s %s %s', outcome_key, amount, payload #>> '{type}'), ' ')
             FROM witn.invoice_lines JOIN witn.notifications USING (customer_key, outcome_id)),
          'a-1 7.5 outcome_succeed', 'settle: the invoice line and its notification');

-- ---------------------------------------------------------------------------------------------
-- Every other function that runs SQL, called by the roles that may call it.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE ids AS SELECT (SELECT id FROM witn.outcomes WHERE key = 'a-1') AS a1;
SELECT is(pg_temp.hijacked('witn_reader', format('SELECT count(*) AS body FROM witn.explain(%s)', (SELECT a1 FROM ids))),
          'ok', 'witn.explain');
SELECT is(pg_temp.hijacked('witn_customer', format('SELECT count(*) AS body FROM witn_api.explain_outcome(%s)', (SELECT a1 FROM ids)), 'acme'),
          'ok', 'witn_api.explain_outcome');
SELECT is(pg_temp.hijacked('witn_reader', 'SELECT count(*) AS body FROM witn.verify()'), 'ok', 'witn.verify');
SELECT is(pg_temp.hijacked('witn_reader', format('SELECT matches AS body FROM witn.replay(%s)', (SELECT a1 FROM ids))),
          'ok', 'witn.replay');
SELECT is(pg_temp.hijacked(current_user, format('SELECT matches AS body FROM witn.replay(%s)', (SELECT a1 FROM ids))),
          'ok', 'witn.replay called by a superuser');
SELECT is(pg_temp.hijacked('witn_admin', $$ UPDATE witn.agents SET settlement_period = '1 day' RETURNING 1 $$),
          'ok', 'the agents trigger (a contract change)');
SELECT is(pg_temp.hijacked('witn_reader', 'SELECT count(*) AS body FROM witn_api.outcomes'), 'ok',
          'the witn_api views (their SQL was resolved when they were created)');
SELECT is(pg_temp.hijacked('witn_reader', 'SELECT count(*) AS body FROM witn.invoices'), 'ok', 'witn.invoices');

-- The row policies, and the claim function behind them.
SELECT is(pg_temp.request('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}', 'GET', '/outcomes',
              'SELECT count(*) AS body FROM witn.outcomes', NULL, 'hijack, pg_catalog, public') -> 'body',
          '2', 'customer acme with the attacker''s search_path: its own two outcomes, read through the policy');
SELECT is(pg_temp.request('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}', 'GET', '/',
              'SELECT witn.current_customer_key() AS body', NULL, 'hijack, pg_catalog, public') ->> 'body',
          'acme', 'witn.current_customer_key');
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_ingest", "customer_key": "acme"}', 'POST', '/events',
              $$ INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g-1', 'late') RETURNING 1 $$,
              NULL, 'hijack, pg_catalog, public') ->> 'code',
          '42501', 'the ingest policy still refuses another customer''s event');

SELECT * FROM finish();
ROLLBACK;
