#!/usr/bin/env bash
# COPY witn.events FROM STDIN applies events exactly like INSERTs of one row per statement.
# Random event streams (ties, back-dating, late events of outcomes already due, idempotency
# retries inside one stream) go to twin outcome keys: 'row_<i>' row by row, 'copy_<i>' in one
# COPY. The twins must end alike, event dispositions (late, duplicate) included, and
# witn.verify() must be empty. A COPY with one bad row writes nothing.
# Environment: PGHOST PGPORT PGUSER PGDATABASE (a fresh database with witn installed).
set -euo pipefail
: "${PGDATABASE:?set PGDATABASE}"

sql() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

sql <<'SQL'
SET TimeZone = 'UTC';
SELECT setseed(0.1123);
INSERT INTO witn.rate_cards (key, currency) VALUES ('cp_card', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('cp_a', 'cp_card'), ('cp_b', 'cp_card');
INSERT INTO witn.agents (key, condition, settlement_period, attribution_method) VALUES
    ('cp_support', '[{"fact": "agent_replied", "operator": "seen"}, {"fact": "escalated", "operator": "not seen"},
                     {"fact": "reopened", "operator": "not seen"}, {"fact": "csat", "operator": "not lte", "value": 3}]',
     '3 days', 'last'),
    ('cp_verify', '[{"fact": "identity_check", "operator": "match", "value": "verified"},
                    {"fact": "credit_score", "operator": "gte", "value": 700}, {"fact": "document_signed", "operator": "seen"}]',
     '3 days', 'sum'),
    ('cp_warnings', '[{"fact": "warning", "operator": "count_eq", "value": 3}, {"fact": "csat", "operator": "not gt", "value": 4}]',
     '3 days', 'average'),
    ('cp_flag', '[{"fact": "escalated", "operator": "match", "value": true}]', '3 days', 'max'),
    ('cp_always', '[]', '3 days', 'first');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
SELECT 'cp_card', key, 2.5 FROM witn.agents WHERE key LIKE 'cp_%';

-- The streams, kept in a scratch schema so that both ways of sending read the same rows.
CREATE SCHEMA copy_test;
CREATE TABLE copy_test.stream (
    i               integer NOT NULL,
    seq             integer NOT NULL,
    customer        text NOT NULL,
    agent           text,
    action          text NOT NULL,
    properties      jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    idempotency_key text,
    PRIMARY KEY (i, seq)
);
DO $$
DECLARE
    customer text;
    agent text;
    base timestamptz;
    at timestamptz;
    props jsonb;
    retry copy_test.stream;
BEGIN
    FOR n IN 1..300 LOOP
        customer := CASE WHEN random() < 0.5 THEN 'cp_a' ELSE 'cp_b' END;
        agent := (ARRAY['cp_support', 'cp_verify', 'cp_warnings', 'cp_flag', 'cp_always'])[1 + floor(random() * 5)::int];
        -- One stream in ten starts eight days ago: its outcome is due after the first event and
        -- every later event of it is late.
        base := CASE WHEN random() < 0.1 THEN now() - interval '8 days' ELSE now() - interval '1 day' END;
        at := base;
        FOR seq IN 1..(1 + floor(random() * 20)::int) LOOP
            IF seq > 1 AND random() < 0.1 THEN
                -- A retry of an earlier event that carried an idempotency key.
                SELECT * INTO retry FROM copy_test.stream s
                 WHERE s.i = n AND s.idempotency_key IS NOT NULL ORDER BY random() LIMIT 1;
                IF FOUND THEN
                    INSERT INTO copy_test.stream VALUES (n, seq, customer, retry.agent, retry.action, retry.properties,
                                                         at + interval '1 second', retry.idempotency_key);
                    CONTINUE;
                END IF;
            END IF;
            IF random() < 0.6 THEN
                at := at + make_interval(mins => 1 + floor(random() * 30)::int);   -- else: a tie
            END IF;
            props := CASE floor(random() * 6)::int
                         WHEN 0 THEN jsonb_build_object('value', floor(random() * 6)::int)
                         WHEN 1 THEN jsonb_build_object('value', (ARRAY[650, 699.999, 700, 812.5])[1 + floor(random() * 4)::int])
                         WHEN 2 THEN jsonb_build_object('value', (ARRAY['verified', 'rejected', '5'])[1 + floor(random() * 3)::int])
                         WHEN 3 THEN jsonb_build_object('value', random() < 0.5)
                         ELSE '{}'::jsonb END;
            IF random() < 0.3 THEN
                props := props || jsonb_build_object('attribution', round((random() * 10)::numeric, 2));
            END IF;
            INSERT INTO copy_test.stream VALUES (
                n, seq, customer, CASE WHEN seq = 1 OR random() < 0.2 THEN agent END,
                (ARRAY['agent_replied', 'escalated', 'reopened', 'csat', 'identity_check', 'credit_score',
                       'document_signed', 'warning', 'note'])[1 + floor(random() * 9)::int],
                props,
                -- one event in five back-dated by up to two hours
                CASE WHEN random() < 0.2 THEN at - make_interval(mins => floor(random() * 120)::int) ELSE at END,
                CASE WHEN random() < 0.5 THEN n || '-' || seq END);
        END LOOP;
    END LOOP;
