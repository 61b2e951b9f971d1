#!/usr/bin/env bash
# Credits and reversals (0.6.0, CONTRACT §19-§20) on a 1 + 2 Citus cluster, through the
# coordinator, with customers in several time zones on both workers: witn.credit_lines is
# distributed and colocated with the outcomes, credits are written on the outcome's node, errors
# keep their SQLSTATE through the coordinator and write nothing (also in a distributed
# transaction that touched both workers); a 'reopened' event (one row, and one statement for
# customers on both workers) reverses outcomes whose agent has a reversal policy in that very
# transaction; a credit on an outcome of a closed month is billed in the next open one and the
# closed invoice stays as it was; witn.invoices nets charges and credits exactly; verify() and
# explain(); parallel credits from several sessions never exceed the amount; row level security
# on witn_api.credit_lines as PostgREST drives it.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -c "$1"; }
# state SQL: the SQLSTATE of its error, or its last output line.
state() { psql -X -At -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 | tail -1 | sed 's/^ERROR: *//' || true; }
# tx: SQL on stdin in one session (stops at the first error); prints the rows.
tx() { psql -X -q -At -v ON_ERROR_STOP=1; }
# request ROLE CLAIMS SQL [without]: one PostgREST-like transaction (SET LOCAL ROLE, claims with
# set_config(..., true), db-pre-request witn.pre_request()); prints the result or the SQLSTATE.
request() {
    local pre="SELECT witn.pre_request();"
    [ "${4:-with}" = without ] && pre=""
    psql -X -q -At -v ON_ERROR_STOP=1 2>&1 <<SQL | grep -v '^$' | tail -1 | sed 's/^ERROR: *//' || true
\\set VERBOSITY sqlstate
BEGIN;
SET LOCAL ROLE $1;
SELECT set_config('request.jwt.claims', '$2', true) \\g /dev/null
$pre
$3;
COMMIT;
SQL
}
read -ra ports <<<"$WITN_CITUS_PORTS"
t_start=$SECONDS

# ---- setup -------------------------------------------------------------------------------------
# c1..c8 in eight time zones, c9 (Los Angeles) with last month's outcome only. Agent support has
# a reversal policy (reopened within 7 days), agent plain has none. Per customer: t1..t4 and p1
# confirmed now (back-dated by 2 hours, settled after 1 hour), f1 failed, o1 pending and o2 open
# (not due yet), n1 and n2 resolved on the 10th of last month in the customer's time zone.
zones="(ARRAY['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin', 'America/Los_Angeles', 'Australia/Sydney', 'Asia/Kolkata', 'Pacific/Auckland', 'America/Los_Angeles'])[g]"
# The 10th of last month, 10:00 in the customer's time zone.
last10="((date_trunc('month', now() AT TIME ZONE $zones) - interval '1 month' + interval '9 days 10 hours') AT TIME ZONE $zones)"
q "INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD');
   INSERT INTO witn.customers (key, rate_card_key, timezone) SELECT 'c' || g, 'std', $zones FROM generate_series(1, 9) g;
   INSERT INTO witn.agents (key, condition, settlement_period, reversal_condition, reversal_period) VALUES
     ('support', '[{\"fact\": \"resolved\", \"operator\": \"seen\"}]', '1 hour', '[{\"fact\": \"reopened\", \"operator\": \"seen\"}]', '7 days'),
     ('plain', '[{\"fact\": \"resolved\", \"operator\": \"seen\"}]', '1 hour', NULL, NULL);
   INSERT INTO witn.rate_card_prices VALUES ('std', 'support', 10.005), ('std', 'plain', 4.25)" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   SELECT 'c' || g, v.k, v.action, v.agent, CASE v.k WHEN 'n1' THEN $last10 WHEN 'n2' THEN $last10
                                                  WHEN 'o1' THEN now() WHEN 'o2' THEN now() ELSE now() - interval '2 hours' END
     FROM generate_series(1, 8) g
    CROSS JOIN (VALUES ('t1', 'resolved', 'support'), ('t2', 'resolved', 'support'), ('t3', 'resolved', 'support'),
                       ('t4', 'resolved', 'support'), ('p1', 'resolved', 'plain'), ('f1', 'opened', 'support'),
                       ('o1', 'resolved', 'support'), ('o2', 'opened', 'support'),
                       ('n1', 'resolved', 'support'), ('n2', 'resolved', 'support')) v(k, action, agent)
   UNION ALL
   SELECT 'c' || g, 'n1', 'resolved', 'support', $last10 FROM generate_series(9, 9) g" >/dev/null
check "81 outcomes opened through the coordinator" "81" "$(q "SELECT count(*) FROM witn.outcomes")"
q "SELECT * FROM witn.settle()" >/dev/null
check "settle() confirmed t1..t4, p1, n1, n2 and failed f1 of every customer; o1, o2 not due" \
    "CONFIRMED:57 FAILED:8 OPEN:8 PENDING:8" \
    "$(q "SELECT string_agg(status || ':' || n, ' ' ORDER BY status::text) FROM (SELECT status, count(*) n FROM witn.outcomes GROUP BY 1) s")"
