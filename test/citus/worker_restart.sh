#!/usr/bin/env bash
# A worker restarted mid-ingest with nothing lost: three writers send single-row and
# multi-customer statements through the coordinator while worker 1 is crashed
# (pg_ctl -m immediate), kept down for a few seconds and started again. Then (after Citus's 2PC
# recovery) every statement that reported success is there whole, every one that failed left
# no event at all, statements for worker 2's customers never failed, statements sent after the
# restart all succeeded, the outcomes add up, settlement resolves every outcome once and
# verify() is clean.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
export LC_ALL=C
read -ra ports <<<"$WITN_CITUS_PORTS"
pg_bin=${WITN_PG_BIN:-/usr/lib/postgresql/15/bin}
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
qn() { local port=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -c "$1"; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u "${WITN_CLUSTER_USER:-postgres}" -- "$@"; else "$@"; fi; }

work=$(mktemp -d)
writer_pids=()
datadir=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p
    touch "$work/stop" 2>/dev/null || true
    for p in ${writer_pids[@]+"${writer_pids[@]}"}; do kill "$p" 2>/dev/null || true; done
    # Never leave the worker down for the harness.
    if [ -n "$datadir" ] && ! as_owner "$pg_bin/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
        (cd / && as_owner "$pg_bin/pg_ctl" -D "$datadir" -l "$datadir/../server.log" -w -t 60 start >/dev/null 2>&1) || true
    fi
    durable off 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# The test clusters run with fsync and synchronous_commit off (speed): a crash would then lose
# what a node had committed, which says nothing about witn. Durable, as in production, for this
# test; back to the cluster's settings at the end.
durable() { # on|off
    local p
    for p in "${ports[@]}"; do
        if [ "$1" = on ]; then
            qn "$p" "ALTER SYSTEM SET fsync = on" >/dev/null && qn "$p" "ALTER SYSTEM SET synchronous_commit = on" >/dev/null
        else
            qn "$p" "ALTER SYSTEM RESET fsync" >/dev/null && qn "$p" "ALTER SYSTEM RESET synchronous_commit" >/dev/null
        fi
        qn "$p" "SELECT pg_reload_conf()" >/dev/null
    done
}
durable on
check "every node runs with fsync and synchronous_commit on" "on on on" \
    "$(for p in "${ports[@]}"; do qn "$p" "SELECT current_setting('fsync') = 'on' AND current_setting('synchronous_commit') = 'on'" | sed 's/t/on/'; done | tr '\n' ' ' | sed 's/ $//')"

q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key) SELECT 'c' || g, 'std' FROM generate_series(1, 20) g;
   INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
   VALUES ('support', '[{\"fact\": \"replied\", \"operator\": \"seen\"}, {\"fact\": \"reopened\", \"operator\": \"not seen\"}]', 'sum', '1 day');
   INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 0.10);" >/dev/null

# Which customers live on worker 1 (the one crashed).
on_w1=" $(q "SELECT string_agg(substr(c, 2), ' ' ORDER BY c)
               FROM (SELECT 'c' || g AS c FROM generate_series(1, 20) g) x
               JOIN pg_dist_shard_placement p ON p.shardid = get_shard_id_for_distribution_column('witn.events', c)
              WHERE p.nodeport = ${ports[1]}") "
echo "# customers on worker 1 (port ${ports[1]}):$on_w1"
check "both workers hold some of the 20 customers" t \
    "$(q "SELECT count(DISTINCT p.nodeport) = 2 FROM generate_series(1, 20) g
            JOIN pg_dist_shard_placement p ON p.shardid = get_shard_id_for_distribution_column('witn.events', 'c' || g)")"

