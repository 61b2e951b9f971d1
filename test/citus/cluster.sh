# shellcheck shell=bash
# A throwaway Citus cluster for the Citus suite and the Citus benchmark: one coordinator and
# WITN_CITUS_WORKERS workers (default 2), each a PostgreSQL 15 with citus (first) and pg_cron
# preloaded, listening on 127.0.0.1 only, data and sockets in one temp directory. Source it
# after test/cluster.sh:
#
#   . test/cluster.sh; . test/citus/cluster.sh
#   witn_citus_available || echo "no citus"
#   witn_citus_start              # exports PGHOST/PGPORT (the coordinator), WITN_CITUS_PORTS
#   witn_citus_db mydb            # a database on every node with citus, witn (and pgtap),
#                                 # workers added and witn.distribute() run
#   witn_citus_stop               # also done on exit
#
# pg_cron lives in database postgres on the coordinator, as on a single node.

WITN_CITUS_DIR=""
WITN_CITUS_PORTS=()
WITN_CITUS_WORKERS=${WITN_CITUS_WORKERS:-2}

# witn_citus_available: Citus 12 is installed into this PostgreSQL.
witn_citus_available() {
    [ -f "$("$WITN_PG_CONFIG" --pkglibdir)/citus.so" ] &&
        [ -f "$("$WITN_PG_CONFIG" --sharedir)/extension/citus.control" ]
}

witn__citus_node_start() { # DIR PORT
    local dir=$1 port=$2
    witn_as_cluster_user mkdir -p "$dir"
    if ! (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/initdb" -D "$dir/data" -A trust -U postgres \
            -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1); then
        witn_log "witn: initdb failed:"; cat "$dir/initdb.log" >&2; return 1
    fi
    witn_as_cluster_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# ---- witn Citus test node (test/citus/cluster.sh) ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
# witn too: every node's webhook worker delivers the shards it holds.
shared_preload_libraries = 'citus,pg_cron,witn'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 40
citus.node_conninfo = 'sslmode=disable'
# Citus looks for distributed deadlocks every 2 x deadlock_timeout: found in 0.4 s, not 2 s.
deadlock_timeout = 200ms
timezone = 'Etc/UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    if ! (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
            -w -t 60 start >"$dir/pg_ctl.log" 2>&1); then
        witn_log "witn: a Citus node did not start:"; cat "$dir/pg_ctl.log" "$dir/server.log" >&2; return 1
    fi
}

# witn_citus_start: starts the coordinator and the workers; PGHOST=127.0.0.1 and PGPORT point at
# the coordinator; WITN_CITUS_PORTS holds the coordinator's port then the workers'.
witn_citus_start() {
    local dir port i
    dir=$(mktemp -d "${TMPDIR:-/tmp}/witn-citus.XXXXXX") || return 1
    WITN_CITUS_DIR=$dir
    [ "$(id -u)" = 0 ] && chown "${WITN_CLUSTER_USER:-postgres}:" "$dir"
    chmod 755 "$dir"
    WITN_CITUS_PORTS=()
    # Ports below the kernel's ephemeral range (32768 and up on Linux), where the many
    # connections between the nodes could hold a port a node is about to listen on; a port
    # taken meanwhile is retried with the next one.
    local base=${WITN_CITUS_PORT_BASE:-25432} attempt
    for ((i = 0; i <= WITN_CITUS_WORKERS; i++)); do
        for ((attempt = 0; ; attempt++)); do
            port=$(WITN_PORT_BASE=$((base + i * 7 + attempt * 31)) witn_free_port) || return 1
            witn__citus_node_start "$dir/node$i" "$port" 2>"$dir/start$i.log" && break
            if ((attempt >= 3)) || ! grep -q "Address already in use" "$dir/node$i/server.log" 2>/dev/null; then
                cat "$dir/start$i.log" >&2
                return 1
            fi
            rm -rf "$dir/node$i"
        done
        WITN_CITUS_PORTS+=("$port")
    done
    export PGHOST=127.0.0.1 PGPORT=${WITN_CITUS_PORTS[0]} PGUSER=postgres
    unset PGDATABASE PGHOSTADDR PGSERVICE PGPASSWORD PGOPTIONS
    case ":$PATH:" in *":$WITN_PG_BIN:"*) ;; *) export PATH="$WITN_PG_BIN:$PATH" ;; esac
    witn_psql -d postgres -c "CREATE EXTENSION pg_cron" >"$dir/pg_cron.log" 2>&1 ||
        { cat "$dir/pg_cron.log" >&2; return 1; }
    witn_on_exit witn_citus_stop
    witn_log "witn: Citus cluster up: coordinator 127.0.0.1:${WITN_CITUS_PORTS[0]}, workers ${WITN_CITUS_PORTS[*]:1}"
}

# witn_citus_node_psql N PSQL_ARGS...: psql on node N (0 = coordinator).
witn_citus_node_psql() { local n=$1; shift; witn_psql -h 127.0.0.1 -p "${WITN_CITUS_PORTS[$n]}" "$@"; }

# witn_citus_db NAME [EXTENSION...]: creates database NAME on every node with citus, adds the
# workers to the coordinator's metadata, installs witn (and the extra extensions) through the
# coordinator and runs witn.distribute().
witn_citus_db() {
    local db=$1 i ext
    shift
    for ((i = 0; i < ${#WITN_CITUS_PORTS[@]}; i++)); do
        witn_citus_node_psql "$i" -d postgres -c "CREATE DATABASE $db" >/dev/null || return 1
        witn_citus_node_psql "$i" -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null || return 1
    done
    witn_citus_node_psql 0 -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', ${WITN_CITUS_PORTS[0]})" >/dev/null || return 1
    for ((i = 1; i < ${#WITN_CITUS_PORTS[@]}; i++)); do
        witn_citus_node_psql 0 -d "$db" -c "SELECT citus_add_node('127.0.0.1', ${WITN_CITUS_PORTS[$i]})" >/dev/null || return 1
    done
    for ext in "$@"; do
        witn_citus_node_psql 0 -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS $ext CASCADE" >/dev/null || return 1
    done
    witn_citus_node_psql 0 -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS witn CASCADE" \
        -c "SELECT witn.distribute()" >/dev/null || return 1
}

witn_citus_stop() {
    local dir=$WITN_CITUS_DIR n
    [ -n "$dir" ] || return 0
    for n in "$dir"/node*; do
        [ -f "$n/data/postmaster.pid" ] &&
            (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$n/data" -m immediate -w -t 30 stop) >/dev/null 2>&1
    done
    rm -rf "$dir"
    WITN_CITUS_DIR=""
}
