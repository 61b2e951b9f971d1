// libFuzzer target: the pure parts of webhook delivery (CONTRACT §21) on any bytes. The input is
// split at '|' into a URL, an allowed-hosts list, a retry schedule, a secret and a body.
// Invariants: only witn::Error escapes; base64 decodes what it encodes; a host that
// webhook_url_host returns is lower-case, non-empty, and allowed by a list naming exactly it;
// every parsed wait is in (0, 7 days], jittered waits stay within +-10%; a retry is due after
// the attempt, the schedule's last attempt fails; a signature verifies with the same key and
// changes with the body.
#include "core/error.hpp"
#include "core/webhook.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace witn;

namespace {

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "webhook_fuzz: %s\n", what);
    std::abort();
}

std::string_view next(std::string_view &rest) {
    const std::size_t bar = rest.find('|');
    std::string_view field = rest.substr(0, bar);
    rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
    return field;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view rest(reinterpret_cast<const char *>(data), size);
    const std::string_view url = next(rest), hosts = next(rest), schedule = next(rest), secret = next(rest), body = rest;

    // base64 round trip, on the raw input.
    const std::string encoded = base64_encode(std::string_view(reinterpret_cast<const char *>(data), size));
    const std::optional<std::string> decoded = base64_decode(encoded);
    if (!decoded || *decoded != std::string_view(reinterpret_cast<const char *>(data), size)) fail("base64 round trip");
    (void)base64_decode(url);

    std::optional<std::string> host;
    try {
        host = webhook_url_host(url);
    } catch (const Error &) {
    }
    if (host) {
        if (host->empty()) fail("an empty host was accepted");
        for (char c : *host)
            if (c >= 'A' && c <= 'Z') fail("the host is not lower-cased");
        if (host->find(':') == std::string::npos && !host_allowed(*host, {*host})) fail("a host is not allowed by a list naming it");
    }
    try {
        const std::vector<std::string> allowed = parse_allowed_hosts(hosts);
        if (host) (void)host_allowed(*host, allowed);
        if (allowed.empty() && host && !host_allowed(*host, allowed)) fail("an empty list refused a host");
    } catch (const Error &) {
    }

    try {
        const std::vector<std::int64_t> waits = parse_retry_schedule(schedule);
        if (waits.empty()) fail("an empty schedule was accepted");
        constexpr std::int64_t kMax = 7LL * 24 * 3600 * 1000000;
        const double unit = size ? static_cast<double>(data[0]) / 256.0 : 0.5;
        for (std::size_t i = 0; i < waits.size(); ++i) {
            if (waits[i] <= 0 || waits[i] > kMax) fail("a wait out of range");
            const std::int64_t j = jittered_wait(waits[i], unit);
            if (j < waits[i] - waits[i] / 10 - 1 || j > waits[i] + waits[i] / 10 + 1) fail("jitter beyond 10%");
            const AttemptDecision d = decide_after_attempt(static_cast<int>(i) + 1, false, waits, 1000, unit);
            if (d.next != AttemptDecision::Next::Retry || d.next_attempt_at <= 1000) fail("a retry is not due after the attempt");
        }
        if (decide_after_attempt(static_cast<int>(waits.size()) + 1, false, waits, 0).next != AttemptDecision::Next::Failed)
            fail("the last attempt did not fail");
        if (decide_after_attempt(1, true, waits, 0).next != AttemptDecision::Next::Delivered) fail("a success was not delivered");
    } catch (const Error &) {
    }

    try {
        const std::string a = webhook_signature(secret, "msg_1", 1700000000, body);
        if (a != webhook_signature(secret, "msg_1", 1700000000, body)) fail("a signature is not deterministic");
        if (a.rfind("v1,", 0) != 0) fail("a signature without v1,");
        if (a == webhook_signature(secret, "msg_1", 1700000000, std::string(body) + "x")) fail("the body does not change the signature");
    } catch (const Error &) {
    }
    return 0;
}