check "the reversal policy is snapshotted into the confirmed support outcomes, not the plain ones" "49 0" \
    "$(q "SELECT count(*) FILTER (WHERE reversal_period = '7 days' AND reversal_condition IS NOT NULL AND status = 'CONFIRMED') || ' ' || count(*) FILTER (WHERE agent_key = 'plain' AND reversal_period IS NOT NULL) FROM witn.outcomes")"
check "n1, n2 are billed last month, t1..t4 this month (each customer's time zone)" "17 32" \
    "$(q "SELECT count(*) FILTER (WHERE outcome_key LIKE 'n%' AND billing_period = (date_trunc('month', now() AT TIME ZONE c.timezone) - interval '1 month')::date) || ' ' || count(*) FILTER (WHERE outcome_key LIKE 't%' AND billing_period = date_trunc('month', now() AT TIME ZONE c.timezone)::date) FROM witn.invoice_lines l JOIN witn.customers c ON c.key = l.customer_key")"

# Which worker holds which customer.
node_of() { q "SELECT n.nodeport FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid) WHERE pl.shardid = get_shard_id_for_distribution_column('witn.outcomes', '$1')"; }
declare -A node
w1=() w2=()
for g in 1 2 3 4 5 6 7 8 9; do
    node[c$g]=$(node_of "c$g")
    if [ "${node[c$g]}" = "${ports[1]}" ]; then w1+=("c$g"); elif [ "${node[c$g]}" = "${ports[2]}" ]; then w2+=("c$g"); fi
done
check "customers c1..c8 are on both workers, at least two on each" "yes" \
    "$(n1=0 n2=0; for c in "${w1[@]}"; do [ "$c" != c9 ] && n1=$((n1 + 1)); done; for c in "${w2[@]}"; do [ "$c" != c9 ] && n2=$((n2 + 1)); done
       ((n1 >= 2 && n2 >= 2 && n1 + n2 == 8)) && echo yes || echo "worker 1: ${w1[*]}; worker 2: ${w2[*]}")"
first_not_c9() { local c; for c in "$@"; do [ "$c" != c9 ] && { echo "$c"; return; }; done; }
second_not_c9() { local c n=0; for c in "$@"; do [ "$c" != c9 ] && { n=$((n + 1)); ((n == 2)) && { echo "$c"; return; }; }; done; }
A=$(first_not_c9 "${w1[@]}") A2=$(second_not_c9 "${w1[@]}")
B=$(first_not_c9 "${w2[@]}") B2=$(second_not_c9 "${w2[@]}")
echo "# worker ${ports[1]}: ${w1[*]}; worker ${ports[2]}: ${w2[*]}; A=$A A2=$A2 (worker 1), B=$B B2=$B2 (worker 2)"
oid() { q "SELECT id FROM witn.outcomes WHERE customer_key = '$1' AND key = '$2'"; }

# ---- distribution ------------------------------------------------------------------------------
check "witn.credit_lines is distributed by customer_key, colocated with witn.events" "h customer_key true" \
    "$(q "SELECT p.partmethod::text || ' ' || column_to_column_name(p.logicalrelid, p.partkey) || ' ' || (p.colocationid = e.colocationid)
            FROM pg_dist_partition p, pg_dist_partition e
           WHERE p.logicalrelid = 'witn.credit_lines'::regclass AND e.logicalrelid = 'witn.events'::regclass")"
check "... with shards on both workers" "2" \
    "$(q "SELECT count(DISTINCT pl.groupid) FROM pg_dist_shard s JOIN pg_dist_placement pl USING (shardid) WHERE s.logicalrelid = 'witn.credit_lines'::regclass")"

# ---- credit_outcome and reverse_outcome through the coordinator ----------------------------------
a1=$(oid "$A" t1) b1=$(oid "$B" t1)
check "credit_outcome on worker 1's outcome returns the adjustment" "adjustment 3.3333 USD goodwill $A t1 support postgres" \
    "$(q "SELECT concat_ws(' ', kind, amount, currency, reason, customer_key, outcome_key, agent_key, created_by) FROM witn.credit_outcome($a1, 3.3333, 'goodwill')")"
check "credit_outcome on worker 2's outcome returns the adjustment" "adjustment 3.3333 USD goodwill $B t1 support" \
    "$(q "SELECT concat_ws(' ', kind, amount, currency, reason, customer_key, outcome_key, agent_key) FROM witn.credit_outcome($b1, 3.3333, 'goodwill')")"
check "reverse_outcome credits what is left (worker 1)" "reversal 6.6717 churn" \
    "$(q "SELECT concat_ws(' ', kind, amount, reason) FROM witn.reverse_outcome($a1, 'churn')")"
check "reverse_outcome credits what is left (worker 2)" "reversal 6.6717 churn" \
    "$(q "SELECT concat_ws(' ', kind, amount, reason) FROM witn.reverse_outcome($b1, 'churn')")"
check "the reversed outcomes keep CONFIRMED, with reversed_at and reversal_reason" "CONFIRMED churn true|CONFIRMED churn true" \
    "$(q "SELECT string_agg(status || ' ' || reversal_reason || ' ' || (reversed_at IS NOT NULL), '|') FROM witn.outcomes WHERE id IN ($a1, $b1)")"
