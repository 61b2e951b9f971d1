// The write path: the statement trigger that validates a statement's events and folds them into
// their outcomes in the inserting transaction.
//
// It reads the statement's rows from the transition table (validating each), marks retried
// idempotency keys, groups the rows by outcome and writes every outcome of the statement with
// one INSERT ... ON CONFLICT DO UPDATE, in (customer_key, key) byte order — the same order in
// every session, so concurrent multi-outcome batches cannot deadlock. However many events a
// statement carries, each outcome row is read and written once, and the statement costs a
// fixed number of SQL statements per 10,000 outcomes. A statement touching a single outcome
// (the common single-row INSERT) runs no SQL at all: it reads, locks and writes the outcome
// row through TableWriter.
#include "pg/postgres.hpp"

#include "core/attribution.hpp"
#include "core/evaluator.hpp"
#include "core/outcome.hpp"
#include "pg/condition_type.hpp"
#include "pg/event_row.hpp"
#include "pg/spi.hpp"
#include "pg/table_writer.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <algorithm>
#include <span>
#include <limits>
#include <map>
#include <set>
#include <vector>

using namespace witn::pg;

namespace {

// A text (or text-stored) column's value.
std::string text_value(Datum d) {
    text *t = pg([&] { return DatumGetTextPP(d); });
    return from_text(t);
}

} // namespace

// CHECK (witn.event_keys_fit(...)) on witn.events: rejects an empty or over-long key row by row,
// before the row reaches the indexes (whose own size limit would fail with an internal-looking
// error).
WITN_FUNCTION(witn_event_keys_fit) {
    static const char *const names[] = {"customer_key", "key", "action", "agent_key", "idempotency_key"};
    for (int i = 0; i < 5; ++i) {
        if (PG_ARGISNULL(i)) continue; // a missing required key is the NOT NULL constraint's
        text *t = pg([&] { return PG_GETARG_TEXT_PP(i); });
        check_key(names[i], VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    }
    return BoolGetDatum(true);
}

namespace {

// One row of the statement, as read from the transition table.
struct Row {
    std::int64_t id = 0;
    std::string customer_key, key, agent_key, idempotency_key, properties_text;
    bool has_agent = false, has_idempotency_key = false;
    bool given_late = false;
    std::optional<std::int64_t> given_duplicate_of;
    bool restored = false;
    witn::Event event;
    // Decided here:
    bool late = false;
    std::optional<std::int64_t> duplicate_of;
};

struct Columns {
    int id, customer_key, key, action, agent_key, properties, occurred_at, idempotency_key,
        received_at, late, duplicate_of;
};

Columns find_columns(Relation events) {
    auto find = [&](const char *name) { return column_of(events, name); };
    return {find("id"),          find("customer_key"), find("key"),
            find("action"),      find("agent_key"),    find("properties"),
            find("occurred_at"), find("idempotency_key"), find("received_at"),
            find("late"),        find("duplicate_of")};
}

std::vector<Row> read_rows(TriggerData *trigger, TimestampTz now) {
    TupleDesc desc = trigger->tg_relation->rd_att;
    Columns c = find_columns(trigger->tg_relation);
    Tuplestorestate *store = trigger->tg_newtable;
    std::vector<Row> rows;
    rows.reserve(static_cast<std::size_t>(pg([&] { return tuplestore_tuple_count(store); })));
    TupleTableSlot *slot = pg([&] { return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple); });
    pg([&] { tuplestore_rescan(store); });
    for (;;) {
        bool more = pg([&] { return tuplestore_gettupleslot(store, true, false, slot); });
        if (!more) break;
        auto attr = [&](int attnum, bool *isnull) {
            return pg([&] { return slot_getattr(slot, attnum, isnull); });
        };
        bool isnull = false;
        Row r;
        r.id = DatumGetInt64(attr(c.id, &isnull));
        r.customer_key = text_value(attr(c.customer_key, &isnull));
        r.key = text_value(attr(c.key, &isnull));
        std::string action = text_value(attr(c.action, &isnull));
        Datum agent = attr(c.agent_key, &isnull);
        if ((r.has_agent = !isnull)) r.agent_key = text_value(agent);
        Datum idem = attr(c.idempotency_key, &isnull);
        if ((r.has_idempotency_key = !isnull)) r.idempotency_key = text_value(idem);
        TimestampTz occurred_at = DatumGetTimestampTz(attr(c.occurred_at, &isnull));
        if (TIMESTAMP_NOT_FINITE(occurred_at))
            throw witn::Error(witn::Code::ValidationError,
                              "VALIDATION_ERROR: occurred_at must be a finite timestamp",
                              "event " + r.key + ": occurred_at is infinite");
        r.restored = DatumGetTimestampTz(attr(c.received_at, &isnull)) != now;
        r.given_late = DatumGetBool(attr(c.late, &isnull));
        Datum dup = attr(c.duplicate_of, &isnull);
        if (!isnull) r.given_duplicate_of = DatumGetInt64(dup);
        Datum raw_properties = attr(c.properties, &isnull);
        std::size_t size = pg([&] { return toast_raw_datum_size(raw_properties); });
        if (size > kMaxPropertiesBytes)
            throw witn::Error(witn::Code::PayloadTooLarge,
                              "PAYLOAD_TOO_LARGE: properties is larger than 256 KiB",
                              "event " + r.key + ": properties has " + std::to_string(size) + " bytes",
                              "Keep event properties under 256 KiB; store large documents elsewhere.");
        Jsonb *properties = pg([&] { return DatumGetJsonbP(raw_properties); });
        r.event = event_from_properties(std::move(action), &properties->root, occurred_at, r.id,
                                        "properties");
        if (r.has_idempotency_key)
            r.properties_text = pg([&] { return JsonbToCString(nullptr, &properties->root, VARSIZE(properties)); });
        rows.push_back(std::move(r));
    }
    pg([&] { ExecDropSingleTupleTableSlot(slot); });
    return rows;
}

std::string int_array(const std::vector<std::int64_t> &values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out += ",";
        out += std::to_string(values[i]);
    }
    return out + "}";
}

