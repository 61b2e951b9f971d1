#!/usr/bin/env bash
# Credits and reversals in real parallel sessions (CONTRACT §18, §19):
#   1. eight sessions each try 30 times to credit a random small amount on the SAME confirmed
#      outcome (line amount 10.00) while two sessions call reverse_outcome on it at random
#      moments. CREDIT_EXCEEDS_AMOUNT (WT011) and ALREADY_REVERSED (WT012) are expected and
#      counted, nothing else. Credits never exceed the line amount; after the one reversal they
#      total it exactly; one notification per credit row plus the reversal's, in the table and
#      through pg_notify (a listening session).
#   2. a close racing credits and settlement: one session closes November for a customer while
#      others credit its November-billed outcomes and settle more November-due outcomes in
#      batches of 50 (witn.settle(now(), 50)). The closing session reads November's invoice in a
#      new transaction right after the close committed, together with the lines and credits it
#      can see (one snapshot). At the end November's invoice is unchanged and every line and
#      credit the close did not see (committed after it) is billed in December.
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
# A session: psql reading the statements on stdin, one transaction each, errors reported by
# SQLSTATE only (stderr), going on after an error.
session() { # name (statements on stdin)
    { echo '\set VERBOSITY sqlstate'; cat; } | psql -X -qAt -v ON_ERROR_STOP=0 >"$work/$1.out" 2>"$work/$1.err"
}
outs() { local n; for n; do cat "$work/$n.out"; done; }
errs() { local n; for n; do cat "$work/$n.err"; done; }
# How many errors with that SQLSTATE, and lines of stderr that are anything else (other errors,
# warnings), in the named sessions.
errors_with() { local code=$1; shift; errs "$@" | grep -c "ERROR:  $code\$"; }
other_errors() { local allowed=$1; shift; errs "$@" | grep -v -E "ERROR:  ($allowed)\$" | grep -c .; }
ms() { date +%s%3N; }
started=$(ms)

# =============================================================================================
# 1. Parallel credits and reversals of one outcome.
# =============================================================================================
sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('par', 'USD');
     INSERT INTO witn.customers (key, rate_card_key, timezone) VALUES ('par', 'par', 'Europe/Berlin'), ('nov', 'par', 'America/New_York');
     INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('par', '[]', '1 hour');
     INSERT INTO witn.rate_card_prices VALUES ('par', 'par', 10.00);
     INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     VALUES ('par', 'one', 'done', 'par', now() - interval '2 hours');
     SELECT * FROM witn.settle();" >/dev/null || { echo "not ok - setup of part 1"; exit 1; }
id=$(sql "SELECT id FROM witn.outcomes WHERE customer_key = 'par' AND key = 'one'")
check "the outcome is confirmed with a line of 10.00" "CONFIRMED 10.00" \
    "$(sql "SELECT o.status || ' ' || l.amount FROM witn.outcomes o JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id WHERE o.id = $id")"

# The listener polls for notifications every 0.1 s until told to stop.
{
    echo 'LISTEN witn_outcomes;'
    while [ ! -e "$work/stop_listening" ]; do echo 'SELECT 1;'; sleep 0.1; done
    echo 'SELECT 1;'
} | psql -X -qAt >"$work/listener.out" 2>"$work/listener.err" &
listener=$!
pids+=("$listener")
sleep 0.3

p1_start=$(ms)
crediters=()
for s in 1 2 3 4 5 6 7 8; do
    for ((i = 1; i <= 30; i++)); do
        echo "SELECT FROM pg_sleep(random() * 0.02);"
        echo "SELECT 'credited ' || c.amount FROM witn.credit_outcome($id, round((0.05 + random() * 0.10)::numeric, 2), 'parallel $s.$i') c;"
    done | session "credit$s" &
    pids+=($!)
    crediters+=("credit$s")
done
reversers=()
for s in 1 2; do
    for ((i = 1; i <= 3; i++)); do
        # The first attempt somewhere in the crediting, the others soon after.
        if ((i == 1)); then echo "SELECT FROM pg_sleep(0.1 + random() * 0.4);"; else echo "SELECT FROM pg_sleep(random() * 0.2);"; fi
        echo "SELECT 'reversed ' || count(*) FROM witn.reverse_outcome($id, 'parallel reversal $s.$i');"
    done | session "reverse$s" &
    pids+=($!)
    reversers+=("reverse$s")
done
for pid in "${pids[@]}"; do [ "$pid" = "$listener" ] || wait "$pid"; done
p1_ms=$(($(ms) - p1_start))
touch "$work/stop_listening"
wait "$listener"
pids=()

