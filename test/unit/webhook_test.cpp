// The pure parts of webhook delivery (src/core/webhook.hpp): SHA-256 and HMAC-SHA256 against the
// published test vectors (FIPS 180-4 examples, RFC 4231), base64 (RFC 4648), the Standard
// Webhooks signature against the specification's own example, the retry schedule.
#include "core/error.hpp"
#include "core/webhook.hpp"

#include <gtest/gtest.h>

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
