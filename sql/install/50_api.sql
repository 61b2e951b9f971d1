
-- ---------------------------------------------------------------------------------------------
-- witn_api: what PostgREST exposes (db-schemas = "witn_api"). Views over witn's tables, all
-- security_invoker so that the caller's privileges and row policies apply, plus one RPC.
-- docs/postgrest.md shows the HTTP calls.
-- ---------------------------------------------------------------------------------------------
CREATE SCHEMA witn_api;
COMMENT ON SCHEMA witn_api IS
    'witn''s HTTP API for PostgREST: events to POST, outcomes, invoice lines and notifications to GET, explain_outcome to call, and the admin objects.';
REVOKE ALL ON SCHEMA witn_api FROM PUBLIC;
GRANT USAGE ON SCHEMA witn_api TO witn_admin, witn_ingest, witn_reader, witn_customer;

-- Responses show a condition as a JSON array, not as a string holding one: json_agg and
-- row_to_json, which build PostgREST's responses, use a type's cast to json when it has one.
CREATE FUNCTION @extschema@.condition_to_json(@extschema@.condition) RETURNS json
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT $1::pg_catalog.text::pg_catalog.json
$$;
COMMENT ON FUNCTION @extschema@.condition_to_json(@extschema@.condition) IS
    'The condition as json; backs the cast from witn.condition to json.';
CREATE CAST (@extschema@.condition AS pg_catalog.json) WITH FUNCTION @extschema@.condition_to_json(@extschema@.condition);

-- The write path. Single and bulk POST insert here; the events trigger does the rest.
CREATE VIEW witn_api.events WITH (security_invoker = true) AS
    SELECT id, customer_key, key, action, agent_key, properties, occurred_at, idempotency_key,
           received_at, late, duplicate_of, after_resolution
      FROM @extschema@.events;
-- For PostgREST's "Prefer: missing=default": a bulk POST whose objects leave out properties or
-- occurred_at gets these instead of NULL.
ALTER VIEW witn_api.events ALTER COLUMN properties SET DEFAULT '{}';
ALTER VIEW witn_api.events ALTER COLUMN occurred_at SET DEFAULT now();
COMMENT ON VIEW witn_api.events IS
    'POST events here (one object or an array): customer_key, key, action, agent_key (required on an outcome''s first event), properties, occurred_at, idempotency_key. Customers GET their own.';

CREATE VIEW witn_api.outcomes WITH (security_invoker = true) AS
    SELECT id, customer_key, key, agent_key, status, scheduled_resolution, settles_at, resolved_at,
           condition, @extschema@.describe(condition) AS condition_description,
           settlement_period, attribution_method, agent_version, unit_price, currency, quantity,
           condition_holds, accepted_events, late_events, facts, opened_at, updated_at,
           reversal_condition, reversal_period, reversed_at, reversal_reason
      FROM @extschema@.outcomes;
COMMENT ON VIEW witn_api.outcomes IS
    'Outcomes with their status, the contract and price they were opened under, and when they settle. A customer token sees its own.';

CREATE VIEW witn_api.invoice_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount,
           currency, resolved_at, created_at, billing_period
      FROM @extschema@.invoice_lines;
COMMENT ON VIEW witn_api.invoice_lines IS
    'One line per confirmed outcome: amount = unit_price x quantity, exact. A customer token sees its own.';

CREATE VIEW witn_api.invoices WITH (security_invoker = true) AS
    SELECT customer_key, currency, month, lines, credit_count, charges, credits, amount_exact, amount, closed_at
      FROM @extschema@.invoices;
COMMENT ON VIEW witn_api.invoices IS
    'Invoice totals per customer, currency and month (in the customer''s timezone): charges, credits and amount (charges - credits, rounded once to the currency''s minor units); closed_at once the month is closed. A customer token sees its own.';

CREATE VIEW witn_api.credit_lines WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason,
           billing_period, created_at, created_by
      FROM @extschema@.credit_lines;
COMMENT ON VIEW witn_api.credit_lines IS
    'Credits on confirmed outcomes (reversals and adjustments), each billed in the month it was issued. A customer token sees its own.';

CREATE VIEW witn_api.notifications WITH (security_invoker = true) AS
    SELECT id, customer_key, outcome_id, kind, payload, created_at, credit_id
      FROM @extschema@.notifications;
COMMENT ON VIEW witn_api.notifications IS
    'One notification per resolved outcome and one per credit, the webhook body in payload. A customer token sees its own.';

CREATE FUNCTION witn_api.explain_outcome(outcome_id bigint)
    RETURNS TABLE (outcome_id bigint, customer_key text, outcome_key text,
                   status @extschema@.outcome_status, scheduled_resolution @extschema@.outcome_status,
                   settles_at timestamptz, condition_holds boolean, leaf integer, fact text,
                   operator text, description text, event_count bigint, latest_value jsonb,
                   latest_at timestamptz, passes boolean, condition_name text, reversed_at timestamptz)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.explain($1)
$$;
COMMENT ON FUNCTION witn_api.explain_outcome(bigint) IS
    'POST /rpc/explain_outcome {"outcome_id": ...}: one row per leaf of the outcome''s condition, the fact it saw and whether it passes. Empty for an outcome the caller may not see.';