credited_ok=$(outs "${crediters[@]}" | grep -c '^credited ')
credited_sum=$(outs "${crediters[@]}" | sed -n 's/^credited //p' | paste -sd+ | sed 's/^$/0/')
wt011=$(errors_with WT011 "${crediters[@]}")
reversed_ok=$(outs "${reversers[@]}" | grep -c '^reversed ')
wt012=$(errors_with WT012 "${reversers[@]}")
echo "# part 1: ${p1_ms} ms; 240 credit attempts: $credited_ok credited (sum $(sql "SELECT $credited_sum")), $wt011 WT011; 6 reversal attempts: $reversed_ok succeeded ($(outs "${reversers[@]}" | grep '^reversed ' | tr '\n' ' ')), $wt012 WT012"

check "every credit attempt either credited or failed with WT011" "240" "$((credited_ok + wt011))"
check "no other error in the credit sessions" "0" "$(other_errors WT011 "${crediters[@]}")"
check "exactly one reversal succeeded; the others failed with WT012" "1 5" "$reversed_ok $wt012"
check "no other error in the reversal sessions" "0" "$(other_errors WT012 "${reversers[@]}")"
check "the credits exceeded what was left at some point (WT011 seen)" "t" "$(sql "SELECT $wt011 > 0")"
# Serialized under the outcome's lock: ordered by their running total, each credit's total is the
# previous total plus its amount (no two credits decided from the same total), the reversal last.
check "the credits were decided one after another: each running total = the previous one + its amount" "0 outcome_reversed" \
    "$(sql "WITH n AS (SELECT kind, (payload #>> '{data,credited}')::numeric AS credited,
                              coalesce((payload #>> '{data,credit,amount}')::numeric, 0) AS amount
                         FROM witn.notifications WHERE outcome_id = $id AND kind <> 'outcome_succeed')
            SELECT (SELECT count(*) FROM (SELECT credited - amount IS DISTINCT FROM coalesce(lag(credited) OVER (ORDER BY credited, kind), 0) AS bad
                                            FROM n) x WHERE bad)
                   || ' ' || (SELECT kind FROM n ORDER BY credited DESC, kind DESC LIMIT 1)")"
check "adjustment rows are the successful credits, with the amounts the sessions got back" "$credited_ok $(sql "SELECT $credited_sum::numeric")" \
    "$(sql "SELECT count(*) || ' ' || coalesce(sum(amount), 0) FROM witn.credit_lines WHERE outcome_id = $id AND kind = 'adjustment'")"
check "total credits = the line amount exactly (a reversal succeeded), never more" "10.00 true" \
    "$(sql "SELECT sum(c.amount) || ' ' || (sum(c.amount) <= 10.00) FROM witn.credit_lines c WHERE c.outcome_id = $id")"
check "at most one reversal credit row; the outcome is reversed once and stays CONFIRMED" "true CONFIRMED true" \
    "$(sql "SELECT (SELECT count(*) <= 1 FROM witn.credit_lines WHERE outcome_id = $id AND kind = 'reversal')
                   || ' ' || status || ' ' || (reversed_at IS NOT NULL AND reversal_reason LIKE 'parallel reversal %')
              FROM witn.outcomes WHERE id = $id")"
check "reversal returned its row only when something was left" \
    "$(sql "SELECT 'reversed ' || count(*) FROM witn.credit_lines WHERE outcome_id = $id AND kind = 'reversal'")" \
    "$(outs "${reversers[@]}" | grep '^reversed ')"
check "one notification per credit row plus the reversal notification" \
    "$(sql "SELECT count(*) FILTER (WHERE kind = 'adjustment') || ' 1'  FROM witn.credit_lines WHERE outcome_id = $id")" \
    "$(sql "SELECT count(*) FILTER (WHERE kind = 'outcome_credited') || ' ' || count(*) FILTER (WHERE kind = 'outcome_reversed') FROM witn.notifications WHERE outcome_id = $id")"
check "every credit row has its notification (by credit_id)" "0" \
    "$(sql "SELECT count(*) FROM witn.credit_lines c WHERE c.outcome_id = $id
              AND (SELECT count(*) FROM witn.notifications n WHERE n.customer_key = c.customer_key AND n.credit_id = c.id) <> 1")"
check "the running totals in the notifications never exceed 10.00 and end at it" "true 10.00" \
    "$(sql "SELECT bool_and((payload #>> '{data,credited}')::numeric <= 10.00) || ' '
                   || max((payload #>> '{data,credited}')::numeric)
              FROM witn.notifications WHERE outcome_id = $id AND kind <> 'outcome_succeed'")"
received_ids=$(sed -n 's/^Asynchronous notification "witn_outcomes" with payload "{"id": "\(ntf_[0-9a-z_]*\)".*/\1/p' "$work/listener.out" | grep -E "^ntf_${id}_(credit|reversed)" | sort)
check "pg_notify: the listener received exactly those notifications, once each" \
    "$(sql "SELECT payload ->> 'id' FROM witn.notifications WHERE outcome_id = $id AND kind <> 'outcome_succeed'" | sort)" \
    "$received_ids"
check "credits billed in December (Berlin), the month they were issued" "2026-12-01" \
    "$(sql "SELECT string_agg(DISTINCT billing_period::text, ',') FROM witn.credit_lines WHERE outcome_id = $id")"
check "the invoice nets to 0.00" "10.00 10.00 0.00" \
    "$(sql "SELECT charges || ' ' || credits || ' ' || amount FROM witn.invoices WHERE customer_key = 'par' AND month = '2026-12-01'")"

# =============================================================================================
# 2. Closing November races credits and settlement.
# =============================================================================================
# Customer nov (New York): 300 outcomes resolved 1-14 November (local), settled before the race,
# billed in November; 6000 more due 15-27 November, settled during the race.
sql "INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('nov', '[]', '1 hour');
     INSERT INTO witn.rate_card_prices VALUES ('par', 'nov', 2.505);
     INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'nov', 'a' || g, 'done', 'nov', timestamptz '2026-11-01 00:00 America/New_York' + g * interval '1 hour'
       FROM generate_series(1, 300) g;
     SELECT * FROM witn.settle(timestamptz '2026-11-15 00:00 America/New_York');
     INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'nov', 'b' || g, 'done', 'nov', timestamptz '2026-11-15 00:00 America/New_York' + g * interval '3 minutes'
       FROM generate_series(1, 6000) g;" >/dev/null || { echo "not ok - setup of part 2"; exit 1; }
check "before the race: 300 lines in November, 6000 outcomes due" "300 6000" \
    "$(sql "SELECT (SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'nov' AND billing_period = '2026-11-01')
                   || ' ' || count(*) FROM witn.outcomes WHERE customer_key = 'nov' AND resolved_at IS NULL AND settles_at < now()")"

p2_start=$(ms)
settlers=()
for s in 1 2 3; do
    # Batches of 50 until nothing is left (a few more statements than needed: they return 0).
    for ((i = 0; i < 50; i++)); do
        echo "SELECT 'settled ' || (confirmed + failed) FROM witn.settle(now(), 50);"
    done | session "settle$s" &
    pids+=($!)
    settlers+=("settle$s")
done
p2_crediters=()
for s in 1 2 3 4; do
    for ((i = 1; i <= 60; i++)); do
        echo "SELECT FROM pg_sleep(random() * 0.01);"
        echo "SELECT 'credited ' || c.amount || ' ' || c.billing_period
                FROM (SELECT outcome_id FROM witn.invoice_lines WHERE customer_key = 'nov' AND billing_period = '2026-11-01'
                       ORDER BY random() LIMIT 1) l,
                     witn.credit_outcome(l.outcome_id, round((0.01 + random() * 0.99)::numeric, 2), 'race $s.$i') c;"
    done | session "ncredit$s" &
    pids+=($!)
    p2_crediters+=("ncredit$s")
done
sleep 0.25
# The close; then, in a new transaction (one snapshot), November's invoice and what it can see.
psql -X -qAt -v ON_ERROR_STOP=1 \
    -c "SELECT count(*) FROM witn.close_period('2026-11-01', 'nov')" \
    -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
    -c "SELECT coalesce(lines, 0) || ' ' || coalesce(credit_count, 0) || ' ' || coalesce(charges, 0) || ' ' || coalesce(credits, 0)
               || ' ' || coalesce(amount_exact, 0) || ' ' || coalesce(amount, 0)
          FROM witn.invoices WHERE customer_key = 'nov' AND month = '2026-11-01'" \
    -c "CREATE TABLE public.cpar_seen_lines AS SELECT outcome_id, billing_period FROM witn.invoice_lines WHERE customer_key = 'nov'" \
    -c "CREATE TABLE public.cpar_seen_credits AS SELECT id, billing_period FROM witn.credit_lines WHERE customer_key = 'nov'" \
    -c "COMMIT" >"$work/at_close" 2>"$work/close.err" || { echo "not ok - the close failed:"; sed 's/^/#   /' "$work/close.err"; failures=$((failures + 1)); }
close_ms=$(($(ms) - p2_start))
for pid in "${pids[@]}"; do wait "$pid"; done
pids=()
p2_ms=$(($(ms) - p2_start))
sql "SELECT * FROM witn.settle()" >/dev/null

at_close=$(sed -n 2p "$work/at_close")
p2_credited=$(outs "${p2_crediters[@]}" | grep -c '^credited ')
p2_wt011=$(errors_with WT011 "${p2_crediters[@]}")
seen_b=$(sql "SELECT count(*) FROM public.cpar_seen_lines WHERE outcome_id IN (SELECT id FROM witn.outcomes WHERE customer_key = 'nov' AND key LIKE 'b%')")
echo "# part 2: ${p2_ms} ms, close committed after ${close_ms} ms; November at the close: $at_close (lines credit_count charges credits amount_exact amount)"
echo "#   $seen_b of 6000 racing outcomes settled before the close; $p2_credited credits ($(sql "SELECT count(*) FROM public.cpar_seen_credits") before the close), $p2_wt011 WT011"

check "the close returned the one closed row" "1" "$(sed -n 1p "$work/at_close")"
check "no error in the settling sessions" "0" "$(other_errors 'NONE' "${settlers[@]}")"
check "credit sessions: every attempt credited or WT011, nothing else" "240 0" \
    "$((p2_credited + p2_wt011)) $(other_errors WT011 "${p2_crediters[@]}")"
check "every outcome settled, one line each" "0 6300" \
    "$(sql "SELECT count(*) FILTER (WHERE resolved_at IS NULL) || ' ' || (SELECT count(*) FROM witn.invoice_lines WHERE customer_key = 'nov') FROM witn.outcomes WHERE customer_key = 'nov'")"
check "November's invoice is what it was right after the close committed" "$at_close" \
    "$(sql "SELECT coalesce(lines, 0) || ' ' || coalesce(credit_count, 0) || ' ' || coalesce(charges, 0) || ' ' || coalesce(credits, 0)
                   || ' ' || coalesce(amount_exact, 0) || ' ' || coalesce(amount, 0)
              FROM witn.invoices WHERE customer_key = 'nov' AND month = '2026-11-01'")"
check "November's lines are exactly the November lines the close saw" "0" \
    "$(sql "SELECT count(*) FROM (SELECT outcome_id FROM witn.invoice_lines WHERE customer_key = 'nov' AND billing_period = '2026-11-01'
                                  EXCEPT SELECT outcome_id FROM public.cpar_seen_lines WHERE billing_period = '2026-11-01') x")"
check "every line that committed after the close is billed in December" "0" \
    "$(sql "SELECT count(*) FROM witn.invoice_lines l WHERE l.customer_key = 'nov' AND l.billing_period <> '2026-12-01'
              AND NOT EXISTS (SELECT 1 FROM public.cpar_seen_lines s WHERE s.outcome_id = l.outcome_id)")"
check "every credit that committed after the close is billed in December" "0" \
    "$(sql "SELECT count(*) FROM witn.credit_lines c WHERE c.customer_key = 'nov' AND c.billing_period <> '2026-12-01'
              AND NOT EXISTS (SELECT 1 FROM public.cpar_seen_credits s WHERE s.id = c.id)")"
check "no credit of customer nov is billed in November (issued in December)" "0" \
    "$(sql "SELECT count(*) FROM witn.credit_lines WHERE customer_key = 'nov' AND billing_period = '2026-11-01'")"
check "the lines the close saw kept their billing month" "0" \
    "$(sql "SELECT count(*) FROM public.cpar_seen_lines s JOIN witn.invoice_lines l ON l.customer_key = 'nov' AND l.outcome_id = s.outcome_id
             WHERE l.billing_period <> s.billing_period")"
check "the close raced settlement: racing lines on both sides of it" "t" "$(sql "SELECT $seen_b > 0 AND $seen_b < 6000")"
check "the close raced the credits: credits on both sides of it" "t" \
    "$(sql "SELECT (SELECT count(*) FROM public.cpar_seen_credits) > 0 AND (SELECT count(*) FROM public.cpar_seen_credits) < $p2_credited")"
check "credits per outcome never exceed the line" "0" \
    "$(sql "SELECT count(*) FROM (SELECT c.outcome_id FROM witn.credit_lines c JOIN witn.invoice_lines l USING (customer_key, outcome_id)
              WHERE c.customer_key = 'nov' GROUP BY c.outcome_id, l.amount HAVING sum(c.amount) > l.amount) x")"
check "one outcome_credited notification per credit of customer nov" \
    "$(sql "SELECT count(*) FROM witn.credit_lines WHERE customer_key = 'nov'")" \
    "$(sql "SELECT count(*) FROM witn.notifications WHERE customer_key = 'nov' AND kind = 'outcome_credited'")"
check "no settlement errors" "0" "$(sql "SELECT count(*) FROM witn.settlement_errors")"
check "verify() is clean" "0" "$(sql "SELECT count(*) FROM witn.verify()")"
sql "DROP TABLE public.cpar_seen_lines, public.cpar_seen_credits" >/dev/null
echo "# total $(($(ms) - started)) ms"
if ((failures)); then echo "credits_parallel: $failures checks failed"; exit 1; fi
echo "credits_parallel: all checks passed"
