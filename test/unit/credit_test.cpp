// Corrections of confirmed outcomes (CONTRACT §19): decide_credit's validation, the status rule,
// the running total against the line amount, reversals; and the Decimal subtraction they use.
#include "test_util.hpp"

#include "core/credit.hpp"

using namespace witn;
using namespace witn::test;

namespace {

constexpr std::int64_t kId = 42;

CreditTarget target(std::string_view line, std::string_view credited = "0", Status status = Status::Confirmed,
                    bool reversed = false) {
    CreditTarget t;
    t.outcome_id = kId;
    t.status = status;
    t.reversed = reversed;
    t.line_amount = D(line);
    t.credited = D(credited);
    return t;
}

CreditRequest adjustment(std::optional<std::string> amount, std::optional<std::string> reason = "goodwill") {
    return CreditRequest{CreditKind::Adjustment, std::move(amount), std::move(reason)};
}

CreditRequest reversal(std::optional<std::string> reason = "customer complaint") {
    return CreditRequest{CreditKind::Reversal, std::nullopt, std::move(reason)};
}

Thrown credit_error(const CreditTarget &t, const CreditRequest &r) {
    return thrown_by([&] { decide_credit(t, r); });
}

std::string repeat(std::string_view unit, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += unit;
    return s;
}

const char *kAmountMessage = "VALIDATION_ERROR: amount must be a number greater than 0";
const char *kReasonMessage = "VALIDATION_ERROR: reason must be a non-empty text";

} // namespace

// ---- names ---------------------------------------------------------------------------------

TEST(CreditKind, NamesRoundTrip) {
    EXPECT_STREQ(credit_kind_name(CreditKind::Reversal), "reversal");
    EXPECT_STREQ(credit_kind_name(CreditKind::Adjustment), "adjustment");
    EXPECT_EQ(credit_kind_from_name("reversal"), CreditKind::Reversal);
    EXPECT_EQ(credit_kind_from_name("adjustment"), CreditKind::Adjustment);
    EXPECT_FALSE(credit_kind_from_name("Reversal").has_value());
    EXPECT_FALSE(credit_kind_from_name("").has_value());
    EXPECT_FALSE(credit_kind_from_name("credit").has_value());
}

// ---- adjustments ---------------------------------------------------------------------------

TEST(CreditAdjustment, CreditsTheRequestedAmount) {
    CreditDecision d = decide_credit(target("100.00"), adjustment("12.50"));
    ASSERT_TRUE(d.amount.has_value());
    EXPECT_EQ(d.amount->to_string(), "12.50");
    EXPECT_FALSE(d.reverses);
    EXPECT_STREQ(d.notification_kind, "outcome_credited");
    EXPECT_EQ(d.credited_after.to_string(), "12.50");
    EXPECT_EQ(d.remaining_after.to_string(), "87.50");
}

TEST(CreditAdjustment, AddsToWhatWasCreditedBefore) {
    CreditDecision d = decide_credit(target("100.00", "30"), adjustment("0.001"));
    EXPECT_EQ(d.amount, D("0.001"));
    EXPECT_EQ(d.credited_after.to_string(), "30.001");
    EXPECT_EQ(d.remaining_after.to_string(), "69.999");
}

TEST(CreditAdjustment, CreditingExactlyWhatRemainsIsAllowed) {
    CreditDecision d = decide_credit(target("10", "7.5"), adjustment("2.5"));
    EXPECT_EQ(d.amount, D("2.5"));
    EXPECT_EQ(d.credited_after, D("10"));
    EXPECT_TRUE(d.remaining_after.is_zero());
    EXPECT_FALSE(d.remaining_after.is_negative());
    EXPECT_FALSE(d.reverses);
    // Written with more digits than the line: the same value.
    CreditDecision e = decide_credit(target("10", "7.5"), adjustment("2.5000"));
    EXPECT_TRUE(e.remaining_after.is_zero());
    EXPECT_EQ(e.remaining_after.to_string(), "0.0000");
}