set_phase() { echo "$1" >"$work/phase.new" && mv "$work/phase.new" "$work/phase"; }
set_phase before
# Events occur from now on (not in the past), so none arrives after its outcome is due.
base=$(q "SELECT now()")
# writer W: statements until $work/stop exists; statement n of writer w carries properties
# {"w": w, "n": n} and idempotency keys w<w>-<n>-<i>. One line per statement in $work/w<w>:
#   n events ok|fail phase-when-sent touches-worker-1(1|0)
writer() {
    local w=$1 n=0 k i c cs custs phase res w1 err sql
    RANDOM=$((w * 7919))
    while [ ! -e "$work/stop" ]; do
        n=$((n + 1))
        phase=$(<"$work/phase") || true
        phase=${phase:-unknown}
        if ((RANDOM % 3 == 0)); then k=1; else k=$((2 + RANDOM % 10)); fi
        custs=() w1=0
        for ((i = 0; i < k; i++)); do
            c=$((1 + RANDOM % 20)); custs+=("$c")
            [[ $on_w1 == *" $c "* ]] && w1=1
        done
        cs=$(IFS=,; echo "${custs[*]}")
        if ((k == 1)); then
            sql="INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key, occurred_at)
                 VALUES ('c$cs', 'w$w-o$((RANDOM % 15))', '$( ((RANDOM % 8)) && echo replied || echo reopened)', 'support',
                         '{\"w\": $w, \"n\": $n, \"attribution\": $((1 + RANDOM % 3))}', 'w$w-$n-1',
                         timestamptz '$base' + make_interval(secs => $n))"
        else
            sql="INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key, occurred_at)
                 SELECT 'c' || t.c, 'w$w-o' || ((t.i * 5 + $n) % 15),
                        CASE WHEN (t.i + $n) % 8 = 0 THEN 'reopened' ELSE 'replied' END, 'support',
                        jsonb_build_object('w', $w, 'n', $n, 'attribution', 1 + t.i % 3), 'w$w-$n-' || t.i,
                        timestamptz '$base' + make_interval(secs => $n)
                   FROM unnest(ARRAY[$cs]) WITH ORDINALITY AS t(c, i)"
        fi
        if err=$(psql -X -q -v ON_ERROR_STOP=1 -c "$sql" 2>&1 >/dev/null); then
            res=ok
        else
            res=fail
            printf '%s\n' "$err" | grep -m1 . >>"$work/errors" || echo "exit without message" >>"$work/errors"
        fi
        echo "$n $k $res $phase $w1" >>"$work/w$w"
    done
}

for w in 1 2 3; do writer "$w" & writer_pids+=($!); done
sleep 3