END $$;
SQL

# Row by row: one INSERT statement per event, each in its own transaction, as clients send them.
sql -c "COPY (SELECT format('INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) VALUES (%L, %L, %L, %L, %L, %L, %L);',
                            customer, 'row_' || i, action, agent, properties, occurred_at, 'row:' || idempotency_key)
                FROM copy_test.stream ORDER BY i, seq) TO STDOUT" | sql

# The same events in one COPY, streams interleaved.
sql -c "COPY (SELECT customer, 'copy_' || i, action, agent, properties, occurred_at, 'copy:' || idempotency_key
                FROM copy_test.stream ORDER BY seq, i) TO STDOUT" \
  | sql -c "COPY witn.events (customer_key, key, action, agent_key, properties, occurred_at, idempotency_key) FROM STDIN"

summary=$(sql <<'SQL'
SELECT format('%s events, %s late, %s duplicates, %s outcomes',
              count(*), count(*) FILTER (WHERE late), count(*) FILTER (WHERE duplicate_of IS NOT NULL),
              (SELECT count(*) FROM witn.outcomes WHERE customer_key LIKE 'cp_%'))
  FROM witn.events WHERE customer_key LIKE 'cp_%';
SQL
)
echo "ingest_copy: $summary"

# Coverage: late events and duplicates must both occur, or the comparison proves less.
read -r late dups < <(sql -F ' ' -c "SELECT count(*) FILTER (WHERE late), count(*) FILTER (WHERE duplicate_of IS NOT NULL) FROM witn.events WHERE key LIKE 'copy_%'")
[ "$late" -ge 20 ] || fail "only $late late events in the COPY: the streams do not exercise late events"
[ "$dups" -ge 20 ] || fail "only $dups duplicates in the COPY: the streams do not exercise idempotency"

mismatches=$(sql <<'SQL'
WITH o AS (
    SELECT split_part(o.key, '_', 1) AS way, split_part(o.key, '_', 2)::int AS i, o.*,
           (SELECT coalesce(jsonb_object_agg(f.key, f.value - 'seq'), '{}') FROM jsonb_each(o.facts) f) AS facts_by_value,
           (SELECT array_agg(format('%s/%s/%s', e.late, e.duplicate_of IS NOT NULL, e.action) ORDER BY e.id)
              FROM witn.events e WHERE e.customer_key = o.customer_key AND e.key = o.key) AS dispositions
      FROM witn.outcomes o WHERE o.customer_key LIKE 'cp_%'
), r AS (SELECT * FROM o WHERE way = 'row'), c AS (SELECT * FROM o WHERE way = 'copy')
SELECT format('case %s: row %s, copy %s', coalesce(r.i, c.i),
              row(r.status, r.scheduled_resolution, r.settles_at, r.facts_by_value, r.quantity, r.accepted_events, r.late_events, r.dispositions),
              row(c.status, c.scheduled_resolution, c.settles_at, c.facts_by_value, c.quantity, c.accepted_events, c.late_events, c.dispositions))
  FROM r FULL JOIN c ON c.i = r.i
 WHERE r.id IS NULL OR c.id IS NULL
    OR (r.status, r.scheduled_resolution, r.settles_at, r.facts_by_value, r.quantity, r.condition_holds,
        r.accepted_events, r.late_events, r.dispositions)
       IS DISTINCT FROM
       (c.status, c.scheduled_resolution, c.settles_at, c.facts_by_value, c.quantity, c.condition_holds,
        c.accepted_events, c.late_events, c.dispositions);
SQL
)
[ -z "$mismatches" ] || fail "COPY and row-by-row disagree:
$mismatches"

differences=$(sql -c "SELECT outcome_key || ': ' || differences::text FROM witn.verify()")
[ -z "$differences" ] || fail "witn.verify() is not empty:
$differences"

# A COPY with one bad row (an unknown customer) fails as a whole and writes nothing.
before=$(sql -c "SELECT count(*) || '/' || (SELECT count(*) FROM witn.outcomes) FROM witn.events")
if printf 'cp_a\tcopy_bad_1\tdone\tcp_always\t{}\ncp_nobody\tcopy_bad_2\tdone\tcp_always\t{}\n' \
     | sql -c "COPY witn.events (customer_key, key, action, agent_key, properties) FROM STDIN" 2>/tmp/ingest_copy.$$.err; then
    fail "a COPY with an unknown customer was accepted"
fi
grep -q 'CUSTOMER_NOT_FOUND' /tmp/ingest_copy.$$.err || fail "unexpected error for the bad COPY: $(cat /tmp/ingest_copy.$$.err)"
rm -f /tmp/ingest_copy.$$.err
after=$(sql -c "SELECT count(*) || '/' || (SELECT count(*) FROM witn.outcomes) FROM witn.events")
[ "$before" = "$after" ] || fail "the failed COPY wrote rows: events/outcomes $before before, $after after"

echo "ingest_copy: PASS"
