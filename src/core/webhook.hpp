// Webhook delivery (CONTRACT §21), the parts that are pure: the Standard Webhooks signature
// (HMAC-SHA256 over "id.timestamp.body" with a whsec_ secret, base64), the retry schedule
// ("5s,5min,30min,2h,5h,10h,10h") and what happens after an attempt. The delivery worker that
// uses them is not built yet (issue 13).
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

struct AttemptDecision {
    enum class Next { Delivered, Retry, Failed };
    Next next = Next::Failed;
    std::int64_t next_attempt_at = 0; // Retry
};
// After attempt number `attempt` (1 for the first) at `now`, which succeeded (a 2xx within the
// timeout) or not: delivered; or retried after the schedule's wait for that attempt; or, once
// every wait is used, failed.
AttemptDecision decide_after_attempt(int attempt, bool succeeded, const std::vector<std::int64_t> &schedule,
                                     std::int64_t now);

} // namespace witn