check "a credit and a reversal notification for each, with the credit's figures" \
    "outcome_credited ntf_${a1}_credit 3.3333 6.6717 adjustment|outcome_reversed ntf_${a1}_reversed 10.0050 0.0000 reversal|outcome_credited ntf_${b1}_credit 3.3333 6.6717 adjustment|outcome_reversed ntf_${b1}_reversed 10.0050 0.0000 reversal" \
    "$(q "SELECT string_agg(concat_ws(' ', n.kind, regexp_replace(n.payload ->> 'id', '_[0-9]+$', ''), n.payload -> 'data' ->> 'credited', n.payload -> 'data' ->> 'remaining', n.payload -> 'data' -> 'credit' ->> 'kind'), '|' ORDER BY n.outcome_id = $b1, n.credit_id)
            FROM witn.notifications n WHERE n.outcome_id IN ($a1, $b1) AND n.credit_id IS NOT NULL")"
check "the notifications name their credits (credit_id and the payload's credit id)" "4" \
    "$(q "SELECT count(*) FROM witn.notifications n JOIN witn.credit_lines k ON k.customer_key = n.customer_key AND k.id = n.credit_id
           WHERE n.outcome_id IN ($a1, $b1) AND (n.payload -> 'data' -> 'credit' ->> 'id')::bigint = k.id AND k.outcome_id = n.outcome_id")"
# Where the rows are: each placement pair (outcomes shard, credit_lines shard) on its node.
placed() {
    q "SELECT string_agg(nodeport || '=' || c || ':' || o, ' ' ORDER BY nodeport)
         FROM (SELECT nodeport, sum(split_part(result, ':', 1)::int) c, sum(split_part(result, ':', 2)::int) o
                 FROM run_command_on_colocated_placements('witn.outcomes', 'witn.credit_lines',
                      'SELECT count(*) || '':'' || count(o.id) FROM %s o RIGHT JOIN %s k ON o.customer_key = k.customer_key AND o.id = k.outcome_id')
                GROUP BY nodeport) s"
}
check "the credits are in the shards on their outcome's node (worker 1: $A's two, worker 2: $B's two)" \
    "${ports[1]}=2:2 ${ports[2]}=2:2" "$(placed)"
check "credit ids are unique across the cluster" "t" "$(q "SELECT count(DISTINCT id) = count(*) FROM witn.credit_lines")"

# ---- errors: SQLSTATEs through the coordinator, nothing written ----------------------------------
written() {
    q "SELECT (SELECT count(*) FROM witn.credit_lines) || ' ' || (SELECT count(*) FROM witn.notifications) || ' ' ||
              (SELECT count(*) FROM witn.outcomes WHERE reversed_at IS NOT NULL) || ' ' || (SELECT coalesce(sum(amount), 0) FROM witn.credit_lines)"
}
before=$(written)
for c in "$A" "$B"; do
    t2=$(oid "$c" t2) o1=$(oid "$c" o1) o2=$(oid "$c" o2) f1=$(oid "$c" f1) t1=$(oid "$c" t1) w=${node[$c]}
    check "WT008 for an unknown outcome (credit, reverse)" "WT008 WT008" \
        "$(state "SELECT * FROM witn.credit_outcome(4242, 1, 'x')") $(state "SELECT * FROM witn.reverse_outcome(4242, 'x')")"
    check "WT010 for a PENDING, OPEN and FAILED outcome on worker $w (credit)" "WT010 WT010 WT010" \
        "$(state "SELECT * FROM witn.credit_outcome($o1, 1, 'x')") $(state "SELECT * FROM witn.credit_outcome($o2, 1, 'x')") $(state "SELECT * FROM witn.credit_outcome($f1, 1, 'x')")"
    check "WT010 for a PENDING, OPEN and FAILED outcome on worker $w (reverse)" "WT010 WT010 WT010" \
        "$(state "SELECT * FROM witn.reverse_outcome($o1, 'x')") $(state "SELECT * FROM witn.reverse_outcome($o2, 'x')") $(state "SELECT * FROM witn.reverse_outcome($f1, 'x')")"
    check "WT011 for a credit over the amount, and for one after the reversal (worker $w)" "WT011 WT011" \
        "$(state "SELECT * FROM witn.credit_outcome($t2, 10.0051, 'x')") $(state "SELECT * FROM witn.credit_outcome($t1, 0.0001, 'x')")"
    check "WT012 for a second reversal (worker $w)" "WT012" "$(state "SELECT * FROM witn.reverse_outcome($t1, 'again')")"
    check "WT001 for amount NULL, NaN, Infinity, 0, -1 (worker $w)" "WT001 WT001 WT001 WT001 WT001" \
        "$(for a in NULL "'NaN'" "'Infinity'" 0 -1; do state "SELECT * FROM witn.credit_outcome($t2, $a, 'x')"; done | tr '\n' ' ' | sed 's/ $//')"
    check "WT001 for reason NULL, blank, 1001 characters, 'reversal_condition' (credit and reverse, worker $w)" \
        "WT001 WT001 WT001 WT001 WT001 WT001 WT001 WT001" \
        "$(for r in NULL "' '" "repeat('x', 1001)" "'reversal_condition'"; do
               state "SELECT * FROM witn.credit_outcome($t2, 1, $r)"; state "SELECT * FROM witn.reverse_outcome($t2, $r)"
           done | tr '\n' ' ' | sed 's/ $//')"
