// Webhook delivery in the writing transaction (CONTRACT §21): a notification just written is
// queued in witn.webhook_deliveries for every endpoint whose filters take it (the core's
// endpoint_matches), enabled or not (a disabled endpoint's queue waits). The delivery worker
// (webhook_worker.cpp) sends them later, outside that transaction.
#pragma once
#include "core/webhook.hpp"
#include "pg/postgres.hpp"
#include "pg/table_writer.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace witn::pg {

class WebhookQueue {
public:
    // Reads the endpoints (witn.webhook_endpoints, or its copy on this Citus node) as of the
    // transaction's latest snapshot. With none, queue() does nothing and costs nothing.
    WebhookQueue();
    WebhookQueue(const WebhookQueue &) = delete;
    WebhookQueue &operator=(const WebhookQueue &) = delete;
    ~WebhookQueue();

    // Queues notification `notification_id` of `kind` for `customer_key` (a text Datum).
    void queue(Datum customer_key, std::string_view kind, std::int64_t notification_id);
    // Call when done, before the writers opened earlier finish. Construct it in the memory
    // context of the whole write (not of one row).
    void finish();

private:
    struct Endpoint {
        std::int64_t id;
        witn::EndpointFilter filter;
    };
    std::vector<Endpoint> endpoints_;
    std::unique_ptr<TableWriter> deliveries_;
    int customer_key_ = 0, notification_id_ = 0, endpoint_id_ = 0;
};

// The delivery launcher and workers (webhook_worker.cpp).
// Registers the launcher; from _PG_init while shared_preload_libraries load.
void register_webhook_launcher();
// Whether the launcher runs (witn was preloaded), and asks it to start this database's worker
// when the transaction commits.
bool request_webhook_worker();

} // namespace witn::pg
