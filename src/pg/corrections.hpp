// Corrections (CONTRACT §19, §20): every credit on a confirmed outcome is decided by the trigger
// on witn.credit_lines (witn_credit_lines_issue), on the node that holds the outcome, under its
// row lock: the core's decide_credit() checks it against the invoice line and the credits so
// far, the month it is billed in is found as settlement finds a line's, and the outcome's
// reversal and the notification are written in the same transaction.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

#include <cstdint>

namespace witn::pg {

// From the events trigger: the outcome's reversal condition now holds (the fold said so), so it
// is reversed — through the same trigger, with reason kReversalConditionReason. The outcome row
// (locked by this transaction) must already hold the statement's state; `now` is the events'
// arrival, the credit's created_at.
void reverse_by_condition(Datum customer_key, std::int64_t outcome_id, TimestampTz now);

} // namespace witn::pg
