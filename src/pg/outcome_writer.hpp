// Applies a statement's rows, sorted by outcome, to witn.outcomes: each outcome is found and
// locked through the (customer_key, key) index or opened under its terms, its events are folded
// by the core's StatementFold, and the outcome is written once through the executor's row-level
// calls; each event's late / duplicate_of mark is written where it differs from the inserted row.
#pragma once

#include "pg/postgres.hpp"

#include "pg/statement_rows.hpp"

namespace witn::pg {

// Runs the whole walk (in the current memory context, which must outlive it). A concurrent
// transaction that opens the same outcome first is waited for and this statement's events
// apply on top of its row; under REPEATABLE READ that is a serialization failure (40001).
void apply_to_outcomes(RowSort &by_outcome, TimestampTz now);

} // namespace witn::pg