// Idempotency keys are serialized through a fixed set of advisory locks (a hash bucket per
// key): the same bucket in every session for the same key, and never more than kLockBuckets
// locks per statement, however many keys it carries (each lock takes a lock-table slot).
constexpr std::uint32_t kLockBuckets = 256;
constexpr std::int32_t kLockClass = 0x7769746e; // "witn": advisory lock class for these keys

std::int32_t lock_bucket(const std::string &customer_key, const std::string &idempotency_key) {
    std::uint64_t h = 1469598103934665603ULL; // 64-bit FNV-1a over both keys
    auto mix = [&](const std::string &s) {
        for (unsigned char ch : s) {
            h ^= ch;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; // separator: ("ab","c") and ("a","bc") differ
        h *= 1099511628211ULL;
    };
    mix(customer_key);
    mix(idempotency_key);
    return static_cast<std::int32_t>(h % kLockBuckets);
}

// Marks events whose idempotency_key was already accepted for the customer as duplicates, and
// rejects a reused key whose payload differs (CONTRACT §12).
void resolve_idempotency(std::vector<Row> &rows) {
    std::vector<Row *> keyed;
    for (Row &r : rows)
        if (r.has_idempotency_key) keyed.push_back(&r);
    if (keyed.empty()) return;

    std::set<std::int32_t> buckets; // taken in ascending order in every session: no deadlock
    for (Row *r : keyed) buckets.insert(lock_bucket(r->customer_key, r->idempotency_key));
    for (std::int32_t b : buckets)
        pg([&] {
            DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(kLockClass), Int32GetDatum(b));
        });

    std::sort(keyed.begin(), keyed.end(), [](const Row *a, const Row *b) { return a->id < b->id; });
    std::vector<std::int64_t> statement_ids, duplicates;
    for (Row *r : keyed) statement_ids.push_back(r->id);
    const std::string statement_ids_text = int_array(statement_ids);

    // The original is the earliest accepted event with the key, other than later rows of this
    // very statement (those come after this one in arrival order).
    static KeptPlan find_original(
        "SELECT e.id, (e.key = $5 AND e.action = $6 AND e.properties = $7::jsonb"
        "        AND ($8::text IS NULL OR e.agent_key IS NULL OR e.agent_key = $8)) AS same_payload"
        "  FROM witn.events e"
        " WHERE e.customer_key = $1 AND e.idempotency_key = $2 AND e.id <> $3"
        "   AND e.duplicate_of IS NULL"
        "   AND NOT (e.id > $3 AND e.id = ANY ($4::bigint[]))"
        "   AND NOT (e.id = ANY ($9::bigint[]))"
        " ORDER BY e.id LIMIT 1",
        {TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID});
    for (Row *r : keyed) {
        Datum values[9] = {text_datum(r->customer_key), text_datum(r->idempotency_key),
                           Int64GetDatum(r->id),        text_datum(statement_ids_text),
                           text_datum(r->key),          text_datum(r->event.action),
                           text_datum(r->properties_text),
                           r->has_agent ? text_datum(r->agent_key) : Datum(0),
                           text_datum(int_array(duplicates))};
        char nulls[10] = "         ";
        if (!r->has_agent) nulls[7] = 'n';
        if (find_original.run(values, nulls, 1) == 0) continue;
        std::int64_t original = spi_int64(0, 1);
        bool same = DatumGetBool(spi_datum(0, 2).value_or(BoolGetDatum(false)));
        if (!same)
            throw witn::Error(witn::Code::IdempotencyConflict,
                              "IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload",
                              "customer " + r->customer_key + ", idempotency_key " + r->idempotency_key +
                                  ": event " + std::to_string(original) + " differs",
                              "Send a retry with exactly the same key, action, agent_key and properties, or use a new idempotency_key.");
        r->duplicate_of = original;
        duplicates.push_back(r->id);
    }
}

witn::Status status_of(const std::optional<std::string> &name) {
    auto s = name ? witn::status_from_name(*name) : std::nullopt;
    if (!s) throw std::runtime_error("witn: unknown outcome status");
    return *s;
}

witn::AttributionMethod method_of(const std::optional<std::string> &name) {
    auto m = name ? witn::attribution_method_from_name(*name) : std::nullopt;
    if (!m) throw std::runtime_error("witn: unknown attribution method");
    return *m;
}

// The contract and price an outcome is (or would be) opened under, with the text forms the
// outcomes row stores.
struct Terms {
    witn::Contract contract;
    std::string agent_key, condition_text, settlement_period_text, attribution_method, currency,
        unit_price;
    std::int64_t agent_version = 0;
};

