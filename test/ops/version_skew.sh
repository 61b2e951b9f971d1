#!/usr/bin/env bash
# A library and SQL objects of different versions (CONTRACT §27): the previous release's library
# (built from git) and this one, installed into a private copy of PostgreSQL, run against each
# other's SQL objects in both directions:
#   (a) the new library in a database still at the previous version (files replaced, no ALTER
#       EXTENSION yet): every writer and reader refuses with 55000 saying to run ALTER EXTENSION
#       witn UPDATE, or works; nothing is written;
#   (b) a session that loaded the previous library before the files were replaced, after another
#       session ran ALTER EXTENSION witn UPDATE: the previous release's behaviour, pinned so that
#       nothing is written and no outcome is filed with a settlement error; the update itself
#       fails in such a session and changes nothing; and this library under a later version's
#       SQL objects (a stamp-only 9.9.9 the test makes): 55000 saying to reconnect;
#   (c) witn preloaded: the delivery worker waits while the SQL objects are of another version,
#       its log line saying what to do, and delivers once they are updated.
# Starts its own cluster (WITN_PORT_BASE, default 56300) and needs git history (the previous
# release's commit) and this tree built (make). Ignores PGHOST/PGPORT/PGDATABASE. The previous
# release's build is kept in ${TMPDIR:-/tmp}/witn-release-<commit> for the next run.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SYS_BIN=${WITN_PG_BIN:-/usr/lib/postgresql/${WITN_PG_VERSION:-15}/bin}
fail=0
ok() { echo "ok - $1"; }
bad() { echo "not ok - $1"; fail=1; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi; }

