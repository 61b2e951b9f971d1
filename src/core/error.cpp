#include "error.hpp"

namespace witn {

const char *code_name(Code code) noexcept {
    switch (code) {
    case Code::ValidationError: return "VALIDATION_ERROR";
    case Code::CustomerNotFound: return "CUSTOMER_NOT_FOUND";
    case Code::AgentNotFound: return "AGENT_NOT_FOUND";
    case Code::AgentMismatch: return "AGENT_MISMATCH";
    case Code::PriceNotFound: return "PRICE_NOT_FOUND";
    case Code::IdempotencyConflict: return "IDEMPOTENCY_CONFLICT";
    case Code::PayloadTooLarge: return "PAYLOAD_TOO_LARGE";
    case Code::OutcomeNotFound: return "OUTCOME_NOT_FOUND";
    case Code::OutcomeNotConfirmed: return "OUTCOME_NOT_CONFIRMED";
    case Code::CreditExceedsAmount: return "CREDIT_EXCEEDS_AMOUNT";
    case Code::AlreadyReversed: return "ALREADY_REVERSED";
    }
    return "ERROR";
}

void fail_validation(const std::string &path, const std::string &expected, const std::string &hint) {
    // The top level has no path to name: "the input must be ...", not "VALIDATION_ERROR:  must be".
    throw Error(Code::ValidationError,
                "VALIDATION_ERROR: " + (path.empty() ? std::string("the input") : path) + " must be " +
                    expected,
                "at " + (path.empty() ? std::string("the top level") : path), hint);
}

} // namespace witn
