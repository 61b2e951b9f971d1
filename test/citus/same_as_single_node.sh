#!/usr/bin/env bash
# Through the coordinator of a 1 + 2 Citus cluster, the same workload gives exactly the state a
# single node gives: a randomized mix of single rows, multi-customer statements and COPY, with
# idempotency keys, retries, missing agents, late events, every attribution method and customers
# in five time zones (their invoice months), settled
# twice; then outcomes, events, invoice lines (money) and notifications are compared with the
# same workload run in a database of the coordinator where witn is not distributed.
# Also: ids are unique across nodes, verify() is clean, replay/explain work, a worker takes
# events directly, and bad events are refused with their error as on a single node.
# Needs PGHOST/PGPORT (the coordinator), PGDATABASE (distributed witn), WITN_CITUS_PORTS.
set -euo pipefail
dist=$PGDATABASE
single="${PGDATABASE}_single"
read -ra ports <<<"$WITN_CITUS_PORTS"
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fail=1; fi; }
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
state() { psql -X -At -d "$1" -c "\\set VERBOSITY sqlstate" -c "$2" 2>&1 | tail -1 | sed 's/^ERROR: *//'; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single" -c "CREATE DATABASE $single" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single WITH (FORCE)" >/dev/null 2>&1' EXIT
q "$single" "SET client_min_messages = warning; CREATE EXTENSION witn" >/dev/null
check "witn is distributed in the Citus database and not in the other" "t f" \
    "$(q "$dist" "SELECT witn.distributed()") $(q "$single" "SELECT witn.distributed()")"

setup=$(cat <<'SQL'
INSERT INTO witn.currencies (code, minor_units) VALUES ('XTS', 3);
INSERT INTO witn.rate_cards (key, currency) VALUES ('std', 'USD'), ('test', 'XTS');
INSERT INTO witn.customers (key, rate_card_key, timezone)
SELECT 'c' || g, CASE WHEN g % 3 = 0 THEN 'test' ELSE 'std' END,
       (ARRAY['UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Berlin', 'Pacific/Kiritimati'])[1 + g % 5]
  FROM generate_series(1, 12) g;
INSERT INTO witn.agents (key, condition, attribution_method, settlement_period)
SELECT m, '[{"fact": "replied", "operator": "seen"}, {"fact": "reopened", "operator": "not seen"}, {"fact": "csat", "operator": "not lt", "value": 3}]',
       m, interval '2 days'
  FROM unnest(ARRAY['last', 'first', 'sum', 'max', 'min', 'average']) m;
INSERT INTO witn.rate_card_prices
SELECT c, a, CASE c WHEN 'std' THEN 2.50 ELSE 1.125 END
  FROM unnest(ARRAY['std', 'test']) c, unnest(ARRAY['last', 'first', 'sum', 'max', 'min', 'average']) a;
SQL
)
q "$dist" "$setup" >/dev/null
q "$single" "$setup" >/dev/null

# The workload: one SQL file, generated once with a fixed seed, run in both databases.
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single WITH (FORCE)" >/dev/null 2>&1' EXIT
python3 - "$work" <<'PY'
import random, sys, os
r = random.Random(20261202)
base = "2026-01-01 00:00:00+00"
agents = ['last', 'first', 'sum', 'max', 'min', 'average']
actions = ['replied', 'replied', 'reopened', 'csat', 'noise']
out = open(os.path.join(sys.argv[1], 'workload.sql'), 'w')
copy_rows = []
def event(i):
    c = 'c%d' % r.randint(1, 12)
    k = 't%d' % r.randint(1, 40)
    a = r.choice(actions)
    ag = agents[(int(c[1:]) * 7 + int(k[1:])) % 6] if r.random() < 0.95 else None
    props = {}
    if r.random() < 0.6: props['attribution'] = r.choice([1, 2, 3.5, 0.25, 10])
    if a == 'csat': props['value'] = r.randint(1, 5)
    idem = 'i%d' % r.randint(1, 300) if r.random() < 0.3 else None
    occurred = "timestamptz '%s' + interval '%d minutes'" % (base, i)
    return c, k, a, ag, props, idem, occurred
def lit(v):
    return 'NULL' if v is None else "'" + str(v).replace("'", "''") + "'"
import json
n = 0
for step in range(60):
    kind = r.choice(['one', 'many', 'copy'])
    rows = [event(n + j) for j in range(1 if kind == 'one' else r.randint(2, 40))]
    n += len(rows)
    if kind == 'copy':
        out.write("COPY witn.events (customer_key, key, action, agent_key, properties, idempotency_key, occurred_at) FROM stdin;\n")
        for c, k, a, ag, p, idem, occ in rows:
            minutes = int(occ.split("'")[3].split()[0])
            out.write("\t".join([c, k, a, ag or '\\N', json.dumps(p), idem or '\\N',
                                 "2026-01-01 %02d:%02d:00+00" % (minutes // 60 % 24, minutes % 60) if minutes < 1440 else "2026-01-02 00:00:00+00"]) + "\n")
        out.write("\\.\n")
    else:
        # A statement with an unknown agent for a new outcome fails as a whole, in both.
        values = ",\n".join("(%s, %s, %s, %s, %s, %s, %s)" % (lit(c), lit(k), lit(a), lit(ag), lit(json.dumps(p)), lit(idem), occ)
                            for c, k, a, ag, p, idem, occ in rows)
        out.write("INSERT INTO witn.events (customer_key, key, action, agent_key, properties, idempotency_key, occurred_at) VALUES\n" + values + ";\n")
    if step == 30:
        out.write("SELECT 'settled', * FROM witn.settle(timestamptz '2026-01-03 12:00:00+00');\n")
out.write("SELECT 'settled', * FROM witn.settle(timestamptz '2026-01-20 00:00:00+00');\n")
PY
# Statements that fail (an outcome's first event without agent) fail in both: psql goes on.
psql -X -q -At -d "$dist" -f "$work/workload.sql" >"$work/dist.out" 2>"$work/dist.err" || true
psql -X -q -At -d "$single" -f "$work/workload.sql" >"$work/single.out" 2>"$work/single.err" || true
# Errors: the same ones, in the same order (Citus adds where they ran).
# Which statements fail is decided per statement; of several bad rows in one statement, a
# single node names the first in outcome order, Citus the first shard to fail.
failing() { grep -oE '^psql:[^:]*:[0-9]+: ERROR:  [A-Z_]+' "$1" | sed -E 's/^psql:[^:]*:([0-9]+): ERROR:  .*/\1/'; }
check "the same statements fail" "$(failing "$work/single.err" | md5sum)" "$(failing "$work/dist.err" | md5sum)"
check "the same settlement counts" "$(md5sum <"$work/single.out")" "$(md5sum <"$work/dist.out")"
echo "# $(grep -c ERROR "$work/single.err" || true) statements refused in both; settlement: $(tr '\n' ' ' <"$work/single.out")"

snapshot() { # every fact the product decides, without ids and clocks, one line each
    q "$1" "SELECT x FROM (
        SELECT concat_ws(',', 'o', customer_key, key, agent_key, status, scheduled_resolution, quantity,
               condition_holds, accepted_events, late_events, facts::text, attribution::text, unit_price,
               currency, settles_at, resolved_at) x FROM witn.outcomes
        UNION ALL SELECT concat_ws(',', 'e', customer_key, key, count(*), count(*) FILTER (WHERE late),
               count(duplicate_of)) FROM witn.events GROUP BY customer_key, key
        UNION ALL SELECT concat_ws(',', 'l', customer_key, outcome_key, agent_key, quantity, unit_price, amount,
               currency, resolved_at, billing_period) FROM witn.invoice_lines
        UNION ALL SELECT concat_ws(',', 'n', customer_key, kind, payload - 'id' - 'created_at' #- '{data,outcome_id}')
          FROM witn.notifications
        UNION ALL SELECT concat_ws(',', 'i', customer_key, currency, month, lines, amount_exact, amount) FROM witn.invoices) s
        ORDER BY x"
}
snapshot "$single" >"$work/single.state"
snapshot "$dist" >"$work/dist.state"
check "outcomes, events, invoice lines, notifications and invoices are the same as on one node ($(wc -l <"$work/single.state") facts)" \
    "$(md5sum <"$work/single.state")" "$(md5sum <"$work/dist.state")"
diff "$work/single.state" "$work/dist.state" | head -20 | sed 's/^/# /' || true
echo "# $(q "$dist" "SELECT count(*) || ' outcomes, ' || count(*) FILTER (WHERE status = 'CONFIRMED') || ' confirmed' FROM witn.outcomes"), $(q "$dist" "SELECT count(*) || ' events' FROM witn.events"), $(q "$dist" "SELECT count(*) || ' invoice lines, ' || sum(amount) || ' in total' FROM witn.invoice_lines")"
check "every invoice's amount is the same as on one node" \
    "$(q "$single" "SELECT string_agg(customer_key || currency || amount, ',' ORDER BY customer_key, currency) FROM witn.invoices")" \
    "$(q "$dist" "SELECT string_agg(customer_key || currency || amount, ',' ORDER BY customer_key, currency) FROM witn.invoices")"
check "the outcomes are spread over both workers" "2" \
    "$(q "$dist" "SELECT count(DISTINCT n.nodeport) FROM run_command_on_shards('witn.outcomes', 'SELECT count(*) FROM %s') r
                  JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE r.result::int > 0")"
check "ids are unique across nodes" "t t t" \
    "$(q "$dist" "SELECT count(DISTINCT id) = count(*) FROM witn.outcomes") $(q "$dist" "SELECT count(DISTINCT id) = count(*) FROM witn.invoice_lines") $(q "$dist" "SELECT count(DISTINCT id) = count(*) FROM witn.notifications")"
check "verify() is clean" "0" "$(q "$dist" "SELECT count(*) FROM witn.verify()")"
some=$(q "$dist" "SELECT min(id) FROM witn.outcomes WHERE status = 'CONFIRMED'")
check "replay() finds an outcome on its shard" "t" "$(q "$dist" "SELECT matches FROM witn.replay($some)")"
check "explain() shows the outcome's leaves" "3" "$(q "$dist" "SELECT count(*) FROM witn.explain($some)")"
check "replay() of a missing outcome is OUTCOME_NOT_FOUND" "WT008" \
    "$(state "$dist" "SELECT * FROM witn.replay(42)")"

# A worker takes events directly (its own witn.events routes them); ids stay node-unique.
psql -X -q -p "${ports[1]}" -d "$dist" -c "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c1', 'from-worker', 'replied', 'sum'), ('c2', 'from-worker', 'replied', 'sum')" >/dev/null
check "events inserted on a worker open their outcomes" "2" \
    "$(q "$dist" "SELECT count(*) FROM witn.outcomes WHERE key = 'from-worker'")"
check "ids are still unique across nodes" "t" "$(q "$dist" "SELECT count(DISTINCT id) = count(*) FROM witn.events")"
check "an invalid event is refused through the coordinator (VALIDATION_ERROR)" "WT001" \
    "$(state "$dist" "INSERT INTO witn.events (customer_key, key, action, agent_key, occurred_at) VALUES ('c1', 'bad', 'replied', 'sum', 'infinity')")"
check "an unknown customer is refused (CUSTOMER_NOT_FOUND)" "WT002" \
    "$(state "$dist" "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('nobody', 'x', 'replied', 'sum')")"
check "a statement that fails writes nothing on any shard" "0" \
    "$(psql -X -At -d "$dist" -c "INSERT INTO witn.events (customer_key, key, action, agent_key) VALUES ('c1', 'half', 'replied', 'sum'), ('c2', 'half', 'replied', 'sum'), ('nobody', 'half', 'replied', 'sum')" >/dev/null 2>&1; q "$dist" "SELECT count(*) FROM witn.events WHERE key = 'half'")"
check "received_at given by a client through the coordinator, differing within a statement, is refused" "WT001" \
    "$(state "$dist" "INSERT INTO witn.events (customer_key, key, action, agent_key, received_at) VALUES ('c1', 'r1', 'replied', 'sum', now()), ('c1', 'r2', 'replied', 'sum', now() - interval '1 day')")"
check "witn's trigger attached to another table refuses to work (0A000)" "0A000" \
    "$(state "$dist" "CREATE TABLE public.not_events (LIKE witn.events INCLUDING DEFAULTS); CREATE TRIGGER misplaced AFTER INSERT ON public.not_events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION witn.events_apply('0.8.0'); INSERT INTO public.not_events (id, customer_key, key, action, received_at) VALUES (1, 'c1', 'y', 'z', now())")"
check "witn.distribute() again changes nothing (14 tables)" "14" "$(q "$dist" "SELECT count(*) FROM witn.distribute()")"
check "verify() is clean at the end" "0" "$(q "$dist" "SELECT count(*) FROM witn.verify()")"
exit $fail
