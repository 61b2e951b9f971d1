// The write path: the CHECK function that validates each event row, and the statement trigger
// that folds a statement's events into their outcomes in the inserting transaction.
//
// The statement trigger reads the statement's rows from the transition table, takes
// idempotency locks, then handles one outcome at a time in (customer_key, key) order — the
// same order in every session, so concurrent multi-outcome batches cannot deadlock — with one
// read and one write of the outcome row however many of its events the statement carries.
#include "pg/postgres.hpp"

#include "core/attribution.hpp"
#include "core/outcome.hpp"
#include "pg/condition_type.hpp"
#include "pg/event_row.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <algorithm>
#include <set>
#include <vector>

using namespace witn::pg;

namespace {

std::string cstring_of(Datum d) {
    char *s = pg([&] { return TextDatumGetCString(d); });
    std::string out(s);
    pfree(s);
    return out;
}

// Validation shared by the CHECK constraint: keys, properties and occurred_at.
void validate_row(FunctionCallInfo fcinfo) {
    auto key_arg = [&](int n, const char *what, bool required) {
        if (PG_ARGISNULL(n)) {
            check_key(what, nullptr, 0, required);
            return;
        }
        text *t = pg([&] { return PG_GETARG_TEXT_PP(n); });
        check_key(what, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), required);
    };
    key_arg(0, "customer_key", true);
    key_arg(1, "key", true);
    key_arg(2, "action", true);
    key_arg(3, "agent_key", false);
    key_arg(6, "idempotency_key", false);
    if (PG_ARGISNULL(5))
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: occurred_at is required",
                          "column occurred_at is null", "Omit occurred_at to use now().");
    TimestampTz occurred_at = PG_GETARG_TIMESTAMPTZ(5);
    if (TIMESTAMP_NOT_FINITE(occurred_at))
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: occurred_at must be a finite timestamp",
                          "column occurred_at is infinite");
    if (PG_ARGISNULL(4))
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: properties must be a JSON object",
                          "column properties is null", "Omit properties or send {}.");
    Datum raw = PG_GETARG_DATUM(4);
    std::size_t size = pg([&] { return toast_raw_datum_size(raw); });
    if (size > kMaxPropertiesBytes)
        throw witn::Error(witn::Code::PayloadTooLarge,
                          "PAYLOAD_TOO_LARGE: properties is larger than 256 KiB",
                          "column properties has " + std::to_string(size) + " bytes",
                          "Keep event properties under 256 KiB; store large documents elsewhere.");
    Jsonb *properties = pg([&] { return PG_GETARG_JSONB_P(4); });
    event_from_properties("", &properties->root, occurred_at, 0, "properties");
}

} // namespace

// CHECK (witn.event_is_valid(...)) on witn.events: bad input is rejected row by row with a
// product error, before anything is written.
WITN_FUNCTION(witn_event_is_valid) {
    validate_row(fcinfo);
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

Columns find_columns(TupleDesc desc) {
    auto find = [&](const char *name) {
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute a = TupleDescAttr(desc, i);
            if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0) return i + 1;
        }
        throw std::runtime_error(std::string("witn.events has no column ") + name);
    };
    return {find("id"),          find("customer_key"), find("key"),
            find("action"),      find("agent_key"),    find("properties"),
            find("occurred_at"), find("idempotency_key"), find("received_at"),
            find("late"),        find("duplicate_of")};
}

