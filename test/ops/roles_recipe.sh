#!/usr/bin/env bash
# Roles across databases (docs/operations.md, "Roles and application users"): the recipe's two
# SQL blocks, read out of the documentation and run as written (only the role and database
# names get a unique suffix, since roles are cluster-wide), then every login role is checked by
# connecting as it: ingest sends events and reads nothing, the reader reads invoice lines, the
# operator settles and may not settle ahead, the admin administers, the NOINHERIT authenticator
# holds nothing until it switches role, passwords set with \password stay out of the server log,
# and a reader of one database cannot connect to another once the recipe ran there, although
# witn_reader is one role in both. Also: the settings table of the same page lists every witn.*
# setting the library defines, with its default and context.
# Needs PGHOST, PGPORT, PGUSER (a superuser) and PGDATABASE (a fresh database with witn).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOC=$ROOT/docs/operations.md
db_a=$PGDATABASE
db_b="${PGDATABASE}_eu"
sfx_a="_a$$"
sfx_b="_b$$"
fail=0
check() { # description expected actual
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi
}
q() { psql -X -At -q -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
as() { # ROLE DATABASE SQL: the output, or the error with its SQLSTATE
    PGUSER=$1 psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$2" -c "$3" 2>&1 |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p; /^ERROR/!{/^LOCATION/!p}' | head -n 1
}
refused() { # ROLE DATABASE SQL: the SQLSTATE it fails with, or "succeeded"
    local out
    if out=$(PGUSER=$1 psql -X -At -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$2" -c "$3" 2>&1); then
        echo succeeded
    else
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' <<<"$out" | head -n 1
    fi
}

# A block of the doc: the ```sql fence after the marker <!-- roles-recipe:NAME -->, with the
# recipe's names made this run's (database billing -> $2, each role -> role$3).
block() { # NAME DATABASE SUFFIX
    local sql
    sql=$(awk -v m="<!-- roles-recipe:$1 -->" -v e="<!-- /roles-recipe:$1 -->" '
        $0 == m { on = 1; next } $0 == e { on = 0 } on && !/^```/' "$DOC")
    [ -n "$sql" ] || { echo "not ok - docs/operations.md has no block roles-recipe:$1" >&2; return 1; }
    sed -E -e "s/\bbilling\b/$2/g" \
        -e "s/\b(billing_app|finance|ops|billing_admin|authenticator)\b/\1$3/g" <<<"$sql"
}
# shellcheck disable=SC2317 # used by the EXIT trap
roles() { echo "billing_app$1 finance$1 ops$1 billing_admin$1 authenticator$1"; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres \
        -c "DROP DATABASE IF EXISTS \"$db_b\" WITH (FORCE)" -c "DROP DATABASE IF EXISTS \"${db_b}_copy\" WITH (FORCE)" \
        >/dev/null 2>&1 || true
    local r
    for r in $(roles "$sfx_a") $(roles "$sfx_b"); do
        # Their grants in database A go with them (DROP OWNED revokes what they were granted).
        psql -X -q -d "$db_a" -c "DROP OWNED BY $r" >/dev/null 2>&1 || true
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# The second witn database, and a confirmed outcome in each.
PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db_b\"" \
    -c "CREATE DATABASE \"$db_b\"" >/dev/null
for db in "$db_a" "$db_b"; do
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS witn CASCADE;
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std');
INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('support', '[]', '1 hour');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50);
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
VALUES ('acme', 'before', 'replied', 'support', now() - interval '2 hours');
SELECT witn.settle();
SQL
done

# ---- the recipe, for database A ------------------------------------------------------------
block roles "$db_a" "$sfx_a" | psql -X -q -v ON_ERROR_STOP=1 -d "$db_a"
block database "$db_a" "$sfx_a" | psql -X -q -v ON_ERROR_STOP=1 -d "$db_a"
app=billing_app$sfx_a fin=finance$sfx_a ops=ops$sfx_a adm=billing_admin$sfx_a auth=authenticator$sfx_a

check "PUBLIC has neither CONNECT nor TEMPORARY on the database" "false false" \
    "$(q "$db_a" "SELECT has_database_privilege('public', current_database(), 'CONNECT') || ' ' ||
                         has_database_privilege('public', current_database(), 'TEMPORARY')")"

# ---- ingest: sends events, reads nothing -----------------------------------------------------
check "billing_app sends an event" "" \
    "$(as "$app" "$db_a" "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
                          VALUES ('acme', 't1', 'replied', 'support', now() - interval '2 hours')")"
check "billing_app cannot read events, not even its own" 42501 "$(refused "$app" "$db_a" "SELECT count(*) FROM witn.events")"
check "billing_app cannot read them back with RETURNING" 42501 \
    "$(refused "$app" "$db_a" "INSERT INTO witn.events (customer_key, key, action) VALUES ('acme', 't1', 'replied') RETURNING id")"
check "billing_app cannot read invoice lines" 42501 "$(refused "$app" "$db_a" "SELECT count(*) FROM witn.invoice_lines")"
check "billing_app cannot settle" 42501 "$(refused "$app" "$db_a" "SELECT witn.settle()")"
check "billing_app cannot create temporary tables" 42501 "$(refused "$app" "$db_a" "CREATE TEMP TABLE t (x int)")"

# ---- operator: settles, not ahead; watches --------------------------------------------------
check "ops settles (the event billing_app sent confirms an outcome)" "(1,0,0)" "$(as "$ops" "$db_a" "SELECT witn.settle()")"
check "ops may not settle as of a later time than now()" 42501 \
    "$(refused "$ops" "$db_a" "SELECT witn.settle(now() + interval '1 day')")"
check "ops reads the monitoring views" "0 0" \
    "$(as "$ops" "$db_a" "SELECT (SELECT due FROM witn.settlement_backlog) || ' ' || (SELECT count(*) FROM witn.settlement_errors)")"
check "ops purges" "0" "$(as "$ops" "$db_a" "SELECT witn.purge_events(now() - interval '1 year')")"
check "ops cannot read invoice lines" 42501 "$(refused "$ops" "$db_a" "SELECT count(*) FROM witn.invoice_lines")"
check "ops cannot change prices" 42501 "$(refused "$ops" "$db_a" "UPDATE witn.rate_card_prices SET price_per_unit = 0")"

# ---- reader: reads everything, writes nothing ------------------------------------------------
check "finance reads the invoice lines" "2|5.00" \
    "$(as "$fin" "$db_a" "SELECT count(*) || '|' || sum(amount) FROM witn.invoice_lines")"
check "finance reads through the API schema too" "2" "$(as "$fin" "$db_a" "SELECT count(*) FROM witn_api.invoice_lines")"
check "finance cannot send events" 42501 \
    "$(refused "$fin" "$db_a" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'x', 'replied', 'support')")"
check "finance cannot settle" 42501 "$(refused "$fin" "$db_a" "SELECT witn.settle()")"
check "finance cannot read webhook secrets" 42501 "$(refused "$fin" "$db_a" "SELECT secret FROM witn.webhook_endpoints")"

# ---- admin: administers and runs the product, sends no events --------------------------------
check "billing_admin adds a customer" "" "$(as "$adm" "$db_a" "INSERT INTO witn.customers (key, rate_card_key) VALUES ('initech', 'std')")"
check "billing_admin settles (it is a witn_operator)" "(0,0,0)" "$(as "$adm" "$db_a" "SELECT witn.settle()")"
check "billing_admin cannot send events" 42501 \
    "$(refused "$adm" "$db_a" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'y', 'replied', 'support')")"

# ---- the authenticator: nothing as itself, each role after SET ROLE --------------------------
check "authenticator reads nothing as itself (NOINHERIT)" 42501 "$(refused "$auth" "$db_a" "SELECT count(*) FROM witn_api.outcomes")"
check "authenticator reads after SET ROLE witn_reader" "2" \
    "$(as "$auth" "$db_a" "SET ROLE witn_reader; SELECT count(*) FROM witn_api.outcomes")"

# ---- passwords the PostgreSQL way: \password sends a SCRAM hash, never the password ----------
secret="recipe-pw-$$-$RANDOM"
if log=$PGHOST/server.log && [ -r "$log" ]; then
    # psql reads the password from /dev/tty, or from stdin when there is no terminal (setsid).
    printf '%s\n%s\n' "$secret" "$secret" |
        PGOPTIONS='-c log_statement=all' setsid -w psql -X -q -d "$db_a" -c "\\password $app" >/dev/null 2>&1
    check "\\password stores a SCRAM-SHA-256 hash" "t" \
        "$(q "$db_a" "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = '$app'")"
    check "\\password's statement (logged with log_statement = all) does not hold the password" "0 1" \
        "$(grep -c -- "$secret" "$log") $(grep -c "ALTER USER $app PASSWORD 'SCRAM-SHA-256" "$log")"
else
    echo "# skipped the \\password check: no readable server log at \$PGHOST/server.log"
fi

# ---- a second database: the same witn_reader, separated by CONNECT ---------------------------
# As the DBA reported: before the recipe runs there, A's reader reads B's invoice lines.
check "before the recipe runs in database B, A's reader reads B's invoice lines (PUBLIC may connect)" "1" \
    "$(as "$fin" "$db_b" "SELECT count(*) FROM witn.invoice_lines")"
block roles "$db_b" "$sfx_b" | psql -X -q -v ON_ERROR_STOP=1 -d "$db_b"
block database "$db_b" "$sfx_b" | psql -X -q -v ON_ERROR_STOP=1 -d "$db_b"
for r in "$fin" "$app" "$ops" "$auth"; do
    out=$(PGUSER=$r psql -X -At -d "$db_b" -c "SELECT 1" 2>&1 || true)
    check "after it, $r (database A's) cannot connect to database B" \
        "FATAL:  permission denied for database \"$db_b\"|DETAIL:  User does not have CONNECT privilege." \
        "$(grep -o 'FATAL:  permission denied for database .*' <<<"$out" | head -n 1)|$(grep -o 'DETAIL:  .*' <<<"$out" | head -n 1)"
done
check "B's own reader reads B's invoice lines" "1" "$(as "finance$sfx_b" "$db_b" "SELECT count(*) FROM witn.invoice_lines")"
out=$(PGUSER=finance$sfx_b psql -X -At -d "$db_a" -c "SELECT 1" 2>&1 || true)
check "B's own reader cannot connect to database A" "FATAL:  permission denied for database \"$db_a\"" \
    "$(grep -o 'FATAL:  permission denied for database .*' <<<"$out" | head -n 1)"
check "A's reader still reads A" "2" "$(as "$fin" "$db_a" "SELECT count(*) FROM witn.invoice_lines")"
check "witn_reader is one role for both databases" "1" \
    "$(q postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'witn_reader'")"

# ---- a copy starts open again: grants are not copied from the template -----------------------
PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "CREATE DATABASE \"${db_b}_copy\" TEMPLATE \"$db_b\""
check "a database copied from B (CREATE DATABASE ... TEMPLATE) is open to PUBLIC again" "t" \
    "$(q postgres "SELECT has_database_privilege('public', '${db_b}_copy', 'CONNECT')")"
psql -X -q -d postgres -c "DROP DATABASE \"${db_b}_copy\""
# ---- the settings table of docs/operations.md ("Settings and logs") lists every witn.* setting --
# with its default and context, as the loaded library defines them.
doc_settings=$(awk '$0 == "<!-- witn-settings -->" { on = 1; next } $0 == "<!-- /witn-settings -->" { on = 0 }
                    on && /^\| `witn\./' "$DOC" |
    awk -F' [|] ' '{ n = $1; sub(/^[|] /, "", n); d = $3; sub(/ .*/, "", d); c = $4
                     gsub(/`/, "", n); gsub(/`/, "", d); gsub(/`/, "", c); if (d == "\047\047") d = ""
                     print n "|" d "|" c }' | LC_ALL=C sort)
server_settings=$(psql -X -At -q -v ON_ERROR_STOP=1 -d "$db_a" -c "SELECT witn.evaluate('[]', '[]')" \
    -c "SELECT name || '|' || CASE WHEN source = 'default' THEN current_setting(name) ELSE '(set in ' || source || ')' END
               || '|' || context FROM pg_settings WHERE name LIKE 'witn.%'" | tail -n +2 | LC_ALL=C sort)
check "docs/operations.md lists every witn setting with its default and context" "$server_settings" "$doc_settings"
exit "$fail"
