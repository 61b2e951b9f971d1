# shellcheck shell=bash
# witn's throwaway PostgreSQL 15 cluster, for the tests (test/run.sh) and the demo
# (examples/demo.sh). Source it from bash:
#
#   . test/cluster.sh
#   witn_ensure_deps            # apt-get install whatever is missing (as root, or through sudo)
#   witn_build_install          # make -j2 && make install
#   witn_cluster_start          # initdb + start in a temp dir; exports PGHOST PGPORT PGUSER
#   witn_fresh_db mydb          # a new database with pgtap and witn installed, copied from
#                               # the template witn_template_db creates on first use
#   witn_cluster_stop           # also done on exit, unless WITN_KEEP_CLUSTER=1
#
# The cluster runs as the postgres system user when the caller is root (PostgreSQL refuses to
# run as root), as the caller otherwise. Its data directory and unix socket live in one temp
# directory; it listens on no TCP address and never touches the system's own clusters.
# pg_cron is preloaded with cron.database_name = 'postgres' and installed there, so witn is
# always tested in a database other than pg_cron's.
#
# The library installs its own EXIT/INT/TERM/HUP traps (they stop the cluster and remove the
# temp directory). A script that needs more clean-up registers it with witn_on_exit 'command'.

WITN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITN_PG_VERSION=${WITN_PG_VERSION:-15}
WITN_PG_BIN=${WITN_PG_BIN:-/usr/lib/postgresql/$WITN_PG_VERSION/bin}
WITN_PG_CONFIG=$WITN_PG_BIN/pg_config
# What building, installing and running witn needs.
WITN_BASE_PACKAGES=(
    "postgresql-$WITN_PG_VERSION" "postgresql-server-dev-$WITN_PG_VERSION"
    "postgresql-$WITN_PG_VERSION-cron" g++ make libcurl4-openssl-dev
)
# What the tests need on top: pgTAP and pg_prove, GoogleTest, clang with libFuzzer.
WITN_TEST_PACKAGES=(
    "postgresql-$WITN_PG_VERSION-pgtap" libtap-parser-sourcehandler-pgtap-perl
    libgtest-dev clang libclang-rt-14-dev python3 openssl
)
WITN_CLUSTER_DIR=""   # set by witn_cluster_start (never taken from the environment)
# shellcheck disable=SC2034 # the same, under the name earlier scripts used
WITN_TMP=$WITN_CLUSTER_DIR
WITN_CLUSTER_USER=${WITN_CLUSTER_USER:-}
WITN_TEMPLATE_DB=${WITN_TEMPLATE_DB:-witn_template}
WITN_KEEP_CLUSTER=${WITN_KEEP_CLUSTER:-0}
WITN_CHILD_PID=""      # a bounded job (witn_run_bounded) in progress: killed on interrupt
WITN_EXIT_HOOKS=()

witn_log() { printf '%s\n' "$*" >&2; }

# ---- privileges ---------------------------------------------------------------------------------

# Runs a command as root: directly when we are root, else through sudo.
witn_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        witn_log "witn: '$*' needs root and sudo is not installed; run as root"
        return 1
    fi
}

# Runs a command as the cluster's owner: postgres when we are root, else ourselves.
witn_as_cluster_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "${WITN_CLUSTER_USER:-postgres}" -- "$@"
    else
        "$@"
    fi
}

# Runs a command holding /tmp/witn-build.lock, so that two builds in the same tree or two
# `make install`s on this machine do not interleave. WITN_LOCK is the same as a command prefix,
# for commands run through timeout or sudo (which cannot run shell functions).
if command -v flock >/dev/null 2>&1; then
    WITN_LOCK=(flock "${TMPDIR:-/tmp}/witn-build.lock")
else
    WITN_LOCK=()
fi
witn_locked() { ${WITN_LOCK[@]+"${WITN_LOCK[@]}"} "$@"; }

# ---- exit handling ------------------------------------------------------------------------------

witn_on_exit() { WITN_EXIT_HOOKS+=("$1"); }

witn__exit() {
    local rc=$? hook
    trap - EXIT INT TERM HUP
    witn__kill_child
    if [ -n "$WITN_CLUSTER_DIR" ] && [ "$WITN_KEEP_CLUSTER" != 1 ]; then
        witn_cluster_stop
    fi
    for hook in ${WITN_EXIT_HOOKS[@]+"${WITN_EXIT_HOOKS[@]}"}; do
        eval "$hook" || true
    done
    exit "$rc"
}

witn__signal() {
    witn_log ""
    witn_log "witn: interrupted ($1), cleaning up"
    # A --keep cluster is not left behind by an interrupted run.
    WITN_KEEP_CLUSTER=0
    case "$1" in
        INT) exit 130 ;;
        HUP) exit 129 ;;
        *) exit 143 ;;
    esac
}

