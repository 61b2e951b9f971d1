# shellcheck shell=bash
# The webhook suites' common part: a throwaway cluster with witn in shared_preload_libraries
# (so the delivery launcher runs), receivers (test/webhooks/receiver.py on 127.0.0.1) and checks.
# Source it from a test/webhooks/*.sh script; it prints "ok - ..." / "not ok - ..." lines and the
# script exits with the number of failures (test/run.sh counts the lines).
WITN_WEBHOOKS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/cluster.sh
. "$WITN_WEBHOOKS_DIR/../cluster.sh"

failures=0
check() { # NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; failures=$((failures + 1)); fi
}
check_match() { # NAME REGEX ACTUAL
    if [[ $3 =~ $2 ]]; then echo "ok - $1"; else echo "not ok - $1: expected /$2/, got [$3]"; failures=$((failures + 1)); fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "${DB:-witn_webhooks}" -c "$1"; }
# wait_for SECONDS SQL EXPECTED: polls until the query answers EXPECTED; prints the last answer.
wait_for() {
    local deadline=$((SECONDS + $1)) got
    while :; do
        got=$(q "$2" 2>&1)
        [ "$got" = "$3" ] && { echo "$got"; return 0; }
        ((SECONDS >= deadline)) && { echo "$got"; return 1; }
        sleep 0.2
    done
}

# webhooks_cluster_start [EXTRA postgresql.conf lines]: the cluster, with a test-shortened retry
# schedule, and database $DB with witn.
webhooks_cluster_start() {
    WITN_PRELOAD='pg_cron,witn' WITN_MAX_WORKERS=40 WITN_EXTRA_CONF="${1:-}" witn_cluster_start || return 1
    DB=${DB:-witn_webhooks}
    witn_psql -d postgres -c "CREATE DATABASE $DB" >/dev/null || return 1
    witn_psql -d "$DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION witn CASCADE" >/dev/null || return 1
}

# receiver_start NAME [receiver.py options]: starts a receiver; sets RECEIVER_PORT and
# RECEIVER_LOG (one JSON line per request).
WITN_TEST_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
receiver_start() {
    local name=$1
    shift
    RECEIVER_LOG=$WITN_CLUSTER_DIR/receiver-$name.log
    local port_file=$WITN_CLUSTER_DIR/receiver-$name.port
    : >"$RECEIVER_LOG"
    python3 "$WITN_WEBHOOKS_DIR/receiver.py" --port-file "$port_file" --log "$RECEIVER_LOG" \
        --secret "$WITN_TEST_SECRET" "$@" >"$WITN_CLUSTER_DIR/receiver-$name.out" 2>&1 &
    local pid=$!
    witn_on_exit "kill $pid 2>/dev/null"
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$port_file" ] && break
        sleep 0.05
    done
    RECEIVER_PORT=$(cat "$port_file")
    RECEIVER_PID=$pid
}

# The seed's setup: rate card, customers, an agent whose outcomes confirm on a reply.
webhooks_seed() {
    q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
       INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'std'), ('globex', 'std'), ('initech', 'std');
       INSERT INTO witn.agents (key, condition, settlement_period)
       VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}]', '1 hour');
       INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 2.50)" >/dev/null
}
