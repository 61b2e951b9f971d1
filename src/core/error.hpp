// Product errors raised by the core. The glue turns each Code into a stable SQLSTATE of class WT.
#pragma once
#include "pure.hpp"

#include <stdexcept>
#include <string>

namespace witn {

enum class Code {
    ValidationError,     // WT001
    CustomerNotFound,    // WT002
    AgentNotFound,       // WT003
    AgentMismatch,       // WT004
    PriceNotFound,       // WT005
    IdempotencyConflict, // WT006
    PayloadTooLarge,     // WT007
    OutcomeNotFound,     // WT008
    // WT009 is CRON_NOT_AVAILABLE, raised by SQL (35_cron.sql).
    OutcomeNotConfirmed, // WT010
    CreditExceedsAmount, // WT011
    AlreadyReversed,     // WT012
};

// The message names the problem (e.g. "VALIDATION_ERROR: ..."), detail says where, hint says
// what to do.
class Error : public std::runtime_error {
public:
    Error(Code code, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(std::move(message)), code_(code), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    Code code() const noexcept { return code_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

private:
    Code code_;
    std::string detail_;
    std::string hint_;
};

// The product name of a code, as it appears at the start of every message.
const char *code_name(Code code) noexcept;

// A VALIDATION_ERROR at a JSON path ("[1].value") saying what was expected there, with an
// optional hint saying what to do.
[[noreturn]] void fail_validation(const std::string &path, const std::string &expected,
                                  const std::string &hint = {});

} // namespace witn
