// The terms a new outcome opens under (CONTRACT §2): the agent's current contract and the
// customer's current rate-card price and currency, read by primary key from the lookup tables,
// kept as the Datums the outcome row stores.
#pragma once

#include "pg/postgres.hpp"

#include "core/outcome.hpp"
#include "pg/values.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace witn::pg {

struct Terms {
    witn::Contract contract;
    OwnedDatum agent_key, condition, attribution_method, unit_price, currency;
    Interval settlement_period{};
    std::int32_t agent_version = 0;
    // The reversal policy (CONTRACT §20), when the agent has one.
    bool has_reversal = false;
    OwnedDatum reversal_condition;
    Interval reversal_period{};
};

// Reads terms once per (customer, agent) within a statement; bounded: a statement's outcomes
// arrive in customer order, so few pairs are live at a time.
class TermsCache {
public:
    // Throws CUSTOMER_NOT_FOUND, AGENT_NOT_FOUND or PRICE_NOT_FOUND.
    const Terms &get(const std::string &customer_key, const std::string &agent_key);

private:
    std::map<std::pair<std::string, std::string>, Terms> terms_;
};

} // namespace witn::pg
