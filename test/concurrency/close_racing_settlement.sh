#!/usr/bin/env bash
# Closing a month races its settlement (CONTRACT §18): three sessions settle October's outcomes
# in small batches while a fourth closes October for the customer. The month's figures read
# right after the close committed are its figures for good: every line settled after it is
# billed in November, none is lost or doubled, and October's invoice never changes again.
# Needs PGHOST PGPORT PGUSER PGDATABASE (witn installed).
set -u
work=$(mktemp -d)
pids=()
failures=0
cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
sql() { psql -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }
check() {
    if [[ "$2" == "$3" ]]; then echo "ok - $1"; else echo "not ok - $1"; echo "#   expected: $2"; echo "#        got: $3"; failures=$((failures + 1)); fi
}
n=4000
sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('race', 'USD');
     INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES ('race', 'race', 'America/New_York'), ('calm', 'race', 'UTC');
     INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('race', '[]', '1 day');
     INSERT INTO witn.rate_card_prices VALUES ('race', 'race', 0.25);
     -- Due through October in New York, and a second customer that is not closed.
     INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT c, 'o' || g, 'done', 'race', timestamptz '2026-10-01 00:00 America/New_York' - interval '1 day'
            + (g * interval '1 second' * 600)
       FROM generate_series(1, $n) g, unnest(ARRAY['race', 'calm']) c
      WHERE timestamptz '2026-10-01 00:00 America/New_York' + (g * interval '1 second' * 600) < timestamptz '2026-11-01 00:00 America/New_York'" >/dev/null
due=$(sql "SELECT count(*) FROM witn.outcomes WHERE customer_key = 'race'")
echo "# $due outcomes of customer race due in October (New York), as many of customer calm"

settler() { # until nothing is left
    local i
    for ((i = 0; i < 400; i++)); do
        [ "$(sql "SELECT confirmed + failed FROM witn.settle(timestamptz '2026-11-02', 25)")" = 0 ] && break
    done
}
for s in 1 2 3; do settler & pids+=($!); done
sleep 0.5
# The close, then at once (a new transaction) October's figures as the close left them.
sql "SELECT count(*) FROM witn.close_period('2026-10-01', 'race')" >/dev/null
sql "SELECT coalesce(lines, 0) || ' ' || coalesce(amount_exact, 0) FROM witn.invoices WHERE customer_key = 'race' AND month = '2026-10-01'" >"$work/at_close"
for p in "${pids[@]}"; do wait "$p"; done
pids=()
sql "SELECT * FROM witn.settle(timestamptz '2026-11-02')" >/dev/null

at_close=$(cat "$work/at_close")
echo "# October at the close: $at_close (lines, amount); settled before it: ${at_close%% *} of $due"
check "every outcome settled, one line each" "0 $due" \
    "$(sql "SELECT count(*) FILTER (WHERE resolved_at IS NULL) || ' ' || (SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'race') FROM witn.outcomes WHERE customer_key = 'race'")"
check "October's invoice is what it was when the close committed" "$at_close" \
    "$(sql "SELECT coalesce(lines, 0) || ' ' || coalesce(amount_exact, 0) FROM witn.invoices WHERE customer_key = 'race' AND month = '2026-10-01'")"
check "every line settled after the close is billed in November" "$due" \
    "$(sql "SELECT ${at_close%% *} + count(*) FROM witn.invoice_lines WHERE customer_key = 'race' AND billing_period = '2026-11-01'")"
check "no line of the closed customer is in any other month" "0" \
    "$(sql "SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'race' AND billing_period NOT IN ('2026-10-01', '2026-11-01')")"
check "the close raced some settlement: lines on both sides of it" "t" \
    "$(sql "SELECT ${at_close%% *} > 0 AND ${at_close%% *} < $due")"
check "the customer that was not closed is billed in October only" "$due" \
    "$(sql "SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'calm' AND billing_period = '2026-10-01'")"
check "no settlement errors" "0" "$(sql "SELECT count(*) FROM witn.settlement_errors")"
check "verify() is clean" "0" "$(sql "SELECT count(*) FROM witn.verify()")"
if ((failures)); then echo "close_racing_settlement: $failures checks failed"; exit 1; fi
echo "close_racing_settlement: all checks passed"
