
-- ---------------------------------------------------------------------------------------------
-- Webhook delivery (CONTRACT §21, docs/webhooks.md). witn_admin registers endpoints; every
-- notification is queued, in the transaction that writes it, for every endpoint whose filters
-- match (witn.webhook_deliveries); the delivery worker (with witn in shared_preload_libraries)
-- POSTs it signed as Standard Webhooks say, outside that transaction, and records every attempt.
-- ---------------------------------------------------------------------------------------------

-- A new endpoint secret: "whsec_" and the base64 of 32 random bytes (pg_strong_random).
CREATE FUNCTION @extschema@.webhook_secret() RETURNS text
    AS 'MODULE_PATHNAME', 'witn_webhook_secret' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION @extschema@.webhook_secret() IS
    'A new Standard Webhooks endpoint secret: whsec_ and the base64 of 32 random bytes.';

CREATE TABLE @extschema@.webhook_endpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url          text NOT NULL,
    secret       text NOT NULL DEFAULT @extschema@.webhook_secret(),
    -- NULL: every kind of notification; else the kinds to deliver.
    event_types  text[] NULL,
    -- NULL: every customer's notifications; else one customer's.
    customer_key text NULL,
    enabled      boolean NOT NULL DEFAULT true,
    description  text NULL CONSTRAINT webhook_endpoints_description_length CHECK (length(description) <= 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.webhook_endpoints IS
    'Where notifications are delivered as signed webhooks (Standard Webhooks), filtered by kind (event_types) and customer; witn_admin only. A disabled endpoint''s deliveries wait until it is enabled again.';
COMMENT ON COLUMN @extschema@.webhook_endpoints.secret IS
    'The signing secret, whsec_ and the base64 of 24 to 64 bytes (made by witn.webhook_secret() when not given). Readable by witn_admin only.';

-- The URL, the secret and the kinds are checked by the core (webhook_url_host, webhook_key,
-- check_event_types); the host against witn.webhook_allowed_hosts.
CREATE FUNCTION @extschema@.webhook_endpoint_check(url text, secret text, event_types text[]) RETURNS void
    AS 'MODULE_PATHNAME', 'witn_webhook_endpoint_check' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.webhook_endpoint_check(text, text, text[]) IS
    'Internal: checks an endpoint''s URL (http or https, an allowed host), secret (whsec_) and event types; VALIDATION_ERROR (WT001) otherwise.';

CREATE FUNCTION @extschema@.webhook_endpoints_before_write() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Checked when written: an endpoint whose host was later taken off witn.webhook_allowed_hosts
    -- can still be disabled or described.
    IF TG_OP = 'INSERT' OR (NEW.url, NEW.secret, NEW.event_types) IS DISTINCT FROM (OLD.url, OLD.secret, OLD.event_types) THEN
        PERFORM @extschema@.webhook_endpoint_check(NEW.url, NEW.secret, NEW.event_types);
    END IF;
    IF length(NEW.description) > 1000 THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001',
            MESSAGE = 'VALIDATION_ERROR: description must be at most 1000 characters',
            DETAIL = format('at description (%s characters)', length(NEW.description));
    END IF;
    IF NEW.customer_key IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.customer_key IS DISTINCT FROM OLD.customer_key)
       AND NOT EXISTS (SELECT 1 FROM @extschema@.customers c WHERE c.key = NEW.customer_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT002',
            MESSAGE = format('CUSTOMER_NOT_FOUND: no customer %s', NEW.customer_key),
            DETAIL = 'witn.webhook_endpoints.customer_key',
            HINT = 'Leave customer_key NULL for every customer''s notifications, or name an existing customer.';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.webhook_endpoints_before_write() IS
    'Trigger on witn.webhook_endpoints: checks URL, secret, event types and customer; keeps updated_at.';
CREATE TRIGGER webhook_endpoints_before_write BEFORE INSERT OR UPDATE ON @extschema@.webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION @extschema@.webhook_endpoints_before_write();

CREATE TABLE @extschema@.webhook_deliveries (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    customer_key       text NOT NULL,
    notification_id    bigint NOT NULL,
    endpoint_id        bigint NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts           integer NOT NULL DEFAULT 0,
    -- When the next attempt is due (pending); NULL once delivered or failed.
    next_attempt_at    timestamptz NULL DEFAULT now(),
    last_attempt_at    timestamptz NULL,
    -- The HTTP status of the last attempt (NULL when there was no response), and what went wrong.
    last_response_code integer NULL,
    last_error         text NULL,
    delivered_at       timestamptz NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_key, id),
    CONSTRAINT webhook_deliveries_due_when_pending CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- The worker's queue: each endpoint's pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON @extschema@.webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_notification ON @extschema@.webhook_deliveries (customer_key, notification_id);
COMMENT ON TABLE @extschema@.webhook_deliveries IS
    'One row per notification and endpoint: queued with the notification, then pending until a 2xx answer (delivered) or until every wait of witn.webhook_retry_schedule is used (failed). attempts and last_* record the attempts; witn.redeliver() queues again.';

-- An endpoint whose deliveries are kept is not deleted (they would point nowhere); on Citus the
-- trigger fires on each node's copy of the reference table and checks the node's shards.
CREATE FUNCTION @extschema@.webhook_endpoints_protect() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kept bigint := 0;
    n bigint;
    shard regclass;
BEGIN
    IF TG_TABLE_NAME = 'webhook_endpoints' THEN
        SELECT count(*) INTO kept FROM @extschema@.webhook_deliveries d WHERE d.endpoint_id = OLD.id;
    ELSE
        FOR shard IN EXECUTE
            'SELECT pg_catalog.format(''%I.%I'', ''@extschema@'', ''webhook_deliveries_'' || s.shardid)::regclass
               FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement p USING (shardid)
              WHERE s.logicalrelid = ''@extschema@.webhook_deliveries''::regclass
                AND p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group)'
        LOOP
            EXECUTE pg_catalog.format('SELECT count(*) FROM %s d WHERE d.endpoint_id = $1', shard) INTO n USING OLD.id;
            kept := kept + n;
        END LOOP;
    END IF;
    IF kept > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('webhook endpoint %s has deliveries and cannot be deleted', OLD.id),
            DETAIL = format('%s rows of witn.webhook_deliveries refer to it.', kept),
            HINT = format('Disable it (UPDATE witn.webhook_endpoints SET enabled = false WHERE id = %s), or delete its deliveries first (DELETE FROM witn.webhook_deliveries WHERE endpoint_id = %s).', OLD.id, OLD.id);
    END IF;
    RETURN OLD;