# ---- the two releases ---------------------------------------------------------------------------
cur=$(sed -n 's/^EXTVERSION = //p' "$ROOT/Makefile")
prev=$(for f in "$ROOT"/sql/witn--*.sql; do v=${f##*/witn--}; v=${v%.sql}; case $v in *--* | "$cur") ;; *) echo "$v" ;; esac; done | sort -V | tail -n 1)
[ -n "$cur" ] && [ -n "$prev" ] || { bad "the current and previous versions (Makefile, sql/witn--*.sql)"; exit 1; }
for f in witn.so witn.control "sql/witn--$cur.sql"; do
    [ -f "$ROOT/$f" ] || { bad "$f is built (run make first)"; exit 1; }
done
# The newest commit whose Makefile says EXTVERSION = prev: HEAD, or the parent of the version bump.
has_prev() { git -C "$ROOT" show "$1:Makefile" 2>/dev/null | grep -qx "EXTVERSION = $prev"; }
# A shallow clone lacks the previous release: fetch the rest of the history from its origin.
if [ "$(git -C "$ROOT" rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
    git -C "$ROOT" fetch -q --unshallow 2>/dev/null || true
fi
commit=""
if has_prev HEAD; then
    commit=$(git -C "$ROOT" rev-parse HEAD)
else
    for c in $(git -C "$ROOT" rev-list HEAD -- Makefile 2>/dev/null); do
        if has_prev "$c^"; then commit=$(git -C "$ROOT" rev-parse "$c^"); break; fi
    done
fi
[ -n "$commit" ] || { bad "a commit of witn $prev in the git history (needed to build its library)"; exit 1; }

# Built once per commit and kept (a build takes a minute), under a lock for parallel runs.
cache=${TMPDIR:-/tmp}/witn-release-$commit
if [ ! -f "$cache/witn.so" ]; then
    echo "# building witn $prev's library from $commit into $cache"
    (
        flock 9
        [ -f "$cache/witn.so" ] && exit 0
        src=$(mktemp -d) && trap 'rm -rf "$src"' EXIT
        git -C "$ROOT" archive "$commit" | tar -x -C "$src" &&
            make -C "$src" -j2 PG_CONFIG="$SYS_BIN/pg_config" >"$src/build.log" 2>&1 || { tail -n 20 "$src/build.log"; exit 1; }
        mkdir -p "$cache.tmp" && cp "$src/witn.so" "$src/witn.control" "$src"/sql/witn--*.sql "$cache.tmp/" && mv "$cache.tmp" "$cache"
    ) 9>"${TMPDIR:-/tmp}/witn-release-build.lock" || { bad "witn $prev builds from $commit"; exit 1; }
fi

# ---- a private PostgreSQL installation (found relative to its binaries) ----------------------------
tree=$(mktemp -d "${TMPDIR:-/tmp}/witn-skew.XXXXXX")
chmod 755 "$tree"
sys_share=$("$SYS_BIN/pg_config" --sharedir)
sys_lib=$("$SYS_BIN/pg_config" --pkglibdir)
mkdir -p "$tree$(dirname "$(dirname "$SYS_BIN")")" "$tree$(dirname "$sys_share")"
cp -a "$(dirname "$SYS_BIN")" "$tree$(dirname "$(dirname "$SYS_BIN")")/"
cp -a "$sys_share" "$tree$(dirname "$sys_share")/"
LIB=$tree$sys_lib EXT=$tree$sys_share/extension
# install_release DIR: witn.so (a new file, as make install writes it: running backends keep the
# one they mapped), the control file and every SQL script of that build.
install_release() {
    rm -f "$EXT"/witn.control "$EXT"/witn--*.sql
    install -m 755 "$1/witn.so" "$LIB/witn.so"
    cp "$1/witn.control" "$1"/witn--*.sql "$EXT/"
}
mkdir -p "$tree/new"
cp "$ROOT/witn.so" "$ROOT/witn.control" "$ROOT"/sql/witn--*.sql "$tree/new/"
install_release "$cache"

export WITN_PG_BIN=$tree$SYS_BIN WITN_PORT_BASE=${WITN_PORT_BASE:-56300}
# shellcheck source=../cluster.sh
. "$ROOT/test/cluster.sh"
witn_on_exit 'close_sessions; [ -n "${SKEW_KEEP:-}" ] || rm -rf "$tree"'
witn_cluster_start >/dev/null || { bad "the cluster starts"; exit 1; }
export PGDATABASE=skew

# ---- sessions that stay open (a psql reading a fifo) --------------------------------------------
declare -A S_FD S_OUT
open_session() { # NAME DATABASE
    mkfifo "$tree/$1.in"
    "$WITN_PG_BIN/psql" -X -At -v VERBOSITY=verbose -d "$2" <"$tree/$1.in" >"$tree/$1.out" 2>&1 &
    local fd
    exec {fd}>"$tree/$1.in"
    S_FD[$1]=$fd S_OUT[$1]=$tree/$1.out
}
# in_session NAME SQL: prints what SQL printed (rows, and errors with their SQLSTATE). Called in
# $(...) too, so each call's marker is made unique by the clock, not by a counter.
in_session() {
    local n i
    n=$(date +%s%N)
    printf '\\echo @@begin %d\n%s;\n\\echo @@end %d\n' "$n" "$2" "$n" >&"${S_FD[$1]}"
    for ((i = 0; i < 300; i++)); do
        grep -qx "@@end $n" "${S_OUT[$1]}" && break
        sleep 0.1
    done
    sed -n "/^@@begin $n\$/,/^@@end $n\$/p" "${S_OUT[$1]}" | sed '1d;$d'
}
close_sessions() { local s; for s in "${!S_FD[@]}"; do eval "exec ${S_FD[$s]}>&-"; done; wait 2>/dev/null; }
# A new session each time.
run() { "$WITN_PG_BIN/psql" -X -At -v VERBOSITY=verbose -c "$1" 2>&1; }
q() { "$WITN_PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -c "$1"; }

# expect DESCRIPTION EXPECTED HINT OUTPUT: EXPECTED is ok (no error) or the SQLSTATE, whose hint
# must contain HINT; any other error (42883 could not find function, 23502, XX000, ...) fails.
HINT_A="Run ALTER EXTENSION witn UPDATE"
expect() { # description expected(ok|SQLSTATE) hint-substring output
    local state
    state=$(printf '%s\n' "$4" | sed -n 's/^\(psql:[^ ]* \)\{0,1\}ERROR:  \([0-9A-Z]\{5\}\): .*/\2/p' | head -n 1)
    if printf '%s\n' "$4" | grep -q '^psql: error'; then
        bad "$1: $(printf '%s' "$4" | grep -m1 '^psql: error')"
    elif [ "$2" = ok ]; then
        if [ -z "$state" ]; then ok "$1: works"; else bad "$1: expected it to work, got: $(printf '%s' "$4" | grep -m1 ERROR)"; fi
    elif [ "$state" != "$2" ]; then
        bad "$1: expected SQLSTATE $2, got [${state:-no error}] $(printf '%s' "$4" | grep -m1 'ERROR\|^')"
    elif [ -n "$3" ] && ! printf '%s\n' "$4" | grep -q "^HINT:  .*$3"; then
        bad "$1: $2 without the hint '$3': $(printf '%s' "$4" | tr '\n' ' ')"
    else
        ok "$1: $2${3:+, hint says '$3'}"
    fi
}
counts() {
    q "SELECT concat_ws(' ', (SELECT count(*) FROM witn.events), (SELECT count(*) FROM witn.outcomes),
              (SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NOT NULL), (SELECT count(*) FROM witn.invoice_lines),
              (SELECT count(*) FROM witn.credit_lines), (SELECT count(*) FROM witn.notifications),
              (SELECT count(*) FROM witn.settlement_errors), (SELECT count(*) FROM witn.webhook_endpoints),
              (SELECT count(*) FROM witn.webhook_deliveries))"
}

# The data, written by the previous release: settled, due and open outcomes, a credit.
PGDATABASE=postgres q "CREATE DATABASE skew" >/dev/null
q "SET client_min_messages = warning; CREATE EXTENSION witn VERSION '$prev' CASCADE" >/dev/null
check "the database is at witn $prev" "$prev" "$(q "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"
"$WITN_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || bad "the previous release's data is written"
SET client_min_messages = warning;
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std');
INSERT INTO witn.agents (key, condition, attribution_method) VALUES ('support', '[{"fact": "replied", "operator": "seen"}]', 'sum');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50);
INSERT INTO witn.webhook_endpoints (url) VALUES ('http://127.0.0.1:9/hooks');
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT 'acme', 'old-' || g, 'replied', 'support', now() - interval '100 hours' FROM generate_series(1, 6) g;
SELECT * FROM witn.settle(now(), 3);
SELECT * FROM witn.credit_outcome((SELECT min(id) FROM witn.outcomes WHERE status = 'CONFIRMED'), 1.00, 'goodwill');
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
SELECT 'acme', 'new-' || g, 'replied', 'support', now() - interval '1 hour' FROM generate_series(1, 3) g;
SQL
due=$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL AND settles_at <= now()")
check "three outcomes are due" 3 "$due"

# For (c): a database at the previous version with a delivery queued, not yet attempted (witn is
# not preloaded yet: no worker runs).
PGDATABASE=postgres q "CREATE DATABASE hooks" >/dev/null
PGDATABASE=hooks "$WITN_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || bad "the previous release's delivery is queued"
SET client_min_messages = warning;
CREATE EXTENSION witn CASCADE;
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std');
INSERT INTO witn.agents (key, condition) VALUES ('support', '[{"fact": "replied", "operator": "seen"}]');
INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50);
INSERT INTO witn.webhook_endpoints (url) VALUES ('http://127.0.0.1:9/hooks');
INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('acme', 'h-1', 'replied', 'support', now() - interval '100 hours');
SELECT * FROM witn.settle();
SQL
attempts() { PGDATABASE=hooks q "SELECT count(*) || ' ' || sum(attempts) FROM witn.webhook_deliveries"; }
check "(c) a delivery is queued, not attempted" "1 0" "$(attempts)"

# A session that loads the previous library now, and keeps it.
open_session old skew
in_session old "SELECT witn.describe('[{\"fact\": \"replied\", \"operator\": \"seen\"}]')" >/dev/null
before=$(counts)

# The new release's files replace the previous ones (make install).
install_release "$tree/new"

# ---- (a) the new library, the previous release's SQL objects ------------------------------------
id=$(q "SELECT min(id) FROM witn.outcomes WHERE status = 'CONFIRMED'")
expect "(a) INSERT INTO witn.events" 55000 "$HINT_A" \
    "$(run "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'a-1', 'replied', 'support')")"
