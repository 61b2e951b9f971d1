
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
        PERFORM @extschema@.purged_skipped('witn.simulate()', $1, $2, $3);
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
    PERFORM @extschema@.purged_skipped('witn.simulate()', $1, $2, $3);
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
