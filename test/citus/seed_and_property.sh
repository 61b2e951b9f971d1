#!/usr/bin/env bash
# The seed documents' examples and the randomized property test, on a 1 + 2 Citus cluster.
#  * Seed examples: every statement of test/pgtap/seed_examples.sql that writes witn's tables
#    (its customer, its agents with the product's example conditions, its events one statement
#    at a time) runs through the coordinator and in a database where witn is not distributed;
#    the pgTAP suite checks the single node's states, so the same outcome states, facts and
#    quantities, and after settlement the same invoice lines and amounts, are the checks here.
#  * Property: random conditions with random event streams, each sent twice, once row by row
#    (one statement per event, to outcome row_i) and once inside one multi-customer statement
#    carrying every stream's events interleaved (set_i, on another customer, so on other
#    shards): the twins agree on every stored fact; each outcome's condition_holds equals
#    witn.evaluate(condition, its accepted log); verify() is clean; after settlement the twins
#    resolve and bill alike.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dist=$PGDATABASE
single="${PGDATABASE}_single"
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single WITH (FORCE)" >/dev/null 2>&1' EXIT
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single" -c "CREATE DATABASE $single" >/dev/null
q "$single" "SET client_min_messages = warning; CREATE EXTENSION witn" >/dev/null

# ---- seed examples ------------------------------------------------------------------------------
python3 - "$here/../pgtap/seed_examples.sql" "$work/seed.sql" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
# Statements end with ';' at the end of a line; keep the ones that write witn's tables.
stmts, cur = [], []
for line in src.splitlines():
    if not cur and (line.startswith('--') or not line.strip()):
        continue
    cur.append(line)
    if line.rstrip().endswith(';') and not line.lstrip().startswith('--'):
        stmts.append('\n'.join(cur)); cur = []
keep = [s for s in stmts if re.match(r'\s*(INSERT INTO|UPDATE|COPY) witn\.', s)]
open(sys.argv[2], 'w').write('\n'.join(keep) + '\n')

PY
n=$(grep -c '^INSERT INTO witn.events\|^UPDATE witn\.' "$work/seed.sql" || true)
psql -X -q -d "$dist" -f "$work/seed.sql" >/dev/null 2>"$work/seed-dist.err" || true
psql -X -q -d "$single" -f "$work/seed.sql" >/dev/null 2>"$work/seed-single.err" || true
check "the seed statements fail nowhere, or alike (${n} event statements)" \
    "$(grep -c ERROR "$work/seed-single.err" || true)" "$(grep -c ERROR "$work/seed-dist.err" || true)"
seed_state() {
    q "$1" "SELECT concat_ws(',', customer_key, key, agent_key, status, scheduled_resolution, quantity, condition_holds,
                accepted_events, late_events, f2::text, unit_price)
              FROM (SELECT o.*, (SELECT jsonb_object_agg(k, v - 'at' - 'seq') FROM jsonb_each(o.facts) f(k, v)) AS f2 FROM witn.outcomes o) o
             ORDER BY customer_key, key"
}
seed_state "$single" >"$work/seed-single.state"
seed_state "$dist" >"$work/seed-dist.state"
check "the seed examples' outcomes are the same as on one node ($(wc -l <"$work/seed-single.state") outcomes)" \
    "$(md5sum <"$work/seed-single.state")" "$(md5sum <"$work/seed-dist.state")"
diff "$work/seed-single.state" "$work/seed-dist.state" | head -10 | sed 's/^/# /' || true
q "$single" "SELECT * FROM witn.settle(now() + interval '200 days')" >/dev/null
q "$dist" "SELECT * FROM witn.settle(now() + interval '200 days')" >/dev/null
lines() { q "$1" "SELECT string_agg(concat_ws(':', outcome_key, agent_key, quantity, unit_price, amount, currency), ' ' ORDER BY outcome_key) FROM witn.invoice_lines"; }
check "after settlement, the same invoice lines and amounts" "$(lines "$single")" "$(lines "$dist")"
check "the seed examples' invoice" "$(q "$single" "SELECT string_agg(customer_key || ' ' || currency || ' ' || amount, ',') FROM witn.invoices")" \
    "$(q "$dist" "SELECT string_agg(customer_key || ' ' || currency || ' ' || amount, ',') FROM witn.invoices")"
echo "# seed invoice: $(q "$dist" "SELECT string_agg(customer_key || ' ' || currency || ' ' || amount, ', ') FROM witn.invoices")"

# ---- property: row by row against one multi-customer statement, against witn.evaluate --------
# Events an hour or two old, settled two days on: every event of a stream is on time.
base=$(date -u -d '-2 hours' '+%Y-%m-%d %H:%M:00+00')
python3 - "$work" "$base" <<'PY'
import json, os, random, sys
r = random.Random(20261202)
ops = ["seen", "not seen", "count_gte", "count_lte", "count_gt", "count_lt", "count_eq", "match",
       "gte", "lte", "gt", "lt", "not gte", "not lte", "not gt", "not lt"]
values = [-1, 0, 1, 2, 2.5, 3, 700, "pass", "fail", "1", True, False, None]
def leaf():
    op = r.choice(ops); l = {"fact": r.choice("abcd"), "operator": op}
    if op.startswith("count_"): l["value"] = r.randint(0, 3)
    elif op == "match": l["value"] = r.choice(["pass", "fail", "1", 1, 2.0, True])
    elif op not in ("seen", "not seen"): l["value"] = r.choice([-1, 0, 1, 2, 2.5, 3, 700])
    return l