// An interval in microseconds as PostgreSQL's extract(epoch FROM ...) * 1000000 counts it
// (what the SQL paths use): a year of months is 365.25 days, other months 30 days.
std::int64_t interval_micros(const Interval *i) {
    return i->time + i->day * USECS_PER_DAY + (i->month / MONTHS_PER_YEAR) * (USECS_PER_DAY * 1461 / 4) +
           (i->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * USECS_PER_DAY;
}

std::string jsonb_text(Datum d) {
    char *s = pg([&] {
        Jsonb *j = DatumGetJsonbP(d);
        return JsonbToCString(nullptr, &j->root, VARSIZE(j));
    });
    std::string out(s);
    pfree(s);
    return out;
}

// A value's text form through its type's output function (e.g. interval_out, numeric_out).
std::string output_text(Datum d, PGFunction out) {
    char *c = pg([&] { return DatumGetCString(DirectFunctionCall1(out, d)); });
    std::string text(c);
    pfree(c);
    return text;
}

// The agent's current contract and the customer's current price, for a new outcome: read by
// primary key from the lookup tables, as of a new snapshot.
Terms load_terms(const std::string &customer_key, const std::string &agent_key) {
    KeyReader customers(witn_table("customers"));
    TupleTableSlot *customer = customers.find({text_datum(customer_key)});
    if (!customer)
        throw witn::Error(witn::Code::CustomerNotFound, "CUSTOMER_NOT_FOUND: no customer " + customer_key,
                          "customer_key " + customer_key,
                          "Create the customer in witn.customers before sending its events.");
    const int card_column = customers.column("rate_card_key");
    std::optional<std::string> card;
    if (!column_null(customer, card_column)) card = text_value(column_value(customer, card_column));
    customers.finish();

    KeyReader agents(witn_table("agents"));
    TupleTableSlot *agent = agents.find({text_datum(agent_key)});
    if (!agent)
        throw witn::Error(witn::Code::AgentNotFound, "AGENT_NOT_FOUND: no agent " + agent_key,
                          "agent_key " + agent_key, "Create the agent in witn.agents first.");
    Terms t;
    t.agent_key = agent_key;
    t.condition_text = text_value(column_value(agent, agents.column("condition")));
    t.contract.condition = cached_condition(t.condition_text);
    Datum period = column_value(agent, agents.column("settlement_period"));
    t.contract.settlement_period = interval_micros(DatumGetIntervalP(period));
    t.settlement_period_text = output_text(period, interval_out);
    t.attribution_method = text_value(column_value(agent, agents.column("attribution_method")));
    t.contract.attribution_method = method_of(t.attribution_method);
    t.agent_version = DatumGetInt32(column_value(agent, agents.column("version")));
    agents.finish();

    std::optional<std::string> price;
    if (card) {
        KeyReader prices(witn_table("rate_card_prices"));
        TupleTableSlot *p = prices.find({text_datum(*card), text_datum(agent_key)});
        if (p) price = output_text(column_value(p, prices.column("price_per_unit")), numeric_out);
        prices.finish();
    }
    if (!price)
        throw witn::Error(witn::Code::PriceNotFound,
                          "PRICE_NOT_FOUND: customer " + customer_key + " has no price for agent " + agent_key,
                          card ? "rate card " + *card + " has no price for agent " + agent_key
                               : "customer " + customer_key + " has no rate card",
                          "Assign the customer a rate card with a price for this agent "
                          "(witn.customers.rate_card_key, witn.rate_card_prices).");
    t.unit_price = *price;
    KeyReader cards(witn_table("rate_cards"));
    TupleTableSlot *rc = cards.find({text_datum(*card)});
    if (!rc) throw std::runtime_error("witn: rate card " + *card + " is missing"); // a foreign key keeps it
    t.currency = text_value(column_value(rc, cards.column("currency")));
    cards.finish();
    return t;
}

// The events of one outcome in this statement, in arrival order.
struct OutcomeBatch {
    std::vector<Row *> rows;
    Terms terms;
    bool existed = false; // as seen before the upsert (unlocked)
};

void check_agent(const Row &r, const std::string &agent_key) {
    if (r.has_agent && r.agent_key != agent_key)
        throw witn::Error(witn::Code::AgentMismatch,
                          "AGENT_MISMATCH: outcome " + r.key + " belongs to agent " + agent_key +
                              ", not " + r.agent_key,
                          "customer " + r.customer_key + ", key " + r.key,
                          "Omit agent_key on later events, or use a new outcome key for another agent.");
}

// Applies the group's events (arrival order) to the state and marks the late ones; returns the
// id of the last accepted event (0 when none).
std::int64_t apply_group(const std::vector<Row *> &rows, const witn::Contract &contract,
                         witn::OutcomeState &state, std::int64_t &late_events, TimestampTz now) {
    std::int64_t last = 0;
    for (Row *r : rows) {
        r->late = false;
        if (r->duplicate_of) continue;
        if (witn::apply_event(state, contract, r->event, now) == witn::Applied::Late) {
            r->late = true;
            ++late_events;
        } else {
            last = std::max(last, r->id);
        }
    }
    return last;
}

// An existing outcome's row, as far as applying events needs it.
struct StoredOutcome {
    std::string customer_key, key, agent_key, status, facts, attribution, condition,
        attribution_method;
    std::optional<std::string> scheduled_resolution;
    std::int64_t settles_at = 0, accepted_events = 0, late_events = 0, settlement_period = 0;
    std::int64_t last_event_id = 0; // highest id applied so far
};

// The state after applying a statement's events to an outcome.
struct Folded {
    witn::Contract contract;
    witn::OutcomeState state;
    std::int64_t late_events = 0;
    std::int64_t last_event_id = 0; // 0: none accepted

    std::string quantity() const {
        return state.attribution.quantity(contract.attribution_method).to_string();
    }
};

// The outcome's accepted events already in the log (not this statement's), in arrival order.
std::vector<witn::Event> accepted_log(const StoredOutcome &o, const OutcomeBatch &g) {
    std::vector<Datum> ids;
    for (const Row *r : g.rows) ids.push_back(Int64GetDatum(r->id));
    static KeptPlan plan(
        "SELECT id, action, properties, occurred_at FROM witn.events"
        " WHERE customer_key = $1 AND key = $2 AND NOT late AND duplicate_of IS NULL"
        "   AND NOT (id = ANY ($3))"
        " ORDER BY id",
        {TEXTOID, TEXTOID, INT8ARRAYOID});
    spi_connect();
    Datum args[3] = {text_datum(o.customer_key), text_datum(o.key),
                     array_datum(ids, std::vector<bool>(ids.size(), false), INT8OID)};
    std::uint64_t n = plan.run(args, nullptr);
    std::vector<witn::Event> log = events_from_spi(n);
    spi_finish();
    return log;
}

// Applies the group's events to an outcome that already exists.
Folded fold_stored(const OutcomeBatch &g, const StoredOutcome &o, TimestampTz now) {
    for (const Row *r : g.rows)
        if (!r->duplicate_of) check_agent(*r, o.agent_key);
    Folded f;
    f.contract.condition = cached_condition(o.condition);
    f.contract.settlement_period = o.settlement_period;
    f.contract.attribution_method = method_of(o.attribution_method);
    witn::OutcomeState &s = f.state;
    s.status = status_of(o.status);
    if (o.scheduled_resolution) s.scheduled_resolution = status_of(o.scheduled_resolution);
    s.settles_at = o.settles_at;
    s.accepted_events = o.accepted_events;
    s.facts = witn::Facts::from_json(f.contract.condition, o.facts);
    s.attribution = witn::Attribution::from_json(o.attribution);
    s.condition_holds = witn::evaluate(f.contract.condition, s.facts);
    f.late_events = o.late_events;
    f.last_event_id = apply_group(g.rows, f.contract, s, f.late_events, now);

    // Arrival order is id order. A concurrent transaction that drew later ids may have applied
    // them first (it got the outcome's lock first); then the history is replayed in id order,
    // because whether the outcome ever went PENDING depends on the order.
    bool out_of_order = false;
    for (const Row *r : g.rows) out_of_order = out_of_order || (!r->late && !r->duplicate_of && r->id < o.last_event_id);
    if (!out_of_order) return f;
    std::vector<witn::Event> log = accepted_log(o, g);
    for (const Row *r : g.rows)
        if (!r->late && !r->duplicate_of) log.push_back(r->event);
    std::sort(log.begin(), log.end(), [](const witn::Event &a, const witn::Event &b) { return a.seq < b.seq; });
    witn::OutcomeState replayed = witn::OutcomeState::open(f.contract);
    for (const witn::Event &e : log)
        witn::apply_event(replayed, f.contract, e, std::numeric_limits<std::int64_t>::min());
    f.state = replayed;
    return f;
}

// Applies the group's events to a new outcome opened under g.terms.
Folded fold_new(const OutcomeBatch &g, TimestampTz now) {
    Folded f;
    f.contract = g.terms.contract;
    f.state = witn::OutcomeState::open(f.contract);
    f.last_event_id = apply_group(g.rows, f.contract, f.state, f.late_events, now);
    return f;
}

// The upsert's SET clause that applies the statement's events to an existing, locked outcome
// row `o` through witn.fold_existing().
#define WITN_FOLD_EXISTING                                                                       \
    "    SET (status, scheduled_resolution, settles_at, quantity, condition_holds,"              \
    "         accepted_events, late_events, facts, attribution, last_event_id, updated_at)"      \
    "      = (SELECT f.status::witn.outcome_status, f.scheduled_resolution::witn.outcome_status," \
    "                f.settles_at, f.quantity::numeric, f.condition_holds, f.accepted_events,"   \
    "                f.late_events, f.facts::jsonb, f.attribution::jsonb,"                       \
    "                coalesce(greatest(o.last_event_id, f.last_event_id), o.last_event_id), now()" \
    "           FROM witn.fold_existing(o.customer_key, o.key, o.agent_key, o.status::text,"     \
    "                o.scheduled_resolution::text, o.settles_at, o.accepted_events,"             \
    "                o.late_events, o.facts::text, o.attribution::text, o.condition::text,"      \
    "                (extract(epoch FROM o.settlement_period) * 1000000)::bigint,"               \
    "                o.attribution_method, coalesce(o.last_event_id, 0)) f)"

// The statement being applied, for witn.fold_existing() which the upsert calls back.
struct Batch {
    std::map<std::pair<std::string, std::string>, OutcomeBatch *> groups;
    TimestampTz now = 0;
};
Batch *active_batch = nullptr;

Batch batch_of(std::span<OutcomeBatch> groups, TimestampTz now) {
    Batch b;
    b.now = now;
    for (OutcomeBatch &g : groups) b.groups[{g.rows.front()->customer_key, g.rows.front()->key}] = &g;
    return b;
}

// Makes a batch visible to fold_existing for the duration of the upsert.
class ActiveBatch {
public:
    explicit ActiveBatch(Batch &b) : saved_(active_batch) { active_batch = &b; }
    ~ActiveBatch() { active_batch = saved_; }
    ActiveBatch(const ActiveBatch &) = delete;
    ActiveBatch &operator=(const ActiveBatch &) = delete;

private:
    Batch *saved_;
};

// Column-wise arrays for the upsert, one element per outcome.
struct Columnar {
    std::vector<std::vector<Datum>> values;
    std::vector<std::vector<bool>> nulls;
    explicit Columnar(std::size_t columns) : values(columns), nulls(columns) {}
    void put(std::size_t column, std::optional<Datum> v) {
        values[column].push_back(v.value_or(Datum(0)));
        nulls[column].push_back(!v);
    }
};

Datum status_datum(witn::Status s) { return text_datum(witn::status_name(s)); }

// Looks up which outcomes of the statement exist (without locking: the upsert locks) and the
// contract they were opened under.
void find_existing(std::span<OutcomeBatch> groups) {
    std::vector<Datum> customers, keys;
    for (const OutcomeBatch &g : groups) {
        customers.push_back(text_datum(g.rows.front()->customer_key));
        keys.push_back(text_datum(g.rows.front()->key));
    }
    std::vector<bool> no_nulls(groups.size(), false);
    static KeptPlan plan(
        "SELECT g.i, e.agent_key, e.condition::text, e.settlement_period::text,"
        "       (extract(epoch FROM e.settlement_period) * 1000000)::bigint, e.attribution_method,"
        "       e.agent_version, e.unit_price::text, e.currency"
        "  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS g(customer_key, key, i)"
        "  JOIN witn.outcomes e ON e.customer_key = g.customer_key AND e.key = g.key",
        {TEXTARRAYOID, TEXTARRAYOID});
    Datum args[2] = {array_datum(customers, no_nulls, TEXTOID), array_datum(keys, no_nulls, TEXTOID)};
    std::uint64_t n = plan.run(args, nullptr);
    for (std::uint64_t i = 0; i < n; ++i) {
        OutcomeBatch &g = groups[static_cast<std::size_t>(spi_int64(i, 1) - 1)];
        g.existed = true;
        Terms &t = g.terms;
        t.agent_key = *spi_text(i, 2);
        t.condition_text = *spi_text(i, 3);
        t.settlement_period_text = *spi_text(i, 4);
        t.contract.condition = cached_condition(t.condition_text);
        t.contract.settlement_period = spi_int64(i, 5);
        t.attribution_method = *spi_text(i, 6);
        t.contract.attribution_method = method_of(t.attribution_method);
        t.agent_version = DatumGetInt32(*spi_datum(i, 7));
        t.unit_price = *spi_text(i, 8);
        t.currency = *spi_text(i, 9);
    }
}

// Opens new outcomes and applies events to existing ones in one statement, in
// (customer_key, key) byte order so that concurrent statements lock outcomes in the same order.
// A new outcome is inserted with the state its events give it; for an existing one the
// conflict path locks the row and witn.fold_existing() applies the events to its current state.
void upsert_outcomes(std::span<OutcomeBatch> groups, TimestampTz now) {
    enum { kCustomer, kKey, kAgent, kStatus, kScheduled, kSettlesAt, kCondition, kPeriod, kMethod,
           kVersion, kPrice, kCurrency, kQuantity, kHolds, kAccepted, kLate, kFacts, kAttribution,
           kLastId, kColumns };
    Columnar c(kColumns);
    Batch batch = batch_of(groups, now);
    for (OutcomeBatch &g : groups) {
        const Row &first = *g.rows.front();
        Folded n = fold_new(g, now);
        const witn::OutcomeState &s = n.state;
        c.put(kCustomer, text_datum(first.customer_key));
        c.put(kKey, text_datum(first.key));
        c.put(kAgent, text_datum(g.terms.agent_key));
        c.put(kStatus, status_datum(s.status));
        c.put(kScheduled, s.scheduled_resolution ? std::optional(status_datum(*s.scheduled_resolution)) : std::nullopt);
        c.put(kSettlesAt, TimestampTzGetDatum(s.settles_at));
        c.put(kCondition, text_datum(g.terms.condition_text));
        c.put(kPeriod, text_datum(g.terms.settlement_period_text));
        c.put(kMethod, text_datum(g.terms.attribution_method));
        c.put(kVersion, Int32GetDatum(static_cast<std::int32_t>(g.terms.agent_version)));
        c.put(kPrice, text_datum(g.terms.unit_price));
        c.put(kCurrency, text_datum(g.terms.currency));
        c.put(kQuantity, text_datum(n.quantity()));
        c.put(kHolds, BoolGetDatum(s.condition_holds));
        c.put(kAccepted, Int64GetDatum(s.accepted_events));
        c.put(kLate, Int64GetDatum(n.late_events));
        c.put(kFacts, text_datum(s.facts.to_json()));
        c.put(kAttribution, text_datum(s.attribution.to_json()));
        c.put(kLastId, n.last_event_id ? std::optional(Int64GetDatum(n.last_event_id)) : std::nullopt);
    }
    static const Oid element[kColumns] = {
        TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID,
        INT4OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID};
    static KeptPlan plan(
        "INSERT INTO witn.outcomes AS o (customer_key, key, agent_key, status,"
        "       scheduled_resolution, settles_at, condition, settlement_period, attribution_method,"
        "       agent_version, unit_price, currency, quantity, condition_holds, accepted_events,"
        "       late_events, facts, attribution, last_event_id, check_at)"
        " SELECT p.customer_key, p.key, p.agent_key, p.status::witn.outcome_status,"
        "        p.scheduled::witn.outcome_status, p.settles_at, p.condition::witn.condition,"
        "        p.period::interval, p.method, p.version, p.price::numeric, p.currency,"
        "        p.quantity::numeric, p.holds, p.accepted, p.late, p.facts::jsonb,"
        "        p.attribution::jsonb, p.last_id, p.settles_at"
        "   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        "               $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::int[],"
        "               $11::text[], $12::text[], $13::text[], $14::bool[], $15::bigint[],"
        "               $16::bigint[], $17::text[], $18::text[], $19::bigint[])"
        "        AS p(customer_key, key, agent_key, status, scheduled, settles_at, condition, period,"
        "             method, version, price, currency, quantity, holds, accepted, late, facts,"
        "             attribution, last_id)"
        " ON CONFLICT (customer_key, key) DO UPDATE" WITN_FOLD_EXISTING,
        {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
         TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
         TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
         TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID});
    Datum args[kColumns];
    for (int i = 0; i < kColumns; ++i) args[i] = array_datum(c.values[i], c.nulls[i], element[i]);
    // The arrays are in (customer_key, key) byte order and unnest() yields them in that order,
    // which is the order rows are inserted or locked. work_mem: unnest materializes the arrays.
    ActiveBatch active(batch);
    plan.run(args, nullptr, 0, {{"work_mem", "64MB"}});
}

// Writes late / duplicate_of where what the statement decided differs from the row as inserted.
void record_dispositions(const std::vector<Row> &rows) {
    std::vector<Datum> customers, ids, lates, originals;
    std::vector<bool> original_null;
    for (const Row &r : rows) {
        if (r.late == r.given_late && r.duplicate_of == r.given_duplicate_of) continue;
        customers.push_back(text_datum(r.customer_key));
        ids.push_back(Int64GetDatum(r.id));
        lates.push_back(BoolGetDatum(r.late));
        originals.push_back(Int64GetDatum(r.duplicate_of.value_or(0)));
        original_null.push_back(!r.duplicate_of);
    }
    if (ids.empty()) return;
    std::vector<bool> no_nulls(ids.size(), false);
    static KeptPlan plan(
        "UPDATE witn.events e SET late = d.late, duplicate_of = d.original"
        "  FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::bigint[])"
        "       AS d(customer_key, id, late, original)"
        " WHERE e.customer_key = d.customer_key AND e.id = d.id",
        {TEXTARRAYOID, INT8ARRAYOID, BOOLARRAYOID, INT8ARRAYOID});
    Datum args[4] = {array_datum(customers, no_nulls, TEXTOID), array_datum(ids, no_nulls, INT8OID),
                     array_datum(lates, no_nulls, BOOLOID),
                     array_datum(originals, original_null, INT8OID)};
    plan.run(args, nullptr);
}

// Groups the statement's rows by outcome, in (customer_key, key) byte order.
std::vector<OutcomeBatch> group_rows(std::vector<Row> &rows) {
    std::vector<Row *> order;
    order.reserve(rows.size());
    for (Row &r : rows) order.push_back(&r);
    std::sort(order.begin(), order.end(), [](const Row *a, const Row *b) {
        if (int c = a->customer_key.compare(b->customer_key)) return c < 0;
        if (int c = a->key.compare(b->key)) return c < 0;
        return a->id < b->id;
    });
    std::vector<OutcomeBatch> groups;
    for (Row *r : order) {
        if (groups.empty() || groups.back().rows.front()->customer_key != r->customer_key ||
            groups.back().rows.front()->key != r->key)
            groups.emplace_back();
        groups.back().rows.push_back(r);
    }
    return groups;
}

using TermsCache = std::map<std::pair<std::string, std::string>, Terms>;

// Sets the terms of a group whose outcome does not exist yet: its opening event names the
// agent; the terms are that agent's contract and the customer's price.
void open_terms(OutcomeBatch &g, TermsCache &cache) {
    const Row *opener = nullptr;
    for (const Row *r : g.rows)
        if (!r->duplicate_of) {
            opener = r;
            break;
        }
    if (!opener) opener = g.rows.front();
    if (!opener->has_agent)
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: agent_key is required on an outcome's first event",
                          "customer " + opener->customer_key + ", key " + opener->key,
                          "Name the agent on the event that opens the outcome.");
    for (const Row *r : g.rows) check_agent(*r, opener->agent_key);
    auto pair = std::make_pair(opener->customer_key, opener->agent_key);
    auto it = cache.find(pair);
    if (it == cache.end()) it = cache.emplace(pair, load_terms(pair.first, pair.second)).first;
    g.terms = it->second;
}

