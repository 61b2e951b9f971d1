-- witn 0.4.0 -> 0.5.0: customer time zones (CONTRACT §17). Every invoice line stores its
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
           round(sum(l.amount), coalesce(c.minor_units, 2)) AS amount
      FROM @extschema@.invoice_lines l
      LEFT JOIN @extschema@.currencies c ON c.code = l.currency
     GROUP BY l.customer_key, l.currency, l.billing_period, c.minor_units;
COMMENT ON VIEW @extschema@.invoices IS
    'Invoice totals per customer, currency and month (the lines'' billing_period: the calendar month of resolved_at in the customer''s timezone). amount is the exact sum rounded once to the currency''s minor units, half away from zero.';

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