N = 80
setup, rows, batch = [], [], []
for i in range(N):
    cond = [leaf() for _ in range(r.randint(0, 3))]
    method = r.choice(["last", "first", "sum", "max", "min", "average"])
    setup.append("INSERT INTO witn.agents (key, condition, attribution_method, settlement_period) VALUES ('p%d', '%s', '%s', '1 day');" % (i, json.dumps(cond), method))
    setup.append("INSERT INTO witn.rate_card_prices VALUES ('pr', 'p%d', %s);" % (i, r.choice(["0.10", "1", "2.5", "0.333"])))
    for j in range(r.randint(1, 8)):
        props = {}
        v = r.choice(values + ["absent"] * 3)
        if v != "absent": props["value"] = v
        if r.random() < 0.5: props["attribution"] = r.choice([1, 2, 0.5, 10])
        minutes = j * 5 - r.randint(0, 7)  # ties and back-dating, all in January
        ev = (r.choice("abcde"), json.dumps(props), "timestamptz '%s' + interval '%d minutes'" % (sys.argv[2], minutes))
        agent = "'p%d'" % i if j == 0 else "NULL"
        rows.append("INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES ('pa', 'row_%d', '%s', %s, '%s', %s);" % (i, ev[0], agent, ev[1], ev[2]))
        batch.append((r.random(), "('pb%d', 'set_%d', '%s', %s, '%s', %s)" % (i % 4, i, ev[0], agent, ev[1], ev[2]), j, i))
# Interleave the streams, keeping each stream's order.
batch.sort(key=lambda b: (b[2], b[0]))
with open(os.path.join(sys.argv[1], "prop-setup.sql"), "w") as f:
    f.write("INSERT INTO witn.rate_cards (key, currency) VALUES ('pr', 'EUR');\n")
    f.write("INSERT INTO witn.customers (key, rate_card_key) VALUES ('pa', 'pr'), ('pb0', 'pr'), ('pb1', 'pr'), ('pb2', 'pr'), ('pb3', 'pr');\n")
    f.write("\n".join(setup) + "\n")
with open(os.path.join(sys.argv[1], "prop-events.sql"), "w") as f:
    f.write("\n".join(rows) + "\n")
    f.write("INSERT INTO witn.events (customer_key, key, action, agent_key, properties, occurred_at) VALUES\n" +
            ",\n".join(b[1] for b in batch) + ";\n")
PY
psql -X -q -v ON_ERROR_STOP=1 -d "$dist" -f "$work/prop-setup.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$dist" -f "$work/prop-events.sql" >/dev/null
twins() { # the stored facts of every outcome, keyed by stream number
    q "$dist" "SELECT string_agg(concat_ws(',', split_part(key, '_', 2), agent_key, status, scheduled_resolution, settles_at,
                     quantity, condition_holds, accepted_events, late_events,
                     (attribution - 'last' - 'first')::text, attribution -> 'last' -> 0, attribution -> 'first' -> 0,
                     (SELECT jsonb_object_agg(k, v - 'seq') FROM jsonb_each(facts) f(k, v))::text), E'\n'
                     ORDER BY split_part(key, '_', 2)::int)
                FROM witn.outcomes WHERE key LIKE '$1\\_%'"
}
twins row >"$work/row.state"
twins set >"$work/set.state"
check "row by row and one multi-customer statement agree on every outcome ($(wc -l <"$work/row.state") twins)" \
    "$(md5sum <"$work/row.state")" "$(md5sum <"$work/set.state")"
diff "$work/row.state" "$work/set.state" | head -6 | sed 's/^/# /' || true
check "every outcome's condition_holds is witn.evaluate(condition, its accepted log)" "0 160" \
    "$(q "$dist" "WITH logs AS (
          SELECT e.customer_key, e.key, jsonb_agg(jsonb_build_object('action', e.action, 'properties', e.properties,
                 'occurred_at', e.occurred_at) ORDER BY e.id) AS log
            FROM witn.events e WHERE NOT e.late AND e.duplicate_of IS NULL GROUP BY 1, 2)
        SELECT count(*) FILTER (WHERE o.condition_holds IS DISTINCT FROM witn.evaluate(o.condition, l.log)) || ' ' || count(*)
          FROM witn.outcomes o JOIN logs l ON l.customer_key = o.customer_key AND l.key = o.key
         WHERE o.key LIKE 'row\\_%' OR o.key LIKE 'set\\_%'")"
check "verify() is clean" "0" "$(q "$dist" "SELECT count(*) FROM witn.verify()")"
q "$dist" "SELECT * FROM witn.settle(now() + interval '3 days')" >/dev/null
bills() {
    q "$dist" "SELECT string_agg(concat_ws(',', split_part(o.key, '_', 2), o.status, l.amount), ' ' ORDER BY split_part(o.key, '_', 2)::int)
                 FROM witn.outcomes o LEFT JOIN witn.invoice_lines l ON l.customer_key = o.customer_key AND l.outcome_id = o.id
                WHERE o.key LIKE '$1\\_%'"
}
check "after settlement the twins resolve and bill alike" "$(bills row | md5sum)" "$(bills set | md5sum)"
echo "# property: $(q "$dist" "SELECT count(*) FILTER (WHERE status = 'CONFIRMED') || ' confirmed, ' || count(*) FILTER (WHERE status = 'FAILED') || ' failed of ' || count(*) FROM witn.outcomes WHERE key LIKE 'row\\_%'") streams"
exit $fail