// Decides each group's terms: the existing outcome's, or those it opens under.
void resolve_terms(std::span<OutcomeBatch> groups, TermsCache &cache) {
    find_existing(groups);
    for (OutcomeBatch &g : groups) {
        if (g.existed) {
            for (const Row *r : g.rows)
                if (!r->duplicate_of) check_agent(*r, g.terms.agent_key);
        } else {
            open_terms(g, cache);
        }
    }
}

// The columns of witn.outcomes that the single-outcome path reads and writes.
struct OutcomeColumns {
    int customer_key, key, agent_key, status, scheduled, settles_at, check_at, condition, period,
        method, version, unit_price, currency, quantity, holds, accepted, late, facts, attribution,
        last_id, updated_at;
    explicit OutcomeColumns(const TableWriter &t)
        : customer_key(t.column("customer_key")), key(t.column("key")), agent_key(t.column("agent_key")),
          status(t.column("status")), scheduled(t.column("scheduled_resolution")),
          settles_at(t.column("settles_at")), check_at(t.column("check_at")),
          condition(t.column("condition")), period(t.column("settlement_period")),
          method(t.column("attribution_method")), version(t.column("agent_version")),
          unit_price(t.column("unit_price")), currency(t.column("currency")),
          quantity(t.column("quantity")), holds(t.column("condition_holds")),
          accepted(t.column("accepted_events")), late(t.column("late_events")), facts(t.column("facts")),
          attribution(t.column("attribution")), last_id(t.column("last_event_id")),
          updated_at(t.column("updated_at")) {}
};