done
check "WT001 for a NULL outcome id" "WT001 WT001" \
    "$(state "SELECT * FROM witn.credit_outcome(NULL, 1, 'x')") $(state "SELECT * FROM witn.reverse_outcome(NULL, 'x')")"
a3=$(oid "$A" t3) b3=$(oid "$B" t3)
check "a transaction crediting on both workers whose second credit fails (WT011) fails whole" "WT011" \
    "$(psql -X -At -c '\set VERBOSITY sqlstate' -c "BEGIN" -c "SELECT 1 FROM witn.credit_outcome($a3, 1, 'first')" \
           -c "SELECT 1 FROM witn.credit_outcome($b3, 20, 'second')" -c "COMMIT" 2>&1 | grep '^ERROR' | sed 's/^ERROR: *//')"
check "a transaction crediting on both workers then rolled back" "adjustment adjustment" \
    "$(tx <<SQL | tr '\n' ' ' | sed 's/ $//'
BEGIN;
SELECT kind FROM witn.credit_outcome($a3, 1, 'first');
SELECT kind FROM witn.credit_outcome($b3, 1, 'second');
ROLLBACK;
SQL
)"
check "none of the errors or rollbacks wrote anything (credits, notifications, reversals, sum)" "$before" "$(written)"
# One transaction crediting outcomes on both workers (as an admin's batch of corrections would).
an2=$(oid "$A" n2) bn2=$(oid "$B" n2)
both=$(psql -X -q -At -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT 1 FROM witn.credit_outcome($an2, 1, 'batch')" \
           -c "SELECT 1 FROM witn.credit_outcome($bn2, 1, 'batch')" -c "COMMIT" -c "SELECT 'committed'" 2>&1 | grep -E '^(ERROR|committed)' | head -1 || true)
check "a transaction with credits on both workers commits" "committed" "$both"
q "SELECT recover_prepared_transactions()" >/dev/null
check "... they are there, one on each worker, or (failed) neither, and no prepared transaction is left" \
    "$([ "$both" = committed ] && echo 2 || echo 0) 0 0" \
    "$(q "SELECT count(*) FROM witn.credit_lines WHERE reason = 'batch'") $(for p in "${ports[@]:1}"; do psql -X -At -p "$p" -c "SELECT count(*) FROM pg_prepared_xacts"; done | tr '\n' ' ' | sed 's/ $//')"

a2=$(oid "$A2" t2) b2=$(oid "$B2" t2)
check "crediting exactly what is left is fine" "10.005 10.005" \
    "$(q "SELECT amount FROM witn.credit_outcome($a2, 10.005, 'all of it')") $(q "SELECT amount FROM witn.credit_outcome($b2, 10.005, 'all of it')")"
check "reversing then writes no credit but marks it reversed and notifies (credit null, remaining 0)" "0 0 2 2" \
    "$(q "SELECT count(*) FROM witn.reverse_outcome($a2, 'nothing left')") $(q "SELECT count(*) FROM witn.reverse_outcome($b2, 'nothing left')") $(q "SELECT count(*) FROM witn.outcomes WHERE id IN ($a2, $b2) AND reversal_reason = 'nothing left' AND reversed_at IS NOT NULL") $(q "SELECT count(*) FROM witn.notifications WHERE outcome_id IN ($a2, $b2) AND kind = 'outcome_reversed' AND payload -> 'data' -> 'credit' = 'null' AND (payload -> 'data' ->> 'remaining')::numeric = 0")"
a23=$(oid "$A2" t3)
check "a part credit on $A2's t3 (reversed by its condition later)" "2.5" "$(q "SELECT amount FROM witn.credit_outcome($a23, 2.5, 'partial')")"

# ---- automatic reversal ------------------------------------------------------------------------
a2t2=$(oid "$A" t2)
check "a 'reopened' event through the coordinator reverses $A's t2 in that transaction" \
    "false true|true reversal_condition 2|reversal reversal_condition 10.005|outcome_reversed reversal_condition" \
    "$(tx <<SQL | tr '\n' '|' | sed 's/|$//'
BEGIN;
INSERT INTO witn.events (customer_key, key, action) VALUES ('$A', 't2', 'reopened');
SELECT late || ' ' || after_resolution FROM witn.events WHERE customer_key = '$A' AND key = 't2' AND action = 'reopened';
SELECT (reversed_at IS NOT NULL) || ' ' || reversal_reason || ' ' || accepted_events FROM witn.outcomes WHERE id = $a2t2 AND status = 'CONFIRMED';
SELECT kind || ' ' || reason || ' ' || amount FROM witn.credit_lines WHERE outcome_id = $a2t2 AND customer_key = '$A';
SELECT kind || ' ' || (payload -> 'data' ->> 'reason') FROM witn.notifications WHERE outcome_id = $a2t2 AND customer_key = '$A' AND credit_id IS NOT NULL;
COMMIT;
SQL
)"
check "... and its settlement, invoice line and status are unchanged" "CONFIRMED 1 10.005" \
    "$(q "SELECT o.status || ' ' || (o.resolved_at = o.settles_at)::int || ' ' || l.amount FROM witn.outcomes o JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id WHERE o.id = $a2t2")"
b4=$(oid "$B" t4)
check "the same rolled back reverses nothing" "0 0 0" \
    "$(tx <<SQL | tail -1
