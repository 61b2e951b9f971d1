#!/usr/bin/env bash
# witn.settle() sends every notification with pg_notify('witn_outcomes', payload) when, and only
# when, its transaction commits: a listening session receives exactly the rows of
# witn.notifications, once each; a rolled-back settlement sends nothing, and neither does the
# set-based pass that settle() abandons when one outcome cannot be settled. With
# witn.pg_notify = wake, one notification per settling transaction carries the count.
#
# Sessions are psql processes fed through FIFOs, so that one can hold a transaction open while
# another polls for notifications. Needs PGHOST PGPORT PGUSER PGDATABASE (pgtap + witn installed).
set -u

work=$(mktemp -d)
pids=()
failures=0

cleanup() {
    for fd in ${fds[@]+"${fds[@]}"}; do eval "exec ${fd}>&-" 2>/dev/null; done
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fds=()

sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

check() { # description expected actual
    if [[ "$2" == "$3" ]]; then
        echo "ok - $1"
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#        got: $3"
        failures=$((failures + 1))
    fi
}

# An interactive psql session: session_start NAME; session_run NAME SQL (waits until done).
declare -A session_fd
marker=0
session_start() {
    mkfifo "$work/$1.in"
    psql -X -q -v ON_ERROR_STOP=0 <"$work/$1.in" >"$work/$1.out" 2>&1 &
    pids+=($!)
    local fd
    exec {fd}>"$work/$1.in"
    session_fd[$1]=$fd
    fds+=("$fd")
}
session_run() {
    marker=$((marker + 1))
    printf '%s\n\\echo __done_%s\n' "$2" "$marker" >&"${session_fd[$1]}"
    local deadline=$((SECONDS + 60))
    until grep -qx "__done_$marker" "$work/$1.out"; do
        if ((SECONDS > deadline)); then
            echo "not ok - session $1 did not finish: $2"
            cat "$work/$1.out"
            exit 1
        fi
        sleep 0.05
    done
}
# The payloads a session has received so far, one per line, sorted.
received() {
    session_run "$1" 'SELECT 1 AS poll;'
    sed -n 's/^Asynchronous notification "witn_outcomes" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1/p' \
        "$work/$1.out" | sort
}
stored() { sql "SELECT payload::text FROM witn.notifications $1" | sort; }
ids_of() { sed -n 's/^{"id": "\(ntf_[0-9]*\)".*/\1/p' | sort | tr '\n' ' '; }

sql "
INSERT INTO witn.rate_cards (key, currency) VALUES ('standard', 'USD'), ('premium', 'USD');
INSERT INTO witn.customers (key, rate_card_key) VALUES ('acme', 'standard'), ('bigspender', 'premium');
INSERT INTO witn.agents (key, condition, settlement_period)
    VALUES ('support', '[{\"fact\": \"resolved\", \"operator\": \"seen\"}]', '1 hour');
INSERT INTO witn.rate_card_prices (rate_card_key, agent_key, price_per_unit)
    VALUES ('standard', 'support', 25), ('premium', 'support', 5000);
INSERT INTO witn.events (customer_key, key, action, agent_key, properties) VALUES
    ('acme', 'n1', 'resolved', 'support', '{}'),
    ('acme', 'n2', 'resolved', 'support', '{\"attribution\": 3}'),
    ('acme', 'n3', 'opened', 'support', '{}');
" || { echo "not ok - setup"; exit 1; }

session_start listener
session_run listener 'LISTEN witn_outcomes;'
session_start settler

# A rolled-back settlement sends nothing.
session_run settler "BEGIN; SELECT * FROM witn.settle(now() + interval '2 hours');"
check "nothing is received while the settling transaction is open" "" "$(received listener)"
session_run settler 'ROLLBACK;'
check "a rolled-back settlement sends nothing" "" "$(received listener)"
check "and leaves the outcomes due" "3" "$(sql "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")"

# A committed one sends each notification once, after the commit.
session_run settler "BEGIN; SELECT * FROM witn.settle(now() + interval '2 hours');"
check "still nothing before the commit" "" "$(received listener)"
session_run settler 'COMMIT;'
check "after the commit: three notifications, exactly the rows of witn.notifications" \
    "$(stored "")" "$(received listener)"
check "one per resolved outcome" "3" "$(received listener | wc -l | tr -d ' ')"
check "ids are ntf_<outcome_id>" \
    "$(sql "SELECT 'ntf_' || id FROM witn.outcomes WHERE customer_key = 'acme'" | sort | tr '\n' ' ')" \
    "$(received listener | ids_of)"
check "types: two outcome_succeed, one outcome_failed" "outcome_failed outcome_succeed outcome_succeed " \
    "$(received listener | sed -n 's/.*"type": "\([a-z_]*\)".*/\1/p' | sort | tr '\n' ' ')"

# Settling again sends nothing more.
session_run settler "SELECT * FROM witn.settle(now() + interval '2 hours');"
check "settling again sends nothing more" "3" "$(received listener | wc -l | tr -d ' ')"

# One outcome that cannot be settled: settle() abandons its set-based pass (whose pg_notify
# calls must vanish with it) and settles outcome by outcome.
sql "
INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
    ('acme', 'g1', 'resolved', 'support'), ('bigspender', 'bad', 'resolved', 'support'),
    ('acme', 'g2', 'resolved', 'support');
ALTER TABLE witn.invoice_lines ADD CONSTRAINT test_cap CHECK (amount < 1000);
" || { echo "not ok - setup of the bad outcome"; exit 1; }
session_run settler "SET client_min_messages = error;
SELECT * FROM witn.settle(now() + interval '2 hours');"
check "with one bad outcome: notifications for the two good ones only, once each" \
    "$(stored "WHERE outcome_id IN (SELECT id FROM witn.outcomes WHERE key IN ('g1', 'g2'))")" \
    "$(received listener | grep -E '"outcome_key": "g[12]"')"
check "nothing received for the bad outcome" "" "$(received listener | grep '"outcome_key": "bad"')"
check "five notifications received in all" "5" "$(received listener | wc -l | tr -d ' ')"
check "witn.settlement_errors has the bad outcome" "bad" \
    "$(sql "SELECT o.key FROM witn.settlement_errors e JOIN witn.outcomes o ON o.id = e.outcome_id")"

sql "ALTER TABLE witn.invoice_lines DROP CONSTRAINT test_cap;"
session_run settler "SELECT * FROM witn.settle(now() + interval '2 hours');"
check "once fixed, the bad outcome's notification arrives" \
    "$(stored "WHERE customer_key = 'bigspender'")" "$(received listener | grep '"outcome_key": "bad"')"
check "everything received equals witn.notifications" "$(stored "")" "$(received listener)"

# A session listening itself receives its own settlement's notifications after its commit.
sql "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('acme', 'self', 'resolved', 'support');"
session_run settler "LISTEN witn_outcomes; SELECT * FROM witn.settle(now() + interval '2 hours');"
check "the settling session, listening, receives its own notification" \
    "$(stored "WHERE outcome_id = (SELECT id FROM witn.outcomes WHERE key = 'self')")" "$(received settler)"

# witn.pg_notify = wake: one wake-up per settling transaction with the count, the bodies only in
# the outbox; and nothing for a transaction that settles nothing.
sql "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES
    ('acme', 'w1', 'resolved', 'support'), ('acme', 'w2', 'opened', 'support'), ('acme', 'w3', 'resolved', 'support');"
before=$(received listener | wc -l | tr -d ' ')
session_run settler "SET witn.pg_notify = wake; SELECT * FROM witn.settle(now() + interval '2 hours');"
check "wake: one notification for three resolutions" "$((before + 1))" "$(received listener | wc -l | tr -d ' ')"
check "wake: its payload is the count" '{"type": "notifications", "count": 3}' \
    "$(received listener | grep -F '"type": "notifications"')"
check "wake: the three bodies are in the outbox" "3" \
    "$(sql "SELECT count(*) FROM witn.notifications n JOIN witn.outcomes o ON o.id = n.outcome_id WHERE o.key LIKE 'w_'")"
session_run settler "SELECT * FROM witn.settle(now() + interval '2 hours'); RESET witn.pg_notify;"
check "wake: settling nothing sends nothing" "$((before + 1))" "$(received listener | wc -l | tr -d ' ')"

if ((failures)); then
    echo "settle_notify: $failures check(s) failed"
    exit 1
fi
echo "settle_notify: all checks passed"
