#!/usr/bin/env bash
# Runs every code block of the documentation pages below and compares the output they show
# (test/docs/doc_blocks.py says how, and which markers a page may carry). On a throwaway cluster of
# its own (test/cluster.sh, pg_cron in database postgres, witn not preloaded: no webhook is ever
# sent), with one fresh database "billing" per page. Prints ok / not ok / skip per block and
# exits 1 when a block failed.
#
#   bash test/docs/run.sh                    # the checked pages
#   bash test/docs/run.sh docs/concepts.md   # some pages
#
# WITN_PORT_BASE picks the port range (default 56400). Expects witn built and installed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
export WITN_PORT_BASE=${WITN_PORT_BASE:-56400}
# shellcheck source=test/cluster.sh
. "$ROOT/test/cluster.sh"

PAGES=("$@")
if ((${#PAGES[@]} == 0)); then
    PAGES=(README.md docs/concepts.md docs/sql-reference.md docs/postgrest.md docs/operations.md)
fi

if ! witn_cluster_start >/dev/null 2>"${TMPDIR:-/tmp}/witn-docs-cluster.$$"; then
    cat "${TMPDIR:-/tmp}/witn-docs-cluster.$$"
    rm -f "${TMPDIR:-/tmp}/witn-docs-cluster.$$"
    echo "not ok the docs cluster did not start"
    exit 1
fi
rm -f "${TMPDIR:-/tmp}/witn-docs-cluster.$$"
if ! witn_template_db >/dev/null; then
    echo "not ok CREATE EXTENSION witn CASCADE failed in the template database"
    exit 1
fi
# The page's blocks run as the cluster's superuser, postgres; psql needs to read the temp files.
WITN_PG_BIN=$WITN_PG_BIN python3 "$ROOT/test/docs/doc_blocks.py" --template "$WITN_TEMPLATE_DB" "${PAGES[@]}"
