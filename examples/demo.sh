#!/usr/bin/env bash
# The main job: install what is missing, build and install witn, start a throwaway PostgreSQL
# with pg_cron, run a realistic billing scenario and show outcomes and invoice lines.
#   bash examples/demo.sh          (the cluster is removed at the end)
#   bash examples/demo.sh --keep   (leave it running and print how to connect)
set -eu
cd "$(dirname "$0")/.."
. test/cluster.sh

echo "witn demo: checking dependencies..."
witn_ensure_deps
echo "building and installing witn..."
witn_build_install
echo "starting a throwaway PostgreSQL 15 with pg_cron..."
witn_cluster_start
psql -X -q -d postgres -c "CREATE DATABASE witn_demo" >/dev/null
psql -X -d witn_demo -f examples/demo.sql

if [ "${1:-}" = "--keep" ]; then
    trap - EXIT INT TERM
    echo
    echo "The cluster keeps running. Connect with:"
    echo "  psql -h $PGHOST -p $PGPORT -U postgres witn_demo"
    echo "Stop it with:"
    echo "  runuser -u postgres -- $WITN_PG_BIN/pg_ctl -D $WITN_TMP/data stop && rm -rf $WITN_TMP"
fi
