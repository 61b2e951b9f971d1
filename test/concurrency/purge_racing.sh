#!/usr/bin/env bash
# witn.purge_events (CONTRACT §25) in real parallel sessions:
#   1. a purge never waits: an outcome locked by another transaction (an event being applied to
#      it) is skipped under lock_timeout, and purged by a later call;
#   2. ingestion does not wait for a purge: while a purge's transaction is open, new events
#      (new outcomes, and events of outcomes the purge did not take) go in under lock_timeout;
#   3. a race: two sessions sending events (new outcomes due at once, outcomes not due yet, and
#      late events for old outcomes, purged or not), one settling and two purging in batches
#      (as witn_operator), for WITN_RACE_SECONDS; then everything is settled and checked:
#      witn.verify() clean (purged outcomes skipped), one invoice line per confirmed outcome,
#      one notification per resolved one, no settlement error, every purged outcome's remaining
#      events arrived after its purge (late), and nothing purged that was not resolved before
#      the purge's time.
#
# Needs PGHOST PGPORT PGUSER (superuser) PGDATABASE (witn installed).
set -u

race_seconds=${WITN_RACE_SECONDS:-8}
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

sql "INSERT INTO witn.rate_cards (key, currency) VALUES ('pr', 'USD');
     INSERT INTO witn.customers (key, rate_card_key) SELECT 'pr' || i, 'pr' FROM generate_series(1, 4) i;
     INSERT INTO witn.agents (key, condition, settlement_period) VALUES ('pr', '[{\"fact\": \"done\", \"operator\": \"seen\"}]', '1 day');
     INSERT INTO witn.rate_card_prices VALUES ('pr', 'pr', 3)" >/dev/null
# History: 2,000 outcomes resolved two days ago (half confirmed).
sql "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'pr' || (1 + i % 4), 'old-' || i, CASE WHEN i % 2 = 0 THEN 'done' ELSE 'started' END, 'pr', now() - interval '3 days'
       FROM generate_series(1, 2000) i" >/dev/null
sql "SELECT witn.settle()" >/dev/null

# ---- 1. a purge skips a locked outcome instead of waiting -----------------------------------------
fifo=$work/hold
mkfifo "$fifo"
# A transaction applying an event to old-2 holds its outcome row until told to finish.
{ echo "BEGIN; INSERT INTO witn.events (customer_key, key, action) VALUES ('pr3', 'old-2', 'note'); SELECT 'held';"; cat "$fifo"; } |
    psql -X -qAt >"$work/hold.out" 2>&1 &
holder=$!
pids+=($holder)
for _ in $(seq 50); do grep -q held "$work/hold.out" && break; sleep 0.1; done
exec 3>"$fifo"
out=$(psql -X -qAt -c "SET lock_timeout = '200ms'; SET ROLE witn_operator; SELECT witn.purge_events(now() - interval '1 day', 5000)" 2>&1)
check "a purge with an outcome locked by an event in flight completes without waiting (lock_timeout 200ms)" "1999" "$out"
check "and skips that outcome" "" "$(sql "SELECT events_purged_at FROM witn.outcomes WHERE key = 'old-2'")"
echo "COMMIT;" >&3
exec 3>&-
wait "$holder"
check "a later purge takes it" "2" "$(psql -X -qAt -c "SET ROLE witn_operator; SELECT witn.purge_events(now() - interval '1 day')")"

# ---- 2. ingestion does not wait for an open purge ---------------------------------------------
sql "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
     SELECT 'pr' || (1 + i % 4), 'mid-' || i, 'done', 'pr', now() - interval '3 days' FROM generate_series(1, 500) i" >/dev/null
sql "SELECT witn.settle()" >/dev/null
fifo2=$work/hold2
mkfifo "$fifo2"
{ echo "BEGIN; SET ROLE witn_operator; SELECT 'purged ' || witn.purge_events(now() - interval '1 day', 300);"; cat "$fifo2"; } |
    psql -X -qAt >"$work/purge.out" 2>&1 &
purger=$!
pids+=($purger)
for _ in $(seq 50); do grep -q purged "$work/purge.out" && break; sleep 0.1; done
exec 4>"$fifo2"
out=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "SET lock_timeout = '500ms'" \
    -c "INSERT INTO witn.events (customer_key, key, action, agent_key) SELECT 'pr' || (1 + i % 4), 'during-' || i, 'done', 'pr' FROM generate_series(1, 200) i" \
    -c "INSERT INTO witn.events (customer_key, key, action) SELECT customer_key, key, 'note' FROM (SELECT customer_key, key FROM witn.outcomes WHERE key LIKE 'mid-%' LIMIT 20 FOR UPDATE SKIP LOCKED) untaken" \
    -c "SELECT count(*) FROM witn.outcomes WHERE key LIKE 'during-%'" 2>&1)