END $$;
COMMENT ON FUNCTION @extschema@.webhook_endpoints_protect() IS
    'Trigger on witn.webhook_endpoints: an endpoint with deliveries cannot be deleted (disable it, or delete its deliveries first).';
CREATE TRIGGER webhook_endpoints_protect BEFORE DELETE ON @extschema@.webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION @extschema@.webhook_endpoints_protect();

-- witn.redeliver(): queues a notification again, for one endpoint or every endpoint it goes to.
-- A delivery still pending is made due now; otherwise a new pending delivery is added (the
-- delivered or failed one stays, with its attempts).
CREATE FUNCTION @extschema@.redeliver(notification_id bigint, endpoint_id bigint DEFAULT NULL)
    RETURNS SETOF @extschema@.webhook_deliveries
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    note record;
    e record;
    queued @extschema@.webhook_deliveries;
    found_one boolean := false;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'WT001', MESSAGE = 'VALIDATION_ERROR: notification_id: a witn.notifications id',
            HINT = 'Name the notification to deliver again by its witn.notifications.id.';
    END IF;
    SELECT n.customer_key, n.kind INTO note FROM @extschema@.notifications n WHERE n.id = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'WT013', MESSAGE = format('NOTIFICATION_NOT_FOUND: no notification %s', $1),
            DETAIL = format('notification_id %s', $1);
    END IF;
    IF $2 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM @extschema@.webhook_endpoints w WHERE w.id = $2) THEN
        RAISE EXCEPTION USING ERRCODE = 'WT014', MESSAGE = format('WEBHOOK_ENDPOINT_NOT_FOUND: no webhook endpoint %s', $2),
            DETAIL = format('endpoint_id %s', $2);
    END IF;
    FOR e IN
        SELECT w.id, (w.customer_key IS NULL OR w.customer_key = note.customer_key)
                     AND (w.event_types IS NULL OR note.kind = ANY (w.event_types)) AS matches
          FROM @extschema@.webhook_endpoints w
         WHERE $2 IS NULL OR w.id = $2
         ORDER BY w.id
    LOOP
        IF NOT e.matches THEN
            CONTINUE WHEN $2 IS NULL;
            RAISE EXCEPTION USING ERRCODE = 'WT001',
                MESSAGE = format('VALIDATION_ERROR: endpoint_id: webhook endpoint %s does not take notification %s', e.id, $1),
                DETAIL = format('The notification is an %s for customer %s; the endpoint''s customer_key or event_types leave it out.', note.kind, note.customer_key),
                HINT = 'Redeliver to an endpoint whose filters match, or leave endpoint_id out for all of them.';
        END IF;
        found_one := true;
        UPDATE @extschema@.webhook_deliveries d SET next_attempt_at = now()
         WHERE d.customer_key = note.customer_key
           AND d.id = (SELECT min(p.id) FROM @extschema@.webhook_deliveries p
                        WHERE p.customer_key = note.customer_key AND p.notification_id = $1
                          AND p.endpoint_id = e.id AND p.status = 'pending')
        RETURNING * INTO queued;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.webhook_deliveries (customer_key, notification_id, endpoint_id)
            VALUES (note.customer_key, $1, e.id)
            RETURNING * INTO queued;
        END IF;
        RETURN NEXT queued;
    END LOOP;
    IF NOT found_one AND $2 IS NULL THEN
        RAISE NOTICE 'witn: no webhook endpoint takes notification %', $1
            USING HINT = 'Add one to witn.webhook_endpoints.';
    END IF;
