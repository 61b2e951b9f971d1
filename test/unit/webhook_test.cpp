// The pure parts of webhook delivery (src/core/webhook.hpp): SHA-256 and HMAC-SHA256 against the
// published test vectors (FIPS 180-4 examples, RFC 4231), base64 (RFC 4648), the Standard
// Webhooks signature against the specification's own example, the retry schedule and its jitter,
// which endpoints a notification goes to, and which URLs and hosts an endpoint may have.
#include "core/error.hpp"
#include "core/webhook.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace witn;

namespace {

std::string hex(std::string_view bytes) {
    static const char *digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}
std::string hex(const std::array<std::uint8_t, 32> &d) { return hex(std::string_view(reinterpret_cast<const char *>(d.data()), d.size())); }
std::string unhex(std::string_view h) {
    std::string out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
    return out;
}
constexpr std::int64_t kS = 1000000;

// Where the VALIDATION_ERROR f throws points ("at url"), or what happened instead.
std::string refused_at(const std::function<void()> &f) {
    const witn::test::Thrown t = witn::test::thrown_by(f);
    if (!t.thrown) return "<no error>";
    if (t.code != Code::ValidationError) return std::string("<wrong code ") + code_name(t.code) + ">";
    return t.detail;
}

// The largest unit jittered_wait takes.
const double kAlmostOne = std::nextafter(1.0, 0.0);

} // namespace