expect "(a) witn.settle()" 55000 "$HINT_A" "$(run "SELECT * FROM witn.settle()")"
expect "(a) witn.credit_outcome" 55000 "$HINT_A" "$(run "SELECT * FROM witn.credit_outcome($id, 0.50, 'skew')")"
expect "(a) witn.reverse_outcome" 55000 "$HINT_A" "$(run "SELECT * FROM witn.reverse_outcome($id, 'skew')")"
expect "(a) witn.replay" 55000 "$HINT_A" "$(run "SELECT * FROM witn.replay($id)")"
expect "(a) witn.verify" 55000 "$HINT_A" "$(run "SELECT * FROM witn.verify()")"
expect "(a) witn.simulate" 55000 "$HINT_A" "$(run "SELECT * FROM witn.simulate('support', now() - interval '1 year', now())")"
# Type I/O and pure functions work with any schema (pg_dump, the upgrade script itself).
expect "(a) witn.explain" ok "" "$(run "SELECT count(*) FROM witn.explain($id)")"
expect "(a) condition input and output" ok "" "$(run "SELECT '[{\"fact\": \"x\", \"operator\": \"seen\"}]'::witn.condition::text")"
expect "(a) witn.evaluate" ok "" "$(run "SELECT witn.evaluate('[{\"fact\": \"x\", \"operator\": \"seen\"}]', '[{\"action\": \"x\"}]')")"
expect "(a) webhook endpoint (secret and check)" ok "" \
    "$(run "BEGIN; INSERT INTO witn.webhook_endpoints (url) VALUES ('http://127.0.0.1:9/a'); ROLLBACK")"
