#include "webhook.hpp"

#include "error.hpp"

#include <cmath>
#include <cstring>

namespace witn {

namespace {

constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress(std::uint32_t h[8], const std::uint8_t block[64]) {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
        w[i] = std::uint32_t(block[4 * i]) << 24 | std::uint32_t(block[4 * i + 1]) << 16 |
               std::uint32_t(block[4 * i + 2]) << 8 | std::uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
        const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; ++i) {
        const std::uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
        const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

} // namespace

std::array<std::uint8_t, 32> sha256(std::string_view data) {
    std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const auto *p = reinterpret_cast<const std::uint8_t *>(data.data());
    std::size_t n = data.size();
    for (; n >= 64; n -= 64, p += 64) compress(h, p);
    std::uint8_t last[128] = {};
    std::memcpy(last, p, n);
    last[n] = 0x80;
    const std::size_t blocks = n + 9 <= 64 ? 1 : 2;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    for (int i = 0; i < 8; ++i) last[blocks * 64 - 1 - i] = static_cast<std::uint8_t>(bits >> (8 * i));
    for (std::size_t b = 0; b < blocks; ++b) compress(h, last + 64 * b);
    std::array<std::uint8_t, 32> out;
    for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<std::uint8_t>(h[i] >> (24 - 8 * j));
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    std::string k(key);
    if (k.size() > 64) {
        const auto d = sha256(k);
        k.assign(reinterpret_cast<const char *>(d.data()), d.size());
    }
    k.resize(64, '\0');
    std::string inner(64, '\0'), outer(64, '\0');
    for (int i = 0; i < 64; ++i) {
        inner[i] = static_cast<char>(k[i] ^ 0x36);
        outer[i] = static_cast<char>(k[i] ^ 0x5c);
    }
    inner.append(message);
    const auto ih = sha256(inner);
    outer.append(reinterpret_cast<const char *>(ih.data()), ih.size());
    const auto oh = sha256(outer);
    return std::string(reinterpret_cast<const char *>(oh.data()), oh.size());
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16 | std::uint32_t(std::uint8_t(bytes[i + 1])) << 8 |
                                std::uint8_t(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
    }
    if (const std::size_t rest = bytes.size() - i) {
        std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (rest == 2) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        if (pad == 1 && text[i + 2] == '=') return std::nullopt; // "x=y="
        std::uint32_t v = 0;
        for (int j = 0; j < 4; ++j) {
            int s = 0;
            if (j < 4 - pad) {
                s = sextet(text[i + j]);
                if (s < 0) return std::nullopt;
            }
            v = v << 6 | static_cast<std::uint32_t>(s);
        }
        // Canonical: the bits padding drops must be zero.
        if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) return std::nullopt;
        out += static_cast<char>(v >> 16);
        if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(v & 0xff);
    }
    return out;
}

std::string webhook_key(std::string_view secret) {
    constexpr std::string_view prefix = "whsec_";
    std::optional<std::string> key;
    if (secret.substr(0, prefix.size()) == prefix) key = base64_decode(secret.substr(prefix.size()));
    if (!key || key->size() < 24 || key->size() > 64)
        fail_validation("secret", "\"whsec_\" followed by the base64 of 24 to 64 random bytes",
                        "Make one with: echo \"whsec_$(openssl rand -base64 32)\".");
    return *key;
}

std::string webhook_signature(std::string_view secret, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
    const std::string key = webhook_key(secret);
    std::string message(id);
    message += '.';
    message += std::to_string(timestamp);
    message += '.';
    message.append(body);
    return "v1," + base64_encode(hmac_sha256(key, message));
}

std::vector<std::int64_t> parse_retry_schedule(std::string_view text) {
    constexpr std::int64_t kSecond = 1000000, kMaxWait = 7LL * 24 * 3600 * kSecond;
    std::vector<std::int64_t> waits;
    std::size_t start = 0;
    for (int item = 0;; ++item) {
        const std::size_t comma = text.find(',', start);
        std::string_view part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
        while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
        const std::string path = "[" + std::to_string(item) + "]";
        std::size_t digits = 0;
        while (digits < part.size() && part[digits] >= '0' && part[digits] <= '9') ++digits;
        const std::string_view unit = part.substr(digits);
        std::int64_t per = unit == "s" ? kSecond : unit == "min" ? 60 * kSecond : unit == "h" ? 3600 * kSecond
                         : unit == "d" ? 86400 * kSecond : 0;
        if (digits == 0 || digits > 7 || per == 0)
            fail_validation(path, "a whole number of s, min, h or d (e.g. 5min)",
                            "Write the waits between attempts, e.g. '5s,5min,30min,2h,5h,10h,10h'.");
        const std::int64_t wait = std::stoll(std::string(part.substr(0, digits))) * per;
        if (wait <= 0 || wait > kMaxWait) fail_validation(path, "more than 0 and at most 7 days");
        waits.push_back(wait);
        if (waits.size() > 50) fail_validation(path, "at most the 50th wait");
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return waits;
}

std::int64_t jittered_wait(std::int64_t wait, double unit) {
    if (!(unit >= 0.0)) unit = 0.0;
    if (unit >= 1.0) unit = std::nextafter(1.0, 0.0);
    // The offset from the middle, so that 0.5 gives the wait itself exactly.
    const double offset = (unit - 0.5) * 0.2 * static_cast<double>(wait);
    return wait + static_cast<std::int64_t>(std::llround(offset));
}

AttemptDecision decide_after_attempt(int attempt, bool succeeded, const std::vector<std::int64_t> &schedule,
                                     std::int64_t now, double jitter) {
    AttemptDecision d;
    if (succeeded) {
        d.next = AttemptDecision::Next::Delivered;
        return d;
    }
    if (attempt < 1 || static_cast<std::size_t>(attempt) > schedule.size()) return d; // Failed
    d.next = AttemptDecision::Next::Retry;
    d.next_attempt_at = now + jittered_wait(schedule[static_cast<std::size_t>(attempt) - 1], jitter);
    return d;
}

namespace {

constexpr std::string_view kKinds[] = {"outcome_succeed", "outcome_failed", "outcome_reversed", "outcome_credited"};

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

// A host name or an IPv4 address (letters, digits, '-', '.', '_'), or an IPv6 address (hex
// digits, ':', '.').
bool valid_host(std::string_view host, bool ipv6) {
    if (host.empty() || host.size() > 253) return false;
    for (char c : host) {
        if (ipv6 ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.') : !host_char(c))
            return false;
    }
    return ipv6 ? host.find(':') != std::string_view::npos : host.front() != '.' && host.front() != '-';
}

} // namespace

bool is_notification_kind(std::string_view kind) {
    for (std::string_view k : kKinds)
        if (k == kind) return true;
    return false;
}

bool endpoint_matches(const EndpointFilter &filter, std::string_view customer_key, std::string_view kind) {
    if (filter.customer_key && *filter.customer_key != customer_key) return false;
    if (!filter.event_types) return true;
    for (const std::string &t : *filter.event_types)
        if (t == kind) return true;
    return false;
}

void check_event_types(const std::vector<std::optional<std::string>> &types) {
    const std::string expected = "one of outcome_succeed, outcome_failed, outcome_reversed, outcome_credited";
    const std::string hint = "List the notification kinds to deliver, or leave event_types NULL for all of them.";
    if (types.empty()) fail_validation("event_types", "NULL (every kind) or at least one kind", hint);
    for (std::size_t i = 0; i < types.size(); ++i) {
        const std::string path = "event_types[" + std::to_string(i) + "]";
        if (!types[i] || !is_notification_kind(*types[i])) fail_validation(path, expected, hint);
        for (std::size_t j = 0; j < i; ++j)
            if (types[j] == types[i]) fail_validation(path, "a kind not listed before it", hint);
    }
}

std::string webhook_url_host(std::string_view url) {
    const std::string hint = "Give the receiver's address, e.g. https://billing.example.com/witn/webhooks.";
    if (url.size() > 2048) fail_validation("url", "at most 2048 characters", hint);
    for (unsigned char c : url)
        if (c <= ' ' || c == 0x7f) fail_validation("url", "a URL without spaces or control characters (percent-encode them)", hint);
    const std::string text = lower(url.substr(0, 8));
    std::size_t start;
    if (text.rfind("https://", 0) == 0) start = 8;
    else if (text.rfind("http://", 0) == 0) start = 7;
    else fail_validation("url", "an http:// or https:// URL", hint);
    std::string_view authority = url.substr(start);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    std::string host;
    std::string_view port;
    bool ipv6 = false;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) fail_validation("url", "an IPv6 address closed by ]", hint);
        host = lower(authority.substr(1, close - 1));
        ipv6 = true;
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') fail_validation("url", "a port after the address, as [::1]:8080", hint);
            port = rest.substr(1);
        }
    } else {
        const std::size_t colon = authority.find(':');
        host = lower(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (!valid_host(host, ipv6)) fail_validation("url", "a host name or address after the scheme", hint);
    const bool has_colon = ipv6 ? authority.find("]:") != std::string_view::npos : authority.find(':') != std::string_view::npos;
    if (has_colon) {
        if (port.empty()) fail_validation("url", "a port number after the colon", hint);
        long value = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || port.size() > 5) fail_validation("url", "a port from 1 to 65535", hint);
            value = value * 10 + (c - '0');
        }
        if (!port.empty() && (value < 1 || value > 65535)) fail_validation("url", "a port from 1 to 65535", hint);
    }
    return host;
}