check "while a purge's transaction is open, new events and events of outcomes it did not take go in without waiting" "200" "$out"
echo "COMMIT;" >&4
exec 4>&-
wait "$purger"
check "that purge took its batch" "purged 300" "$(cat "$work/purge.out")"

# ---- 3. the race ------------------------------------------------------------------------------
deadline=$((SECONDS + race_seconds))
ingest() { # n
    local n=$1 i=0
    while [ $SECONDS -lt $deadline ]; do
        i=$((i + 1))
        psql -X -q -v ON_ERROR_STOP=1 -c "
            INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
            SELECT 'pr' || (1 + j % 4), 'race-$n-$i-' || j, CASE WHEN j % 3 = 0 THEN 'started' ELSE 'done' END, 'pr',
                   now() - CASE WHEN j % 2 = 0 THEN interval '3 days' ELSE interval '0' END
              FROM generate_series(1, 40) j;
            INSERT INTO witn.events (customer_key, key, action)
            SELECT 'pr' || (1 + k % 4), 'old-' || k, 'note' FROM (SELECT (random() * 1999)::int + 1 AS k FROM generate_series(1, 10)) r" || return 1
    done
}
settler() {
    while [ $SECONDS -lt $deadline ]; do
        psql -X -q -v ON_ERROR_STOP=1 -c "SET ROLE witn_operator; SELECT witn.settle(now(), 200)" >/dev/null || return 1
    done
}
purger() {
    local total=0 got
    while [ $SECONDS -lt $deadline ]; do
        got=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "SET ROLE witn_operator; SELECT witn.purge_events(now() - interval '1 day', 50)") || return 1
        total=$((total + got))
    done
    echo "$total"
}
ingest 1 >"$work/i1.out" 2>"$work/i1.err" & pids+=($!); i1=$!
ingest 2 >"$work/i2.out" 2>"$work/i2.err" & pids+=($!); i2=$!
settler >"$work/s.out" 2>"$work/s.err" & pids+=($!); s=$!
purger >"$work/p1.out" 2>"$work/p1.err" & pids+=($!); p1=$!
purger >"$work/p2.out" 2>"$work/p2.err" & pids+=($!); p2=$!
ok=yes
for p in $i1 $i2 $s $p1 $p2; do wait $p || ok=no; done
check "two senders, a settler and two purgers ran for ${race_seconds}s without an error" "yes" "$ok"
[ "$ok" = yes ] || cat "$work"/*.err | head -20 | sed 's/^/#   /'
sql "SELECT witn.settle()" >/dev/null
purged=$(sql "SELECT count(*) FROM witn.outcomes WHERE events_purged_at IS NOT NULL")
echo "# race: $(sql "SELECT count(*) FROM witn.outcomes WHERE key LIKE 'race-%'") outcomes opened, $purged purged in all, purgers deleted $(cat "$work/p1.out") + $(cat "$work/p2.out") events"
check "outcomes resolved during the race were purged by it" "t" \
    "$(sql "SELECT count(*) > 0 FROM witn.outcomes WHERE key LIKE 'race-%' AND events_purged_at IS NOT NULL")"
check "nothing purged that was not resolved a day before its purge, or not past its window" "0" \
    "$(sql "SELECT count(*) FROM witn.outcomes WHERE events_purged_at IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= events_purged_at - interval '1 day')")"
check "every event left of a purged outcome arrived after the purge, late" "0" \
    "$(sql "SELECT count(*) FROM witn.events e JOIN witn.outcomes o USING (customer_key, key)
             WHERE o.events_purged_at IS NOT NULL AND (NOT e.late OR e.received_at < o.events_purged_at)")"
check "verify() is clean" "0" "$(sql "SELECT count(*) FROM witn.verify()" 2>/dev/null)"
check "one invoice line per confirmed outcome, none for a failed one" "0" "$(sql "
    SELECT count(*) FROM witn.outcomes o
     WHERE (SELECT count(*) FROM witn.invoice_lines l WHERE l.customer_key = o.customer_key AND l.outcome_id = o.id)
           <> CASE WHEN o.status = 'CONFIRMED' THEN 1 ELSE 0 END")"
check "one notification per resolved outcome" "0" "$(sql "
    SELECT count(*) FROM witn.outcomes o WHERE o.resolved_at IS NOT NULL
       AND (SELECT count(*) FROM witn.notifications n WHERE n.customer_key = o.customer_key AND n.outcome_id = o.id AND n.kind IN ('outcome_succeed', 'outcome_failed')) <> 1")"
check "no settlement error" "0" "$(sql "SELECT count(*) FROM witn.settlement_errors")"

[ "$failures" -eq 0 ]
