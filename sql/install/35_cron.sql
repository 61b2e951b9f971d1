
-- ---------------------------------------------------------------------------------------------
-- pg_cron: run witn.settle() every minute. pg_cron lives in one database per cluster
-- (cron.database_name); when that is not this one, the job is created there through dblink
-- with cron.schedule_in_database. Nothing here is needed to install witn.
-- How dblink connects, first that applies (docs/operations.md, "pg_cron setup"):
--   1. the foreign server witn_cron (dblink_fdw), with the caller's user mapping holding the
--      user and password: the password is readable only by that user and superusers;
--   2. the setting witn.cron_conninfo (a libpq connection string, no password in it: every
--      user of the database can read a setting);
--   3. the current user over this server's unix socket (trust or peer, or ~/.pgpass of the
--      server's OS user).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.cron_job_name() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'witn-settle:' || current_database()
$$;
COMMENT ON FUNCTION @extschema@.cron_job_name() IS 'The pg_cron job name witn uses for this database.';

-- The database pg_cron lives in (cron.database_name) and this server's first unix socket
-- directory. Both settings are readable by superusers and pg_read_all_settings only; for anyone
-- else the foreign server witn_cron's dbname says where pg_cron is ('?' when there is none), and the
-- socket is not needed (dblink lets a non-superuser in only with a password: no socket route).
CREATE FUNCTION @extschema@.cron_settings(OUT database_name text, OUT socket_directory text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    database_name := current_setting('cron.database_name', true);
    socket_directory := nullif(split_part(current_setting('unix_socket_directories'), ',', 1), '');
EXCEPTION WHEN insufficient_privilege THEN
    SELECT o.option_value INTO database_name
      FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o
     WHERE s.srvname = 'witn_cron' AND o.option_name = 'dbname';
    database_name := coalesce(database_name, '?');  -- there is one, but this role cannot know it
END $$;
COMMENT ON FUNCTION @extschema@.cron_settings() IS
    'Internal: the database pg_cron lives in and this server''s first unix socket directory.';

-- The statement that runs `statement` (a SELECT returning one value) in the pg_cron database
-- from here, with its value as text: the statement itself when pg_cron is installed here, else
-- a dblink call. Raises WT009, with `statement` in the hint, when there is no way there.
-- Names are fully qualified: it is also run after witn is gone (see 60_removal.sql).
CREATE FUNCTION @extschema@.cron_remote_statement(statement text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text;
    socket_dir text;
    dblink_schema text;
    conninfo text := nullif(btrim(current_setting('witn.cron_conninfo', true)), '');
BEGIN
    SELECT database_name, socket_directory INTO cron_db, socket_dir FROM @extschema@.cron_settings();
    IF to_regnamespace('cron') IS NOT NULL THEN
        RETURN 'SELECT (' || statement || ')::text';
    END IF;
    IF cron_db = '?' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = format('CRON_NOT_AVAILABLE: %s may not read cron.database_name, so witn cannot tell where pg_cron is', current_user),
            HINT = format('Create the foreign server witn_cron with a user mapping for %s (docs/operations.md, pg_cron setup), or run in the cron database, as the user the job should run as: %s;',
                          current_user, statement);
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
    IF EXISTS (SELECT FROM pg_foreign_server WHERE srvname = 'witn_cron') THEN
        -- dblink takes a foreign server's name for a connection string: the server's options
        -- and the current user's mapping make it.
        conninfo := 'witn_cron';
    ELSIF conninfo IS NOT NULL THEN
        IF conninfo ~* '(^|\s)password\s*=' OR conninfo ~* '^postgres(ql)?://[^/@]*:[^/@]*@'
           OR conninfo ~* '^postgres(ql)?://[^?]*\?(.*&)?password=' THEN
            RAISE EXCEPTION USING ERRCODE = 'WT009',
                MESSAGE = 'CRON_NOT_AVAILABLE: witn.cron_conninfo holds a password',
                DETAIL = 'Every user of the database can read a setting.',
                HINT = 'Remove the password from witn.cron_conninfo and give it in a user mapping of the foreign server witn_cron instead (docs/operations.md, pg_cron setup).';
        END IF;
    ELSE
        conninfo := format('dbname=%s port=%s user=%s', quote_literal(cron_db),
                           current_setting('port'), quote_literal(current_user));
        IF socket_dir IS NOT NULL THEN
            conninfo := conninfo || format(' host=%s', quote_literal(socket_dir));
        END IF;
    END IF;
    RETURN format('SELECT r FROM %I.dblink(%L, %L) AS t(r text)',
                  dblink_schema, conninfo, 'SELECT (' || statement || ')::text');
END $$;
COMMENT ON FUNCTION @extschema@.cron_remote_statement(text) IS
    'Internal: the statement that runs a statement where pg_cron lives (here, or through dblink).';

-- Runs a statement (a SELECT returning one value) in the pg_cron database and returns its value
-- as text. Whatever fails there (connecting, authenticating, pg_cron's own checks) is WT009 with
-- the message in the detail and the statement to run by hand in the hint; a value pg_cron
-- rejects (SQLSTATE class 22, e.g. a bad schedule) is WT001.
CREATE FUNCTION @extschema@.cron_call(statement text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce((@extschema@.cron_settings()).database_name, current_database());
    remote text := @extschema@.cron_remote_statement(statement);
    result text;
    failed_state text;
    failed_message text;
    failed_detail text;
BEGIN
    BEGIN
        EXECUTE remote INTO result;
        RETURN result;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS failed_state = RETURNED_SQLSTATE, failed_message = MESSAGE_TEXT,
                                failed_detail = PG_EXCEPTION_DETAIL;
    END;
    failed_message := failed_message || coalesce(nullif(': ' || btrim(failed_detail), ': '), '');
    IF failed_state LIKE '22%' THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: pg_cron rejected the call: ' || failed_message,
            HINT = 'Use cron format, e.g. ''* * * * *'' for every minute.';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'WT009',
        MESSAGE = CASE WHEN remote LIKE '%.dblink(%'
                       THEN format('CRON_NOT_AVAILABLE: could not run the call in database %s through dblink', cron_db)
                       ELSE format('CRON_NOT_AVAILABLE: pg_cron refused the call in database %s', cron_db) END,
        DETAIL = format('SQLSTATE %s: %s', failed_state, failed_message),
        HINT = format('Give witn a way into database %s (a user mapping for the foreign server witn_cron, docs/operations.md, pg_cron setup), or run there, as the user the job should run as: %s;',
                      cron_db, statement);
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
    'Schedules witn.settle() in this database with pg_cron (default: every minute) and returns the job id. Calling it again replaces the schedule. Works when pg_cron lives in another database (through dblink: the foreign server witn_cron, witn.cron_conninfo, or the unix socket).';

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
