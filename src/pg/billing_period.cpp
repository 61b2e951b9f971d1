#include "pg/billing_period.hpp"

#include "pg/statement_rows.hpp"
#include "pg/values.hpp"

extern "C" {
#include "catalog/pg_collation.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
}

namespace witn::pg {

namespace {

// The seed of the key of the lock that orders billing a customer's lines and closing its months;
// the trigger on witn.closed_periods takes the same lock exclusively (10_tables.sql).
constexpr std::int64_t kPeriodLockSeed = 8606516082016908649LL;

DateADT next_month(DateADT first) {
    int year, month, day;
    j2date(first + POSTGRES_EPOCH_JDATE, &year, &month, &day);
    if (++month > 12) {
        month = 1;
        ++year;
    }
    return date2j(year, month, 1) - POSTGRES_EPOCH_JDATE;
}

} // namespace

CustomerBilling::CustomerBilling()
    : customers_(witn_table("customers"), {"key"}, false, IndexReader::Snapshot::Transaction),
      closed_(witn_table("closed_periods"), {"customer_key", "period"}, false, IndexReader::Snapshot::Latest) {
    timezone_ = customers_.column("timezone");
    period_ = closed_.column("period");
}

void CustomerBilling::finish() {
    closed_.finish();
    customers_.finish();
}

Datum CustomerBilling::period_of(Datum customer_key, TimestampTz at) {
    const Customer &c = customer(customer_key);
    const Datum zone = text_datum(c.zone), unit = text_datum("month");
    DateADT month = pg([&] {
        Datum local = DirectFunctionCall2(timestamptz_zone, zone, TimestampTzGetDatum(at));
        Datum first = DirectFunctionCall2(timestamp_trunc, unit, local);
        return DatumGetDateADT(DirectFunctionCall1(timestamp_date, first));
    });
    while (c.closed.count(month)) month = next_month(month);
    return DateADTGetDatum(month);
}

const CustomerBilling::Customer &CustomerBilling::customer(Datum customer_key) {
    std::string key = text_value(customer_key);
    if (auto found = customers_by_key_.find(key); found != customers_by_key_.end()) return found->second;
    Customer c;
    pg([&] {
        Datum lock_key = DirectFunctionCall2Coll(hashtextextended, C_COLLATION_OID, customer_key, Int64GetDatum(kPeriodLockSeed));
        DirectFunctionCall1(pg_advisory_xact_lock_shared_int8, lock_key);
    });
    TupleTableSlot *row = customers_.find({customer_key});
    if (!row || column_null(row, timezone_))
        throw witn::Error(witn::Code::CustomerNotFound, "CUSTOMER_NOT_FOUND: no customer " + key, "customer_key " + key);
    c.zone = std::string(text_bytes(row, timezone_));
    customers_.end_walk();
    closed_.begin({customer_key});
    while (TupleTableSlot *p = closed_.next()) c.closed.insert(DatumGetDateADT(column_value(p, period_)));
    closed_.end_walk();
    return customers_by_key_.emplace(std::move(key), std::move(c)).first->second;
}

} // namespace witn::pg
