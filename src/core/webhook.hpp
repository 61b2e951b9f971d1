// Webhook delivery (CONTRACT §21), the parts that are pure: the Standard Webhooks signature
// (HMAC-SHA256 over "id.timestamp.body" with a whsec_ secret, base64), the retry schedule
// ("5s,5min,30min,2h,5h,10h,10h"), what happens after an attempt, which endpoints a notification
// goes to, and which URLs and hosts an endpoint may have. The delivery worker
// (src/pg/webhook_worker.cpp) and the endpoint checks (src/pg/webhooks.cpp) use them.
#pragma once
#include "pure.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace witn {

std::array<std::uint8_t, 32> sha256(std::string_view data);
// The raw 32-byte MAC (RFC 2104 with SHA-256).
std::string hmac_sha256(std::string_view key, std::string_view message);

// RFC 4648 base64 with padding; decode rejects anything else (nullopt).
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// An endpoint secret: "whsec_" + base64 of 24 to 64 random bytes. Throws VALIDATION_ERROR.
std::string webhook_key(std::string_view secret);
// The webhook-signature header: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
std::string webhook_signature(std::string_view secret, std::string_view id, std::int64_t timestamp,
                              std::string_view body);

// The waits between attempts, in microseconds: "5s,5min,30min,2h,5h,10h,10h" (units s, min, h, d;
// 1 to 50 positive whole numbers, each at most 7 days). Throws VALIDATION_ERROR naming the item.
std::vector<std::int64_t> parse_retry_schedule(std::string_view text);

// The waits between attempts are spread by up to 10% either way, so that many deliveries that
// failed together do not all come back at the same moment: wait * (0.9 + 0.2 * unit), unit in
// [0, 1) (0.5 keeps the wait exact).
std::int64_t jittered_wait(std::int64_t wait, double unit);

struct AttemptDecision {
    enum class Next { Delivered, Retry, Failed };
    Next next = Next::Failed;
    std::int64_t next_attempt_at = 0; // Retry
};
// After attempt number `attempt` (1 for the first) at `now`, which succeeded (a 2xx within the
// timeout) or not: delivered; or retried after the schedule's wait for that attempt; or, once
// every wait is used, failed. `jitter` is the unit of jittered_wait.
AttemptDecision decide_after_attempt(int attempt, bool succeeded, const std::vector<std::int64_t> &schedule,
                                     std::int64_t now, double jitter = 0.5);

// The notification kinds (witn.notifications.kind), which an endpoint's event_types name.
bool is_notification_kind(std::string_view kind);
// An endpoint's filters: NULL (nullopt) matches every customer / every kind.
struct EndpointFilter {
    std::optional<std::string> customer_key;
    std::optional<std::vector<std::string>> event_types;
};
// Whether a notification of `kind` for `customer_key` goes to an endpoint with this filter.
bool endpoint_matches(const EndpointFilter &filter, std::string_view customer_key, std::string_view kind);
// An endpoint's event_types: NULL for all, else one or more distinct notification kinds.
// Throws VALIDATION_ERROR at "event_types[i]".
void check_event_types(const std::vector<std::optional<std::string>> &types);

// An endpoint's URL: http:// or https://, a host, an optional port, at most 2048 characters,
// no spaces or control characters. Returns the host, lower-cased (an IPv6 address without its
// brackets). Throws VALIDATION_ERROR at "url".
std::string webhook_url_host(std::string_view url);
// witn.webhook_allowed_hosts: a comma-separated list of host names or addresses, "*.example.com"
// for every name under example.com; empty allows every host. Lower-cased. Throws
// VALIDATION_ERROR naming the item.
std::vector<std::string> parse_allowed_hosts(std::string_view text);
bool host_allowed(std::string_view host, const std::vector<std::string> &allowed);

} // namespace witn
