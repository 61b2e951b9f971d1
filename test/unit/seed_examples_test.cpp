// The product's seed examples, each end to end through the core: parse, describe, events through
// the state machine, settlement and the billed quantity.
#include "test_util.hpp"

using namespace witn;
using namespace witn::test;

namespace {

constexpr std::int64_t kPeriod = 72 * kHour;
constexpr std::int64_t kT0 = 1000 * kHour;

struct Scenario {
    Contract contract;
    OutcomeState state;
    std::int64_t seq = 0;

    explicit Scenario(std::string_view condition, AttributionMethod method = AttributionMethod::Last) {
        contract.condition = parse_condition(condition);
        contract.settlement_period = kPeriod;
        contract.attribution_method = method;
        state = OutcomeState::open(contract);
    }

    Applied send(std::string action, Scalar value = absent(), std::optional<Decimal> attribution = std::nullopt,
                 std::int64_t occurred_at = -1) {
        std::int64_t when = occurred_at < 0 ? kT0 + seq * kHour : occurred_at;
        ++seq;
        Event e = ev(std::move(action), std::move(value), when, seq);
        e.attribution = attribution;
        validate_event(e);
        return apply_event(state, contract, e, e.occurred_at);
    }

    std::optional<Status> settle_now() const { return settle(state, state.settles_at); }
    std::string quantity() const { return state.attribution.quantity(contract.attribution_method).to_string(); }
};

} // namespace

TEST(SeedExamples, SingleEvent) {
    Scenario r(R"([{"fact":"downloaded","operator":"seen"}])");
    EXPECT_EQ(describe(r.contract.condition), "downloaded is seen");
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("downloaded");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.state.scheduled_resolution, Status::Confirmed);
    EXPECT_EQ(r.state.settles_at, kT0 + kPeriod);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    EXPECT_EQ(r.quantity(), "1");
    // An unrelated event alone never qualifies.
    Scenario other(R"([{"fact":"downloaded","operator":"seen"}])");
    other.send("viewed");
    EXPECT_EQ(other.settle_now(), Status::Failed);
}

TEST(SeedExamples, BothPartiesSign) {
    const char *cond = R"([{"fact":"signed_by_buyer","operator":"seen"},{"fact":"signed_by_seller","operator":"seen"}])";
    Scenario r(cond);
    EXPECT_EQ(describe(r.contract.condition), "signed_by_buyer is seen AND signed_by_seller is seen");
    r.send("signed_by_buyer");
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("signed_by_seller");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    Scenario half(cond);
    half.send("signed_by_seller");
    EXPECT_EQ(half.settle_now(), Status::Failed);
}

TEST(SeedExamples, SignedButNotRevoked) {
    const char *cond = R"([{"fact":"signed","operator":"seen"},{"fact":"revoked","operator":"not seen"}])";
    Scenario r(cond);
    EXPECT_EQ(describe(r.contract.condition), "signed is seen AND revoked is not seen");
    r.send("signed");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    Scenario revoked(cond);
    revoked.send("signed");
    revoked.send("revoked");
    EXPECT_EQ(revoked.state.status, Status::Pending);
    EXPECT_EQ(revoked.state.scheduled_resolution, Status::Failed);
    EXPECT_EQ(revoked.settle_now(), Status::Failed);
    Scenario revoked_first(cond);
    revoked_first.send("revoked");
    revoked_first.send("signed");
    EXPECT_EQ(revoked_first.state.status, Status::Open);
    EXPECT_EQ(revoked_first.settle_now(), Status::Failed);
}

TEST(SeedExamples, MinimumScoreThreshold) {
    Scenario r(R"([{"fact":"csat","operator":"gte","value":4}])");
    EXPECT_EQ(describe(r.contract.condition), "csat is at least 4");
    r.send("csat", num("4.8"), D("0.8"));
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    EXPECT_EQ(r.quantity(), "0.8");

    Scenario rating(R"([{"fact":"rating","operator":"gte","value":4}])");
    rating.send("rating", num("4.8"));
    EXPECT_EQ(rating.settle_now(), Status::Confirmed);

    Scenario at(R"([{"fact":"csat","operator":"gte","value":4}])");
    at.send("csat", num("4"));
    EXPECT_EQ(at.settle_now(), Status::Confirmed);
    Scenario below(R"([{"fact":"csat","operator":"gte","value":4}])");
    below.send("csat", num("3.99999999999999999999"));
    EXPECT_EQ(below.settle_now(), Status::Failed);
    Scenario text(R"([{"fact":"csat","operator":"gte","value":4}])");
    text.send("csat", str("4.8"));
    EXPECT_EQ(text.settle_now(), Status::Failed);
}

TEST(SeedExamples, ValueMatch) {
    const char *cond = R"([{"fact":"inspection","operator":"match","value":"pass"}])";
    Scenario r(cond);
    EXPECT_EQ(describe(r.contract.condition), "inspection is equal to \"pass\"");
    r.send("inspection", str("pass"));
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    Scenario fail(cond);
    fail.send("inspection", str("fail"));
    EXPECT_EQ(fail.settle_now(), Status::Failed);
    Scenario flip(cond);
    flip.send("inspection", str("pass"));
    flip.send("inspection", str("fail"));
    EXPECT_EQ(flip.settle_now(), Status::Failed);
}

