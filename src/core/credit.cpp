#include "credit.hpp"

#include "error.hpp"

namespace witn {

const char *credit_kind_name(CreditKind kind) noexcept {
    return kind == CreditKind::Reversal ? "reversal" : "adjustment";
}

std::optional<CreditKind> credit_kind_from_name(std::string_view name) {
    if (name == "reversal") return CreditKind::Reversal;
    if (name == "adjustment") return CreditKind::Adjustment;
    return std::nullopt;
}

namespace {

std::size_t characters(std::string_view utf8) {
    std::size_t n = 0;
    for (unsigned char c : utf8) n += (c & 0xC0) != 0x80;
    return n;
}

bool blank(std::string_view s) {
    for (char c : s)
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
    return true;
}

} // namespace

CreditDecision decide_credit(const CreditTarget &t, const CreditRequest &r) {
    const std::string where = "outcome " + std::to_string(t.outcome_id);
    if (!r.reason || blank(*r.reason))
        throw Error(Code::ValidationError, "VALIDATION_ERROR: reason must be a non-empty text", where,
                    "Say why the outcome is credited: the reason is kept on the credit line and sent in its notification.");
    if (characters(*r.reason) > kMaxReasonLength)
        throw Error(Code::ValidationError,
                    "VALIDATION_ERROR: reason must be at most " + std::to_string(kMaxReasonLength) + " characters",
                    where + ", reason of " + std::to_string(characters(*r.reason)) + " characters");
    if (!r.automatic && *r.reason == kReversalConditionReason)
        throw Error(Code::ValidationError,
                    std::string("VALIDATION_ERROR: reason ") + kReversalConditionReason + " is reserved for reversals by the reversal condition",
                    where, "Say in words why the outcome is credited.");
    std::optional<Decimal> requested;
    if (r.kind == CreditKind::Adjustment) {
        if (r.amount) requested = Decimal::parse(*r.amount);
        if (!requested || requested->is_negative() || requested->is_zero())
            throw Error(Code::ValidationError, "VALIDATION_ERROR: amount must be a number greater than 0",
                        where + ", amount " + (r.amount ? *r.amount : std::string("NULL")),
                        "Credit a positive amount in the outcome's currency; witn.reverse_outcome credits all that is left.");
    }
    if (t.status != Status::Confirmed)
        throw Error(Code::OutcomeNotConfirmed,
                    "OUTCOME_NOT_CONFIRMED: outcome " + std::to_string(t.outcome_id) + " is " + status_name(t.status) +
                        ": only a confirmed outcome has an amount to credit",
                    where,
                    t.status == Status::Failed ? "A failed outcome was never billed."
                                               : "An outcome is billed when it is confirmed; credit it after that.");
    const Decimal remaining = t.line_amount - t.credited;
    CreditDecision d;
    if (r.kind == CreditKind::Reversal) {
        if (t.reversed)
            throw Error(Code::AlreadyReversed, "ALREADY_REVERSED: outcome " + std::to_string(t.outcome_id) + " was reversed already",
                        where + ": amount " + t.line_amount.to_string() + ", credited " + t.credited.to_string(),
                        "A reversal credits all that is left, once.");
        d.reverses = true;
        d.notification_kind = "outcome_reversed";
        if (remaining.is_negative() || remaining.is_zero()) {
            d.credited_after = t.credited;
            d.remaining_after = Decimal();
            return d;
        }
        d.amount = remaining;
    } else {
        if (*requested > remaining)
            throw Error(Code::CreditExceedsAmount,
                        "CREDIT_EXCEEDS_AMOUNT: a credit of " + requested->to_string() + " on outcome " +
                            std::to_string(t.outcome_id) + " exceeds what is left of its amount (" + remaining.to_string() + ")",
                        where + ": amount " + t.line_amount.to_string() + ", credited " + t.credited.to_string() +
                            ", remaining " + remaining.to_string(),
                        t.reversed ? "The outcome was reversed: nothing is left to credit."
                                   : "Credit at most what is left.");
        d.amount = requested;
        d.notification_kind = "outcome_credited";
    }
    d.credited_after = t.credited + *d.amount;
    d.remaining_after = t.line_amount - d.credited_after;
    return d;
}

} // namespace witn
