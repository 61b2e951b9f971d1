-- Row level security: a customer token sees exactly its own outcomes, events, invoice lines and
-- notifications, in the tables and through every view; no claim, a malformed claim or a claim
-- issued for another role sees nothing; staff see everything; ingest writes through the
-- SECURITY DEFINER trigger without seeing anything.
BEGIN;
\ir api_request.psql
SELECT plan(30);

INSERT INTO witn.rate_cards (key, currency) VALUES ('rls_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'rls_usd'), ('globex', 'rls_usd'), ('initech', 'rls_usd');
INSERT INTO witn.agents (key, condition) VALUES ('support', '[{"fact": "resolved", "operator": "seen"}]');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('rls_usd', 'support', 5);
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
    ('acme', 'a-1', 'resolved', 'support'), ('acme', 'a-2', 'opened', 'support'),
    ('globex', 'g-1', 'resolved', 'support');
SELECT witn.settle(now() + interval '4 days');
-- Still open: an outcome per customer that settlement has not reached.
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
    ('acme', 'a-3', 'opened', 'support'), ('globex', 'g-2', 'opened', 'support');

-- What a request sees: the customers whose rows it can read, table by table and view by view.
CREATE FUNCTION pg_temp.visible(role text, claims text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(r ->> 'body', r ->> 'code' || ' ' || (r ->> 'message'))
      FROM pg_temp.request(role, claims, 'GET', '/', $q$
        SELECT concat_ws(' ',
            'outcomes:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.outcomes),
            'events:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.events),
            'invoice_lines:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.invoice_lines),
            'notifications:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.notifications),
            'invoice_line_details:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.invoice_line_details),
            'invoices:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn.invoices),
            'api.outcomes:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn_api.outcomes),
            'api.events:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn_api.events),
            'api.invoice_lines:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn_api.invoice_lines),
            'api.notifications:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn_api.notifications),
            'api.invoices:' || (SELECT string_agg(DISTINCT customer_key, ',') FROM witn_api.invoices),
            'nothing') AS body $q$) r
$$;

-- ---------------------------------------------------------------------------------------------
-- No claim at all: this session has never seen request.jwt.claims.
-- ---------------------------------------------------------------------------------------------
SELECT is(current_setting('request.jwt.claims', true), NULL, 'no request.jwt.claims has been set in this session');
SELECT is(pg_temp.visible('witn_customer', NULL), 'nothing', 'customer role without any claim: sees nothing');

-- ---------------------------------------------------------------------------------------------
-- A customer's token.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}'),
          'outcomes:acme events:acme invoice_lines:acme notifications:acme invoice_line_details:acme invoices:acme '
          'api.outcomes:acme api.events:acme api.invoice_lines:acme api.notifications:acme api.invoices:acme nothing',
          'customer acme: acme''s rows everywhere, nobody else''s');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": "globex"}'),
          'outcomes:globex events:globex invoice_lines:globex notifications:globex invoice_line_details:globex invoices:globex '
          'api.outcomes:globex api.events:globex api.invoice_lines:globex api.notifications:globex api.invoices:globex nothing',
          'customer globex: globex''s rows everywhere');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": "initech"}'), 'nothing',
          'customer initech (no data yet): nothing');
SELECT is(pg_temp.request('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}', 'GET', '/outcomes',
              'SELECT string_agg(key, '','' ORDER BY key) AS body FROM witn.outcomes') ->> 'body',
          'a-1,a-2,a-3', 'customer acme: all three of its outcomes, open and resolved');
SELECT is(pg_temp.request('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}', 'GET', '/outcomes',
              'SELECT count(*) AS body FROM witn.outcomes WHERE customer_key = ''globex'' OR true') ->> 'body',
          '3', 'customer acme: a query asking for globex''s rows still gets acme''s only');
SELECT is(pg_temp.request('witn_customer', '{"role": "witn_customer", "customer_key": "acme"}', 'GET', '/',
              format('SELECT count(*) AS body FROM witn.explain(%s)',
                     (SELECT id FROM witn.outcomes WHERE key = 'g-1'))) ->> 'body',
          '0', 'customer acme: witn.explain of globex''s outcome returns no row');

-- ---------------------------------------------------------------------------------------------
-- Claims that do not name this customer for this role see nothing (and never raise 500).
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.visible('witn_customer', ''), 'nothing', 'empty claims');
SELECT is(pg_temp.visible('witn_customer', '{}'), 'nothing', 'claims without role or customer_key');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer"}'), 'nothing', 'claims without customer_key');
SELECT is(pg_temp.visible('witn_customer', '{"customer_key": "acme"}'), 'nothing', 'customer_key without a role claim');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_admin", "customer_key": "acme"}'), 'nothing',
          'claims issued for witn_admin, used by witn_customer');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_reader", "customer_key": "globex"}'), 'nothing',
          'claims issued for witn_reader naming another customer');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": "ACME"}'), 'nothing',
          'customer_key in another case');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": ["acme"]}'), 'nothing',
          'customer_key an array');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": null}'), 'nothing',
          'customer_key null');
