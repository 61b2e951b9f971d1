#!/usr/bin/env bash
# ALTER EXTENSION witn UPDATE from every earlier release (0.1.0, 0.2.0, 0.3.0, 0.4.0, 0.5.0): a database holding
# that release's data, upgraded, has exactly the objects of a fresh install of the current
# version, keeps every row, settles what is due as the fresh install does, and keeps applying
# new events to its outcomes.
# Needs PGHOST, PGPORT, PGUSER (a superuser) and PGDATABASE (a fresh database with witn).
set -euo pipefail
new=$PGDATABASE
fail=0
check() { # description expected actual
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
drop_db() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null 2>&1; }
trap 'for v in 010 020; do drop_db "${PGDATABASE}_from_$v"; drop_db "${PGDATABASE}_ref_$v"; done' EXIT

# The data: settled, pending, open and overdue outcomes, made by the current version.
psql -X -q -v ON_ERROR_STOP=1 -d "$new" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std'), ('globex', 'std');
INSERT INTO witn.agents (key, condition, attribution_method) VALUES
    ('support', '[{"fact": "replied", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}]', 'sum');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50);
-- Overdue now: opened 100 hours ago (72-hour window); every 3rd reopened.
INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at)
SELECT c, 'old-' || g, CASE WHEN g % 3 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
       jsonb_build_object('attribution', g % 4), now() - interval '100 hours'
  FROM generate_series(1, 60) g, unnest(ARRAY['acme', 'globex']) c;
SELECT * FROM witn.settle(now(), 50);      -- some settled, the rest overdue
-- Due in 2 days, some with a later event that moved settles_at.
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT 'acme', 'new-' || g, 'replied', 'support', now() - interval '24 hours' FROM generate_series(1, 40) g;
INSERT INTO witn.events (customer_key, key, action, occurred_at)
SELECT 'acme', 'new-' || g, 'replied', now() FROM generate_series(1, 40, 2) g;
SQL

# Every object the extension owns, with its definition, grants, options and comment.
SCHEMA_SQL=$(cat <<'SQL'
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'witn'),
member AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e'),
rel AS (SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('witn', 'witn_api'))
SELECT line FROM (
    SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM member
    UNION ALL SELECT 'column ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')
           || ' acl=' || coalesce(a.attacl::text, '')
      FROM rel c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text || ' options=' || coalesce(array_to_string(reloptions, ','), '')
           || ' acl=' || coalesce(relacl::text, '') || ' rls=' || relrowsecurity FROM rel
    UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rel c ON c.oid = i.indrelid
    UNION ALL SELECT 'constraint ' || c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
      FROM pg_constraint k JOIN rel c ON c.oid = k.conrelid
    UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN rel c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL SELECT 'policy ' || c.relname || ' ' || p.polname || ' ' || p.polcmd::text || ' ' || p.polroles::regrole[]::text
           || ' ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
      FROM pg_policy p JOIN rel c ON c.oid = p.polrelid
    UNION ALL SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid)) FROM rel c WHERE c.relkind = 'v'
    UNION ALL SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' acl=' || coalesce(p.proacl::text, '')
      FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid WHERE p.prokind IN ('f', 'p')
    UNION ALL SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ' ' || md5(d.description)
      FROM pg_description d JOIN member m ON m.classid = d.classoid AND m.objid = d.objoid
) s ORDER BY line
SQL
)

