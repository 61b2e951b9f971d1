
-- ---------------------------------------------------------------------------------------------
-- pg_cron: run witn.settle() every minute. pg_cron lives in one database per cluster
-- (cron.database_name); when that is not this one, the job is created there through dblink
-- with cron.schedule_in_database. Nothing here is needed to install witn.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.cron_job_name() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'witn-settle:' || current_database()
$$;
COMMENT ON FUNCTION @extschema@.cron_job_name() IS 'The pg_cron job name witn uses for this database.';

-- Runs a query (a SELECT returning one value) in the pg_cron database: here when pg_cron is
-- installed here, else through dblink. Returns the value as text.
CREATE FUNCTION @extschema@.cron_call(statement text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
    dblink_schema text;
    socket_dir text := nullif(split_part(current_setting('unix_socket_directories'), ',', 1), '');
    conninfo text;
    result text;
BEGIN
    IF to_regnamespace('cron') IS NOT NULL THEN
        EXECUTE 'SELECT (' || statement || ')::text' INTO result;
        RETURN result;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = 'CRON_NOT_AVAILABLE: pg_cron is not loaded in this cluster',
            HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    END IF;
    SELECT n.nspname INTO dblink_schema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'dblink';
    IF dblink_schema IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = format('CRON_NOT_AVAILABLE: pg_cron lives in database %s, not here', cron_db),
            DETAIL = format('cron.database_name = %s, current database = %s', cron_db, current_database()),
            HINT = format('CREATE EXTENSION dblink in this database and call again, or run in database %s: %s;',
                          cron_db, statement);
    END IF;
    conninfo := format('dbname=%s port=%s user=%s', quote_literal(cron_db),
                       current_setting('port'), quote_literal(current_user));
    IF socket_dir IS NOT NULL THEN
        conninfo := conninfo || format(' host=%s', quote_literal(socket_dir));
    END IF;
    EXECUTE format('SELECT r FROM %I.dblink($1, $2) AS t(r text)', dblink_schema)
       INTO result USING conninfo, 'SELECT (' || statement || ')::text';
    RETURN result;
END $$;
COMMENT ON FUNCTION @extschema@.cron_call(text) IS 'Internal: runs a statement where pg_cron lives.';

CREATE FUNCTION @extschema@.schedule_settlement(schedule text DEFAULT '* * * * *') RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF schedule IS NULL OR btrim(schedule) = '' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: schedule must be a cron schedule',
            HINT = 'Use cron format, e.g. ''* * * * *'' for every minute.';
    END IF;
    RETURN @extschema@.cron_call(format(
        'SELECT cron.schedule_in_database(%L, %L, %L, %L)',
        @extschema@.cron_job_name(), schedule, 'SELECT witn.settle()', current_database()))::bigint;
END $$;
COMMENT ON FUNCTION @extschema@.schedule_settlement(text) IS
    'Schedules witn.settle() in this database with pg_cron (default: every minute) and returns the job id. Calling it again replaces the schedule. Works when pg_cron lives in another database (through dblink).';

CREATE FUNCTION @extschema@.unschedule_settlement() RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- False when there is nothing to remove (cron.unschedule itself would raise).
    RETURN @extschema@.cron_call(format(
        'SELECT coalesce(bool_or(cron.unschedule(jobid)), false) FROM cron.job'
        ' WHERE jobname = %L AND username = current_user', @extschema@.cron_job_name()))::boolean;
END $$;
COMMENT ON FUNCTION @extschema@.unschedule_settlement() IS
    'Removes the pg_cron job created by witn.schedule_settlement() for this database.';
