-- witn install script. Assembled from sql/install/*.sql; every object is schema-qualified and
-- the script never relies on search_path.
\echo Use "CREATE EXTENSION witn" to load this file. \quit

-- The library this session has loaded must be this script's (CONTRACT §27): a session that
-- still holds an older one (the file was replaced under it) fails here, before anything is made.
DO $library$
BEGIN
    IF pg_catalog.to_regprocedure('@extschema@.library_version()') IS NULL THEN
        CREATE FUNCTION @extschema@.library_version() RETURNS text
            AS 'MODULE_PATHNAME', 'witn_library_version' LANGUAGE C STABLE PARALLEL SAFE;
    END IF;
    -- An older library fails here; a newer one (a later release running this script on the way
    -- to its own version) goes on.
    IF pg_catalog.string_to_array(pg_catalog.split_part(@extschema@.library_version(), '-', 1), '.')::integer[]
       < pg_catalog.string_to_array('@WITN_VERSION@', '.')::integer[] THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
EXCEPTION WHEN undefined_function OR object_not_in_prerequisite_state THEN
    RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
        MESSAGE = 'this session runs an older witn library than witn @WITN_VERSION@, which this script needs',
        HINT = 'Reconnect and run it again: a new session loads the installed library. With witn in shared_preload_libraries, restart the server first.';
END $library$;
COMMENT ON FUNCTION @extschema@.library_version() IS
    'The version of the witn library this session has loaded (the SQL objects'' is pg_extension.extversion).';

-- ---------------------------------------------------------------------------------------------
-- witn.condition: a validated billable condition, stored as canonical JSON.
-- ---------------------------------------------------------------------------------------------
CREATE TYPE @extschema@.condition;

CREATE FUNCTION @extschema@.condition_in(cstring) RETURNS @extschema@.condition
    AS 'MODULE_PATHNAME', 'witn_condition_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_out(@extschema@.condition) RETURNS cstring
    AS 'MODULE_PATHNAME', 'witn_condition_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_recv(internal) RETURNS @extschema@.condition
    AS 'MODULE_PATHNAME', 'witn_condition_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.condition_send(@extschema@.condition) RETURNS bytea
    AS 'MODULE_PATHNAME', 'witn_condition_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.condition (
    INPUT = @extschema@.condition_in,
    OUTPUT = @extschema@.condition_out,
    RECEIVE = @extschema@.condition_recv,
    SEND = @extschema@.condition_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended,
    CATEGORY = 'U'
);
COMMENT ON TYPE @extschema@.condition IS
    'A billable condition: a JSON array of leaves {fact, operator, value?} joined by AND. Validated on input; output is canonical JSON.';

-- Through text: jsonb's output is valid condition input, and the condition's is valid jsonb.
CREATE CAST (@extschema@.condition AS jsonb) WITH INOUT AS ASSIGNMENT;
CREATE CAST (jsonb AS @extschema@.condition) WITH INOUT AS ASSIGNMENT;

CREATE TYPE @extschema@.outcome_status AS ENUM ('OPEN', 'PENDING', 'CONFIRMED', 'FAILED');
COMMENT ON TYPE @extschema@.outcome_status IS
    'OPEN: accepting events, condition not yet met. PENDING: condition met at least once, waiting for settlement. CONFIRMED and FAILED are terminal.';

CREATE FUNCTION @extschema@.evaluate(condition @extschema@.condition, events jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_evaluate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.evaluate(@extschema@.condition, jsonb) IS
    'Whether the condition holds over an event log: a JSON array of {"action", "properties": {"value", ...}, "occurred_at"} in arrival order.';

CREATE FUNCTION @extschema@.describe(condition @extschema@.condition) RETURNS text
    AS 'MODULE_PATHNAME', 'witn_describe' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.describe(@extschema@.condition) IS
    'The condition in words, with the dashboard labels: "csat is missing or has value above 3 AND escalated is not seen".';

CREATE FUNCTION @extschema@.explain_facts(condition @extschema@.condition, facts jsonb,
    OUT leaf integer, OUT fact text, OUT operator text, OUT description text,
    OUT event_count bigint, OUT latest_value jsonb, OUT latest_at timestamptz, OUT passes boolean)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'witn_explain_facts' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.explain_facts(@extschema@.condition, jsonb) IS
    'One row per leaf of the condition: the fact it sees in an outcome''s facts (count, latest value and when) and whether it passes.';