check "(a) nothing was written" "$before" "$(counts)"

# ---- the update ----------------------------------------------------------------------------------
# The session that still holds the previous library cannot run the update itself (the new
# script's C functions are not in its library; with witn in shared_preload_libraries every
# session is such a session until the server restarts): it fails and changes nothing.
expect "ALTER EXTENSION witn UPDATE in a session holding witn $prev" 55000 "Reconnect" \
    "$(in_session old "ALTER EXTENSION witn UPDATE")"
check "an update failing in a session holding the previous library changes nothing" "$prev" \
    "$(q "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"
[ -f "$ROOT/sql/witn--$prev--$cur.sql" ] || bad "sql/witn--$prev--$cur.sql exists"
run "ALTER EXTENSION witn UPDATE" >/dev/null
check "a new session updates the SQL objects to $cur" "$cur" "$(q "SELECT extversion FROM pg_extension WHERE extname = 'witn'")"

# ---- (b) a session still holding the previous library, the new SQL objects ------------------------
# What the previous release's library does is fixed; pinned here: it writes nothing and files no
# settlement error, and says to reconnect.
before=$(counts)
id=$(q "SELECT min(id) FROM witn.outcomes")
expect "(b) INSERT INTO witn.events" 55000 "Reconnect" \
    "$(in_session old "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'b-1', 'replied', 'support')")"
expect "(b) witn.settle()" 55000 "Reconnect" "$(in_session old "SELECT * FROM witn.settle()")"
expect "(b) witn.credit_outcome" 55000 "Reconnect" "$(in_session old "SELECT * FROM witn.credit_outcome($id, 0.50, 'skew')")"
expect "(b) witn.explain" ok "" "$(in_session old "SELECT count(*) FROM witn.explain($id)")"
check "(b) nothing was written by the session holding witn $prev" "$before" "$(counts)"
# PostgreSQL finds a loaded library by its path first: the session never maps the new file (no
# second _PG_init), it keeps the replaced one, which make install unlinked.
pid=$(in_session old "SELECT pg_backend_pid()")
if [ -r "/proc/$pid/maps" ]; then
    check "(b) the session holding witn $prev maps one witn.so, the replaced (deleted) file" "1 deleted" \
        "$(grep "$LIB/witn.so" "/proc/$pid/maps" | awk '{print $5}' | sort -u | wc -l) $(grep -c "$LIB/witn.so (deleted)" "/proc/$pid/maps" | sed 's/^[1-9][0-9]*$/deleted/')"
fi
# witn_library_version (0.8.0 on) names the library a session runs.
LIBRARY_VERSION="CREATE FUNCTION pg_temp.library_version() RETURNS text AS '\$libdir/witn', 'witn_library_version' LANGUAGE C; SELECT pg_temp.library_version();"
if nm -D --defined-only "$cache/witn.so" 2>/dev/null | grep -qw witn_library_version; then
    check "(b) the session holding witn $prev runs witn $prev's library" "$prev" "$(in_session old "$LIBRARY_VERSION" | tail -n 1)"
else
    expect "(b) witn_library_version is not in witn $prev's library" 42883 "" "$(in_session old "$LIBRARY_VERSION")"
fi
check "a new session's library is witn $cur" "$cur" "$(q "$LIBRARY_VERSION" | tail -n 1)"

# ---- a session that loads the new library works ----------------------------------------------------
expect "a new session: INSERT INTO witn.events" ok "" \
    "$(run "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'c-1', 'replied', 'support')")"
expect "a new session: witn.replay" ok "" "$(run "SELECT count(*) FROM witn.replay($id)")"
expect "a new session: witn.settle()" ok "" "$(run "SELECT * FROM witn.settle()")"
check "a new session settles what is due, without settlement errors" "0|0" \
    "$(q "SELECT (SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL AND settles_at <= now()), (SELECT count(*) FROM witn.settlement_errors)")"