witn__kill_child() {
    if [ -n "$WITN_CHILD_PID" ]; then
        # witn_run_bounded's child is `timeout`, the leader of its own process group.
        kill -TERM -- "-$WITN_CHILD_PID" 2>/dev/null || kill -TERM "$WITN_CHILD_PID" 2>/dev/null
        wait "$WITN_CHILD_PID" 2>/dev/null
        WITN_CHILD_PID=""
    fi
}

trap witn__exit EXIT
trap 'witn__signal INT' INT
trap 'witn__signal TERM' TERM
trap 'witn__signal HUP' HUP

# witn_run_bounded SECONDS LOGFILE COMMAND...: runs COMMAND with stdin from /dev/null and its
# output in LOGFILE, killed (with all its children) after SECONDS or when this script is
# interrupted. Returns COMMAND's exit status (124 on timeout).
witn_run_bounded() {
    local seconds=$1 log=$2 rc
    shift 2
    timeout -k 20 "$seconds" "$@" >"$log" 2>&1 </dev/null &
    WITN_CHILD_PID=$!
    # `wait` returns early when a trapped signal arrives; the trap then kills the child.
    wait "$WITN_CHILD_PID"
    rc=$?
    WITN_CHILD_PID=""
    if [ "$rc" = 124 ]; then
        echo "witn: timed out after ${seconds}s: $*" >>"$log"
    fi
    return "$rc"
}

# ---- dependencies, build ------------------------------------------------------------------------

witn__installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# witn_ensure_deps [--minimal] [EXTRA_PACKAGE...]: installs the missing ones of witn's packages
# (base and test packages; --minimal: base only) and the extra ones, with apt-get.
witn_ensure_deps() {
    local wanted=("${WITN_BASE_PACKAGES[@]}") missing=() p
    if [ "${1:-}" = --minimal ]; then
        shift
    else
        wanted+=("${WITN_TEST_PACKAGES[@]}")
    fi
    wanted+=("$@")
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        witn_log "witn: this needs Debian (dpkg and apt-get); install ${wanted[*]} yourself"
        return 1
    fi
    for p in "${wanted[@]}"; do
        witn__installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        witn_log "witn: installing ${missing[*]}"
        witn_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
        witn_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" || return 1
        for p in "${missing[@]}"; do
            witn__installed "$p" || { witn_log "witn: package $p did not install"; return 1; }
        done
    else
        witn_log "witn: all packages present (${wanted[*]})"
    fi
    for p in "$WITN_PG_BIN/initdb" "$WITN_PG_BIN/pg_ctl" "$WITN_PG_BIN/psql" "$WITN_PG_CONFIG"; do
        [ -x "$p" ] || { witn_log "witn: $p is missing"; return 1; }
    done
}

# witn_build_install: make -j2 && make install at the repository's root, stopping at the first
# error (warnings are errors: the Makefile builds with -Werror).
witn_build_install() {
    (
        cd "$WITN_ROOT" || exit 1
        witn_locked make -j2 PG_CONFIG="$WITN_PG_CONFIG" || exit 1
        if [ "$(id -u)" = 0 ] || [ -w "$("$WITN_PG_CONFIG" --pkglibdir)" ]; then
            witn_locked make install PG_CONFIG="$WITN_PG_CONFIG" || exit 1
        else
            witn_as_root ${WITN_LOCK[@]+"${WITN_LOCK[@]}"} make install PG_CONFIG="$WITN_PG_CONFIG" || exit 1
        fi
    )
}

# ---- the cluster --------------------------------------------------------------------------------

# Prints a port from 54321 up that nothing listens on (TCP) and no unix socket in the usual
# places uses. (The cluster listens on no TCP address and keeps its socket in its own directory,
# so a clash would be harmless; this keeps ports distinct for whoever looks at them.)
witn_free_port() {
    local port
    for ((port = ${WITN_PORT_BASE:-54321}; port < ${WITN_PORT_BASE:-54321} + 200; port++)); do
        [ -e "/tmp/.s.PGSQL.$port" ] && continue
        [ -e "/var/run/postgresql/.s.PGSQL.$port" ] && continue
        if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            continue
        fi
        # A connection that succeeds means someone listens.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        echo "$port"
        return 0
    done
    witn_log "witn: no free port found"
    return 1
}

