#!/usr/bin/env bash
# witn's main job, end to end on this machine: install what is missing, build and install witn,
# start a throwaway PostgreSQL 15 with pg_cron, create database witn_demo, CREATE EXTENSION witn
# CASCADE, and run examples/demo.sql (a billing scenario: support tickets and metered API usage,
# their outcomes, settlement, invoice lines). The cluster is removed at the end.
#
#   bash examples/demo.sh           run the demo, then stop and remove the cluster
#   bash examples/demo.sh --keep    leave the cluster running and print how to connect
#
# Debian 12, as root (or a user with sudo, for apt-get and make install).
set -euo pipefail

KEEP=0
for arg in "$@"; do
    case "$arg" in
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (try --help)" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"

step() { printf '\n==> %s\n' "$*"; }
BUILD_LOG=$(mktemp "${TMPDIR:-/tmp}/witn-demo-build.XXXXXX")
# shellcheck disable=SC2016 # expanded when the hook runs
witn_on_exit 'rm -f "$BUILD_LOG"'

step "checking packages (installs postgresql-15, its server headers, pg_cron, g++, make when missing)"
witn_ensure_deps --minimal

step "building and installing witn (make && make install)"
if ! witn_build_install >"$BUILD_LOG" 2>&1; then
    cat "$BUILD_LOG" >&2
    echo "the build failed" >&2
    exit 1
fi
echo "installed into $("$WITN_PG_CONFIG" --sharedir)/extension"

step "starting a throwaway PostgreSQL $WITN_PG_VERSION with pg_cron and witn preloaded (webhook delivery)"
WITN_PRELOAD='pg_cron,witn' witn_cluster_start

# A local receiver for the webhooks (127.0.0.1 only): it checks each signature and logs each.
WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
RECEIVER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/witn-demo-receiver.XXXXXX")
python3 "$ROOT/test/webhooks/receiver.py" --port-file "$RECEIVER_DIR/port" --log "$RECEIVER_DIR/log" \
    --secret "$WEBHOOK_SECRET" >"$RECEIVER_DIR/out" 2>&1 &
RECEIVER_PID=$!
# shellcheck disable=SC2016 # expanded when the hook runs
witn_on_exit 'kill "$RECEIVER_PID" 2>/dev/null; rm -rf "$RECEIVER_DIR"'
for _ in $(seq 100); do [ -s "$RECEIVER_DIR/port" ] && break; sleep 0.05; done

step "creating database witn_demo and CREATE EXTENSION witn CASCADE"
witn_psql -d postgres -c "CREATE DATABASE witn_demo"
witn_psql -d witn_demo -c "CREATE EXTENSION witn CASCADE"

step "running examples/demo.sql"
"$WITN_PG_BIN/psql" -X -v ON_ERROR_STOP=1 -d witn_demo -f examples/demo.sql \
    -v webhook_url="http://127.0.0.1:$(cat "$RECEIVER_DIR/port")/witn" -v webhook_secret="$WEBHOOK_SECRET"

step "what the webhook receiver got"
python3 - "$RECEIVER_DIR/log" <<'PY'
import collections, json, sys
r = [json.loads(line) for line in open(sys.argv[1])]
kinds = collections.Counter(x["type"] for x in r)
print(f"{len(r)} POSTs, {sum(x['valid'] for x in r)} with a valid webhook-signature, "
      f"{len({x['id'] for x in r})} distinct webhook-ids: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
PY

if ((KEEP)); then
    # Kept only once the demo has run: a failed or interrupted demo removes its cluster.
    WITN_KEEP_CLUSTER=1
    if [ "$(id -u)" = 0 ]; then as_owner="runuser -u $WITN_CLUSTER_USER -- "; else as_owner=""; fi
    cat <<EOF

The cluster keeps running (data, socket and log in $WITN_CLUSTER_DIR). Connect with:
  psql -h $PGHOST -p $PGPORT -U postgres witn_demo
or, for other tools: postgresql:///witn_demo?host=$PGHOST&port=$PGPORT&user=postgres
Stop and remove it with:
  ${as_owner}$WITN_PG_BIN/pg_ctl -D $WITN_CLUSTER_DIR/data stop -m fast && rm -rf $WITN_CLUSTER_DIR
EOF
else
    step "stopping the cluster"
fi