# ---- this library, older than the SQL objects ------------------------------------------------------
# A next version that changes nothing but its stamps: every session (this library is the only
# one installed) is then one whose library is older than the SQL objects.
next=9.9.9
cat >"$EXT/witn--$cur--$next.sql" <<SQL
-- A version after $cur that changes only the version its objects pass to the library.
DO \$\$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT g.tgname, g.tgrelid::regclass AS rel, pg_get_triggerdef(g.oid) AS def
               FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
              WHERE c.relnamespace = '@extschema@'::regnamespace AND NOT g.tgisinternal
                AND pg_get_triggerdef(g.oid) LIKE '%''$cur''%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
        EXECUTE replace(t.def, '''$cur''', '''$next''');
    END LOOP;
    FOR t IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = '@extschema@'::regnamespace
                AND p.prokind = 'f' AND p.prosrc LIKE '%''$cur''%' LOOP
        EXECUTE replace(pg_get_functiondef(t.oid), '''$cur''', '''$next''');
    END LOOP;
END \$\$;
SQL
HINT_B="Reconnect: a new session loads the installed library. If it is still older, install witn $next"
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('acme', 'due-1', 'replied', 'support', now() - interval '100 hours')" >/dev/null
q "ALTER EXTENSION witn UPDATE TO '$next'" >/dev/null || bad "the update to a stamp-only $next"
before=$(counts)
id=$(q "SELECT min(id) FROM witn.outcomes")
# Nothing due as of then: settle() finds nothing to file an error for, and says nothing of the versions.
expect "(b) witn $cur under $next: witn.settle() with nothing due" 55000 "$HINT_B" \
    "$(run "SELECT * FROM witn.settle(now() - interval '10 years')")"
expect "(b) witn $cur under $next: INSERT INTO witn.events" 55000 "$HINT_B" \
    "$(run "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'd-1', 'replied', 'support')")"
expect "(b) witn $cur under $next: witn.settle()" 55000 "$HINT_B" "$(run "SELECT * FROM witn.settle()")"
expect "(b) witn $cur under $next: witn.credit_outcome" 55000 "$HINT_B" "$(run "SELECT * FROM witn.credit_outcome($id, 0.50, 'skew')")"
expect "(b) witn $cur under $next: witn.replay" 55000 "$HINT_B" "$(run "SELECT * FROM witn.replay($id)")"
expect "(b) witn $cur under $next: witn.verify" 55000 "$HINT_B" "$(run "SELECT * FROM witn.verify()")"
expect "(b) witn $cur under $next: witn.simulate" 55000 "$HINT_B" "$(run "SELECT * FROM witn.simulate('support', now() - interval '1 year', now())")"
expect "(b) witn $cur under $next: witn.explain" ok "" "$(run "SELECT count(*) FROM witn.explain($id)")"
check "(b) witn $cur under $next: nothing was written, no settlement error filed" "$before" "$(counts)"
check "(b) witn $cur under $next: the due outcome is still due" 1 \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL AND settles_at <= now()")"

# ---- (c) the preloaded delivery worker -----------------------------------------------------------------
q "ALTER SYSTEM SET shared_preload_libraries = pg_cron, witn" >/dev/null
close_sessions
S_FD=()
(cd "$WITN_CLUSTER_DIR" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$WITN_CLUSTER_DIR/data" -l "$WITN_CLUSTER_DIR/server.log" -w -t 60 restart) >/dev/null ||
    { bad "(c) the server restarts with witn preloaded"; tail -n 20 "$WITN_CLUSTER_DIR/server.log"; }
logged() { # PATTERN: the server log says it within 20 s
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "$1" "$WITN_CLUSTER_DIR/server.log" && return 0
        sleep 0.2
    done
    return 1
}
for db in "hooks $prev Run ALTER EXTENSION witn UPDATE" "skew $next Restart the server"; do
    set -- $db
    line="webhook delivery waits: the SQL objects of database \"$1\" are witn $2, the library is witn $cur"
    if ! logged "$line"; then
        bad "(c) the worker of a database at $2 waits, with a log line"
    elif grep -A1 "$line" "$WITN_CLUSTER_DIR/server.log" | grep -q "HINT:  ${*:3}"; then
        ok "(c) the worker of a database at $2 waits; its log line says '${*:3}'"
    else
        bad "(c) the worker of a database at $2 waits; its log line says '${*:3}': $(grep -A1 "$line" "$WITN_CLUSTER_DIR/server.log" | tail -n 1)"
    fi
done
expect "(c) witn preloaded, a session under $next" 55000 "Restart the server: witn is in shared_preload_libraries" \
    "$(run "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'e-1', 'replied', 'support')")"
check "(c) nothing was delivered while it waits" "1 0" "$(attempts)"
PGDATABASE=hooks q "ALTER EXTENSION witn UPDATE" >/dev/null || bad "(c) the update of database hooks"
for ((i = 0; i < 150; i++)); do
    [ "$(attempts)" != "1 0" ] && break
    sleep 0.2
done
check "(c) after the update the worker delivers (one attempt)" "1 1" "$(attempts)"

exit "$fail"
