-- witn 0.1.0 -> 0.2.0: settlement finds outcomes through check_at, so that an event's update of
-- its outcome no longer changes an indexed column (HOT updates); settle_batch is written in C.
\echo Use "ALTER EXTENSION witn UPDATE TO '0.2.0'" to load this file. \quit

-- check_at starts equal to settles_at: every unresolved outcome is found when it is due. This
-- rewrites every outcome row once.
ALTER TABLE @extschema@.outcomes ADD COLUMN check_at timestamptz;
UPDATE @extschema@.outcomes SET check_at = settles_at;
ALTER TABLE @extschema@.outcomes ALTER COLUMN check_at SET NOT NULL;
COMMENT ON COLUMN @extschema@.outcomes.check_at IS 'When settlement next looks at the outcome: settles_at as it was when the outcome opened or was last checked; never later than settles_at.';
-- Applies to pages written from now on; VACUUM FULL or CLUSTER applies it to the rest.
ALTER TABLE @extschema@.outcomes SET (fillfactor = 90);

DROP INDEX @extschema@.outcomes_due_idx;
CREATE INDEX outcomes_due_idx ON @extschema@.outcomes (check_at) WHERE resolved_at IS NULL;

-- Replaced in place: its grants (none) stay.
CREATE OR REPLACE FUNCTION @extschema@.settle_batch(as_of timestamptz, max_outcomes integer, only_outcome bigint,
    OUT confirmed bigint, OUT failed bigint)
    AS 'MODULE_PATHNAME', 'witn_settle_batch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.settle_batch(timestamptz, integer, bigint) IS
    'Internal to witn.settle(): one settlement pass.';

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
          FROM @extschema@.settle_batch(as_of, max_outcomes, NULL) b;
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
            SELECT * INTO one FROM @extschema@.settle_batch(as_of, 1, due.id);
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