// Puts what folding the events decided into an outcome row: status, scheduled resolution,
// settles_at, quantity, counters, facts, attribution state and the last applied event id.
void put_state(const TableWriter &t, const OutcomeColumns &c, TupleTableSlot *row, const Folded &f,
               std::int64_t last_event_id) {
    const witn::OutcomeState &s = f.state;
    const Oid status_type = TupleDescAttr(t.desc(), c.status - 1)->atttypid;
    const Oid status_oid = enum_label(status_type, witn::status_name(s.status));
    const Oid scheduled_oid = s.scheduled_resolution ? enum_label(status_type, witn::status_name(*s.scheduled_resolution)) : InvalidOid;
    const std::string facts_json = s.facts.to_json(), attribution_json = s.attribution.to_json(),
                      quantity_text = f.quantity();
    pg([&] {
        put_column(row, c.status, ObjectIdGetDatum(status_oid));
        put_column(row, c.scheduled, ObjectIdGetDatum(scheduled_oid), !OidIsValid(scheduled_oid));
        put_column(row, c.settles_at, TimestampTzGetDatum(s.settles_at));
        put_column(row, c.quantity, DirectFunctionCall3(numeric_in, CStringGetDatum(quantity_text.c_str()),
                                                 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        put_column(row, c.holds, BoolGetDatum(s.condition_holds));
        put_column(row, c.accepted, Int64GetDatum(s.accepted_events));
        put_column(row, c.late, Int64GetDatum(f.late_events));
        put_column(row, c.facts, DirectFunctionCall1(jsonb_in, CStringGetDatum(facts_json.c_str())));
        put_column(row, c.attribution, DirectFunctionCall1(jsonb_in, CStringGetDatum(attribution_json.c_str())));
        put_column(row, c.last_id, Int64GetDatum(last_event_id), last_event_id == 0);
    });
}

// Inserts a new outcome, without SQL; false when a concurrent transaction opened it first.
bool insert_outcome(const OutcomeBatch &g, const Folded &n) {
    const Row &first = *g.rows.front();
    TableWriter outcomes(witn_table("outcomes"));
    const OutcomeColumns c(outcomes);
    // witn.condition is stored as its canonical JSON text, which condition_text is.
    const Datum customer = text_datum(first.customer_key), key = text_datum(first.key),
                agent = text_datum(g.terms.agent_key), condition = text_datum(g.terms.condition_text),
                method = text_datum(g.terms.attribution_method), currency = text_datum(g.terms.currency);
    TupleTableSlot *row = outcomes.new_row();
    put_state(outcomes, c, row, n, n.last_event_id);
    pg([&] {
        put_column(row, c.customer_key, customer);
        put_column(row, c.key, key);
        put_column(row, c.agent_key, agent);
        put_column(row, c.check_at, TimestampTzGetDatum(n.state.settles_at));
        put_column(row, c.condition, condition);
        put_column(row, c.period, DirectFunctionCall3(interval_in, CStringGetDatum(g.terms.settlement_period_text.c_str()),
                                               ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        put_column(row, c.method, method);
        put_column(row, c.version, Int32GetDatum(static_cast<std::int32_t>(g.terms.agent_version)));
        put_column(row, c.unit_price, DirectFunctionCall3(numeric_in, CStringGetDatum(g.terms.unit_price.c_str()),
                                                   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        put_column(row, c.currency, currency);
    });
    const bool inserted = outcomes.insert_if_absent(row);
    outcomes.finish();
    return inserted;
}

// Applies the group's events to its outcome if it exists: finds and locks the row through the
// (customer_key, key) index and writes the folded state back, without SQL; false when there is
// no such outcome.
bool update_existing(std::vector<OutcomeBatch> &one, TimestampTz now) {
    const OutcomeBatch &g = one.front();
    const Row &first = *g.rows.front();
    TableWriter outcomes(witn_table("outcomes"));
    const OutcomeColumns c(outcomes);
    TupleTableSlot *row = outcomes.find_locked(
        {c.customer_key, c.key}, {text_datum(first.customer_key), text_datum(first.key)});
    if (!row) {
        outcomes.finish();
        return false;
    }
    StoredOutcome o;
    o.customer_key = first.customer_key;
    o.key = first.key;
    o.agent_key = text_value(column_value(row, c.agent_key));
    o.status = output_text(column_value(row, c.status), enum_out);
    if (!column_null(row, c.scheduled)) o.scheduled_resolution = output_text(column_value(row, c.scheduled), enum_out);
    o.settles_at = DatumGetTimestampTz(column_value(row, c.settles_at));
    o.accepted_events = DatumGetInt64(column_value(row, c.accepted));
    o.late_events = DatumGetInt64(column_value(row, c.late));
    o.facts = jsonb_text(column_value(row, c.facts));
    o.attribution = jsonb_text(column_value(row, c.attribution));
    o.condition = text_value(column_value(row, c.condition));
    o.settlement_period = interval_micros(DatumGetIntervalP(column_value(row, c.period)));
    o.attribution_method = text_value(column_value(row, c.method));
    if (!column_null(row, c.last_id)) o.last_event_id = DatumGetInt64(column_value(row, c.last_id));

    Folded f = fold_stored(g, o, now);
    TupleTableSlot *next = outcomes.new_row_from(row);
    put_column(next, c.updated_at, TimestampTzGetDatum(now));
    put_state(outcomes, c, next, f, std::max(o.last_event_id, f.last_event_id));
    outcomes.update(row, next);
    outcomes.finish();
    return true;
}

// A statement touching one outcome — the common single-row INSERT — updates it in place when
// it exists, and inserts it when this statement opens it; neither runs SQL, only opening reads
// the contract and price.
void apply_one(std::vector<OutcomeBatch> &one, TimestampTz now) {
    if (update_existing(one, now)) return;
    OutcomeBatch &g = one.front();
    TermsCache cache;
    open_terms(g, cache);
    if (insert_outcome(g, fold_new(g, now))) return;
    // A concurrent transaction opened it first; ours applies on top of its row (under
    // REPEATABLE READ or SERIALIZABLE, whose snapshot cannot see that row, find_locked asks
    // the client to retry, as PostgreSQL does for any such conflict). Not there at all: it was
    // deleted in between.
    if (!update_existing(one, now)) {
        const Row &first = *g.rows.front();
        pg([&] {
            ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                            errmsg("could not serialize access due to a concurrently opened outcome"),
                            errdetail("customer %s, key %s", first.customer_key.c_str(), first.key.c_str()),
                            errhint("Retry the transaction.")));
        });
    }
}

// Outcomes per upsert statement in a large INSERT or COPY.
constexpr std::size_t kChunkOutcomes = 10000;

// A memory context for one chunk's arrays and values, freed when the chunk is done.
class ChunkMemory {
public:
    ChunkMemory() {
        context_ = pg([] { return AllocSetContextCreate(CurrentMemoryContext, "witn chunk", ALLOCSET_DEFAULT_SIZES); });
        saved_ = MemoryContextSwitchTo(context_);
    }
    ~ChunkMemory() {
        MemoryContextSwitchTo(saved_);
        MemoryContextDelete(context_);
    }
    ChunkMemory(const ChunkMemory &) = delete;
    ChunkMemory &operator=(const ChunkMemory &) = delete;

private:
    MemoryContext context_;
    MemoryContext saved_;
};

// This library writes witn.outcomes.check_at, which the SQL objects have since 0.2.0. A
// database whose extension was not updated after the library was installed gets a clear error
// instead of a failure halfway through (checked once per backend: an update only adds).
void require_current_schema() {
    static bool current = false;
    if (current) return;
    const Oid outcomes = witn_table("outcomes");
    pg([&] {
        if (get_attnum(outcomes, "check_at") == InvalidAttrNumber)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("witn's SQL objects in this database are older than its installed library"),
                            errdetail("witn.outcomes has no column check_at (added in witn 0.2.0)."),
                            errhint("Run ALTER EXTENSION witn UPDATE in this database.")));
    });
    current = true;
}

// Restoring a dump (events with their original received_at) is for superusers only.
bool may_restore() { return superuser_arg(GetOuterUserId()); }

} // namespace

// AFTER INSERT ... FOR EACH STATEMENT REFERENCING NEW TABLE on witn.events.
WITN_FUNCTION(witn_events_apply) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw std::runtime_error("witn_events_apply must be called as a trigger");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!trigger->tg_newtable) return PointerGetDatum(nullptr);
    TimestampTz now = GetCurrentTransactionStartTimestamp();
    std::vector<Row> rows = read_rows(trigger, now);

    // Rows that bring their own received_at are restored rows (pg_dump/pg_restore): they are
    // history already reflected in witn.outcomes and are stored as they are.
    std::size_t restored = static_cast<std::size_t>(
        std::count_if(rows.begin(), rows.end(), [](const Row &r) { return r.restored; }));
    if (restored) {
        if (!may_restore())
            throw witn::Error(witn::Code::ValidationError,
                              "VALIDATION_ERROR: received_at is set by witn",
                              "an inserted event carries its own received_at",
                              "Omit received_at; only a superuser restoring a dump may supply it.");
        if (restored == rows.size()) return PointerGetDatum(nullptr);
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: restored and new events in one statement",
                          "some rows carry received_at and some do not",
                          "Insert new events without received_at, in their own statement.");
    }

    require_current_schema();
    spi_connect();
    resolve_idempotency(rows);
    std::vector<OutcomeBatch> groups = group_rows(rows);
    if (groups.size() == 1) {
        apply_one(groups, now);
    } else {
        // Chunks bound the memory a huge statement needs; chunks go in key order, so locks are
        // still taken in one global order.
        TermsCache cache;
        for (std::size_t start = 0; start < groups.size(); start += kChunkOutcomes) {
            std::span<OutcomeBatch> chunk(groups.data() + start,
                                          std::min(kChunkOutcomes, groups.size() - start));
            ChunkMemory memory;
            resolve_terms(chunk, cache);
            upsert_outcomes(chunk, now);
            for (OutcomeBatch &g : chunk) g.terms = Terms{}; // each holds a copy of a contract
        }
    }
    record_dispositions(rows);
    spi_finish();
    return PointerGetDatum(nullptr);
}

