// Corrections (CONTRACT §19): what a credit on a confirmed outcome may be, and what it does. A
// reversal credits what is left of the outcome's amount and marks it reversed; an adjustment
// credits part of it. Credits never exceed the amount of the outcome's invoice line in total.
#pragma once
#include "pure.hpp"

#include "decimal.hpp"
#include "outcome.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace witn {

enum class CreditKind { Reversal, Adjustment };
const char *credit_kind_name(CreditKind kind) noexcept; // "reversal" | "adjustment"
std::optional<CreditKind> credit_kind_from_name(std::string_view name);

// The reason an automatic reversal records (CONTRACT §20).
constexpr const char *kReversalConditionReason = "reversal_condition";
// Longest reason, in characters.
constexpr std::size_t kMaxReasonLength = 1000;

// The outcome being credited, read under its row lock.
struct CreditTarget {
    std::int64_t outcome_id = 0;
    Status status = Status::Open;
    bool reversed = false;
    Decimal line_amount; // its invoice line's amount (confirmed outcomes)
    Decimal credited;    // the sum of its credits so far
};

struct CreditRequest {
    CreditKind kind = CreditKind::Adjustment;
    // Adjustments: the amount as numeric's text ("12.50", "NaN"); nullopt when NULL. Reversals
    // take none.
    std::optional<std::string> amount;
    std::optional<std::string> reason;
    // Made by the reversal condition (CONTRACT §20), whose reason is kReversalConditionReason;
    // a reason given by hand may not be that one.
    bool automatic = false;
};

struct CreditDecision {
    // The credit line's amount; nullopt when a reversal finds nothing left (no line is written,
    // the outcome is still marked reversed and notified).
    std::optional<Decimal> amount;
    bool reverses = false;               // sets reversed_at and reversal_reason
    const char *notification_kind = "";  // "outcome_reversed" | "outcome_credited"
    Decimal credited_after, remaining_after;
};

// Throws VALIDATION_ERROR (reason empty or too long; an adjustment amount that is not a number
// greater than 0), OUTCOME_NOT_CONFIRMED, ALREADY_REVERSED (a second reversal) or
// CREDIT_EXCEEDS_AMOUNT (more than is left).
CreditDecision decide_credit(const CreditTarget &target, const CreditRequest &request);

} // namespace witn