END $$;
COMMENT ON FUNCTION @extschema@.redeliver(bigint, bigint) IS
    'Queues a notification again for one webhook endpoint, or for every endpoint whose filters take it: a pending delivery is made due now, otherwise a new pending delivery is added. Returns the queued deliveries. witn_admin only.';

-- Monitoring: one row per endpoint (docs/operations.md shows alerts on it).
CREATE VIEW @extschema@.webhook_status WITH (security_invoker = true) AS
    SELECT e.id AS endpoint_id, e.url, e.enabled,
           coalesce(q.pending, 0) AS pending,
           coalesce(q.due, 0) AS due,
           coalesce(q.retrying, 0) AS retrying,
           q.oldest_pending_at,
           now() - q.oldest_pending_at AS oldest_pending_age,
           coalesce(f.failed, 0) AS failed,
           l.last_attempt_at, l.last_response_code, l.last_error,
           s.last_delivered_at
      FROM @extschema@.webhook_endpoints e
      LEFT JOIN LATERAL (
          SELECT count(*) AS pending, count(*) FILTER (WHERE d.next_attempt_at <= now()) AS due,
                 count(*) FILTER (WHERE d.attempts > 0) AS retrying, min(d.created_at) AS oldest_pending_at
            FROM @extschema@.webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending') q ON true
      LEFT JOIN LATERAL (
          SELECT count(*) AS failed FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.status = 'failed') f ON true
      LEFT JOIN LATERAL (
          SELECT d.last_attempt_at, d.last_response_code, d.last_error FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.last_attempt_at IS NOT NULL AND d.status <> 'delivered'
           ORDER BY d.last_attempt_at DESC LIMIT 1) l ON true
      LEFT JOIN LATERAL (
          SELECT max(d.delivered_at) AS last_delivered_at FROM @extschema@.webhook_deliveries d
           WHERE d.endpoint_id = e.id AND d.status = 'delivered') s ON true;
COMMENT ON VIEW @extschema@.webhook_status IS
    'Per webhook endpoint: its backlog (pending, due now, retrying, the oldest pending delivery and its age), failed deliveries, the last failed attempt''s response or error, and the last delivery.';

-- The delivery worker of this database is started at commit (a database where witn was just
-- installed is picked up at once); false when witn is not in shared_preload_libraries.
CREATE FUNCTION @extschema@.webhook_wake() RETURNS boolean
    AS 'MODULE_PATHNAME', 'witn_webhook_wake' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.webhook_wake() IS
    'Internal: asks the delivery launcher to start this database''s webhook worker when the transaction commits; false when witn is not preloaded.';

REVOKE ALL ON @extschema@.webhook_endpoints, @extschema@.webhook_deliveries, @extschema@.webhook_status FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.webhook_secret(), @extschema@.webhook_endpoint_check(text, text, text[]),
    @extschema@.webhook_endpoints_before_write(), @extschema@.webhook_endpoints_protect(),
    @extschema@.redeliver(bigint, bigint), @extschema@.webhook_wake() FROM PUBLIC;
-- witn_admin registers endpoints and reads their secrets; the others never see a secret.
GRANT SELECT, DELETE ON @extschema@.webhook_endpoints TO witn_admin;
GRANT INSERT (url, secret, event_types, customer_key, enabled, description),
      UPDATE (url, secret, event_types, customer_key, enabled, description)
    ON @extschema@.webhook_endpoints TO witn_admin;
GRANT EXECUTE ON FUNCTION @extschema@.webhook_secret(), @extschema@.webhook_endpoint_check(text, text, text[]),
    @extschema@.redeliver(bigint, bigint) TO witn_admin;
-- Deliveries hold no secret: staff read them; witn_admin deletes old ones (docs/operations.md).
GRANT SELECT ON @extschema@.webhook_deliveries, @extschema@.webhook_status TO witn_admin, witn_reader;
GRANT DELETE ON @extschema@.webhook_deliveries TO witn_admin;
-- The status view reads endpoints without their secrets.
GRANT SELECT (id, url, event_types, customer_key, enabled, description, created_at, updated_at)
    ON @extschema@.webhook_endpoints TO witn_reader;

SELECT @extschema@.webhook_wake();