TEST(SeedExamples, MultiStepVerification) {
    const char *cond = R"([{"fact":"identity_check","operator":"match","value":"verified"},)"
                       R"({"fact":"credit_score","operator":"gte","value":700},)"
                       R"({"fact":"document_signed","operator":"seen"}])";
    Scenario r(cond);
    EXPECT_EQ(describe(r.contract.condition),
              "identity_check is equal to \"verified\" AND credit_score is at least 700 AND document_signed is seen");
    r.send("identity_check", str("verified"));
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("credit_score", num("700"));
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("document_signed");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);

    Scenario low(cond);
    low.send("identity_check", str("verified"));
    low.send("credit_score", num("699.99999999999999999999"));
    low.send("document_signed");
    EXPECT_EQ(low.state.status, Status::Open);
    EXPECT_EQ(low.settle_now(), Status::Failed);
}

TEST(SeedExamples, SeenAtLeastNTimes) {
    Scenario r(R"([{"fact":"warning","operator":"count_gte","value":3}])");
    EXPECT_EQ(describe(r.contract.condition), "warning is seen at least 3 times");
    r.send("warning");
    r.send("warning");
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("warning");
    EXPECT_EQ(r.state.status, Status::Pending);
    r.send("warning");
    EXPECT_EQ(r.state.scheduled_resolution, Status::Confirmed);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
}

TEST(SeedExamples, NegativeSignals) {
    const char *cond = R"([{"fact":"agent_replied","operator":"seen"},{"fact":"escalated","operator":"not seen"},)"
                       R"({"fact":"reopened","operator":"not seen"},{"fact":"csat","operator":"not lte","value":3}])";
    Scenario r(cond);
    EXPECT_EQ(describe(r.contract.condition),
              "agent_replied is seen AND escalated is not seen AND reopened is not seen AND "
              "csat is missing or has value above 3");
    // The customer disappears and no CSAT is submitted: csat not lte 3 stays true.
    r.send("agent_replied");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);

    Scenario happy(cond);
    happy.send("agent_replied");
    happy.send("csat", num("5"));
    EXPECT_EQ(happy.settle_now(), Status::Confirmed);

    Scenario unhappy(cond);
    unhappy.send("agent_replied");
    unhappy.send("csat", num("3"));
    EXPECT_EQ(unhappy.state.scheduled_resolution, Status::Failed);
    EXPECT_EQ(unhappy.settle_now(), Status::Failed);

    Scenario no_score(cond); // a CSAT event without a value is present but unusable
    no_score.send("agent_replied");
    no_score.send("csat");
    EXPECT_EQ(no_score.settle_now(), Status::Failed);

    Scenario escalated(cond);
    escalated.send("agent_replied");
    escalated.send("escalated");
    EXPECT_EQ(escalated.settle_now(), Status::Failed);

    Scenario reopened(cond);
    reopened.send("agent_replied");
    reopened.send("csat", num("5"));
    reopened.send("reopened");
    EXPECT_EQ(reopened.settle_now(), Status::Failed);
}

TEST(SeedExamples, PerUnitMeteredUsage) {
    Scenario r(R"([{"fact":"api_call","operator":"seen"}])");
    r.send("api_call", absent(), D("1.2"));
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
    EXPECT_EQ(r.quantity(), "1.2"); // price 10 × 1.2 = 12 is computed in SQL
    EXPECT_EQ(r.state.attribution.quantity(AttributionMethod::Last), D("1.2"));
}

TEST(SeedExamples, EmptyConditionIsVacuouslyTrue) {
    Scenario r("[]");
    EXPECT_EQ(describe(r.contract.condition), "always (no leaves)");
    EXPECT_EQ(r.state.status, Status::Open);
    r.send("anything");
    EXPECT_EQ(r.state.status, Status::Pending);
    EXPECT_EQ(r.state.scheduled_resolution, Status::Confirmed);
    EXPECT_EQ(r.settle_now(), Status::Confirmed);
}

TEST(SeedExamples, Validation) {
    // A VALIDATION_ERROR at [0] naming the unknown key "type".
    Thrown t = thrown_by([] { parse_condition(R"([{"type":"signed","operator":"seen"}])"); });
    ASSERT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::ValidationError);
    EXPECT_EQ(t.message.rfind("VALIDATION_ERROR: [0]", 0), 0u) << t.message;
    EXPECT_NE(t.message.find("type"), std::string::npos) << t.message;
    EXPECT_EQ(t.detail.rfind("at [0]", 0), 0u) << t.detail;
    Condition ok = parse_condition(R"([{"fact":"signed","operator":"seen"}])");
    ASSERT_EQ(ok.size(), 1u);
    EXPECT_EQ(ok[0].fact, "signed");
    EXPECT_EQ(ok[0].op, Op::Seen);
    EXPECT_EQ(condition_to_json(ok), R"([{"fact": "signed", "operator": "seen"}])");
}
