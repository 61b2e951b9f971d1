
-- ---------------------------------------------------------------------------------------------
-- Removal (CONTRACT §26): after DROP EXTENSION witn nothing of it remains in the database. The
-- event trigger below (src/pg/removal.cpp) makes the schema witn a member of the extension for
-- that drop, so that it goes with it, and removes witn's pg_cron jobs (those for this database
-- whose name starts with "witn-") when the dropping transaction commits, wherever pg_cron lives.
-- ---------------------------------------------------------------------------------------------

-- What the commit of a DROP runs to remove this database's witn jobs: {the statement to run
-- here, the same to run by hand in the cron database, the cron database}; NULL when there is
-- nothing to remove. When pg_cron cannot be reached through dblink the drop is refused (WT009),
-- with what to run instead; without dblink (witn scheduled nothing from here) it warns.
CREATE FUNCTION @extschema@.cron_removal_statement() RETURNS text[]
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cron_db text := coalesce((@extschema@.cron_settings()).database_name, current_database());
    jobs text := format('FROM cron.job WHERE database = %L AND jobname LIKE %L', current_database(), 'witn-%');
    found bigint;
    failed_message text;
    failed_detail text;
BEGIN
    IF to_regnamespace('cron') IS NULL AND (@extschema@.cron_settings()).database_name IS NULL THEN
        RETURN NULL; -- pg_cron is not loaded: there is no job
    END IF;
    IF current_setting('application_name') LIKE 'citus\_internal gpid=%' THEN
        RETURN NULL; -- a Citus node dropping witn for its coordinator, where the jobs are
    END IF;
    BEGIN
        found := @extschema@.cron_call('SELECT count(*) ' || jobs)::bigint;
    EXCEPTION WHEN SQLSTATE 'WT009' THEN
        GET STACKED DIAGNOSTICS failed_message = MESSAGE_TEXT, failed_detail = PG_EXCEPTION_DETAIL;
        -- Without dblink, witn could not have scheduled anything from here: say what to run if a
        -- job was made by hand, and go on. With dblink, jobs may exist and would stay behind,
        -- failing every minute: refused, with both ways out.
        IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'dblink') THEN
            RAISE WARNING 'witn: could not look for witn''s pg_cron jobs of this database: %', failed_message
                USING DETAIL = coalesce(failed_detail, ''),
                      HINT = format('If you scheduled any by hand, run in database %s once the drop has committed: SELECT cron.unschedule(jobid) %s;',
                                    cron_db, jobs);
            RETURN NULL;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'WT009',
            MESSAGE = 'CRON_NOT_AVAILABLE: DROP EXTENSION witn cannot reach pg_cron to remove this database''s jobs; nothing was dropped',
            DETAIL = failed_message || coalesce(': ' || failed_detail, ''),
            HINT = format('Make pg_cron reachable from this database and drop again; or run in database %s: SELECT cron.unschedule(jobid) %s; then here: ALTER EVENT TRIGGER witn_removal DISABLE; DROP EXTENSION witn; DROP SCHEMA witn;',
                          cron_db, jobs);
    END;
    IF found = 0 THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[@extschema@.cron_remote_statement('SELECT count(cron.unschedule(jobid)) ' || jobs),
                 'SELECT cron.unschedule(jobid) ' || jobs, cron_db];
END $$;
COMMENT ON FUNCTION @extschema@.cron_removal_statement() IS
    'Internal: how DROP EXTENSION witn removes this database''s witn pg_cron jobs when it commits.';
REVOKE EXECUTE ON FUNCTION @extschema@.cron_removal_statement() FROM PUBLIC;

CREATE FUNCTION @extschema@.removal_trigger() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'witn_removal_trigger';
COMMENT ON FUNCTION @extschema@.removal_trigger() IS
    'Internal: the witn_removal event trigger (DROP EXTENSION witn drops the schema witn and witn''s pg_cron jobs).';
REVOKE EXECUTE ON FUNCTION @extschema@.removal_trigger() FROM PUBLIC;

CREATE EVENT TRIGGER witn_removal ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION @extschema@.removal_trigger();
COMMENT ON EVENT TRIGGER witn_removal IS
    'DROP EXTENSION witn: drops the schema witn with the extension and removes witn''s pg_cron jobs of this database at commit.';
