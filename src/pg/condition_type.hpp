// Reading witn.condition values in the glue.
#pragma once

#include "pg/postgres.hpp"

#include "core/condition.hpp"

#include <string>

namespace witn::pg {

// Argument n of the call, a witn.condition.
witn::Condition condition_arg(FunctionCallInfo fcinfo, int n);

// A stored condition's canonical text, parsed once per backend and reused.
const witn::Condition &cached_condition(const std::string &canonical_text);

} // namespace witn::pg