BEGIN;
INSERT INTO witn.events (customer_key, key, action) VALUES ('$B', 't4', 'reopened');
ROLLBACK;
SELECT (SELECT count(*) FROM witn.events WHERE customer_key = '$B' AND action = 'reopened') || ' ' || (SELECT count(*) FROM witn.credit_lines WHERE outcome_id = $b4) || ' ' || (SELECT count(*) FROM witn.outcomes WHERE id = $b4 AND reversed_at IS NOT NULL);
SQL
)"

# One statement for c1..c8 (both workers): t3 (policy: reversed; $A2's was credited 2.5 before),
# p1 (no policy: late), n1 (last month, the 7 days are over: late), $A's t1 (reversed by hand:
# accepted, not reversed again) and $B's t3 twice (reversed once).
values=$(for g in 1 2 3 4 5 6 7 8; do printf "('c%s', 't3', 'reopened'), ('c%s', 'p1', 'reopened'), ('c%s', 'n1', 'reopened'), " "$g" "$g" "$g"; done)
values="$values('$A', 't1', 'reopened'), ('$B', 't3', 'reopened')"
# One session: the statement, what it did as seen in its transaction, then COMMIT.
multi=$(tx 2>&1 <<SQL || true
BEGIN;
INSERT INTO witn.events (customer_key, key, action) VALUES $values;
SELECT count(*) FROM witn.events WHERE action = 'reopened' AND NOT (customer_key = '$A' AND key = 't2');
SELECT count(*) FILTER (WHERE reversal_reason = 'reversal_condition' AND reversed_at IS NOT NULL AND status = 'CONFIRMED') || ' ' || count(DISTINCT customer_key) FROM witn.outcomes WHERE key = 't3';
SELECT count(*) FROM witn.events WHERE key = 't3' AND action = 'reopened' AND NOT late AND after_resolution;
SELECT count(*) FILTER (WHERE key = 'p1' AND late AND NOT after_resolution) || ' ' || count(*) FILTER (WHERE key = 'n1' AND late AND NOT after_resolution) || ' ' || count(*) FILTER (WHERE key IN ('p1', 'n1') AND NOT late) FROM witn.events WHERE action = 'reopened';
SELECT outcome_key || ':' || count(*) || ':' || count(DISTINCT customer_key) || ':' || trim_scale(sum(amount)) FROM witn.credit_lines WHERE kind = 'reversal' AND reason = 'reversal_condition' AND outcome_key <> 't2' GROUP BY outcome_key;
SELECT count(*) FROM witn.notifications WHERE kind = 'outcome_reversed' AND payload -> 'data' ->> 'outcome_key' = 't3' AND payload -> 'data' ->> 'reason' = 'reversal_condition' AND payload -> 'data' -> 'credit' ->> 'reason' = 'reversal_condition';
COMMIT;
SELECT 'committed';
SQL
)
check "one INSERT for customers on both workers reverses every t3 in that transaction" \
    "26|8 8|9|8 8 0|t3:8:8:77.54|8" "$(grep -vE '^(ERROR|WARNING|CONTEXT|committed)' <<<"$multi" | grep -v '^ ' | head -6 | tr '\n' '|' | sed 's/|$//')"
multi=$(grep -E '^(ERROR|committed)' <<<"$multi" | head -1 || true)
check "... and the statement commits" "committed" "$multi"
if [ "$multi" != committed ]; then
    check "... it failed whole: none of its events, credits or reversals was written on either worker" "0 0 0" \
        "$(q "SELECT count(*) FROM witn.events WHERE action = 'reopened' AND NOT (customer_key = '$A' AND key = 't2')") $(q "SELECT count(*) FROM witn.credit_lines WHERE reason = 'reversal_condition' AND outcome_key = 't3'") $(q "SELECT count(*) FROM witn.outcomes WHERE key = 't3' AND reversed_at IS NOT NULL")"
    echo "# the multi-customer statement did not commit ($multi); the checks below get the same events one statement per customer"
    for g in 1 2 3 4 5 6 7 8; do
        v="('c$g', 't3', 'reopened'), ('c$g', 'p1', 'reopened'), ('c$g', 'n1', 'reopened')"
        [ "c$g" = "$A" ] && v="$v, ('$A', 't1', 'reopened')"
        [ "c$g" = "$B" ] && v="$v, ('$B', 't3', 'reopened')"
        q "INSERT INTO witn.events (customer_key, key, action) VALUES $v" >/dev/null
    done
fi
check "$A2's t3 (credited 2.5 before) was reversed for what was left" "7.505" \
    "$(q "SELECT amount FROM witn.credit_lines WHERE customer_key = '$A2' AND outcome_id = $a23 AND kind = 'reversal'")"
check "$B's t3, reopened twice in the statement, has one reversal and 3 accepted events" "1 3" \
    "$(q "SELECT count(*) FROM witn.credit_lines WHERE customer_key = '$B' AND outcome_id = $b3") $(q "SELECT accepted_events FROM witn.outcomes WHERE id = $b3")"
check "$A's t1 (reversed by hand) took the event after resolution and was not reversed again" "1 churn 2 2" \
    "$(q "SELECT count(*) FROM witn.events WHERE customer_key = '$A' AND key = 't1' AND action = 'reopened' AND NOT late AND after_resolution") $(q "SELECT reversal_reason || ' ' || accepted_events FROM witn.outcomes WHERE id = $a1") $(q "SELECT count(*) FROM witn.credit_lines WHERE customer_key = '$A' AND outcome_id = $a1")"