std::vector<std::string> parse_allowed_hosts(std::string_view text) {
    std::vector<std::string> hosts;
    std::size_t start = 0;
    bool only_blank = true;
    for (char c : text)
        if (c != ' ') only_blank = false;
    if (only_blank) return hosts;
    for (int item = 0;; ++item) {
        const std::size_t comma = text.find(',', start);
        std::string_view part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
        while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
        std::string host = lower(part);
        std::string_view name = host;
        if (name.rfind("*.", 0) == 0) name.remove_prefix(2);
        const bool ipv6 = name.find(':') != std::string_view::npos;
        if (!valid_host(name, ipv6))
            fail_validation("[" + std::to_string(item) + "]", "a host name, an address or *.domain",
                            "List the hosts webhooks may go to, e.g. 'hooks.example.com,*.example.net,127.0.0.1'.");
        hosts.push_back(std::move(host));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return hosts;
}

bool host_allowed(std::string_view host, const std::vector<std::string> &allowed) {
    if (allowed.empty()) return true;
    const std::string h = lower(host);
    for (const std::string &a : allowed) {
        if (a == h) return true;
        if (a.rfind("*.", 0) == 0) {
            const std::string_view suffix = std::string_view(a).substr(1); // ".example.com"
            if (h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
        }
    }
    return false;
}

} // namespace witn
