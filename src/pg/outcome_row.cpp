#include "pg/outcome_row.hpp"

#include "pg/condition_type.hpp"
#include "pg/table_writer.hpp"
#include "pg/values.hpp"

extern "C" {
#include "utils/timestamp.h"
}

#include <stdexcept>

namespace witn::pg {

namespace {

int column_in(TupleDesc d, const char *name) { return column_of(d, "witn.outcomes", name); }

constexpr witn::Status kStatuses[] = {witn::Status::Open, witn::Status::Pending, witn::Status::Confirmed,
                                      witn::Status::Failed};

} // namespace

OutcomeRow::OutcomeRow(TupleDesc d)
    : id(column_in(d, "id")), customer_key(column_in(d, "customer_key")), key(column_in(d, "key")),
      agent_key(column_in(d, "agent_key")), status(column_in(d, "status")),
      scheduled(column_in(d, "scheduled_resolution")), settles_at(column_in(d, "settles_at")),
      resolved_at(column_in(d, "resolved_at")), check_at(column_in(d, "check_at")),
      condition(column_in(d, "condition")), period(column_in(d, "settlement_period")),
      method(column_in(d, "attribution_method")), version(column_in(d, "agent_version")),
      unit_price(column_in(d, "unit_price")), currency(column_in(d, "currency")),
      quantity(column_in(d, "quantity")), holds(column_in(d, "condition_holds")),
      accepted(column_in(d, "accepted_events")), late(column_in(d, "late_events")),
      facts(column_in(d, "facts")), attribution(column_in(d, "attribution")),
      last_id(column_in(d, "last_event_id")), updated_at(column_in(d, "updated_at")),
      reversal_condition(column_in(d, "reversal_condition")), reversal_period(column_in(d, "reversal_period")),
      reversed_at(column_in(d, "reversed_at")), reversal_reason(column_in(d, "reversal_reason")) {
    status_type_ = TupleDescAttr(d, status - 1)->atttypid;
    for (int i = 0; i < 4; ++i) status_oids_[i] = enum_label(status_type_, witn::status_name(kStatuses[i]));
}

OutcomeRow::OutcomeRow(const TableWriter &outcomes) : OutcomeRow(outcomes.desc()) {}

Oid OutcomeRow::status_oid(witn::Status s) const { return status_oids_[static_cast<int>(s)]; }

witn::Status OutcomeRow::status_of(Datum enum_value) const {
    const Oid oid = DatumGetObjectId(enum_value);
    for (int i = 0; i < 4; ++i)
        if (status_oids_[i] == oid) return kStatuses[i];
    throw std::runtime_error("witn: unknown outcome status");
}

witn::StoredOutcome OutcomeRow::stored(TupleTableSlot *row) const {
    witn::StoredOutcome o;
    o.agent_key = text_value(column_value(row, agent_key));
    o.contract.condition = cached_condition(text_value(column_value(row, condition)));
    o.contract.settlement_period = interval_micros(DatumGetIntervalP(column_value(row, period)));
    auto m = witn::attribution_method_from_name(text_value(column_value(row, method)));
    if (!m) throw std::runtime_error("witn: an outcome has an unknown attribution method");
    o.contract.attribution_method = *m;
    if (!column_null(row, reversal_condition) && !column_null(row, reversal_period))
        o.contract.reversal = witn::ReversalPolicy{cached_condition(text_value(column_value(row, reversal_condition))),
                                                   interval_micros(DatumGetIntervalP(column_value(row, reversal_period)))};
    witn::OutcomeState &s = o.state;
    s.status = status_of(column_value(row, status));
    if (!column_null(row, scheduled)) s.scheduled_resolution = status_of(column_value(row, scheduled));
    s.settles_at = DatumGetTimestampTz(column_value(row, settles_at));
    s.accepted_events = DatumGetInt64(column_value(row, accepted));
    s.facts = witn::Facts::from_json(o.contract.tracked_facts(), jsonb_text(column_value(row, facts)));
    s.attribution = witn::Attribution::from_json(jsonb_text(column_value(row, attribution)));
    s.condition_holds = DatumGetBool(column_value(row, holds));
    if (!column_null(row, resolved_at)) s.resolved_at = DatumGetTimestampTz(column_value(row, resolved_at));
    s.reversed = !column_null(row, reversed_at);
    o.late_events = DatumGetInt64(column_value(row, late));
    if (!column_null(row, last_id)) o.last_event_id = DatumGetInt64(column_value(row, last_id));
    return o;
}

witn::DueOutcome OutcomeRow::due(TupleTableSlot *row) const {
    witn::DueOutcome o;
    o.status = status_of(column_value(row, status));
    if (!column_null(row, scheduled)) o.scheduled_resolution = status_of(column_value(row, scheduled));
    o.settles_at = DatumGetTimestampTz(column_value(row, settles_at));
    o.check_at = DatumGetTimestampTz(column_value(row, check_at));
    o.resolved = !column_null(row, resolved_at);
    o.quantity = decimal_value(column_value(row, quantity));
    o.unit_price = decimal_value(column_value(row, unit_price));
    return o;
}

void OutcomeRow::put_state(TupleTableSlot *row, const witn::StatementFold &fold) const {
    const witn::OutcomeState &s = fold.state();
    const Datum quantity_value = numeric_datum(fold.quantity());
    const Datum facts_value = jsonb_datum(s.facts.to_json());
    const Datum attribution_value = jsonb_datum(s.attribution.to_json());
    put_column(row, status, ObjectIdGetDatum(status_oid(s.status)));
    put_column(row, scheduled, s.scheduled_resolution ? ObjectIdGetDatum(status_oid(*s.scheduled_resolution)) : Datum(0),
               !s.scheduled_resolution);
    put_column(row, settles_at, TimestampTzGetDatum(s.settles_at));
    put_column(row, quantity, quantity_value);
    put_column(row, holds, BoolGetDatum(s.condition_holds));
    put_column(row, accepted, Int64GetDatum(s.accepted_events));
    put_column(row, late, Int64GetDatum(fold.late_events()));
    put_column(row, facts, facts_value);
    put_column(row, attribution, attribution_value);
    put_column(row, last_id, Int64GetDatum(fold.last_event_id()), fold.last_event_id() == 0);
}

void OutcomeRow::put_opening(TupleTableSlot *row, Datum customer, Datum outcome_key, const Terms &t,
                             TimestampTz first_settles_at) const {
    put_column(row, customer_key, customer);
    put_column(row, key, outcome_key);
    put_column(row, agent_key, t.agent_key.datum());
    put_column(row, check_at, TimestampTzGetDatum(first_settles_at));
    // witn.condition is stored as its canonical JSON text.
    put_column(row, condition, t.condition.datum());
    put_column(row, period, IntervalPGetDatum(&t.settlement_period));
    put_column(row, method, t.attribution_method.datum());
    put_column(row, version, Int32GetDatum(t.agent_version));
    put_column(row, unit_price, t.unit_price.datum());
    put_column(row, currency, t.currency.datum());
    put_column(row, reversal_condition, t.has_reversal ? t.reversal_condition.datum() : Datum(0), !t.has_reversal);
    put_column(row, reversal_period, t.has_reversal ? IntervalPGetDatum(&t.reversal_period) : Datum(0), !t.has_reversal);
}

void OutcomeRow::put_updated_at(TupleTableSlot *row, TimestampTz now) const {
    put_column(row, updated_at, TimestampTzGetDatum(now));
}

void OutcomeRow::put_resolution(TupleTableSlot *row, witn::Status resolution, TimestampTz now) const {
    put_column(row, status, ObjectIdGetDatum(status_oid(resolution)));
    put_column(row, resolved_at, column_value(row, settles_at));
    put_column(row, updated_at, TimestampTzGetDatum(now));
}

void OutcomeRow::put_reversal(TupleTableSlot *row, TimestampTz now, Datum reason) const {
    put_column(row, reversed_at, TimestampTzGetDatum(now));
    put_column(row, reversal_reason, reason);
    put_column(row, updated_at, TimestampTzGetDatum(now));
}

void OutcomeRow::put_check_at(TupleTableSlot *row, TimestampTz at) const {
    put_column(row, check_at, TimestampTzGetDatum(at));
}

} // namespace witn::pg