-- Admin objects: the lookup tables, keys immutable (see 40_roles.sql).
CREATE VIEW witn_api.customers WITH (security_invoker = true) AS
    SELECT key, name, rate_card_key, created_at, updated_at, timezone FROM @extschema@.customers;
COMMENT ON VIEW witn_api.customers IS 'The customers you bill, by your key, and the rate card that prices them.';

CREATE VIEW witn_api.agents WITH (security_invoker = true) AS
    SELECT key, name, condition, settlement_period, attribution_method, version, created_at,
           updated_at, reversal_condition, reversal_period
      FROM @extschema@.agents;
COMMENT ON VIEW witn_api.agents IS
    'Agent contracts: condition (a JSON array of leaves, validated), settlement_period, attribution_method. Edits apply to outcomes opened afterwards.';

CREATE VIEW witn_api.rate_cards WITH (security_invoker = true) AS
    SELECT key, name, currency, created_at, updated_at FROM @extschema@.rate_cards;
COMMENT ON VIEW witn_api.rate_cards IS 'Pricing templates, one currency each.';

CREATE VIEW witn_api.rate_card_prices WITH (security_invoker = true) AS
    SELECT rate_card_key, agent_key, price_per_unit, created_at, updated_at
      FROM @extschema@.rate_card_prices;
COMMENT ON VIEW witn_api.rate_card_prices IS 'The price per unit of an agent''s confirmed outcome on a rate card.';

CREATE VIEW witn_api.currencies WITH (security_invoker = true) AS
    SELECT code, minor_units FROM @extschema@.currencies;
COMMENT ON VIEW witn_api.currencies IS 'ISO 4217 currencies and their minor units; add the ones missing.';

-- The views pass the same privileges through as 40_roles.sql grants on the tables below them:
-- both are checked (security_invoker).
-- POST /rpc/close_period: closing a month through PostgREST (witn_admin).
CREATE FUNCTION witn_api.close_period(period date, customer_key text DEFAULT NULL)
    RETURNS SETOF @extschema@.closed_periods
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.close_period($1, $2)
$$;
COMMENT ON FUNCTION witn_api.close_period(date, text) IS
    'POST /rpc/close_period {"period": "2026-11-01", "customer_key": "acme"} (customer_key left out: every customer): closes the month once it has ended in each customer''s timezone; returns the closed rows. witn_admin only.';

-- POST /rpc/reverse_outcome and /rpc/credit_outcome: corrections through PostgREST (witn_admin).
CREATE FUNCTION witn_api.reverse_outcome(outcome_id bigint, reason text)
    RETURNS SETOF @extschema@.credit_lines
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.reverse_outcome($1, $2)
$$;
COMMENT ON FUNCTION witn_api.reverse_outcome(bigint, text) IS
    'POST /rpc/reverse_outcome {"outcome_id": 42, "reason": "..."}: credits what is left of a confirmed outcome and marks it reversed; returns the credit (none when nothing was left). witn_admin only.';
CREATE FUNCTION witn_api.credit_outcome(outcome_id bigint, amount numeric, reason text)
    RETURNS @extschema@.credit_lines
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM @extschema@.credit_outcome($1, $2, $3)
$$;
COMMENT ON FUNCTION witn_api.credit_outcome(bigint, numeric, text) IS
    'POST /rpc/credit_outcome {"outcome_id": 42, "amount": 5.00, "reason": "..."}: credits part of a confirmed outcome''s amount; returns the credit. witn_admin only.';

REVOKE ALL ON ALL TABLES IN SCHEMA witn_api FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA witn_api FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA witn_api TO witn_admin, witn_reader;
GRANT EXECUTE ON FUNCTION witn_api.explain_outcome(bigint) TO witn_admin, witn_reader, witn_customer;
GRANT EXECUTE ON FUNCTION witn_api.close_period(date, text), witn_api.reverse_outcome(bigint, text),
    witn_api.credit_outcome(bigint, numeric, text)
    TO witn_admin;

GRANT INSERT (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key)
    ON witn_api.events TO witn_ingest;

GRANT SELECT ON witn_api.events, witn_api.outcomes, witn_api.invoice_lines, witn_api.invoices,
    witn_api.notifications, witn_api.credit_lines
    TO witn_customer;

GRANT INSERT (key, name, rate_card_key, timezone), UPDATE (name, rate_card_key, timezone), DELETE
    ON witn_api.customers TO witn_admin;
GRANT INSERT (key, name, condition, settlement_period, attribution_method, reversal_condition, reversal_period),
      UPDATE (name, condition, settlement_period, attribution_method, reversal_condition, reversal_period), DELETE
    ON witn_api.agents TO witn_admin;
GRANT INSERT (key, name, currency), UPDATE (name, currency), DELETE
    ON witn_api.rate_cards TO witn_admin;
GRANT INSERT (rate_card_key, agent_key, price_per_unit), UPDATE (price_per_unit), DELETE
    ON witn_api.rate_card_prices TO witn_admin;
GRANT INSERT (code, minor_units) ON witn_api.currencies TO witn_admin;

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