TEST(CreditAdjustment, MoreThanRemainsIsRejected) {
    Thrown t = credit_error(target("10", "7.5"), adjustment("2.51"));
    EXPECT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::CreditExceedsAmount);
    EXPECT_EQ(t.message, "CREDIT_EXCEEDS_AMOUNT: a credit of 2.51 on outcome 42 exceeds what is left of its amount (2.5)");
    EXPECT_EQ(t.detail, "outcome 42: amount 10, credited 7.5, remaining 2.5");
    EXPECT_EQ(t.hint, "Credit at most what is left.");
    // The smallest step over is rejected too.
    EXPECT_EQ(credit_error(target("10", "7.5"), adjustment("2.5000000000000000000001")).code, Code::CreditExceedsAmount);
    // And more than the whole line on a fresh outcome.
    EXPECT_EQ(credit_error(target("10"), adjustment("10.01")).code, Code::CreditExceedsAmount);
}

TEST(CreditAdjustment, SuccessiveAdjustmentsNeverExceedTheLine) {
    // The caller stores credited_after and passes it back as credited for the next credit.
    CreditTarget t = target("100");
    for (int i = 0; i < 3; ++i) {
        CreditDecision d = decide_credit(t, adjustment("33.33"));
        t.credited = d.credited_after;
    }
    EXPECT_EQ(t.credited.to_string(), "99.99");
    EXPECT_EQ(credit_error(t, adjustment("0.02")).code, Code::CreditExceedsAmount);
    CreditDecision last = decide_credit(t, adjustment("0.01"));
    EXPECT_EQ(last.credited_after, D("100"));
    EXPECT_TRUE(last.remaining_after.is_zero());
    t.credited = last.credited_after;
    EXPECT_EQ(credit_error(t, adjustment("0.000001")).code, Code::CreditExceedsAmount);
}

TEST(CreditAdjustment, AnAdjustmentAfterAReversalExceedsTheAmount) {
    Thrown t = credit_error(target("50.00", "50.00", Status::Confirmed, true), adjustment("0.01"));
    EXPECT_EQ(t.code, Code::CreditExceedsAmount);
    EXPECT_EQ(t.message, "CREDIT_EXCEEDS_AMOUNT: a credit of 0.01 on outcome 42 exceeds what is left of its amount (0.00)");
}

TEST(CreditAdjustment, AZeroLineCannotBeAdjusted) {
    EXPECT_EQ(credit_error(target("0"), adjustment("0.01")).code, Code::CreditExceedsAmount);
}

TEST(CreditAdjustment, AmountMustBeANumberGreaterThanZero) {
    for (const char *bad : {"0", "0.00", "-0", "-1", "-0.01", "NaN", "nan", "Infinity", "-Infinity", "abc", "",
                            " 1", "1 ", "1,5", "+1", "0x10"}) {
        Thrown t = credit_error(target("100"), adjustment(std::string(bad)));
        EXPECT_TRUE(t.thrown) << bad;
        EXPECT_EQ(t.code, Code::ValidationError) << bad;
        EXPECT_EQ(t.message, kAmountMessage) << bad;
        EXPECT_EQ(t.detail, std::string("outcome 42, amount ") + bad) << bad;
    }
    Thrown missing = credit_error(target("100"), adjustment(std::nullopt));
    EXPECT_EQ(missing.code, Code::ValidationError);
    EXPECT_EQ(missing.message, kAmountMessage);
    EXPECT_EQ(missing.detail, "outcome 42, amount NULL");
    EXPECT_NE(missing.hint, "");
}

TEST(CreditAdjustment, TinyPositiveAmountsAreNumbersGreaterThanZero) {
    CreditDecision d = decide_credit(target("1"), adjustment("0.000000000000000000001"));
    EXPECT_EQ(d.amount->to_string(), "0.000000000000000000001");
    EXPECT_EQ(d.remaining_after.to_string(), "0.999999999999999999999");
}

// ---- reasons -------------------------------------------------------------------------------

