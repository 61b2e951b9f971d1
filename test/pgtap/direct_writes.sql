-- The writes witn makes without SQL statements (a single-row event folded into its outcome,
-- settlement's outcome updates, invoice lines and notifications) behave as SQL writes would:
-- outcomes too large to stay inline (TOASTed condition and facts), row triggers a DBA adds to
-- witn's tables, columns a DBA added and dropped, constraints on the written tables.
BEGIN;
SELECT plan(17);
SET LOCAL TimeZone = 'UTC';

CREATE TEMP TABLE anchor AS SELECT date_trunc('minute', now()) + interval '1 day' AS t;
CREATE FUNCTION pg_temp.at(i interval) RETURNS timestamptz LANGUAGE sql STABLE AS
    $$ SELECT t + i FROM anchor $$;

INSERT INTO witn.rate_cards (key, currency) VALUES ('dw_usd', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('dw', 'dw_usd');
-- 120 leaves with long, incompressible fact names: the condition and the facts are kilobytes, stored out of line.
INSERT INTO witn.agents (key, condition, settlement_period)
SELECT 'wide', jsonb_agg(jsonb_build_object('fact', 'step_' || i || '_' || md5(i::text), 'operator',
                         CASE WHEN i = 1 THEN 'seen' ELSE 'not seen' END))::text::witn.condition, '1 hour'
  FROM generate_series(1, 120) i;
INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('small', '[{"fact": "done", "operator": "seen"}]', '1 hour');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit) VALUES ('dw_usd', 'wide', 3), ('dw_usd', 'small', 2);

-- ---------------------------------------------------------------------------------------------
-- A TOASTed outcome, updated event by event.
-- ---------------------------------------------------------------------------------------------
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('dw', 'big', 'step_1_' || md5('1'), 'wide', pg_temp.at('0'));
SELECT ok(pg_column_size(o.facts) + pg_column_size(o.condition) > 4000, 'the outcome row carries kilobytes of condition and facts')
  FROM witn.outcomes o WHERE o.key = 'big';
INSERT INTO witn.events (customer_key, key, action, occurred_at)
SELECT 'dw', 'big', 'unrelated_' || g, pg_temp.at('1 minute') + g * interval '1 second' FROM generate_series(1, 5) g;
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'big', 'unrelated', pg_temp.at('10 minutes'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'big', 'step_7_' || md5('7'), pg_temp.at('11 minutes'));
SELECT is((SELECT status || '/' || scheduled_resolution || '/' || accepted_events FROM witn.outcomes WHERE key = 'big'),
          'PENDING/FAILED/8', 'single-row events fold into the large outcome: step_7 seen, so it is scheduled to fail');
SELECT is((SELECT (facts -> ('step_7_' || md5('7')) ->> 'n') FROM witn.outcomes WHERE key = 'big'), '1',
          'its facts were rewritten out of line');
SELECT is((SELECT settles_at FROM witn.outcomes WHERE key = 'big'), pg_temp.at('1 hour 11 minutes'),
          'and its timer moved');
SELECT is((SELECT count(*) FROM witn.verify() WHERE outcome_key = 'big'), 0::bigint, 'replay agrees with the stored state');

-- ---------------------------------------------------------------------------------------------
-- Row triggers a DBA adds to witn's tables fire for writes witn makes without SQL.
-- ---------------------------------------------------------------------------------------------
CREATE TEMP TABLE audit (tbl text, op text, outcome text, status text);
CREATE FUNCTION pg_temp.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'outcomes' THEN
        INSERT INTO audit VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, NEW.key, NEW.status::text);
    ELSIF TG_TABLE_NAME = 'invoice_lines' THEN
        INSERT INTO audit VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, NEW.outcome_key, NULL);
    ELSE
        INSERT INTO audit VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, NEW.payload -> 'data' ->> 'outcome_key', NEW.kind);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER dba_audit_before BEFORE UPDATE ON witn.outcomes FOR EACH ROW EXECUTE FUNCTION pg_temp.audit();
CREATE TRIGGER dba_audit_after AFTER UPDATE ON witn.outcomes FOR EACH ROW EXECUTE FUNCTION pg_temp.audit();
CREATE TRIGGER dba_audit AFTER INSERT ON witn.invoice_lines FOR EACH ROW EXECUTE FUNCTION pg_temp.audit();
CREATE TRIGGER dba_audit AFTER INSERT ON witn.notifications FOR EACH ROW EXECUTE FUNCTION pg_temp.audit();

INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('dw', 'audited', 'start', 'small', pg_temp.at('0'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'audited', 'done', pg_temp.at('1 minute'));
SELECT is((SELECT array_agg(op || ' ' || status ORDER BY op) FROM audit WHERE tbl = 'outcomes' AND outcome = 'audited'),
          ARRAY['AFTER UPDATE PENDING', 'BEFORE UPDATE PENDING'],
          'a single-row event fires the BEFORE and AFTER UPDATE row triggers of witn.outcomes');
DELETE FROM audit;

SELECT is((SELECT confirmed || '/' || failed FROM witn.settle(pg_temp.at('2 hours'))), '1/1',
          'settlement: audited confirms, big fails');
SELECT is((SELECT array_agg(tbl || ' ' || op || ' ' || outcome || ' ' || coalesce(status, '-') ORDER BY tbl, op, outcome) FROM audit),
          ARRAY['invoice_lines AFTER INSERT audited -',
                'notifications AFTER INSERT audited outcome_succeed',
                'notifications AFTER INSERT big outcome_failed',
                'outcomes AFTER UPDATE audited CONFIRMED',
                'outcomes AFTER UPDATE big FAILED',
                'outcomes BEFORE UPDATE audited CONFIRMED',
                'outcomes BEFORE UPDATE big FAILED'],
          'settlement fires the row triggers of outcomes, invoice_lines and notifications');
DROP TRIGGER dba_audit_before ON witn.outcomes;
DROP TRIGGER dba_audit_after ON witn.outcomes;
DROP TRIGGER dba_audit ON witn.invoice_lines;
DROP TRIGGER dba_audit ON witn.notifications;

-- A BEFORE trigger that changes the row it is given: its change is what gets written.
CREATE FUNCTION pg_temp.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.late_events := NEW.late_events + 1000; RETURN NEW; END $$;
CREATE TRIGGER dba_stamp BEFORE UPDATE ON witn.outcomes FOR EACH ROW EXECUTE FUNCTION pg_temp.stamp();
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('dw', 'stamped', 'start', 'small', pg_temp.at('3 hours'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'stamped', 'more', pg_temp.at('3 hours 1 minute'));
SELECT is((SELECT late_events FROM witn.outcomes WHERE key = 'stamped'), 1000::bigint,
          'a BEFORE UPDATE trigger''s change of NEW is what an event writes');
DROP TRIGGER dba_stamp ON witn.outcomes;

-- ---------------------------------------------------------------------------------------------
-- Columns a DBA added to and dropped from witn's tables.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE witn.outcomes ADD COLUMN dba_note text DEFAULT 'kept';
ALTER TABLE witn.outcomes ADD COLUMN dba_gone int;
ALTER TABLE witn.outcomes DROP COLUMN dba_gone;
ALTER TABLE witn.invoice_lines ADD COLUMN dba_gone int;
ALTER TABLE witn.invoice_lines DROP COLUMN dba_gone;
ALTER TABLE witn.invoice_lines ADD COLUMN dba_note text DEFAULT 'line';
ALTER TABLE witn.notifications ADD COLUMN dba_exported boolean NOT NULL DEFAULT false;
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('dw', 'altered', 'start', 'small', pg_temp.at('4 hours'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'altered', 'done', pg_temp.at('4 hours 1 minute'));
SELECT is((SELECT status || '/' || scheduled_resolution || '/' || accepted_events || '/' || dba_note FROM witn.outcomes WHERE key = 'altered'),
          'PENDING/CONFIRMED/2/kept', 'with columns added and dropped, events still fold and other columns are kept');
SELECT is((SELECT confirmed || '/' || failed FROM witn.settle(pg_temp.at('6 hours'))), '1/1',
          'and settlement still settles (altered confirmed, stamped never saw done)');
SELECT is((SELECT status::text FROM witn.outcomes WHERE key = 'altered'), 'CONFIRMED', 'the altered outcome is confirmed');
SELECT is((SELECT amount || ' ' || coalesce(dba_note, 'null') FROM witn.invoice_lines WHERE outcome_key = 'altered'), '2 line',
          'its invoice line gets the default of a column a DBA added, as an INSERT would');
SELECT is((SELECT string_agg(n.kind || ' ' || n.dba_exported || ' ' || (n.id <= (SELECT last_value FROM witn.notifications_id_seq))
                             || ' ' || (n.created_at = now()), ', ' ORDER BY n.kind)
             FROM witn.notifications n JOIN witn.outcomes o ON o.customer_key = n.customer_key AND o.id = n.outcome_id
            WHERE o.key IN ('altered', 'stamped')),
          'outcome_failed false true true, outcome_succeed false true true',
          'notifications get a NOT NULL default a DBA added, their identity id and now()');

-- ---------------------------------------------------------------------------------------------
-- Constraints on the written tables hold for witn's own writes.
-- ---------------------------------------------------------------------------------------------
ALTER TABLE witn.outcomes ADD CONSTRAINT dba_small_counts CHECK (accepted_events < 3) NOT VALID;
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('dw', 'capped', 'a', 'small', pg_temp.at('7 hours'));
INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'capped', 'b', pg_temp.at('7 hours 1 minute'));
SELECT throws_ok($$ INSERT INTO witn.events (customer_key, key, action, occurred_at) VALUES ('dw', 'capped', 'c', pg_temp.at('7 hours 2 minutes')) $$,
                 '23514', NULL, 'a CHECK constraint a DBA added stops an event whose outcome would break it');
SELECT is((SELECT accepted_events || ' ' || (SELECT count(*) FROM witn.events WHERE key = 'capped')
             FROM witn.outcomes WHERE key = 'capped'), '2 2', 'and nothing of that statement is written');
ALTER TABLE witn.outcomes DROP CONSTRAINT dba_small_counts;

SELECT is((SELECT count(*) FROM witn.verify()), 0::bigint, 'witn.verify() finds no difference');
SELECT * FROM finish();
ROLLBACK;