datadir=$(qn "${ports[1]}" "SHOW data_directory")
set_phase down
(cd / && as_owner "$pg_bin/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop >/dev/null)
echo "# worker 1 crashed (pg_ctl -m immediate stop on $datadir)"
sleep 4
(cd / && as_owner "$pg_bin/pg_ctl" -D "$datadir" -l "$datadir/../server.log" -w -t 60 start >/dev/null)
echo "# worker 1 restarted, $(qn "${ports[1]}" "SELECT count(*) FROM pg_prepared_xacts") transactions still prepared on it"
# Transactions prepared on worker 1 before the crash hold their locks until Citus resolves
# them: do it now, as an operator would, rather than wait for the maintenance daemon.
q "SELECT recover_prepared_transactions()" >/dev/null
set_phase after
sleep 4
touch "$work/stop"
ok=0
for p in "${writer_pids[@]}"; do wait "$p" || ok=1; done
writer_pids=()
check "every writer ran to the end" 0 "$ok"

# Resolve what the crash left prepared, until no node holds a prepared transaction.
pending=""
for ((i = 0; i < 30; i++)); do
    q "SELECT recover_prepared_transactions()" >/dev/null
    pending=$(for p in "${ports[@]}"; do qn "$p" "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()"; done | awk '{s += $1} END {print s + 0}')
    [ "$pending" = 0 ] && break
    sleep 1
done
check "no prepared transaction left on any node after recovery" 0 "$pending"

sent=$(cat "$work"/w[123] | wc -l)
n_ok=$(cat "$work"/w[123] | awk '$3 == "ok"' | wc -l)
n_fail=$(cat "$work"/w[123] | awk '$3 == "fail"' | wc -l)
echo "# $sent statements: $n_ok ok, $n_fail failed; $(awk '$3 == "ok" {s += $2} END {print s + 0}' "$work"/w[123]) events reported stored"
if [ -s "$work/errors" ]; then
    sort "$work/errors" | sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/#   /'
fi
check "statements failed while worker 1 was down" t "$( ((n_fail > 0)) && echo t || echo f)"
check "statements for worker 2's customers only never failed" 0 \
    "$(awk '$3 == "fail" && $5 == 0' "$work"/w[123] | wc -l)"
check "statements sent after the restart all succeeded" 0 \
    "$(awk '$3 == "fail" && $4 == "after"' "$work"/w[123] | wc -l)"
check "statements touching worker 1 succeeded after the restart" t \
    "$(awk '$3 == "ok" && $4 == "after" && $5 == 1 {n++} END {print (n > 0) ? "t" : "f"}' "$work"/w[123])"

# Expected events per statement (0 for a failed one) against what is stored, by marker.
for w in 1 2 3; do awk -v w="$w" '{print w, $1, ($3 == "ok") ? $2 : 0}' "$work/w$w"; done | sort >"$work/expected"
q "SELECT properties->>'w', properties->>'n', count(*) FROM witn.events GROUP BY 1, 2" | tr '|' ' ' | sort >"$work/stored"
# Every statement sent is in expected (with 0 when it failed); a marker that is stored but was
# never sent would show up as a line only in stored.
bad=$(join -a1 -a2 -e 0 -o 0,1.2,2.2 <(awk '{print $1 "-" $2, $3}' "$work/expected" | sort) \
                                       <(awk '{print $1 "-" $2, $3}' "$work/stored" | sort) | awk '$2 != $3')
check "every statement that succeeded is stored whole" 0 \
    "$(awk '$2 > 0 && $2 != $3' <<<"$bad" | grep -c . || true)"
check "every statement that failed left no event" 0 \
    "$(awk '$2 == 0 && $3 != 0' <<<"$bad" | grep -c . || true)"
[ -z "$bad" ] || printf '%s\n' "$bad" | head -n 10 | sed 's/^/#   marker expected stored: /'
check "events stored = events of the statements that succeeded" \
    "$(awk '{s += $3} END {print s + 0}' "$work/expected")" "$(q "SELECT count(*) FROM witn.events")"
check "every event stored once (ids unique across nodes)" t "$(q "SELECT count(DISTINCT id) = count(*) FROM witn.events")"
check "no duplicates or late events (every idempotency key unique, no settlement yet)" 0 \
    "$(q "SELECT count(*) FROM witn.events WHERE duplicate_of IS NOT NULL OR late")"
check "accepted events add up" \
    "$(q "SELECT count(*) FROM witn.events")" "$(q "SELECT coalesce(sum(accepted_events), 0) FROM witn.outcomes")"
check "one outcome per (customer, key) that has events" \
    "$(q "SELECT count(*) FROM (SELECT DISTINCT customer_key, key FROM witn.events) d")" "$(q "SELECT count(*) FROM witn.outcomes")"

check "settlement has no errors" 0 "$(q "SELECT errors FROM witn.settle(timestamptz '$base' + interval '3 days')")"
check "every outcome settled" 0 "$(q "SELECT count(*) FROM witn.outcomes WHERE resolved_at IS NULL")"
check "exactly one invoice line per confirmed outcome" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'")" \
    "$(q "SELECT count(*) FROM witn.invoice_lines l JOIN witn.outcomes o ON o.customer_key = l.customer_key AND o.id = l.outcome_id WHERE o.status = 'CONFIRMED'")"
check "no invoice line without a confirmed outcome" "$(q "SELECT count(*) FROM witn.invoice_lines")" \
    "$(q "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'")"
check "exactly one notification per outcome" "$(q "SELECT count(*) FROM witn.outcomes")" "$(q "SELECT count(*) FROM witn.notifications")"
check "invoice totals are unit_price x quantity of the confirmed outcomes" \
    "$(q "SELECT sum(unit_price * quantity) FROM witn.outcomes WHERE status = 'CONFIRMED'")" \
    "$(q "SELECT sum(amount) FROM witn.invoice_lines")"
check "no settlement errors recorded" 0 "$(q "SELECT count(*) FROM witn.settlement_errors")"
check "verify() is clean" 0 "$(q "SELECT count(*) FROM witn.verify()")"
echo "# $(q "SELECT count(*) FROM witn.events") events, $(q "SELECT count(*) FROM witn.outcomes") outcomes ($(q "SELECT count(*) FROM witn.outcomes WHERE status = 'CONFIRMED'") confirmed), $(q "SELECT count(*) FROM witn.invoice_lines") lines, $(q "SELECT sum(amount) FROM witn.invoice_lines") USD"
exit $fail