TEST(CreditReason, IsRequiredAndNotBlank) {
    for (const CreditRequest &r :
         {adjustment("1", std::nullopt), adjustment("1", ""), adjustment("1", "   "), adjustment("1", " \t\r\n\f\v"),
          reversal(std::nullopt), reversal(""), reversal("\n")}) {
        Thrown t = credit_error(target("10"), r);
        EXPECT_TRUE(t.thrown);
        EXPECT_EQ(t.code, Code::ValidationError);
        EXPECT_EQ(t.message, kReasonMessage);
        EXPECT_EQ(t.detail, "outcome 42");
    }
    // Surrounding whitespace around text is fine.
    EXPECT_TRUE(decide_credit(target("10"), adjustment("1", "  late delivery  ")).amount.has_value());
    EXPECT_TRUE(decide_credit(target("10"), reversal(".")).reverses);
}

TEST(CreditReason, AtMostAThousandCharactersCountedAsCodePoints) {
    // ASCII: bytes are characters.
    EXPECT_NO_THROW(decide_credit(target("10"), adjustment("1", repeat("x", 1000))));
    Thrown ascii = credit_error(target("10"), adjustment("1", repeat("x", 1001)));
    EXPECT_EQ(ascii.code, Code::ValidationError);
    EXPECT_EQ(ascii.message, "VALIDATION_ERROR: reason must be at most 1000 characters");
    EXPECT_EQ(ascii.detail, "outcome 42, reason of 1001 characters");
    // Two-byte (é), three-byte (€) and four-byte (😀) characters count once each.
    for (const char *ch : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"}) {
        EXPECT_NO_THROW(decide_credit(target("10"), adjustment("1", repeat(ch, 1000)))) << ch;
        Thrown t = credit_error(target("10"), reversal(repeat(ch, 1001)));
        EXPECT_EQ(t.code, Code::ValidationError) << ch;
        EXPECT_EQ(t.detail, "outcome 42, reason of 1001 characters") << ch;
    }
    EXPECT_EQ(kMaxReasonLength, 1000u);
}

// ---- the status rule and the order of checks ------------------------------------------------

TEST(CreditStatus, OnlyAConfirmedOutcomeCanBeCredited) {
    for (Status s : {Status::Open, Status::Pending, Status::Failed}) {
        for (const CreditRequest &r : {adjustment("1"), reversal()}) {
            Thrown t = credit_error(target("10", "0", s), r);
            EXPECT_TRUE(t.thrown) << status_name(s);
            EXPECT_EQ(t.code, Code::OutcomeNotConfirmed) << status_name(s);
            EXPECT_EQ(t.message, std::string("OUTCOME_NOT_CONFIRMED: outcome 42 is ") + status_name(s) +
                                     ": only a confirmed outcome has an amount to credit");
            EXPECT_EQ(t.detail, "outcome 42");
        }
    }
    EXPECT_EQ(credit_error(target("10", "0", Status::Failed), reversal()).hint, "A failed outcome was never billed.");
    EXPECT_EQ(credit_error(target("10", "0", Status::Pending), reversal()).hint,
              "An outcome is billed when it is confirmed; credit it after that.");
}

TEST(CreditStatus, ValidationComesBeforeTheStatusCheck) {
    CreditTarget failed = target("0", "0", Status::Failed);
    EXPECT_EQ(credit_error(failed, adjustment("1", "")).message, kReasonMessage);
    EXPECT_EQ(credit_error(failed, reversal("  ")).message, kReasonMessage);
    EXPECT_EQ(credit_error(failed, adjustment("NaN")).message, kAmountMessage);
    EXPECT_EQ(credit_error(failed, adjustment("0")).code, Code::ValidationError);
    EXPECT_EQ(credit_error(failed, adjustment(std::nullopt)).code, Code::ValidationError);
    EXPECT_EQ(credit_error(failed, adjustment("1", repeat("x", 1001))).code, Code::ValidationError);
    // Valid input: then the status decides.
    EXPECT_EQ(credit_error(failed, adjustment("1")).code, Code::OutcomeNotConfirmed);
    // The reason is checked before the amount.
    EXPECT_EQ(credit_error(target("10"), adjustment("NaN", "")).message, kReasonMessage);
    // Amount checks come before the running total: an amount of 0 on a fully credited line is
    // a validation error, not CREDIT_EXCEEDS_AMOUNT.
    EXPECT_EQ(credit_error(target("10", "10"), adjustment("0")).code, Code::ValidationError);
}