check "the outcomes without a policy or past the window are unchanged (late events counted only)" "16 0 0" \
    "$(q "SELECT count(*) FILTER (WHERE late_events = 1) || ' ' || count(*) FILTER (WHERE reversed_at IS NOT NULL) FROM witn.outcomes WHERE key IN ('p1', 'n1') AND customer_key <> 'c9'") $(q "SELECT count(*) FROM witn.credit_lines WHERE outcome_key IN ('p1', 'n1')")"
check "reversals by condition on both workers" "${ports[1]} ${ports[2]}" \
    "$(for c in "${!node[@]}"; do [ "$(q "SELECT count(*) FROM witn.credit_lines WHERE customer_key = '$c' AND reason = 'reversal_condition'")" != 0 ] && echo "${node[$c]}"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"

# ---- closed months -----------------------------------------------------------------------------
# Last month (November on 2026-12-02) in the customer's time zone; closed for $A, $B and c9.
last_month() { q "SELECT (date_trunc('month', now() AT TIME ZONE timezone) - interval '1 month')::date FROM witn.customers WHERE key = '$1'"; }
this_month() { q "SELECT date_trunc('month', now() AT TIME ZONE timezone)::date FROM witn.customers WHERE key = '$1'"; }
inv() { q "SELECT concat_ws('/', lines, credit_count, charges, credits, amount_exact, amount, closed_at) FROM witn.invoices WHERE customer_key = '$1' AND month = '$2'"; }
for c in "$A" "$B" c9; do
    lm=$(last_month "$c") tm=$(this_month "$c")
    check "$c closes last month ($lm) through the coordinator" "$c $lm" \
        "$(q "SELECT customer_key || ' ' || period FROM witn.close_period(DATE '$lm', '$c')")"
    closed=$(inv "$c" "$lm")
    check "$c's last month has its two lines, closed" "yes" "$(case "$closed" in 2/0/20.010/0/20.010/20.01/?* | 1/0/10.005/0/10.005/10.01/?*) echo yes ;; *) echo "$closed" ;; esac)"
    n1=$(oid "$c" n1)
    check "a credit on $c's last-month outcome is billed this month ($tm)" "$tm" \
        "$(q "SELECT billing_period FROM witn.credit_outcome($n1, 1.25, 'late goodwill')")"
    check "... and so is its reversal" "$tm 8.755" \
        "$(q "SELECT billing_period || ' ' || amount FROM witn.reverse_outcome($n1, 'refund')")"
    check "... the notifications say this month too" "$tm $tm" \
        "$(q "SELECT string_agg(payload -> 'data' -> 'credit' ->> 'billing_period', ' ' ORDER BY credit_id) FROM witn.notifications WHERE customer_key = '$c' AND outcome_id = $n1 AND credit_id IS NOT NULL")"
    check "$c's closed month's invoice row is unchanged" "$closed" "$(inv "$c" "$lm")"
done
tm=$(this_month c9)
check "c9 (no line this month) gets this month's invoice with credits only" "0/2/0/10.005/-10.005/-10.01" "$(inv c9 "$tm")"
check "no credit is billed in a closed month" "0" \
    "$(q "SELECT count(*) FROM witn.credit_lines k JOIN witn.closed_periods p ON p.customer_key = k.customer_key AND p.period = k.billing_period")"

# ---- parallel credits --------------------------------------------------------------------------
# Three sessions per outcome credit 0.667 eight times each (24 tries; 15 x 0.667 = 10.005), on
# $A's t4 (worker 1) and $B2's t4 (worker 2); on the latter a fourth session reverses it meanwhile.
pa=$(oid "$A" t4) pb=$(oid "$B2" t4)
dir=$(mktemp -d)
pids=()
for s in 1 2 3; do
    for o in "$pa" "$pb"; do
        (for _ in 1 2 3 4 5 6 7 8; do state "SELECT kind FROM witn.credit_outcome($o, 0.667, 'parallel $s')"; done >"$dir/$o.$s") &
        pids+=($!)
    done
done
(sleep 0.2; state "SELECT count(*) FROM witn.reverse_outcome($pb, 'parallel reversal')" >"$dir/reverse") & pids+=($!)
for p in "${pids[@]}"; do wait "$p" || true; done
check "worker 1's outcome: 15 credits of 24 tries, the others WT011" "15 9" \
    "$(cat "$dir/$pa".* | grep -c '^adjustment$') $(cat "$dir/$pa".* | grep -c '^WT011$')"
check "... together exactly its amount, never more" "15 10.005" \
    "$(q "SELECT count(*) || ' ' || sum(amount) FROM witn.credit_lines WHERE outcome_id = $pa")"
check "worker 2's outcome, reversed while credited: every try was a credit or WT011" "24" \
    "$(cat "$dir/$pb".* | grep -cE '^(adjustment|WT011)$')"
