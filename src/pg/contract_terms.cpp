#include "pg/contract_terms.hpp"

#include "pg/condition_type.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"

extern "C" {
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
}

#include <optional>
#include <stdexcept>

namespace witn::pg {

namespace {

constexpr std::size_t kMaxCachedTerms = 64;

Terms load_terms(const std::string &customer_key, const std::string &agent_key) {
    IndexReader customers(witn_table("customers"), {"key"}, false, IndexReader::Snapshot::Transaction);
    TupleTableSlot *customer = customers.find({text_datum(customer_key)});
    if (!customer)
        throw witn::Error(witn::Code::CustomerNotFound, "CUSTOMER_NOT_FOUND: no customer " + customer_key,
                          "customer_key " + customer_key,
                          "Create the customer in witn.customers before sending its events.");
    const int card_column = customers.column("rate_card_key");
    std::optional<std::string> card;
    if (!column_null(customer, card_column)) card = text_value(column_value(customer, card_column));
    customers.finish();

    IndexReader agents(witn_table("agents"), {"key"}, false, IndexReader::Snapshot::Transaction);
    TupleTableSlot *agent = agents.find({text_datum(agent_key)});
    if (!agent)
        throw witn::Error(witn::Code::AgentNotFound, "AGENT_NOT_FOUND: no agent " + agent_key,
                          "agent_key " + agent_key, "Create the agent in witn.agents first.");
    Terms t;
    t.agent_key = OwnedDatum::text(agent_key);
    const Datum condition = column_value(agent, agents.column("condition"));
    t.condition = OwnedDatum::varlena(condition);
    t.contract.condition = cached_condition(text_value(condition));
    t.settlement_period = *DatumGetIntervalP(column_value(agent, agents.column("settlement_period")));
    t.contract.settlement_period = interval_micros(&t.settlement_period);
    const Datum method = column_value(agent, agents.column("attribution_method"));
    t.attribution_method = OwnedDatum::varlena(method);
    auto known = witn::attribution_method_from_name(text_value(method));
    if (!known) throw std::runtime_error("witn: agent " + agent_key + " has an unknown attribution method");
    t.contract.attribution_method = *known;
    t.agent_version = DatumGetInt32(column_value(agent, agents.column("version")));
    const int reversal_condition = agents.column("reversal_condition"), reversal_period = agents.column("reversal_period");
    if (!column_null(agent, reversal_condition) && !column_null(agent, reversal_period)) {
        const Datum rc = column_value(agent, reversal_condition);
        t.has_reversal = true;
        t.reversal_condition = OwnedDatum::varlena(rc);
        t.reversal_period = *DatumGetIntervalP(column_value(agent, reversal_period));
        t.contract.reversal = witn::ReversalPolicy{cached_condition(text_value(rc)), interval_micros(&t.reversal_period)};
    }
    agents.finish();

    bool priced = false;
    if (card) {
        IndexReader prices(witn_table("rate_card_prices"), {"rate_card_key", "agent_key"}, false,
                           IndexReader::Snapshot::Transaction);
        TupleTableSlot *p = prices.find({text_datum(*card), text_datum(agent_key)});
        if (p) {
            t.unit_price = OwnedDatum::varlena(column_value(p, prices.column("price_per_unit")));
            priced = true;
        }
        prices.finish();
    }
    if (!priced)
        throw witn::Error(witn::Code::PriceNotFound,
                          "PRICE_NOT_FOUND: customer " + customer_key + " has no price for agent " + agent_key,
                          card ? "rate card " + *card + " has no price for agent " + agent_key
                               : "customer " + customer_key + " has no rate card",
                          "Assign the customer a rate card with a price for this agent "
                          "(witn.customers.rate_card_key, witn.rate_card_prices).");
    IndexReader cards(witn_table("rate_cards"), {"key"}, false, IndexReader::Snapshot::Transaction);
    TupleTableSlot *rc = cards.find({text_datum(*card)});
    if (!rc) throw std::runtime_error("witn: rate card " + *card + " is missing"); // a foreign key keeps it
    t.currency = OwnedDatum::varlena(column_value(rc, cards.column("currency")));
    cards.finish();
    return t;
}

} // namespace

const Terms &TermsCache::get(const std::string &customer_key, const std::string &agent_key) {
    auto key = std::make_pair(customer_key, agent_key);
    auto it = terms_.find(key);
    if (it != terms_.end()) return it->second;
    if (terms_.size() >= kMaxCachedTerms) terms_.clear();
    return terms_.emplace(std::move(key), load_terms(customer_key, agent_key)).first->second;
}

} // namespace witn::pg