SELECT is(pg_temp.visible('witn_customer', '{"role": "witn_customer", "customer_key": "acme'' OR ''1''=''1"}'), 'nothing',
          'customer_key with SQL in it');
SELECT is(pg_temp.request('witn_customer', 'not json', 'GET', '/outcomes', 'SELECT count(*) AS body FROM witn.outcomes') ->> 'status',
          '400', 'claims that are not JSON: an error, 400, and no rows');

-- ---------------------------------------------------------------------------------------------
-- A role granted witn_customer (e.g. a portal's own role) is held to the same policies.
-- ---------------------------------------------------------------------------------------------
CREATE ROLE witn_test_portal NOLOGIN;
GRANT witn_customer TO witn_test_portal;
SELECT is(pg_temp.visible('witn_test_portal', '{"role": "witn_test_portal", "customer_key": "globex"}'),
          'outcomes:globex events:globex invoice_lines:globex notifications:globex invoice_line_details:globex invoices:globex '
          'api.outcomes:globex api.events:globex api.invoice_lines:globex api.notifications:globex api.invoices:globex nothing',
          'a member of witn_customer with its own token: its customer''s rows');
SELECT is(pg_temp.visible('witn_test_portal', '{"role": "witn_customer", "customer_key": "globex"}'), 'nothing',
          'a member of witn_customer with a token issued for another role: nothing');

-- ---------------------------------------------------------------------------------------------
-- Staff read everything, with or without a customer_key claim.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.visible('witn_reader', '{"role": "witn_reader"}'),
          'outcomes:acme,globex events:acme,globex invoice_lines:acme,globex notifications:acme,globex '
          'invoice_line_details:acme,globex invoices:acme,globex api.outcomes:acme,globex api.events:acme,globex '
          'api.invoice_lines:acme,globex api.notifications:acme,globex api.invoices:acme,globex nothing',
          'reader: every customer''s rows');
SELECT is(pg_temp.visible('witn_admin', '{"role": "witn_admin", "customer_key": "acme"}'),
          'outcomes:acme,globex events:acme,globex invoice_lines:acme,globex notifications:acme,globex '
          'invoice_line_details:acme,globex invoices:acme,globex api.outcomes:acme,globex api.events:acme,globex '
          'api.invoice_lines:acme,globex api.notifications:acme,globex api.invoices:acme,globex nothing',
          'admin (with a customer_key claim): every customer''s rows');

-- ---------------------------------------------------------------------------------------------
-- Ingest writes through the policies: the definer trigger updates outcomes ingest cannot see.
-- ---------------------------------------------------------------------------------------------
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_ingest"}', 'POST', '/events',
    $$ INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
           ('acme', 'a-3', 'resolved', NULL), ('initech', 'i-1', 'opened', 'support') RETURNING 1 $$) ->> 'status',
    '201', 'ingest: events for an existing and a new outcome, with row level security on');
SELECT is((SELECT string_agg(format('%s/%s %s %s', customer_key, key, status, accepted_events), ' ' ORDER BY key)
             FROM witn.outcomes WHERE key IN ('a-3', 'i-1')),
          'acme/a-3 PENDING 2 initech/i-1 OPEN 1', 'the trigger applied both as the extension owner');
SELECT matches(pg_temp.visible('witn_ingest', '{"role": "witn_ingest"}'), '^42501 permission denied',
               'ingest still reads nothing');
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_ingest", "customer_key": "acme"}', 'POST', '/events',
    $$ INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 'a-3', 'noted') RETURNING 1 $$) ->> 'status',
    '201', 'an ingest token scoped to acme: acme''s event');
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_ingest", "customer_key": "acme"}', 'POST', '/events',
    $$ INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g-2', 'noted') RETURNING 1 $$) ->> 'code',
    '42501', 'an ingest token scoped to acme: globex''s event is refused');
SELECT is(pg_temp.request('witn_ingest', '{"role": "witn_admin"}', 'POST', '/events',
    $$ INSERT INTO witn.events (customer_key, key, action) VALUES ('globex', 'g-2', 'noted') RETURNING 1 $$) ->> 'status',
    '201', 'an ingest request whose claims name another role is not scoped (and reads nothing either way)');
SELECT is((SELECT count(*) FROM witn.events WHERE action = 'noted'), 2::bigint, 'exactly the two allowed events were written');

SELECT * FROM finish();
ROLLBACK;
