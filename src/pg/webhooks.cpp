// Webhook endpoints' checks and secrets, and queueing deliveries with their notification
// (webhooks.hpp).
#include "pg/webhooks.hpp"

#include "core/webhook.hpp"
#include "pg/placement.hpp"
#include "pg/settings.hpp"
#include "pg/values.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include <optional>

namespace witn::pg {

namespace {

// An endpoint row as the C side of the fence reads it (palloc'd).
struct EndpointRow {
    std::int64_t id;
    char *customer; // nullptr: every customer
    bool has_types;
    int ntypes;
    char **types;
};

// The text items of a text[] (NULL items as nullptr), palloc'd; may raise a PostgreSQL error.
char **text_items(Datum array, int *n) {
    Datum *items;
    bool *nulls;
    deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, n);
    char **out = static_cast<char **>(palloc0(sizeof(char *) * (*n + 1)));
    for (int i = 0; i < *n; ++i)
        if (!nulls[i]) out[i] = text_to_cstring(DatumGetTextPP(items[i]));
    return out;
}

} // namespace

WebhookQueue::WebhookQueue() {
    const Oid relid = witn_table("webhook_endpoints");
    if (relid == InvalidOid) return; // an older schema (the library checks versions elsewhere)
    Relation rel = pg([&] { return table_open(relid, AccessShareLock); });
    TupleDesc desc = RelationGetDescr(rel);
    const int id_at = column_of(desc, "webhook_endpoints", "id"),
              customer_at = column_of(desc, "webhook_endpoints", "customer_key"),
              types_at = column_of(desc, "webhook_endpoints", "event_types");
    List *rows = pg([&] {
        List *found = NIL;
        Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
        TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
        HeapTuple tuple;
        while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
            bool isnull;
            EndpointRow *row = static_cast<EndpointRow *>(palloc0(sizeof(EndpointRow)));
            row->id = DatumGetInt64(heap_getattr(tuple, id_at, desc, &isnull));
            Datum customer = heap_getattr(tuple, customer_at, desc, &isnull);
            if (!isnull) row->customer = text_to_cstring(DatumGetTextPP(customer));
            Datum types = heap_getattr(tuple, types_at, desc, &isnull);
            row->has_types = !isnull;
            if (!isnull) row->types = text_items(types, &row->ntypes);
            found = lappend(found, row);
        }
        table_endscan(scan);
        UnregisterSnapshot(snapshot);
        table_close(rel, AccessShareLock);
        return found;
    });
    ListCell *cell;
    foreach (cell, rows) {
        const EndpointRow *r = static_cast<const EndpointRow *>(lfirst(cell));
        Endpoint e{r->id, {}};
        if (r->customer) e.filter.customer_key = std::string(r->customer);
        if (r->has_types) {
            std::vector<std::string> types;
            for (int i = 0; i < r->ntypes; ++i)
                if (r->types[i]) types.emplace_back(r->types[i]);
            e.filter.event_types = std::move(types);
        }
        endpoints_.push_back(std::move(e));
    }
    // Opened here, in the caller's memory context: queue() may run in a shorter-lived one (the
    // settlement of one outcome).
    if (!endpoints_.empty()) {
        deliveries_ = std::make_unique<TableWriter>(witn_table("webhook_deliveries"), false);
        customer_key_ = deliveries_->column("customer_key");
        notification_id_ = deliveries_->column("notification_id");
        endpoint_id_ = deliveries_->column("endpoint_id");
    }
}

WebhookQueue::~WebhookQueue() = default;

void WebhookQueue::queue(Datum customer_key, std::string_view kind, std::int64_t notification_id) {
    if (endpoints_.empty()) return;
    const std::string customer = from_text(pg([&] { return DatumGetTextPP(customer_key); }));
    for (const Endpoint &e : endpoints_) {
        if (!witn::endpoint_matches(e.filter, customer, kind)) continue;
        // status, attempts, next_attempt_at (now) and created_at are the table's defaults.
        TupleTableSlot *row = deliveries_->new_row();
        put_column(row, customer_key_, customer_key);
        put_column(row, notification_id_, Int64GetDatum(notification_id));
        put_column(row, endpoint_id_, Int64GetDatum(e.id));
        deliveries_->insert(row);
    }
}

void WebhookQueue::finish() {
    if (deliveries_) deliveries_->finish();
    deliveries_.reset();
}

} // namespace witn::pg

namespace {

// A string from a text argument, or nullopt for NULL.
std::optional<std::string> text_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n)) return std::nullopt;
    return witn::pg::from_text(PG_GETARG_TEXT_PP(n));
}

} // namespace

// witn.webhook_secret(): whsec_ and the base64 of 32 random bytes.
WITN_FUNCTION(witn_webhook_secret) {
    (void)fcinfo;
    unsigned char bytes[32];
    const bool ok = witn::pg::pg([&] { return pg_strong_random(bytes, sizeof bytes); });
    if (!ok) throw std::runtime_error("could not generate random bytes for a webhook secret");
    const std::string secret =
        "whsec_" + witn::base64_encode(std::string_view(reinterpret_cast<const char *>(bytes), sizeof bytes));
    PG_RETURN_TEXT_P(witn::pg::to_text(secret));
}

// witn.webhook_endpoint_check(url, secret, event_types): the core's checks, and the host
// against witn.webhook_allowed_hosts.
WITN_FUNCTION(witn_webhook_endpoint_check) {
    const std::optional<std::string> url = text_arg(fcinfo, 0), secret = text_arg(fcinfo, 1);
    if (!url) witn::fail_validation("url", "an http:// or https:// URL");
    const std::string host = witn::webhook_url_host(*url);
    const std::vector<std::string> allowed = witn::parse_allowed_hosts(witn::pg::webhook_allowed_hosts_text());
    if (!witn::host_allowed(host, allowed))
        throw witn::Error(witn::Code::ValidationError,
                          "VALIDATION_ERROR: url: host " + host + " is not in witn.webhook_allowed_hosts",
                          "witn.webhook_allowed_hosts = '" + witn::pg::webhook_allowed_hosts_text() + "'",
                          "Add the host to witn.webhook_allowed_hosts (postgresql.conf, then SELECT pg_reload_conf()), or use an allowed one.");
    if (!secret) witn::fail_validation("secret", "\"whsec_\" followed by the base64 of 24 to 64 random bytes");
    witn::webhook_key(*secret);
    if (!PG_ARGISNULL(2)) {
        int n = 0;
        const int ndim = witn::pg::pg([&] { return ARR_NDIM(PG_GETARG_ARRAYTYPE_P(2)); });
        if (ndim > 1) witn::fail_validation("event_types", "a one-dimensional array of kinds");
        char **items = witn::pg::pg([&] { return witn::pg::text_items(PG_GETARG_DATUM(2), &n); });
        std::vector<std::optional<std::string>> types;
        for (int i = 0; i < n; ++i) {
            if (items[i]) types.emplace_back(std::string(items[i]));
            else types.emplace_back(std::nullopt);
        }
        witn::check_event_types(types);
    }
    PG_RETURN_VOID();
}

// witn.webhook_wake(): the launcher starts this database's worker at commit.
WITN_FUNCTION(witn_webhook_wake) {
    (void)fcinfo;
    PG_RETURN_BOOL(witn::pg::request_webhook_worker());
}