// witn.fold_existing(...): called by the upsert for each outcome that already exists, with its
// locked current row; applies this statement's events for it and returns the new state.
WITN_FUNCTION(witn_fold_existing) {
    if (!active_batch)
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: witn.fold_existing is internal to the events trigger",
                          "called outside an INSERT INTO witn.events");
    auto text_arg = [&](int n) -> std::optional<std::string> {
        if (PG_ARGISNULL(n)) return std::nullopt;
        text *t = pg([&] { return PG_GETARG_TEXT_PP(n); });
        return from_text(t);
    };
    StoredOutcome o;
    o.agent_key = *text_arg(2);
    o.status = *text_arg(3);
    o.scheduled_resolution = text_arg(4);
    o.settles_at = PG_GETARG_TIMESTAMPTZ(5);
    o.accepted_events = PG_GETARG_INT64(6);
    o.late_events = PG_GETARG_INT64(7);
    o.facts = *text_arg(8);
    o.attribution = *text_arg(9);
    o.condition = *text_arg(10);
    o.settlement_period = PG_GETARG_INT64(11);
    o.attribution_method = *text_arg(12);
    o.last_event_id = PG_GETARG_INT64(13);
    o.customer_key = *text_arg(0);
    o.key = *text_arg(1);
    auto it = active_batch->groups.find({o.customer_key, o.key});
    if (it == active_batch->groups.end())
        throw std::runtime_error("witn: fold_existing called for an outcome outside the statement");
    Folded f = fold_stored(*it->second, o, active_batch->now);
    const witn::OutcomeState &s = f.state;
    std::string status = witn::status_name(s.status);
    std::string facts = s.facts.to_json(), attribution = s.attribution.to_json();
    std::string quantity = f.quantity();
    std::int64_t late = f.late_events, last = f.last_event_id;
    return pg([&] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "witn.fold_existing must return a record");
        desc = BlessTupleDesc(desc);
        Datum values[10] = {
            PointerGetDatum(cstring_to_text(status.c_str())),
            s.scheduled_resolution ? PointerGetDatum(cstring_to_text(witn::status_name(*s.scheduled_resolution))) : Datum(0),
            TimestampTzGetDatum(s.settles_at),
            PointerGetDatum(cstring_to_text(quantity.c_str())),
            BoolGetDatum(s.condition_holds),
            Int64GetDatum(s.accepted_events),
            Int64GetDatum(late),
            PointerGetDatum(cstring_to_text(facts.c_str())),
            PointerGetDatum(cstring_to_text(attribution.c_str())),
            Int64GetDatum(last)};
        bool nulls[10] = {false, !s.scheduled_resolution, false, false, false,
                          false, false, false, false, last == 0};
        return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
    });
}