check "... the reversal succeeded (one row or none, as it returned), and all credited is exactly its amount" "10.005 $(cat "$dir/reverse") t" \
    "$(q "SELECT trim_scale(sum(amount)) || ' ' || count(*) FILTER (WHERE kind = 'reversal') FROM witn.credit_lines WHERE outcome_id = $pb") $(q "SELECT reversal_reason = 'parallel reversal' AND reversed_at IS NOT NULL FROM witn.outcomes WHERE id = $pb")"
check "... one notification per credit, one reversal notification" "t 1" \
    "$(q "SELECT (SELECT count(*) FROM witn.notifications WHERE outcome_id = $pb AND kind = 'outcome_credited') = (SELECT count(*) FROM witn.credit_lines WHERE outcome_id = $pb AND kind = 'adjustment')") $(q "SELECT count(*) FROM witn.notifications WHERE outcome_id = $pb AND kind = 'outcome_reversed'")"
echo "# parallel: worker 2's outcome got $(cat "$dir/$pb".* | grep -c '^adjustment$') credits before the reversal ($(cat "$dir/reverse") reversal row)"
rm -rf "$dir"
check "no outcome's credits exceed its invoice line" "0" \
    "$(q "SELECT count(*) FROM witn.invoice_lines l JOIN (SELECT customer_key, outcome_id, sum(amount) s FROM witn.credit_lines GROUP BY 1, 2) k ON k.customer_key = l.customer_key AND k.outcome_id = l.outcome_id WHERE k.s > l.amount")"

# ---- invoices, verify, explain -----------------------------------------------------------------
check "witn.invoices nets invoice_lines and credit_lines exactly, rounded once" \
    "$(q "WITH l AS (SELECT customer_key, currency, billing_period AS month, count(*) n, sum(amount) s FROM witn.invoice_lines GROUP BY 1, 2, 3),
               k AS (SELECT customer_key, currency, billing_period AS month, count(*) n, sum(amount) s FROM witn.credit_lines GROUP BY 1, 2, 3),
               m AS (SELECT customer_key, currency, month, coalesce(l.n, 0) AS lines, coalesce(k.n, 0) AS credit_count,
                            coalesce(l.s, 0) AS charges, coalesce(k.s, 0) AS credits
                       FROM l FULL JOIN k USING (customer_key, currency, month))
          SELECT string_agg(concat_ws('/', customer_key, currency, month, lines, credit_count, trim_scale(charges), trim_scale(credits),
                                      trim_scale(charges - credits), trim_scale(sign(charges - credits) * floor(abs(charges - credits) * 100 + 0.5) / 100)),
                            ' ' ORDER BY customer_key, month) FROM m")" \
    "$(q "SELECT string_agg(concat_ws('/', customer_key, currency, month, lines, credit_count, trim_scale(charges), trim_scale(credits),
                                      trim_scale(amount_exact), trim_scale(amount)), ' ' ORDER BY customer_key, month) FROM witn.invoices")"
check "... every customer and month is there (9 customers, 18 months)" "18 9" \
    "$(q "SELECT count(*) || ' ' || count(DISTINCT customer_key) FROM witn.invoices")"
check "witn.verify() is empty" "0" "$(q "SELECT count(*) FROM witn.verify()")"
check "witn.replay() matches for outcomes reversed by hand, by condition and in parallel" "t t t t t" \
    "$(for o in "$a1" "$a2t2" "$b3" "$a23" "$pb"; do q "SELECT matches FROM witn.replay($o)"; done | tr '\n' ' ' | sed 's/ $//')"
c4=$(oid "$B2" t1) p1=$(oid "$A" p1)
check "witn.explain() of a confirmed outcome with a policy has its reversal_condition leaf (not passing)" "1 1 reopened seen false" \
    "$(q "SELECT count(*) FILTER (WHERE condition_name = 'condition') || ' ' || count(*) FILTER (WHERE condition_name = 'reversal_condition') || ' ' ||
                 max(fact || ' ' || operator || ' ' || passes) FILTER (WHERE condition_name = 'reversal_condition') FROM witn.explain($c4)")"
check "... and of one reversed by it: passing, with reversed_at" "reversal_condition 1 true true" \
    "$(q "SELECT condition_name || ' ' || event_count || ' ' || passes || ' ' || (reversed_at IS NOT NULL) FROM witn.explain($a2t2) WHERE condition_name = 'reversal_condition'")"
check "... an outcome without a policy has no reversal_condition rows" "1 0" \
    "$(q "SELECT count(*) || ' ' || count(*) FILTER (WHERE condition_name = 'reversal_condition') FROM witn.explain($p1)")"