upgrade_from() { # VERSION
    local from=$1 old="${PGDATABASE}_from_${1//./}" ref="${PGDATABASE}_ref_${1//./}"
    # A copy of the current version's database for each run: the checks settle it.
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$ref\"" -c "CREATE DATABASE \"$ref\" TEMPLATE \"$new\"" >/dev/null
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$old\"" -c "CREATE DATABASE \"$old\"" >/dev/null
    q "$old" "SET client_min_messages = warning; CREATE EXTENSION witn VERSION '$from' CASCADE" >/dev/null
    check "$from installs" "$from" "$(q "$old" "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"

    # Before the update, the new library refuses new events with a clear error, writing nothing.
    q "$old" "INSERT INTO witn.rate_cards (key, currency) VALUES ('early', 'USD');
              INSERT INTO witn.customers (key, rate_card_key) VALUES ('early', 'early');
              INSERT INTO witn.agents (key) VALUES ('early');
              INSERT INTO witn.rate_card_prices VALUES ('early', 'early', 1)" >/dev/null
    refused=$(psql -X -At -d "$old" -c "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('early', 'e1', 'a', 'early')" 2>&1 || true)
    check "before ALTER EXTENSION UPDATE an event is refused with a hint to run it" "yes" \
        "$(grep -q 'HINT:  Run ALTER EXTENSION witn UPDATE' <<<"$refused" && grep -q 'ERROR:  witn.s SQL objects' <<<"$refused" && echo yes || echo "$refused")"
    check "and nothing is written" "0 0" "$(q "$old" "SELECT (SELECT count(*) FROM witn.events) || ' ' || (SELECT count(*) FROM witn.outcomes)")"
    q "$old" "DELETE FROM witn.rate_card_prices; DELETE FROM witn.agents; DELETE FROM witn.customers; DELETE FROM witn.rate_cards" >/dev/null

    # The same rows in the $from schema, the way a restore loads them (session_replication_role
    # = replica: the events trigger does not apply them again).
    copy_table() { # table columns
        psql -X -q -v ON_ERROR_STOP=1 -d "$ref" -c "COPY (SELECT $2 FROM witn.$1) TO STDOUT" |
            PGOPTIONS='-c session_replication_role=replica' psql -X -q -v ON_ERROR_STOP=1 -d "$old" -c "COPY witn.$1 ($2) FROM STDIN"
    }
    copy_table rate_cards "key, name, currency, created_at, updated_at"
    copy_table customers "key, name, rate_card_key, created_at, updated_at"
    copy_table agents "key, name, condition, settlement_period, attribution_method, version, created_at, updated_at"
    copy_table rate_card_prices "rate_card_key, agent_key, price_per_unit, created_at, updated_at"
    copy_table events "id, customer_key, key, action, agent_key, properties, occurred_at, idempotency_key, received_at, late, duplicate_of"
    OUTCOME_COLUMNS="id, customer_key, key, agent_key, status, scheduled_resolution, settles_at, resolved_at, condition,
        settlement_period, attribution_method, agent_version, unit_price, currency, quantity, condition_holds,
        accepted_events, late_events, facts, attribution, last_event_id, opened_at, updated_at"
    # check_at came with 0.2.0.
    if [ "$from" = 0.1.0 ]; then copy_table outcomes "$OUTCOME_COLUMNS"; else copy_table outcomes "$OUTCOME_COLUMNS, check_at"; fi
    # billing_period came with 0.5.0.
    LINE_COLUMNS="id, customer_key, outcome_id, outcome_key, agent_key, quantity, unit_price, amount, currency, resolved_at, created_at"
    case $from in 0.[1-4].0) copy_table invoice_lines "$LINE_COLUMNS" ;; *) copy_table invoice_lines "$LINE_COLUMNS, billing_period" ;; esac
    copy_table notifications "id, customer_key, outcome_id, kind, payload, created_at"
    for s in events outcomes invoice_lines notifications; do
        q "$old" "SELECT setval('witn.${s}_id_seq', $(q "$ref" "SELECT last_value FROM witn.${s}_id_seq"))" >/dev/null
    done

    q "$old" "ALTER EXTENSION witn UPDATE" >/dev/null
    check "ALTER EXTENSION witn UPDATE reaches the current version" \
        "$(q "$ref" "SELECT extversion FROM pg_extension WHERE extname = 'witn'")" \
        "$(q "$old" "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"

    fresh_schema=$(q "$ref" "$SCHEMA_SQL")
    upgraded_schema=$(q "$old" "$SCHEMA_SQL")
    if [ "$fresh_schema" = "$upgraded_schema" ]; then
        echo "ok - the upgraded database has the objects of a fresh install ($(wc -l <<<"$fresh_schema") definitions compared)"
    else
        echo "not ok - the upgraded database differs from a fresh install:"
        diff <(echo "$fresh_schema") <(echo "$upgraded_schema") | sed "s/^/#   /" | head -40 || true
        fail=1
    fi

    ROWS_SQL="SELECT md5(string_agg(row($OUTCOME_COLUMNS)::text, '|' ORDER BY id)) FROM witn.outcomes"
    check "every outcome kept" "$(q "$ref" "$ROWS_SQL")" "$(q "$old" "$ROWS_SQL")"
    [ "$from" = 0.1.0 ] && check "check_at starts at settles_at" "0" "$(q "$old" "SELECT count(*) FROM witn.outcomes WHERE check_at IS DISTINCT FROM settles_at")"
    check "verify() is clean after the upgrade" "0" "$(q "$old" "SELECT count(*) FROM witn.verify()")"

    SETTLE="SELECT confirmed || '/' || failed || '/' || errors FROM witn.settle(now())"
    check "settle() after the upgrade settles what a fresh install settles" "$(q "$ref" "$SETTLE")" "$(q "$old" "$SETTLE")"
    # In 60 hours, the fresh install's outcomes that a later event moved have check_at behind
    # settles_at (re-armed, not settled); those upgraded from 0.1.0 start with check_at = settles_at.
    for later in "60 hours" "4 days"; do
        SETTLE_LATER="SELECT confirmed || '/' || failed || '/' || errors FROM witn.settle(now() + interval '$later')"
        check "settle() in $later settles the same" "$(q "$ref" "$SETTLE_LATER")" "$(q "$old" "$SETTLE_LATER")"
    done
    RESULT_SQL="SELECT md5(string_agg(concat_ws(' ', customer_key, key, status, resolved_at, quantity), '|' ORDER BY customer_key, key)) FROM witn.outcomes"
    check "every outcome ends the same" "$(q "$ref" "$RESULT_SQL")" "$(q "$old" "$RESULT_SQL")"
    LINES_SQL="SELECT count(*) || ' ' || sum(amount) FROM witn.invoice_lines"
    check "the same invoice lines" "$(q "$ref" "$LINES_SQL")" "$(q "$old" "$LINES_SQL")"

    # Credits (0.6.0) work on outcomes confirmed before the upgrade, and the invoice nets them.
    REVERSE_SQL="SELECT count(*) FROM witn.reverse_outcome((SELECT min(outcome_id) FROM witn.invoice_lines), 'upgrade check')"
    check "an outcome confirmed before the upgrade can be reversed" "1" "$(q "$old" "$REVERSE_SQL")"
    NET_SQL="SELECT sum(charges) - sum(credits) = sum(amount_exact) AND sum(credits) = (SELECT sum(amount) FROM witn.credit_lines) FROM witn.invoices"
    check "and the invoices net its credit" "t" "$(q "$old" "$NET_SQL")"

    q "$old" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('globex', 'after-upgrade', 'replied', 'support'),
                                                                                 ('globex', 'after-upgrade-2', 'replied', 'support')" >/dev/null
    check "a new outcome opens after the upgrade" "PENDING/CONFIRMED" \
        "$(q "$old" "SELECT status || '/' || scheduled_resolution FROM witn.outcomes WHERE key = 'after-upgrade'")"
    check "verify() is clean after new events" "0" "$(q "$old" "SELECT count(*) FROM witn.verify()")"
}

upgrade_from 0.1.0
upgrade_from 0.2.0
upgrade_from 0.3.0
upgrade_from 0.4.0
upgrade_from 0.5.0
upgrade_from 0.6.0
upgrade_from 0.7.0
exit $fail
