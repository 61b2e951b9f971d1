# Shared set-up for the test command, the demo and the benchmarks. Source it; it defines:
#   witn_ensure_deps [extra packages...]  install what is missing (apt-get), as root or via sudo
#   witn_build_install                     build witn (warnings are errors) and install it
#   witn_cluster_start                     a throwaway PostgreSQL 15 with pg_cron, in a temp dir,
#                                          on a free port; exports PGHOST PGPORT PGUSER; stopped
#                                          and removed when the calling shell exits
#   witn_template_db                       create witn_template (pgtap + witn) once
#   witn_fresh_db NAME                     create database NAME from witn_template
# Nothing here touches the system's own PostgreSQL cluster.

WITN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITN_PG_BIN=/usr/lib/postgresql/15/bin
WITN_PACKAGES="postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-15-cron
  postgresql-15-pgtap make g++ libgtest-dev clang libclang-rt-14-dev"

witn_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

witn_ensure_deps() {
    local missing=() p
    for p in $WITN_PACKAGES "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "witn: installing ${missing[*]}"
    witn_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        witn_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

witn_build_install() {
    (cd "$WITN_ROOT" && make -s -j2 && witn_as_root make -s install) >/dev/null
}

witn_free_port() {
    local port
    for port in $(seq 54321 54999); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

witn_cluster_stop() {
    [ -n "${WITN_TMP:-}" ] || return 0
    if [ -f "$WITN_TMP/data/postmaster.pid" ]; then
        witn_run_as_owner "$WITN_PG_BIN/pg_ctl" -D "$WITN_TMP/data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$WITN_TMP"
    WITN_TMP=
}

# Runs a command as the cluster's owner: postgres when we are root (PostgreSQL refuses root).
witn_run_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

witn_cluster_start() {
    WITN_TMP=$(mktemp -d /tmp/witn-cluster.XXXXXX)
    chmod 755 "$WITN_TMP"
    [ "$(id -u)" = 0 ] && chown postgres "$WITN_TMP"
    trap 'witn_cluster_stop' EXIT
    trap 'witn_cluster_stop; exit 130' INT TERM
    PGPORT=$(witn_free_port) || { echo "witn: no free port" >&2; return 1; }
    witn_run_as_owner "$WITN_PG_BIN/initdb" -D "$WITN_TMP/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$WITN_TMP/initdb.log" 2>&1 || {
        cat "$WITN_TMP/initdb.log" >&2
        return 1
    }
    cat >>"$WITN_TMP/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$WITN_TMP'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    witn_run_as_owner "$WITN_PG_BIN/pg_ctl" -D "$WITN_TMP/data" -l "$WITN_TMP/server.log" -w -t 60 start >/dev/null || {
        cat "$WITN_TMP/server.log" >&2
        return 1
    }
    export PGHOST="$WITN_TMP" PGPORT PGUSER=postgres
    psql -X -q -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_cron" >/dev/null
}

witn_template_db() {
    psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE DATABASE witn_template;
\c witn_template
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION witn CASCADE;
SQL
}

witn_drop_db() {
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null
}

witn_fresh_db() {
    witn_drop_db "$1"
    psql -X -q -d postgres -c "CREATE DATABASE \"$1\" TEMPLATE witn_template" >/dev/null
}