# ---- row level security as PostgREST drives it --------------------------------------------------
q "ALTER ROLE witn_customer LOGIN; ALTER ROLE witn_reader LOGIN; ALTER ROLE witn_admin LOGIN; ALTER ROLE witn_ingest LOGIN" >/dev/null
trap 'q "ALTER ROLE witn_customer NOLOGIN; ALTER ROLE witn_reader NOLOGIN; ALTER ROLE witn_admin NOLOGIN; ALTER ROLE witn_ingest NOLOGIN" >/dev/null 2>&1' EXIT
for c in "$A" "$B" "$B2"; do
    own=$(q "SELECT count(*) || ' ' || '$c' FROM witn.credit_lines WHERE customer_key = '$c'")
    claims="{\"role\": \"witn_customer\", \"customer_key\": \"$c\"}"
    check "a customer token for $c (worker ${node[$c]}) sees its own credits only through witn_api.credit_lines" "$own" \
        "$(request witn_customer "$claims" "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT customer_key, ','), '-') FROM witn_api.credit_lines")"
    check "... and through witn.credit_lines" "$own" \
        "$(request witn_customer "$claims" "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT customer_key, ','), '-') FROM witn.credit_lines")"
    check "... its witn_api.invoices have its own credits" "$(q "SELECT trim_scale(sum(amount)) FROM witn.credit_lines WHERE customer_key = '$c'")" \
        "$(request witn_customer "$claims" "SELECT trim_scale(sum(credits)) FROM witn_api.invoices")"
    got=$(request witn_customer "$claims" "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT customer_key, ','), '-') FROM witn_api.credit_lines" without)
    check "... without witn.pre_request() refused or right, never empty ($got)" "yes" \
        "$([ "$got" = 42501 ] || [ "$got" = "$own" ] && echo yes || echo "$got")"
done
check "a customer token with no credits sees none" "0" \
    "$(request witn_customer '{"role": "witn_customer", "customer_key": "nobody"}' "SELECT count(*) FROM witn_api.credit_lines")"
check "witn_reader sees every customer's credits" "$(q "SELECT count(*) FROM witn.credit_lines")" \
    "$(request witn_reader '{"role": "witn_reader"}' "SELECT count(*) FROM witn_api.credit_lines")"
before=$(written)
check "witn_customer, witn_reader, witn_ingest may not credit or reverse, nor witn_admin INSERT into witn.credit_lines (42501)" "42501 42501 42501 42501" \
    "$(request witn_customer "{\"role\": \"witn_customer\", \"customer_key\": \"$A\"}" "SELECT * FROM witn_api.credit_outcome($c4, 1, 'x')") $(request witn_reader '{"role": "witn_reader"}' "SELECT * FROM witn_api.reverse_outcome($c4, 'x')") $(request witn_ingest '{"role": "witn_ingest"}' "SELECT * FROM witn.credit_outcome($c4, 1, 'x')") $(request witn_admin '{"role": "witn_admin"}' "INSERT INTO witn.credit_lines (customer_key, outcome_id, outcome_key, agent_key, amount, currency, kind, reason, billing_period) VALUES ('$B2', $c4, 't1', 'support', 1, 'USD', 'adjustment', 'x', '2026-12-01')")"
check "... and wrote nothing" "$before" "$(written)"
b2t1=$(oid "$B2" t1) a2t4=$(oid "$A2" t4)
check "witn_admin credits and reverses through witn_api (PostgREST /rpc), on both workers" "adjustment 2 reversal 8.005" \
    "$(request witn_admin '{"role": "witn_admin"}' "SELECT kind || ' ' || amount FROM witn_api.credit_outcome($b2t1, 2, 'via rpc')") $(request witn_admin '{"role": "witn_admin"}' "SELECT 1 FROM witn_api.credit_outcome($a2t4, 2, 'via rpc')" >/dev/null; request witn_admin '{"role": "witn_admin"}' "SELECT kind || ' ' || amount FROM witn_api.reverse_outcome($a2t4, 'via rpc')")"
check "... created_by is the session user" "postgres postgres postgres" \
    "$(q "SELECT string_agg(created_by, ' ') FROM witn.credit_lines WHERE reason = 'via rpc'")"

# An event for a due outcome that settlement has not confirmed yet: settled first on its shard
# (with its line), then taken in the reversal window and reversed; one multi-customer statement.
q "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at)
   VALUES ('$A', 'due_first', 'resolved', 'support', now() - interval '2 hours'),
          ('$B', 'due_first', 'resolved', 'support', now() - interval '2 hours')" >/dev/null
q "INSERT INTO witn.events (customer_key, key, action) VALUES ('$A', 'due_first', 'reopened'), ('$B', 'due_first', 'reopened')" >/dev/null
check "a due outcome on each worker is confirmed before its reopened event, which reverses it" \
    "CONFIRMED:1:reversal_condition CONFIRMED:1:reversal_condition" \
    "$(q "SELECT string_agg(o.status || ':' || (SELECT count(*) FROM witn.invoice_lines l WHERE l.customer_key = o.customer_key AND l.outcome_id = o.id) || ':' || o.reversal_reason, ' ' ORDER BY o.customer_key)
          FROM witn.outcomes o WHERE o.key = 'due_first'")"
check "verify() is still empty at the end" "0" "$(q "SELECT count(*) FROM witn.verify()")"
in_list() { printf "'%s'," "$@" | sed 's/,$//'; }
n1=$(q "SELECT count(*) FROM witn.credit_lines WHERE customer_key IN ($(in_list "${w1[@]}"))")
n2=$(q "SELECT count(*) FROM witn.credit_lines WHERE customer_key IN ($(in_list "${w2[@]}"))")
check "all credits are in the shards on their outcome's node (credits:with their outcome there, per worker)" \
    "${ports[1]}=$n1:$n1 ${ports[2]}=$n2:$n2" "$(placed)"
echo "# $(q "SELECT count(*) FROM witn.credit_lines") credits, $(q "SELECT count(*) FROM witn.outcomes WHERE reversed_at IS NOT NULL") reversals, in $((SECONDS - t_start))s"
exit $fail
