-- witn 0.2.0 -> 0.3.0: one write path. Every statement streams through the same direct code
-- (the SQL upsert and its callback witn.fold_existing are gone), and the SQL objects carry their
-- version so that a library of another version refuses to write (55000) instead of guessing.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.3.0'" to load this file. \quit

DROP FUNCTION @extschema@.fold_existing(text, text, text, text, text, timestamptz, bigint, bigint,
    text, text, text, bigint, text, bigint);

-- The argument stamps the version of these SQL objects: a library of another version refuses
-- to apply events (55000, saying what to do) instead of writing what this schema does not hold.
DROP TRIGGER events_apply ON @extschema@.events;
CREATE TRIGGER events_apply AFTER INSERT ON @extschema@.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_apply('0.3.0');

DROP FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint);
CREATE FUNCTION @extschema@.settle_batch(as_of timestamptz, max_outcomes integer, only_outcome bigint,
    schema_version text, OUT confirmed bigint, OUT failed bigint)
    AS 'MODULE_PATHNAME', 'witn_settle_batch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint, text) IS
    'Internal to witn.settle(): one settlement pass.';
-- As the install script leaves every function: no role may call it.
REVOKE EXECUTE ON FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.settle(as_of timestamptz DEFAULT now(), max_outcomes integer DEFAULT NULL,
    OUT confirmed bigint, OUT failed bigint, OUT errors bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    due record;
    one record;
    state text;
    msg text;
    det text;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: as_of must not be null';
    END IF;
    IF max_outcomes IS NOT NULL AND max_outcomes < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: max_outcomes must be NULL (no limit) or at least 0',
            DETAIL = format('max_outcomes = %s', max_outcomes);
    END IF;
    errors := 0;
    BEGIN
        SELECT b.confirmed, b.failed INTO confirmed, failed
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL, '0.3.0') b;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        -- Something in the batch failed: settle outcome by outcome so that one bad row is
        -- reported and skipped while the rest settle.
        NULL;
    END;
    confirmed := 0;
    failed := 0;
    FOR due IN
        SELECT o.customer_key, o.id FROM @extschema@.outcomes o
         WHERE o.resolved_at IS NULL AND o.check_at <= as_of AND o.settles_at <= as_of
         ORDER BY o.check_at
         LIMIT max_outcomes
    LOOP
        BEGIN
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id, '0.3.0');
            confirmed := confirmed + one.confirmed;
            failed := failed + one.failed;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
            errors := errors + 1;
            INSERT INTO @extschema@.settlement_errors (customer_key, outcome_id, sqlstate, message, detail)
            VALUES (due.customer_key, due.id, state, msg, nullif(det, ''));
            RAISE WARNING 'witn: outcome % (customer %) not settled: %', due.id, due.customer_key, msg
                USING DETAIL = coalesce(det, ''), HINT = 'See witn.settlement_errors; it is retried on the next run.';
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.settle(timestamptz, integer) IS
    'Settles every outcome due at as_of (at most max_outcomes, NULL for all): OPEN -> FAILED, PENDING -> scheduled_resolution, resolved_at = settles_at, one invoice line per confirmation, one notification per resolution, all in this transaction. Safe to run concurrently and repeatedly. Returns counts; outcomes that fail are recorded in witn.settlement_errors and skipped.';

-- One computation of an invoice line's amount, the core's: settlement and the payload's
-- description use it.
-- An invoice line's amount, exact (CONTRACT §14), computed by the core as settlement does.
CREATE FUNCTION @extschema@.line_amount(unit_price numeric, quantity numeric) RETURNS numeric
    AS 'MODULE_PATHNAME', 'witn_line_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.line_amount(numeric, numeric) IS
    'The amount of an invoice line: unit_price x quantity, exact and unrounded (rounding happens once, in witn.invoices).';
REVOKE EXECUTE ON FUNCTION @extschema@.line_amount(numeric, numeric) FROM PUBLIC;
CREATE OR REPLACE FUNCTION @extschema@.notification_payload(o @extschema@.outcomes, created_at timestamptz)
    RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.jsonb_build_object(
        'id', 'ntf_' || o.id,
        'type', CASE o.status WHEN 'CONFIRMED' THEN 'outcome_succeed' ELSE 'outcome_failed' END,
        'created_at', created_at,
        'data', pg_catalog.jsonb_build_object(
            'outcome_id', o.id,
            'outcome_key', o.key,
            'customer_key', o.customer_key,
            'agent_key', o.agent_key,
            'status', o.status,
            'settles_at', o.settles_at,
            'resolved_at', o.resolved_at,
            'quantity', o.quantity,
            'unit_price', o.unit_price,
            'amount', CASE WHEN o.status = 'CONFIRMED' THEN @extschema@.line_amount(o.unit_price, o.quantity) END,
            'currency', o.currency))
$$;