std::vector<Row> read_rows(TriggerData *trigger, TimestampTz now) {
    TupleDesc desc = trigger->tg_relation->rd_att;
    Columns c = find_columns(desc);
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
        r.customer_key = cstring_of(attr(c.customer_key, &isnull));
        r.key = cstring_of(attr(c.key, &isnull));
        std::string action = cstring_of(attr(c.action, &isnull));
        Datum agent = attr(c.agent_key, &isnull);
        if ((r.has_agent = !isnull)) r.agent_key = cstring_of(agent);
        Datum idem = attr(c.idempotency_key, &isnull);
        if ((r.has_idempotency_key = !isnull)) r.idempotency_key = cstring_of(idem);
        TimestampTz occurred_at = DatumGetTimestampTz(attr(c.occurred_at, &isnull));
        r.restored = DatumGetTimestampTz(attr(c.received_at, &isnull)) != now;
        r.given_late = DatumGetBool(attr(c.late, &isnull));
        Datum dup = attr(c.duplicate_of, &isnull);
        if (!isnull) r.given_duplicate_of = DatumGetInt64(dup);
        Jsonb *properties = pg([&] {
            bool n = false;
            return DatumGetJsonbP(slot_getattr(slot, c.properties, &n));
        });
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

// 64-bit FNV-1a: the same in every session, so every session takes the same lock.
std::int64_t lock_key(const std::string &customer_key, const std::string &idempotency_key) {
    std::uint64_t h = 1469598103934665603ULL;
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
    return static_cast<std::int64_t>(h);
}

// Marks events whose idempotency_key was already accepted for the customer as duplicates, and
// rejects a reused key whose payload differs (CONTRACT §12).
void resolve_idempotency(std::vector<Row> &rows) {
    std::vector<Row *> keyed;
    for (Row &r : rows)
        if (r.has_idempotency_key) keyed.push_back(&r);
    if (keyed.empty()) return;

    std::set<std::int64_t> locks;
    for (Row *r : keyed) locks.insert(lock_key(r->customer_key, r->idempotency_key));
    for (std::int64_t k : locks)
        pg([&] { DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum(k)); });

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

// The outcome row as the trigger needs it.
struct StoredOutcome {
    std::int64_t id = 0;
    std::string agent_key;
    witn::Contract contract;
    witn::OutcomeState state;
    std::int64_t late_events = 0;
};

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

// Reads and locks the outcome; false when it does not exist yet.
bool lock_outcome(const std::string &customer_key, const std::string &key, StoredOutcome &out) {
    static KeptPlan plan(
        "SELECT id, agent_key, status::text, scheduled_resolution::text, settles_at,"
        "       accepted_events, late_events, facts::text, attribution::text, condition::text,"
        "       (extract(epoch FROM settlement_period) * 1000000)::bigint, attribution_method,"
        "       condition_holds"
        "  FROM witn.outcomes WHERE customer_key = $1 AND key = $2 FOR UPDATE",
        {TEXTOID, TEXTOID});
    Datum values[2] = {text_datum(customer_key), text_datum(key)};
    if (plan.run(values, nullptr, 1) == 0) return false;
    out.id = spi_int64(0, 1);
    out.agent_key = *spi_text(0, 2);
    out.contract.condition = cached_condition(*spi_text(0, 10));
    out.contract.settlement_period = spi_int64(0, 11);
    out.contract.attribution_method = method_of(spi_text(0, 12));
    witn::OutcomeState &s = out.state;
    s.status = status_of(spi_text(0, 3));
    if (auto scheduled = spi_text(0, 4)) s.scheduled_resolution = status_of(scheduled);
    s.settles_at = spi_int64(0, 5);
    s.accepted_events = spi_int64(0, 6);
    out.late_events = spi_int64(0, 7);
    s.facts = witn::Facts::from_json(out.contract.condition, *spi_text(0, 8));
    s.attribution = witn::Attribution::from_json(*spi_text(0, 9));
    s.condition_holds = DatumGetBool(spi_datum(0, 13).value_or(BoolGetDatum(false)));
    return true;
}

// What a new outcome is opened under: the agent's contract and the customer's price.
struct NewOutcomeTerms {
    witn::Contract contract;
    std::string condition_text, settlement_period_text, attribution_method, currency, unit_price;
    std::int64_t agent_version = 0;
};

NewOutcomeTerms load_terms(const std::string &customer_key, const std::string &agent_key) {
    static KeptPlan plan(
        "SELECT a.key, a.condition::text, (extract(epoch FROM a.settlement_period) * 1000000)::bigint,"
        "       a.attribution_method, a.version, a.settlement_period::text, c.rate_card_key,"
        "       rc.currency, p.price_per_unit::text"
        "  FROM witn.customers c"
        "  LEFT JOIN witn.agents a ON a.key = $2"
        "  LEFT JOIN witn.rate_cards rc ON rc.key = c.rate_card_key"
        "  LEFT JOIN witn.rate_card_prices p ON p.rate_card_key = c.rate_card_key AND p.agent_key = a.key"
        " WHERE c.key = $1",
        {TEXTOID, TEXTOID});
    Datum values[2] = {text_datum(customer_key), text_datum(agent_key)};
    if (plan.run(values, nullptr, 1) == 0)
        throw witn::Error(witn::Code::CustomerNotFound, "CUSTOMER_NOT_FOUND: no customer " + customer_key,
                          "customer_key " + customer_key,
                          "Create the customer in witn.customers before sending its events.");
    if (!spi_text(0, 1))
        throw witn::Error(witn::Code::AgentNotFound, "AGENT_NOT_FOUND: no agent " + agent_key,
                          "agent_key " + agent_key, "Create the agent in witn.agents first.");
    std::optional<std::string> price = spi_text(0, 9);
    if (!price) {
        std::optional<std::string> card = spi_text(0, 7);
        throw witn::Error(witn::Code::PriceNotFound,
                          "PRICE_NOT_FOUND: customer " + customer_key + " has no price for agent " + agent_key,
                          card ? "rate card " + *card + " has no price for agent " + agent_key
                               : "customer " + customer_key + " has no rate card",
                          "Assign the customer a rate card with a price for this agent "
                          "(witn.customers.rate_card_key, witn.rate_card_prices).");
    }
    NewOutcomeTerms t;
    t.condition_text = *spi_text(0, 2);
    t.contract.condition = cached_condition(t.condition_text);
    t.contract.settlement_period = spi_int64(0, 3);
    t.attribution_method = *spi_text(0, 4);
    t.contract.attribution_method = method_of(t.attribution_method);
    t.agent_version = spi_int64(0, 5);
    t.settlement_period_text = *spi_text(0, 6);
    t.currency = *spi_text(0, 8);
    t.unit_price = *price;
    return t;
}

Datum status_datum(witn::Status s) { return text_datum(witn::status_name(s)); }

// Inserts a new outcome in its final state for this statement; false when a concurrent
// transaction created it first.
bool insert_outcome(const Row &first, const std::string &agent_key, const NewOutcomeTerms &t,
                    const witn::OutcomeState &s, std::int64_t late_events,
                    std::int64_t last_event_id) {
    static KeptPlan plan(
        "INSERT INTO witn.outcomes (customer_key, key, agent_key, status, scheduled_resolution,"
        "       settles_at, condition, settlement_period, attribution_method, agent_version,"
        "       unit_price, currency, quantity, condition_holds, accepted_events, late_events,"
        "       facts, attribution, last_event_id)"
        " VALUES ($1, $2, $3, $4::witn.outcome_status, $5::witn.outcome_status, $6,"
        "       $7::witn.condition, $8::interval, $9, $10, $11::numeric, $12, $13::numeric, $14,"
        "       $15, $16, $17::jsonb, $18::jsonb, $19)"
        " ON CONFLICT (customer_key, key) DO NOTHING RETURNING id",
        {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID,
         INT4OID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID});
    Datum values[19] = {
        text_datum(first.customer_key), text_datum(first.key), text_datum(agent_key),
        status_datum(s.status),
        s.scheduled_resolution ? status_datum(*s.scheduled_resolution) : Datum(0),
        TimestampTzGetDatum(s.settles_at), text_datum(t.condition_text),
        text_datum(t.settlement_period_text), text_datum(t.attribution_method),
        Int32GetDatum(static_cast<std::int32_t>(t.agent_version)), text_datum(t.unit_price),
        text_datum(t.currency),
        text_datum(s.attribution.quantity(t.contract.attribution_method).to_string()),
        BoolGetDatum(s.condition_holds), Int64GetDatum(s.accepted_events),
        Int64GetDatum(late_events), text_datum(s.facts.to_json()),
        text_datum(s.attribution.to_json()), Int64GetDatum(last_event_id)};
    char nulls[20] = "                   ";
    if (!s.scheduled_resolution) nulls[4] = 'n';
    return plan.run(values, nulls) == 1;
}

void update_outcome(const std::string &customer_key, const StoredOutcome &o,
                    std::int64_t last_event_id) {
    static KeptPlan plan(
        "UPDATE witn.outcomes SET status = $3::witn.outcome_status,"
        "       scheduled_resolution = $4::witn.outcome_status, settles_at = $5,"
        "       quantity = $6::numeric, condition_holds = $7, accepted_events = $8,"
        "       late_events = $9, facts = $10::jsonb, attribution = $11::jsonb,"
        "       last_event_id = greatest(last_event_id, $12), updated_at = now()"
        " WHERE customer_key = $1 AND id = $2",
        {TEXTOID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, BOOLOID, INT8OID, INT8OID,
         TEXTOID, TEXTOID, INT8OID});
    const witn::OutcomeState &s = o.state;
    Datum values[12] = {
        text_datum(customer_key), Int64GetDatum(o.id), status_datum(s.status),
        s.scheduled_resolution ? status_datum(*s.scheduled_resolution) : Datum(0),
        TimestampTzGetDatum(s.settles_at),
        text_datum(s.attribution.quantity(o.contract.attribution_method).to_string()),
        BoolGetDatum(s.condition_holds), Int64GetDatum(s.accepted_events),
        Int64GetDatum(o.late_events), text_datum(s.facts.to_json()),
        text_datum(s.attribution.to_json()), Int64GetDatum(last_event_id)};
    char nulls[13] = "            ";
    if (!s.scheduled_resolution) nulls[3] = 'n';
    plan.run(values, nulls);
}

// Writes late / duplicate_of where what the statement decided differs from the row as inserted.
void record_dispositions(const std::vector<Row *> &group) {
    std::vector<std::int64_t> ids;
    std::string lates = "{", originals = "{";
    for (const Row *r : group) {
        if (r->late == r->given_late && r->duplicate_of == r->given_duplicate_of) continue;
        if (!ids.empty()) {
            lates += ",";
            originals += ",";
        }
        ids.push_back(r->id);
        lates += r->late ? "t" : "f";
        originals += r->duplicate_of ? std::to_string(*r->duplicate_of) : "NULL";
    }
    if (ids.empty()) return;
    static KeptPlan plan(
        "UPDATE witn.events e SET late = d.late, duplicate_of = d.original"
        "  FROM unnest($2::bigint[], $3::boolean[], $4::bigint[]) AS d(id, late, original)"
        " WHERE e.customer_key = $1 AND e.id = d.id",
        {TEXTOID, TEXTOID, TEXTOID, TEXTOID});
    Datum values[4] = {text_datum(group.front()->customer_key), text_datum(int_array(ids)),
                       text_datum(lates + "}"), text_datum(originals + "}")};
    plan.run(values, nullptr);
}

void check_agent(const Row &r, const std::string &agent_key) {
    if (r.has_agent && r.agent_key != agent_key)
        throw witn::Error(witn::Code::AgentMismatch,
                          "AGENT_MISMATCH: outcome " + r.key + " belongs to agent " + agent_key +
                              ", not " + r.agent_key,
                          "customer " + r.customer_key + ", key " + r.key,
                          "Omit agent_key on later events, or use a new outcome key for another agent.");
}

// Applies the group's events (arrival order) to the state; returns the last accepted id.
std::int64_t apply_group(const std::vector<Row *> &group, const witn::Contract &contract,
                         witn::OutcomeState &state, std::int64_t &late_events, TimestampTz now) {
    std::int64_t last = 0;
    for (Row *r : group) {
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

void process_outcome(const std::vector<Row *> &group, TimestampTz now) {
    const Row &first = *group.front();
    StoredOutcome stored;
    bool exists = lock_outcome(first.customer_key, first.key, stored);
    if (!exists) {
        const Row *opener = nullptr;
        for (const Row *r : group)
            if (!r->duplicate_of) {
                opener = r;
                break;
            }
        if (!opener) return; // only duplicates of events of an outcome that no longer exists
        if (!opener->has_agent)
            throw witn::Error(witn::Code::ValidationError,
                              "VALIDATION_ERROR: agent_key is required on an outcome's first event",
                              "customer " + opener->customer_key + ", key " + opener->key,
                              "Name the agent on the event that opens the outcome.");
        for (const Row *r : group) check_agent(*r, opener->agent_key);
        NewOutcomeTerms terms = load_terms(opener->customer_key, opener->agent_key);
        witn::OutcomeState state = witn::OutcomeState::open(terms.contract);
        std::int64_t late_events = 0;
        std::int64_t last = apply_group(group, terms.contract, state, late_events, now);
        if (insert_outcome(first, opener->agent_key, terms, state, late_events, last)) {
            record_dispositions(group);
            return;
        }
        // A concurrent transaction opened it first; ours now waits on its row and applies on top.
        if (!lock_outcome(first.customer_key, first.key, stored))
            throw std::runtime_error("witn: outcome vanished after a conflicting insert");
    }
    for (const Row *r : group)
        if (!r->duplicate_of) check_agent(*r, stored.agent_key);
    std::int64_t last = apply_group(group, stored.contract, stored.state, stored.late_events, now);
    update_outcome(first.customer_key, stored, last);
    record_dispositions(group);
}

bool may_restore() {
    Oid user = GetOuterUserId();
    return superuser_arg(user);
}

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

    spi_connect();
    resolve_idempotency(rows);
    std::vector<Row *> order;
    order.reserve(rows.size());
    for (Row &r : rows) order.push_back(&r);
    std::sort(order.begin(), order.end(), [](const Row *a, const Row *b) {
        if (int c = a->customer_key.compare(b->customer_key)) return c < 0;
        if (int c = a->key.compare(b->key)) return c < 0;
        return a->id < b->id;
    });
    std::vector<Row *> group;
    for (std::size_t i = 0; i < order.size(); ++i) {
        group.push_back(order[i]);
        bool last_of_group = i + 1 == order.size() ||
                             order[i + 1]->customer_key != order[i]->customer_key ||
                             order[i + 1]->key != order[i]->key;
        if (!last_of_group) continue;
        process_outcome(group, now);
        group.clear();
    }
    spi_finish();
    return PointerGetDatum(nullptr);
}
