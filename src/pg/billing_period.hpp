// The invoice month of a line or a credit (CONTRACT §17–§19): the calendar month of a moment in
// the customer's timezone, or the earliest open month after it when that one is closed.
#pragma once

#include "pg/postgres.hpp"

#include "pg/table_writer.hpp"

extern "C" {
#include "utils/date.h"
}

#include <set>
#include <string>
#include <unordered_map>

namespace witn::pg {

// What billing a customer's line or credit needs, looked up once per customer: its time zone
// (the lookup tables as a query reads them) and its closed months. Before reading those it
// shares the customer's period lock, held to the end of the transaction: a close running now
// is waited for and then seen, one starting later waits for this transaction. The lock is
// taken on the node that holds the customer's rows, where the close takes it too (the trigger
// on witn.closed_periods, 10_tables.sql, same key).
class CustomerBilling {
public:
    CustomerBilling();
    void finish();
    // The first day of the month something dated `at` is billed in.
    Datum period_of(Datum customer_key, TimestampTz at);

private:
    struct Customer {
        std::string zone;
        std::set<DateADT> closed;
    };
    const Customer &customer(Datum customer_key);
    IndexReader customers_, closed_;
    int timezone_, period_;
    std::unordered_map<std::string, Customer> customers_by_key_;
};

} // namespace witn::pg