TEST(Sha256, PublishedVectors) {
    EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(hex(sha256(std::string(1000000, 'a'))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EveryLengthAroundABlockBoundary) {
    // 55, 56, 63, 64 and 65 bytes take the padding into one block, two blocks, and past a block.
    EXPECT_EQ(hex(sha256(std::string(55, 'a'))), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    EXPECT_EQ(hex(sha256(std::string(56, 'a'))), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    EXPECT_EQ(hex(sha256(std::string(64, 'a'))), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(HmacSha256, Rfc4231) {
    // Test case 1: a 20-byte key.
    EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // Test case 2: a short key.
    EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Test case 6: a key longer than the block, hashed first.
    EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Base64, Rfc4648) {
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; ++i) {
        EXPECT_EQ(base64_encode(plain[i]), coded[i]);
        EXPECT_EQ(base64_decode(coded[i]), std::optional<std::string>(plain[i]));
    }
    EXPECT_EQ(base64_encode(unhex("fbff")), "+/8=");
}

TEST(Base64, DecodeRefusesWhatIsNotCanonical) {
    for (const char *bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Zm 9v", "Zm9v====", "Zg==Zg==", "Zm-v", "=Zm9"})
        EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

TEST(WebhookSignature, TheStandardWebhooksExample) {
    // The specification's example: its secret, message id, timestamp and body.
    EXPECT_EQ(webhook_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                R"({"test": 2432232314})"),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, EveryPartIsSigned) {
    const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const std::string base = webhook_signature(secret, "ntf_1", 1700000000, "{}");
    EXPECT_NE(webhook_signature(secret, "ntf_2", 1700000000, "{}"), base);
    EXPECT_NE(webhook_signature(secret, "ntf_1", 1700000001, "{}"), base);
    EXPECT_NE(webhook_signature(secret, "ntf_1", 1700000000, "{ }"), base);
    EXPECT_NE(webhook_signature("whsec_" + base64_encode(std::string(32, 'k')), "ntf_1", 1700000000, "{}"), base);
    EXPECT_EQ(webhook_signature(secret, "ntf_1", 1700000000, "{}"), base);
}

TEST(WebhookSignature, SecretsThatAreNotWhsecBase64AreRefused) {
    const std::vector<std::string> bads = {"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!",
                                           "whsec_" + base64_encode(std::string(23, 'k')),
                                           "whsec_" + base64_encode(std::string(65, 'k'))};
    for (const std::string &bad : bads) {
        try {
            webhook_key(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), Code::ValidationError);
            EXPECT_NE(std::string(e.what()).find("secret"), std::string::npos);
        }
    }
    EXPECT_EQ(webhook_key("whsec_" + base64_encode(std::string(24, 'k'))).size(), 24u);
    EXPECT_EQ(webhook_key("whsec_" + base64_encode(std::string(64, 'k'))).size(), 64u);
}

TEST(RetrySchedule, TheDefault) {
    EXPECT_EQ(parse_retry_schedule("5s,5min,30min,2h,5h,10h,10h"),
              (std::vector<std::int64_t>{5 * kS, 300 * kS, 1800 * kS, 7200 * kS, 18000 * kS, 36000 * kS, 36000 * kS}));
    EXPECT_EQ(parse_retry_schedule(" 1d , 7d"), (std::vector<std::int64_t>{86400 * kS, 7 * 86400 * kS}));
}

TEST(RetrySchedule, BadItemsAreNamed) {
    for (const char *bad : {"", "5", "5m", "s", "-5s", "0s", "5s,", ",5s", "5 s", "8d", "1.5h", "99999999s"}) {
        try {
            parse_retry_schedule(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), Code::ValidationError) << bad;
            EXPECT_NE(std::string(e.what()).find("["), std::string::npos) << bad;
        }
    }
    std::string fifty_one;
    for (int i = 0; i < 51; ++i) fifty_one += (i ? ",1s" : "1s");
    EXPECT_THROW(parse_retry_schedule(fifty_one), Error);
    EXPECT_EQ(parse_retry_schedule(fifty_one.substr(3)).size(), 50u);
}

TEST(RetrySchedule, AfterAnAttempt) {
    const auto schedule = parse_retry_schedule("5s,5min");
    EXPECT_EQ(decide_after_attempt(1, true, schedule, 100).next, AttemptDecision::Next::Delivered);
    AttemptDecision d = decide_after_attempt(1, false, schedule, 100);
    EXPECT_EQ(d.next, AttemptDecision::Next::Retry);
    EXPECT_EQ(d.next_attempt_at, 100 + 5 * kS);
    d = decide_after_attempt(2, false, schedule, 200);
    EXPECT_EQ(d.next, AttemptDecision::Next::Retry);
    EXPECT_EQ(d.next_attempt_at, 200 + 300 * kS);
    // The first attempt and one per wait: the third failure is final.
    EXPECT_EQ(decide_after_attempt(3, false, schedule, 300).next, AttemptDecision::Next::Failed);
    EXPECT_EQ(decide_after_attempt(3, true, schedule, 300).next, AttemptDecision::Next::Delivered);
}

// ---- the jitter of the waits between attempts ----------------------------------------------------

TEST(JitteredWait, TheMiddleKeepsTheWaitExactly) {
    for (std::int64_t wait : {std::int64_t{1}, std::int64_t{7}, 5 * kS, 36000 * kS, 7 * 86400 * kS})
        EXPECT_EQ(jittered_wait(wait, 0.5), wait) << wait;
}

TEST(JitteredWait, TenPercentEitherWay) {
    EXPECT_EQ(jittered_wait(1000 * kS, 0.0), 900 * kS);
    EXPECT_EQ(jittered_wait(1000 * kS, 0.25), 950 * kS);
    EXPECT_EQ(jittered_wait(1000 * kS, 0.75), 1050 * kS);
    EXPECT_NEAR(static_cast<double>(jittered_wait(1000 * kS, kAlmostOne)), 1100.0 * kS, 1.0);
    EXPECT_EQ(jittered_wait(5 * kS, 0.0), 4500000);
    EXPECT_NEAR(static_cast<double>(jittered_wait(5 * kS, kAlmostOne)), 5500000.0, 1.0);
}

TEST(JitteredWait, GrowsWithTheUnitAndStaysWithinTenPercent) {
    const std::int64_t wait = 7200 * kS;
    std::int64_t previous = 0;
    for (int i = 0; i <= 1000; ++i) {
        const std::int64_t w = jittered_wait(wait, i == 1000 ? kAlmostOne : i / 1000.0);
        EXPECT_GE(w, previous) << i;
        EXPECT_GE(w, wait * 9 / 10) << i;
        EXPECT_LE(w, wait * 11 / 10) << i;
        previous = w;
    }
}

TEST(JitteredWait, UnitsOutOfRangeAreClamped) {
    const std::int64_t wait = 1000 * kS, low = jittered_wait(wait, 0.0), high = jittered_wait(wait, kAlmostOne);
    EXPECT_EQ(jittered_wait(wait, -0.5), low);
    EXPECT_EQ(jittered_wait(wait, -std::numeric_limits<double>::infinity()), low);
    EXPECT_EQ(jittered_wait(wait, std::numeric_limits<double>::quiet_NaN()), low);
    EXPECT_EQ(jittered_wait(wait, 1.0), high);
    EXPECT_EQ(jittered_wait(wait, 2.0), high);
    EXPECT_EQ(jittered_wait(wait, std::numeric_limits<double>::infinity()), high);
}

TEST(RetrySchedule, JitterSpreadsEveryRetryWithinItsBounds) {
    const auto schedule = parse_retry_schedule("5s,5min,30min,2h,5h,10h,10h");
    const std::int64_t now = 1700000000 * kS;
    for (int attempt = 1; attempt <= 7; ++attempt) {
        const std::int64_t wait = schedule[static_cast<std::size_t>(attempt) - 1];
        for (double jitter : {0.0, 0.1, 0.5, 0.9, kAlmostOne, -3.0, 7.0}) {
            const AttemptDecision d = decide_after_attempt(attempt, false, schedule, now, jitter);
            EXPECT_EQ(d.next, AttemptDecision::Next::Retry) << attempt << " " << jitter;
            EXPECT_GE(d.next_attempt_at, now + wait * 9 / 10) << attempt << " " << jitter;
            EXPECT_LE(d.next_attempt_at, now + wait * 11 / 10) << attempt << " " << jitter;
            EXPECT_EQ(d.next_attempt_at, now + jittered_wait(wait, jitter)) << attempt << " " << jitter;
        }
        EXPECT_EQ(decide_after_attempt(attempt, false, schedule, now, 0.5).next_attempt_at, now + wait) << attempt;
    }
}

TEST(RetrySchedule, JitterNeverTurnsASuccessOrTheLastFailureIntoARetry) {
    const auto schedule = parse_retry_schedule("5s,5min");
    for (double jitter : {0.0, 0.5, kAlmostOne}) {
        EXPECT_EQ(decide_after_attempt(1, true, schedule, 0, jitter).next, AttemptDecision::Next::Delivered);
        EXPECT_EQ(decide_after_attempt(3, false, schedule, 0, jitter).next, AttemptDecision::Next::Failed);
        EXPECT_EQ(decide_after_attempt(0, false, schedule, 0, jitter).next, AttemptDecision::Next::Failed);
        EXPECT_EQ(decide_after_attempt(1, false, {}, 0, jitter).next, AttemptDecision::Next::Failed);
    }
}

// ---- which endpoints a notification goes to -------------------------------------------------------

TEST(NotificationKinds, TheFourKindsOfWitnNotifications) {
    for (const char *kind : {"outcome_succeed", "outcome_failed", "outcome_reversed", "outcome_credited"})
        EXPECT_TRUE(is_notification_kind(kind)) << kind;
    for (const char *other : {"", "outcome", "OUTCOME_SUCCEED", "outcome_succeed ", " outcome_failed", "outcome_succeeded",
                              "outcome_confirmed", "outcome_credit"})
        EXPECT_FALSE(is_notification_kind(other)) << other;
}

TEST(EndpointMatches, NullFiltersTakeEveryNotification) {
    const EndpointFilter all;
    for (const char *kind : {"outcome_succeed", "outcome_failed", "outcome_reversed", "outcome_credited"}) {
        EXPECT_TRUE(endpoint_matches(all, "acme", kind)) << kind;
        EXPECT_TRUE(endpoint_matches(all, "globex", kind)) << kind;
    }
}

TEST(EndpointMatches, ACustomerFilterTakesThatCustomerOnly) {
    EndpointFilter acme;
    acme.customer_key = "acme";
    EXPECT_TRUE(endpoint_matches(acme, "acme", "outcome_succeed"));
    EXPECT_TRUE(endpoint_matches(acme, "acme", "outcome_credited"));
    EXPECT_FALSE(endpoint_matches(acme, "globex", "outcome_succeed"));
    EXPECT_FALSE(endpoint_matches(acme, "ACME", "outcome_succeed")); // keys are compared exactly
    EXPECT_FALSE(endpoint_matches(acme, "acme ", "outcome_succeed"));
    EXPECT_FALSE(endpoint_matches(acme, "", "outcome_succeed"));
}

TEST(EndpointMatches, EventTypesTakeTheKindsListed) {
    EndpointFilter corrections;
    corrections.event_types = std::vector<std::string>{"outcome_reversed", "outcome_credited"};
    EXPECT_TRUE(endpoint_matches(corrections, "acme", "outcome_reversed"));
    EXPECT_TRUE(endpoint_matches(corrections, "globex", "outcome_credited"));
    EXPECT_FALSE(endpoint_matches(corrections, "acme", "outcome_succeed"));
    EXPECT_FALSE(endpoint_matches(corrections, "acme", "outcome_failed"));
    // An empty list (which check_event_types refuses for a stored endpoint) takes nothing.
    EndpointFilter none;
    none.event_types = std::vector<std::string>{};
    EXPECT_FALSE(endpoint_matches(none, "acme", "outcome_succeed"));
}

TEST(EndpointMatches, BothFiltersMustTakeIt) {
    EndpointFilter acme_failures;
    acme_failures.customer_key = "acme";
    acme_failures.event_types = std::vector<std::string>{"outcome_failed"};
    EXPECT_TRUE(endpoint_matches(acme_failures, "acme", "outcome_failed"));
    EXPECT_FALSE(endpoint_matches(acme_failures, "acme", "outcome_succeed"));
    EXPECT_FALSE(endpoint_matches(acme_failures, "globex", "outcome_failed"));
}

// ---- an endpoint's event_types -------------------------------------------------------------------

TEST(EventTypes, OneOrMoreDistinctKinds) {
    using Types = std::vector<std::optional<std::string>>;
    EXPECT_NO_THROW(check_event_types(Types{"outcome_succeed"}));
    EXPECT_NO_THROW(check_event_types(Types{"outcome_credited", "outcome_reversed", "outcome_failed", "outcome_succeed"}));
}

TEST(EventTypes, RefusalsNameTheItem) {
    using Types = std::vector<std::optional<std::string>>;
    EXPECT_EQ(refused_at([] { check_event_types(Types{}); }), "at event_types");
    EXPECT_EQ(witn::test::validation_message([] { check_event_types(Types{}); }),
              "VALIDATION_ERROR: event_types must be NULL (every kind) or at least one kind");
    EXPECT_EQ(refused_at([] { check_event_types(Types{"outcome_failed", std::nullopt}); }), "at event_types[1]");
    EXPECT_EQ(refused_at([] { check_event_types(Types{std::nullopt}); }), "at event_types[0]");
    EXPECT_EQ(refused_at([] { check_event_types(Types{"outcome_bogus"}); }), "at event_types[0]");
    EXPECT_EQ(refused_at([] { check_event_types(Types{"outcome_failed", "OUTCOME_SUCCEED"}); }), "at event_types[1]");
    EXPECT_EQ(refused_at([] { check_event_types(Types{"outcome_failed", ""}); }), "at event_types[1]");
    EXPECT_EQ(witn::test::validation_message([] { check_event_types(Types{"outcome_bogus"}); }),
              "VALIDATION_ERROR: event_types[0] must be one of outcome_succeed, outcome_failed, outcome_reversed, outcome_credited");
    EXPECT_EQ(refused_at([] { check_event_types(Types{"outcome_failed", "outcome_succeed", "outcome_failed"}); }),
              "at event_types[2]");
    EXPECT_EQ(witn::test::validation_message([] { check_event_types(Types{"outcome_failed", "outcome_failed"}); }),
              "VALIDATION_ERROR: event_types[1] must be a kind not listed before it");
    EXPECT_FALSE(witn::test::thrown_by([] { check_event_types(Types{}); }).hint.empty());
}

// ---- an endpoint's URL ---------------------------------------------------------------------------

TEST(WebhookUrl, HttpAndHttpsWithTheHostLowerCased) {
    EXPECT_EQ(webhook_url_host("https://hooks.example.com/witn"), "hooks.example.com");
    EXPECT_EQ(webhook_url_host("http://hooks.example.com"), "hooks.example.com");
    EXPECT_EQ(webhook_url_host("HTTPS://Hooks.Example.COM/Witn/Webhooks"), "hooks.example.com");
    EXPECT_EQ(webhook_url_host("HtTp://EXAMPLE.com/"), "example.com");
    EXPECT_EQ(webhook_url_host("https://example.com?x=1"), "example.com");
    EXPECT_EQ(webhook_url_host("https://example.com#part"), "example.com");
    EXPECT_EQ(webhook_url_host("https://my_host.internal/x"), "my_host.internal");
    EXPECT_EQ(webhook_url_host("http://127.0.0.1/hook"), "127.0.0.1");
}

TEST(WebhookUrl, Ports) {
    EXPECT_EQ(webhook_url_host("https://example.com:8443/hook"), "example.com");
    EXPECT_EQ(webhook_url_host("http://localhost:1"), "localhost");
    EXPECT_EQ(webhook_url_host("http://localhost:65535/"), "localhost");
    EXPECT_EQ(webhook_url_host("http://127.0.0.1:9000/x"), "127.0.0.1");
}

TEST(WebhookUrl, Ipv6AddressesWithoutTheirBrackets) {
    EXPECT_EQ(webhook_url_host("http://[::1]:8080/hook"), "::1");
    EXPECT_EQ(webhook_url_host("http://[::1]/hook"), "::1");
    EXPECT_EQ(webhook_url_host("https://[2001:DB8::A1]/"), "2001:db8::a1");
    EXPECT_EQ(webhook_url_host("https://[::ffff:192.0.2.1]:443"), "::ffff:192.0.2.1");
}

TEST(WebhookUrl, UserinfoIsNotTheHost) {
    EXPECT_EQ(webhook_url_host("https://user:secret@hooks.example.com/x"), "hooks.example.com");
    EXPECT_EQ(webhook_url_host("https://user@Hooks.Example.com:8443/x"), "hooks.example.com");
    // The host is what follows the last @ of the authority; an @ in the path is not userinfo.
    EXPECT_EQ(webhook_url_host("https://allowed.example.com@evil.example.net/"), "evil.example.net");
    EXPECT_EQ(webhook_url_host("https://hooks.example.com/path@elsewhere"), "hooks.example.com");
    EXPECT_EQ(refused_at([] { webhook_url_host("https://user@/x"); }), "at url");
}

TEST(WebhookUrl, OtherSchemesAreRefused) {
    for (const char *bad : {"ftp://example.com/", "javascript:alert(1)", "example.com/hook", "//example.com/hook",
                            "https:/example.com", "https:example.com", "file:///etc/passwd", "httpx://example.com",
                            "mailto:ops@example.com", ""})
        EXPECT_EQ(refused_at([&] { webhook_url_host(bad); }), "at url") << bad;
    EXPECT_EQ(witn::test::validation_message([] { webhook_url_host("ftp://example.com/"); }),
              "VALIDATION_ERROR: url must be an http:// or https:// URL");
    EXPECT_FALSE(witn::test::thrown_by([] { webhook_url_host("ftp://example.com/"); }).hint.empty());
}

TEST(WebhookUrl, AHostIsNeeded) {
    for (const char *bad : {"https://", "http://", "https:///path", "https://:8080/", "https://?x", "https://#x",
                            "http://[]/", "http://[::1/", "http://[::1]x/", "http://[g::1]/", "http://[127.0.0.1]/",
                            "https://-bad.example.com/", "https://.example.com/", "https://exa%6dple.com/",
                            "https://exa*mple.com/"})
        EXPECT_EQ(refused_at([&] { webhook_url_host(bad); }), "at url") << bad;
}

TEST(WebhookUrl, NoSpacesOrControlCharacters) {
    for (const char *bad : {"https://exa mple.com/", "https://example.com/a b", " https://example.com/",
                            "https://example.com/ ", "https://example.com/\t", "https://example.com/\n",
                            "https://example.com/\r\nX-Injected: 1", "https://example.com/\x7f",
                            "https://example.com/\x01"})
        EXPECT_EQ(refused_at([&] { webhook_url_host(bad); }), "at url") << bad;
    EXPECT_EQ(refused_at([] { webhook_url_host(std::string("https://example.com/\0x", 22)); }), "at url");
    EXPECT_EQ(witn::test::validation_message([] { webhook_url_host("https://example.com/a b"); }),
              "VALIDATION_ERROR: url must be a URL without spaces or control characters (percent-encode them)");
}

TEST(WebhookUrl, PortsFrom1To65535) {
    for (const char *bad : {"https://example.com:0/", "https://example.com:70000/", "https://example.com:65536/",
                            "https://example.com:123456/", "https://example.com:80a/", "https://example.com:-1/",
                            "https://example.com:/", "https://example.com:", "https://example.com:8080:9090/",
                            "http://[::1]:0/", "http://[::1]:99999/", "http://[::1]:http/"})
        EXPECT_EQ(refused_at([&] { webhook_url_host(bad); }), "at url") << bad;
    EXPECT_THROW(webhook_url_host("https://[::1]:/h"), witn::Error); // an empty port, as for a name
}

TEST(WebhookUrl, AtMost2048Characters) {
    const std::string prefix = "https://example.com/";
    const std::string longest = prefix + std::string(2048 - prefix.size(), 'a');
    EXPECT_EQ(webhook_url_host(longest), "example.com");
    EXPECT_EQ(refused_at([&] { webhook_url_host(longest + "a"); }), "at url");
    EXPECT_EQ(witn::test::validation_message([&] { webhook_url_host(longest + "a"); }),
              "VALIDATION_ERROR: url must be at most 2048 characters");
}

// ---- witn.webhook_allowed_hosts -----------------------------------------------------------------

TEST(AllowedHosts, EmptyAllowsEveryHost) {
    EXPECT_TRUE(parse_allowed_hosts("").empty());
    EXPECT_TRUE(parse_allowed_hosts("   ").empty());
    for (const char *host : {"hooks.example.com", "127.0.0.1", "::1", "localhost"})
        EXPECT_TRUE(host_allowed(host, parse_allowed_hosts(""))) << host;
}

TEST(AllowedHosts, ItemsAreTrimmedAndLowerCased) {
    EXPECT_EQ(parse_allowed_hosts(" Hooks.Example.com , *.Example.NET,127.0.0.1, ::1"),
              (std::vector<std::string>{"hooks.example.com", "*.example.net", "127.0.0.1", "::1"}));
    EXPECT_EQ(parse_allowed_hosts("localhost"), (std::vector<std::string>{"localhost"}));
}

TEST(AllowedHosts, NamesAndAddressesMatchExactlyAndCaseInsensitively) {
    const auto allowed = parse_allowed_hosts("hooks.example.com,127.0.0.1,::1");
    EXPECT_TRUE(host_allowed("hooks.example.com", allowed));
    EXPECT_TRUE(host_allowed("HOOKS.Example.com", allowed));
    EXPECT_TRUE(host_allowed("127.0.0.1", allowed));
    EXPECT_TRUE(host_allowed("::1", allowed));
    EXPECT_FALSE(host_allowed("a.hooks.example.com", allowed));
    EXPECT_FALSE(host_allowed("example.com", allowed));
    EXPECT_FALSE(host_allowed("hooks.example.com.evil.net", allowed));
    EXPECT_FALSE(host_allowed("127.0.0.2", allowed));
    EXPECT_FALSE(host_allowed("", allowed));
}

TEST(AllowedHosts, AWildcardTakesEveryNameUnderTheDomainButNotTheDomain) {
    const auto allowed = parse_allowed_hosts("*.example.com");
    EXPECT_TRUE(host_allowed("a.example.com", allowed));
    EXPECT_TRUE(host_allowed("a.b.example.com", allowed));
    EXPECT_TRUE(host_allowed("A.Example.COM", allowed));
    EXPECT_FALSE(host_allowed("example.com", allowed));
    EXPECT_FALSE(host_allowed("badexample.com", allowed));
    EXPECT_FALSE(host_allowed("a.example.com.evil.net", allowed));
    EXPECT_FALSE(host_allowed("example.net", allowed));
    // Mixed case in the setting too.
    EXPECT_TRUE(host_allowed("hooks.example.org", parse_allowed_hosts("*.EXAMPLE.org")));
}

TEST(AllowedHosts, TheHostOfAUrlIsCheckedAsItIsWritten) {
    const auto allowed = parse_allowed_hosts("*.example.com,::1");
    EXPECT_TRUE(host_allowed(webhook_url_host("https://Hooks.EXAMPLE.com/x"), allowed));
    EXPECT_TRUE(host_allowed(webhook_url_host("http://[::1]:8080/"), allowed));
    EXPECT_FALSE(host_allowed(webhook_url_host("https://hooks.example.com@evil.net/"), allowed));
}

TEST(AllowedHosts, InvalidItemsAreNamed) {
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("a.example.com,,b.example.com"); }), "at [1]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("a.example.com,"); }), "at [1]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts(",a.example.com"); }), "at [0]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("*"); }), "at [0]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("*."); }), "at [0]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("ok.example.com,bad host"); }), "at [1]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("ok.example.com,x.example.com,https://hooks.example.com"); }), "at [2]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("ok.example.com,*.-bad.example.com"); }), "at [1]");
    EXPECT_EQ(refused_at([] { parse_allowed_hosts("hooks.example.com:8080"); }), "at [0]");
    EXPECT_EQ(witn::test::validation_message([] { parse_allowed_hosts("a.example.com,*"); }),
              "VALIDATION_ERROR: [1] must be a host name, an address or *.domain");
    EXPECT_FALSE(witn::test::thrown_by([] { parse_allowed_hosts("*"); }).hint.empty());
}