TEST(CreditReason, TheReversalConditionsReasonIsReserved) {
    const std::string reserved = std::string("VALIDATION_ERROR: reason ") + kReversalConditionReason +
                                 " is reserved for reversals by the reversal condition";
    for (const CreditRequest &r : {reversal(kReversalConditionReason), adjustment("1", kReversalConditionReason)}) {
        Thrown t = credit_error(target("10"), r);
        EXPECT_EQ(t.code, Code::ValidationError);
        EXPECT_EQ(t.message, reserved);
        EXPECT_EQ(t.detail, "outcome 42");
    }
    // A validation error like the others: before the status check.
    EXPECT_EQ(credit_error(target("0", "0", Status::Failed), reversal(kReversalConditionReason)).message, reserved);
    // Text that merely contains it is a reason given in words.
    EXPECT_TRUE(decide_credit(target("10"), reversal("not the reversal_condition")).reverses);
    CreditRequest automatic = reversal(kReversalConditionReason);
    automatic.automatic = true;
    EXPECT_TRUE(decide_credit(target("10"), automatic).reverses);
}

// ---- reversals -----------------------------------------------------------------------------

TEST(CreditReversal, CreditsWhatIsLeft) {
    CreditDecision d = decide_credit(target("100.00", "30"), reversal());
    ASSERT_TRUE(d.amount.has_value());
    EXPECT_EQ(d.amount->to_string(), "70.00");
    EXPECT_TRUE(d.reverses);
    EXPECT_STREQ(d.notification_kind, "outcome_reversed");
    EXPECT_EQ(d.credited_after, D("100"));
    EXPECT_TRUE(d.remaining_after.is_zero());
    EXPECT_FALSE(d.remaining_after.is_negative());
}

TEST(CreditReversal, AFreshOutcomeIsCreditedInFull) {
    CreditRequest automatic = reversal(kReversalConditionReason);
    automatic.automatic = true; // the reversal condition's own reversal (CONTRACT §20)
    CreditDecision d = decide_credit(target("19.99"), automatic);
    EXPECT_EQ(d.amount->to_string(), "19.99");
    EXPECT_EQ(d.credited_after.to_string(), "19.99");
    EXPECT_TRUE(d.remaining_after.is_zero());
    EXPECT_STREQ(kReversalConditionReason, "reversal_condition");
}

TEST(CreditReversal, TakesNoAmount) {
    CreditRequest r = reversal();
    r.amount = "5"; // ignored: a reversal credits all that is left
    CreditDecision d = decide_credit(target("12", "2"), r);
    EXPECT_EQ(d.amount, D("10"));
    EXPECT_TRUE(d.reverses);
    r.amount = "NaN"; // not validated either
    EXPECT_EQ(decide_credit(target("12", "2"), r).amount, D("10"));
}

TEST(CreditReversal, NothingLeftWritesNoLineButStillReverses) {
    CreditDecision d = decide_credit(target("25.00", "25.00"), reversal());
    EXPECT_FALSE(d.amount.has_value());
    EXPECT_TRUE(d.reverses);
    EXPECT_STREQ(d.notification_kind, "outcome_reversed");
    EXPECT_EQ(d.credited_after, D("25"));
    EXPECT_TRUE(d.remaining_after.is_zero());
    // A zero line (quantity 0) likewise.
    CreditDecision z = decide_credit(target("0"), reversal());
    EXPECT_FALSE(z.amount.has_value());
    EXPECT_TRUE(z.reverses);
    EXPECT_TRUE(z.credited_after.is_zero());
    EXPECT_TRUE(z.remaining_after.is_zero());
}

