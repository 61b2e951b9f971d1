#include "pg/idempotency.hpp"

#include "pg/statement_rows.hpp"

#include "pg/table_writer.hpp"
#include "pg/values.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "catalog/pg_collation.h"
}

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace witn::pg {

namespace {

constexpr std::int32_t kLockClass = 0x7769746e; // "witn": advisory lock class for these keys

std::uint32_t lock_bucket(std::string_view customer_key, std::string_view idempotency_key) {
    std::uint64_t h = 1469598103934665603ULL; // 64-bit FNV-1a over both keys
    auto mix = [&](std::string_view s) {
        for (unsigned char ch : s) {
            h ^= ch;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; // separator: ("ab","c") and ("a","bc") differ
        h *= 1099511628211ULL;
    };
    mix(customer_key);
    mix(idempotency_key);
    return static_cast<std::uint32_t>(h % IdempotencyLocks::kLockBuckets);
}

// The payload an original is compared with: key, action, agent_key and properties.
struct Payload {
    std::int64_t id = 0;
    Datum key = 0, action = 0, agent = 0, properties = 0;
    bool has_agent = false;
};

bool same_text(Datum a, Datum b) {
    return pg([&] { return DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, a, b)); });
}

bool same_payload(const Payload &original, TupleTableSlot *row) {
    if (!same_text(original.key, column_value(row, kKey)) || !same_text(original.action, column_value(row, kAction)))
        return false;
    if (original.has_agent && !column_null(row, kAgentKey) && !same_text(original.agent, column_value(row, kAgentKey)))
        return false;
    return pg([&] {
        return DatumGetBool(DirectFunctionCall2(jsonb_eq, original.properties, column_value(row, kProperties)));
    });
}

// Copies a row's payload into the current memory context.
Payload payload_of(TupleTableSlot *row, int id_col, int key_col, int action_col, int agent_col, int properties_col) {
    Payload p;
    p.id = DatumGetInt64(column_value(row, id_col));
    pg([&] {
        p.key = PointerGetDatum(DatumGetTextPCopy(column_value(row, key_col)));
        p.action = PointerGetDatum(DatumGetTextPCopy(column_value(row, action_col)));
        p.has_agent = !column_null(row, agent_col);
        if (p.has_agent) p.agent = PointerGetDatum(DatumGetTextPCopy(column_value(row, agent_col)));
        p.properties = PointerGetDatum(PG_DETOAST_DATUM_COPY(column_value(row, properties_col)));
    });
    return p;
}

[[noreturn]] void conflict(TupleTableSlot *row, std::int64_t original) {
    const std::string customer(text_bytes(row, kCustomerKey)), key(text_bytes(row, kIdempotencyKey));
    throw witn::Error(witn::Code::IdempotencyConflict,
                      "IDEMPOTENCY_CONFLICT: idempotency_key was already used with a different payload",
                      "customer " + customer + ", idempotency_key " + key + ": event " + std::to_string(original) +
                          " differs",
                      "Send a retry with exactly the same key, action, agent_key and properties, or use a new idempotency_key.");
}

} // namespace

void IdempotencyLocks::add(std::string_view customer_key, std::string_view idempotency_key) {
    buckets_.set(lock_bucket(customer_key, idempotency_key));
}

void IdempotencyLocks::lock_all(std::int64_t shard) const {
    const std::uint32_t space = static_cast<std::uint32_t>(shard) << 8;
    for (std::size_t b = 0; b < kLockBuckets; ++b)
        if (buckets_.test(b))
            pg([&] {
                DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(kLockClass),
                                    Int32GetDatum(static_cast<std::int32_t>(space | b)));
            });
}

void resolve_idempotency(RowSort &by_key, RowSort &by_outcome) {
    by_key.sort();
    IndexReader earlier(witn_table("events"), {"customer_key", "idempotency_key"}, true);
    const int id_col = earlier.column("id"), dup_col = earlier.column("duplicate_of"), key_col = earlier.column("key"),
              action_col = earlier.column("action"), agent_col = earlier.column("agent_key"),
              properties_col = earlier.column("properties");
    ItemMemory per_key("witn idempotency key");
    TupleDesc desc = statement_row_desc();
    TupleTableSlot *row = pg([&] { return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple); });
    TupleTableSlot *first = pg([&] { return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple); });
    TupleTableSlot *out = pg([&] { return MakeSingleTupleTableSlot(desc, &TTSOpsVirtual); });
    std::vector<std::int64_t> ids; // this statement's rows with the key, ascending
    bool have = by_key.next(row);
    // The next row into `row` (`have` says whether there is one); whether it has the key.
    auto next_with_key = [&](std::string_view customer, std::string_view key) {
        have = by_key.next(row);
        return have && text_bytes(row, kCustomerKey) == customer && text_bytes(row, kIdempotencyKey) == key;
    };
    while (have) per_key.run([&] {
        pg([&] {
            ExecCopySlot(first, row);
            slot_getallattrs(first);
        });
        const std::string customer(text_bytes(first, kCustomerKey)), key(text_bytes(first, kIdempotencyKey));
        // The key's rows are walked twice: their ids first, so that looking up the original
        // does not take one of them; then each is decided.
        by_key.mark();
        ids.assign(1, DatumGetInt64(column_value(first, kId)));
        while (next_with_key(customer, key)) ids.push_back(DatumGetInt64(column_value(row, kId)));
        // The original is the earliest accepted event with the key outside this statement, or
        // else the statement's first row with it.
        std::optional<Payload> original;
        earlier.begin({text_datum(customer), text_datum(key)});
        while (TupleTableSlot *e = earlier.next()) {
            if (!column_null(e, dup_col)) continue;
            const std::int64_t id = DatumGetInt64(column_value(e, id_col));
            if (std::binary_search(ids.begin(), ids.end(), id) || (original && original->id < id)) continue;
            original = payload_of(e, id_col, key_col, action_col, agent_col, properties_col);
        }
        const bool in_log = original.has_value();
        if (!in_log) original = payload_of(first, kId, kKey, kAction, kAgentKey, kProperties);

        earlier.end_walk();
        by_key.restore();
        TupleTableSlot *r = first;
        for (;;) {
            const bool is_original = !in_log && r == first;
            if (!is_original && !same_payload(*original, r)) conflict(r, original->id);
            pg([&] {
                ExecClearTuple(out);
                for (int i = 0; i < desc->natts; ++i) {
                    out->tts_values[i] = r->tts_values[i];
                    out->tts_isnull[i] = r->tts_isnull[i];
                }
                put_column(out, kDuplicateOf, Int64GetDatum(original->id), is_original);
                ExecStoreVirtualTuple(out);
            });
            by_outcome.put(out);
            if (!next_with_key(customer, key)) break;
            r = row;
        }
    });
    per_key.finish();
    pg([&] {
        ExecDropSingleTupleTableSlot(row);
        ExecDropSingleTupleTableSlot(first);
        ExecDropSingleTupleTableSlot(out);
    });
    earlier.finish();
    by_key.end();
}

} // namespace witn::pg