# witn_cluster_start: initdb in a new temp dir, configure, start, install pg_cron in database
# postgres. WITN_PRELOAD sets shared_preload_libraries (default pg_cron; 'pg_cron,witn' starts
# the webhook delivery launcher), WITN_MAX_WORKERS max_worker_processes (default 20), and
# WITN_EXTRA_CONF is appended to postgresql.conf. Exports PGHOST (the socket directory), PGPORT, PGUSER=postgres and puts PostgreSQL
# 15's bin directory first in PATH. On failure prints the server log and returns 1.
witn_cluster_start() {
    if [ -n "$WITN_CLUSTER_DIR" ] && [ -d "$WITN_CLUSTER_DIR/data" ]; then
        witn_log "witn: cluster already running in $WITN_CLUSTER_DIR"
        return 0
    fi
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/witn-cluster.XXXXXX") || return 1
    WITN_CLUSTER_DIR=$dir
    WITN_TMP=$dir
    if [ "$(id -u)" = 0 ]; then
        WITN_CLUSTER_USER=${WITN_CLUSTER_USER:-postgres}
        if ! id "$WITN_CLUSTER_USER" >/dev/null 2>&1; then
            witn_log "witn: system user $WITN_CLUSTER_USER does not exist (is postgresql-$WITN_PG_VERSION installed?)"
            return 1
        fi
        chown "$WITN_CLUSTER_USER:" "$dir"
    else
        WITN_CLUSTER_USER=$(id -un)
    fi
    chmod 755 "$dir"
    port=$(witn_free_port) || return 1

    if ! (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/initdb" -D "$dir/data" -A trust -U postgres \
            -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1); then
        witn_log "witn: initdb failed:"
        cat "$dir/initdb.log" >&2
        return 1
    fi
    witn_as_cluster_user tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# ---- witn test cluster (test/cluster.sh) ----
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
max_connections = 100
shared_preload_libraries = '${WITN_PRELOAD:-pg_cron}'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = ${WITN_MAX_WORKERS:-20}
timezone = 'Etc/UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
${WITN_EXTRA_CONF:-}
EOF
    if ! (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
            -w -t 60 start >"$dir/pg_ctl.log" 2>&1); then
        witn_log "witn: the server did not start:"
        cat "$dir/pg_ctl.log" >&2
        witn_log "---- server log ($dir/server.log) ----"
        cat "$dir/server.log" >&2
        return 1
    fi

    export PGHOST=$dir PGPORT=$port PGUSER=postgres
    unset PGDATABASE PGHOSTADDR PGSERVICE PGPASSWORD PGOPTIONS
    case ":$PATH:" in
        *":$WITN_PG_BIN:"*) ;;
        *) export PATH="$WITN_PG_BIN:$PATH" ;;
    esac
    local i
    for ((i = 0; i < 30; i++)); do
        "$WITN_PG_BIN/pg_isready" -q -d postgres && break
        sleep 1
    done
    if ! "$WITN_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION pg_cron" \
            >"$dir/pg_cron.log" 2>&1; then
        witn_log "witn: CREATE EXTENSION pg_cron failed:"
        cat "$dir/pg_cron.log" >&2
        witn_log "---- server log ----"
        tail -n 50 "$dir/server.log" >&2
        return 1
    fi
    witn_log "witn: cluster up (PostgreSQL $WITN_PG_VERSION, pg_cron in database postgres): PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER"
}

# witn_cluster_stop: stops the cluster and removes its temp dir (data, socket, logs).
witn_cluster_stop() {
    local dir=$WITN_CLUSTER_DIR pid
    [ -n "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop) \
            >/dev/null 2>&1 ||
            (cd "$dir" && witn_as_cluster_user "$WITN_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop) \
                >/dev/null 2>&1
        # Last resort: the postmaster is still there.
        if [ -f "$dir/data/postmaster.pid" ]; then
            pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null
                sleep 1
            fi
        fi
    fi
    rm -rf "$dir"
    WITN_CLUSTER_DIR=""
    # shellcheck disable=SC2034
    WITN_TMP=""
    witn_log "witn: cluster stopped, $dir removed"
}

# witn_psql [PSQL_ARGS...]: psql as the tests use it: no psqlrc, stop on the first error.
witn_psql() { "$WITN_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# witn_template_db: creates the template database (once): pgtap and witn with what it requires.
witn_template_db() {
    if [ "$(witn_psql -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$WITN_TEMPLATE_DB'")" = 1 ]; then
        return 0
    fi
    witn_psql -d postgres -c "CREATE DATABASE $WITN_TEMPLATE_DB" || return 1
    if ! witn_psql -d "$WITN_TEMPLATE_DB" -c "SET client_min_messages = warning" \
            -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION witn CASCADE"; then
        witn_psql -d postgres -c "DROP DATABASE IF EXISTS $WITN_TEMPLATE_DB" >/dev/null 2>&1
        return 1
    fi
}

# witn_fresh_db NAME: (re)creates database NAME as a copy of the template (pgtap + witn).
witn_fresh_db() {
    local name=${1:?witn_fresh_db needs a database name}
    witn_template_db || return 1
    witn_psql -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$name\" TEMPLATE $WITN_TEMPLATE_DB" >/dev/null
}

# witn_drop_db NAME
witn_drop_db() {
    witn_psql -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS \"${1:?}\" WITH (FORCE)" >/dev/null
}