TEST(CreditReversal, ASecondReversalIsRejected) {
    Thrown t = credit_error(target("25.00", "25.00", Status::Confirmed, true), reversal());
    EXPECT_TRUE(t.thrown);
    EXPECT_EQ(t.code, Code::AlreadyReversed);
    EXPECT_EQ(t.message, "ALREADY_REVERSED: outcome 42 was reversed already");
    EXPECT_EQ(t.detail, "outcome 42: amount 25.00, credited 25.00");
    EXPECT_EQ(t.hint, "A reversal credits all that is left, once.");
    // Also when something is (inconsistently) left, and for a zero line reversed before.
    EXPECT_EQ(credit_error(target("25.00", "5", Status::Confirmed, true), reversal()).code, Code::AlreadyReversed);
    EXPECT_EQ(credit_error(target("0", "0", Status::Confirmed, true), reversal()).code, Code::AlreadyReversed);
}

TEST(CreditReversal, AfterAnAdjustmentIsExact) {
    CreditTarget t = target("10.005");
    CreditDecision adj = decide_credit(t, adjustment("3.3333"));
    EXPECT_EQ(adj.credited_after.to_string(), "3.3333");
    EXPECT_EQ(adj.remaining_after.to_string(), "6.6717");
    t.credited = adj.credited_after;
    CreditDecision rev = decide_credit(t, reversal());
    ASSERT_TRUE(rev.amount.has_value());
    EXPECT_EQ(rev.amount->to_string(), "6.6717");
    EXPECT_EQ(rev.credited_after, D("10.005"));
    EXPECT_TRUE(rev.remaining_after.is_zero());
    EXPECT_FALSE(rev.remaining_after.is_negative());
    EXPECT_TRUE(rev.reverses);
}

// ---- Decimal subtraction and negation ------------------------------------------------------

TEST(DecimalSubtract, IsExact) {
    EXPECT_EQ((D("10.005") - D("3.3333")).to_string(), "6.6717");
    EXPECT_EQ((D("1") - D("0.001")).to_string(), "0.999");
    EXPECT_EQ((D("0.1") - D("0.3")).to_string(), "-0.2");
    EXPECT_EQ((D("9007199254740993") - D("1")).to_string(), "9007199254740992");
    EXPECT_EQ((D("-5") - D("-7")).to_string(), "2");
    EXPECT_EQ((D("-5") - D("7")).to_string(), "-12");
    EXPECT_EQ((D("700") - D("0.00000000000000000001")).to_string(), "699.99999999999999999999");
    EXPECT_EQ((D("3.5") - Decimal()).to_string(), "3.5");
    EXPECT_EQ((Decimal() - D("3.5")).to_string(), "-3.5");
    EXPECT_EQ(D("1e3") - D("1e-3"), D("999.999"));
}

TEST(DecimalNegate, ZeroStaysZeroAndSignsFlip) {
    Decimal z = -Decimal();
    EXPECT_TRUE(z.is_zero());
    EXPECT_FALSE(z.is_negative());
    EXPECT_EQ(z.to_string(), "0");
    Decimal z2 = -D("0.00");
    EXPECT_FALSE(z2.is_negative());
    EXPECT_EQ(z2.to_string(), "0.00");
    EXPECT_EQ((-D("1.50")).to_string(), "-1.50");
    EXPECT_TRUE((-D("1.50")).is_negative());
    EXPECT_EQ((-D("-2")).to_string(), "2");
    EXPECT_FALSE((-D("-2")).is_negative());
    EXPECT_EQ(-(-D("123.456")), D("123.456"));
}

TEST(DecimalSubtract, AValueMinusItselfIsZero) {
    for (const char *t : {"0", "1", "-1", "10.005", "0.000001", "-3.3333", "1e100", "1e-100",
                          "9007199254740993", "123456789.123456789"}) {
        Decimal a = D(t);
        Decimal z = a - a;
        EXPECT_TRUE(z.is_zero()) << t;
        EXPECT_FALSE(z.is_negative()) << t;
        EXPECT_EQ(z, Decimal()) << t;
    }
    EXPECT_EQ((D("1.00") - D("1")).to_string(), "0.00");
}
