#include "pg/corrections.hpp"

#include "core/credit.hpp"
#include "core/json.hpp"
#include "pg/billing_period.hpp"
#include "pg/outcome_row.hpp"
#include "pg/placement.hpp"
#include "pg/settings.hpp"
#include "pg/table_writer.hpp"
#include "pg/webhooks.hpp"
#include "pg/values.hpp"
#include "pg/version.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include <cstdio>
#include <optional>
#include <string>

using namespace witn::pg;

namespace {

// The automatic reversal the events trigger is inserting (reverse_by_condition): only that row
// may carry the reserved reason.
struct Automatic {
    bool active = false;
    std::int64_t outcome_id = 0;
};
Automatic automatic_reversal;

class AutomaticScope {
public:
    explicit AutomaticScope(std::int64_t outcome_id) { automatic_reversal = {true, outcome_id}; }
    ~AutomaticScope() { automatic_reversal = {}; }
    AutomaticScope(const AutomaticScope &) = delete;
    AutomaticScope &operator=(const AutomaticScope &) = delete;
};

std::string time_json(TimestampTz t) {
    char *s = pg([&] { return JsonEncodeDateTime(nullptr, TimestampTzGetDatum(t), TIMESTAMPTZOID, nullptr); });
    std::string out = "\"";
    out += s;
    out += "\"";
    pfree(s);
    return out;
}

std::string date_text(Datum d) {
    int year, month, day;
    j2date(DatumGetDateADT(d) + POSTGRES_EPOCH_JDATE, &year, &month, &day);
    char buf[16];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
    return buf;
}

std::string quoted(const std::string &s) {
    std::string out;
    witn::json::append_quoted(out, s);
    return out;
}

// What the notification of a credit says (CONTRACT §19, the shape of §15).
struct CreditNotice {
    std::int64_t outcome_id = 0;
    std::string outcome_key, customer_key, agent_key, currency, reason, kind;
    TimestampTz resolved_at = 0;
    std::optional<TimestampTz> reversed_at;
    witn::Decimal line_amount;
    std::optional<std::int64_t> credit_id;
    Datum billing_period = 0;
};

std::string notice_payload(const CreditNotice &n, const witn::CreditDecision &d, TimestampTz now) {
    const std::string id = "ntf_" + std::to_string(n.outcome_id) +
                           (d.reverses ? std::string("_reversed") : "_credit_" + std::to_string(n.credit_id.value_or(0)));
    std::string credit = "null";
    if (n.credit_id)
        credit = "{\"id\": " + std::to_string(*n.credit_id) + ", \"kind\": " + quoted(n.kind) + ", \"amount\": " +
                 d.amount->to_string() + ", \"reason\": " + quoted(n.reason) + ", \"billing_period\": \"" +
                 date_text(n.billing_period) + "\"}";
    return "{\"id\": " + quoted(id) + ", \"type\": " + quoted(d.notification_kind) + ", \"created_at\": " + time_json(now) +
           ", \"data\": {\"outcome_id\": " + std::to_string(n.outcome_id) + ", \"outcome_key\": " + quoted(n.outcome_key) +
           ", \"customer_key\": " + quoted(n.customer_key) + ", \"agent_key\": " + quoted(n.agent_key) +
           ", \"status\": \"CONFIRMED\", \"resolved_at\": " + time_json(n.resolved_at) + ", \"amount\": " +
           n.line_amount.to_string() + ", \"currency\": " + quoted(n.currency) + ", \"credit\": " + credit +
           ", \"credited\": " + d.credited_after.to_string() + ", \"remaining\": " + d.remaining_after.to_string() +
           ", \"reason\": " + quoted(n.reason) + ", \"reversed_at\": " + (n.reversed_at ? time_json(*n.reversed_at) : "null") +
           "}}";
}

} // namespace

namespace witn::pg {

void reverse_by_condition(Datum customer_key, std::int64_t outcome_id, TimestampTz now) {
    TableWriter credits(witn_table("credit_lines"));
    TupleTableSlot *row = credits.new_row();
    const Datum empty = text_datum("");
    put_column(row, credits.column("customer_key"), customer_key);
    put_column(row, credits.column("outcome_id"), Int64GetDatum(outcome_id));
    put_column(row, credits.column("outcome_key"), empty);
    put_column(row, credits.column("agent_key"), empty);
    put_column(row, credits.column("currency"), empty);
    put_column(row, credits.column("kind"), text_datum(witn::credit_kind_name(witn::CreditKind::Reversal)));
    put_column(row, credits.column("reason"), text_datum(witn::kReversalConditionReason));
    put_column(row, credits.column("billing_period"), DateADTGetDatum(0));
    put_column(row, credits.column("created_at"), TimestampTzGetDatum(now));
    AutomaticScope scope(outcome_id);
    credits.insert(row); // the trigger below decides and completes it, or skips it
    credits.finish();
}

} // namespace witn::pg

// BEFORE INSERT ... FOR EACH ROW on witn.credit_lines (on Citus, on the shard the row went to).
WITN_FUNCTION(witn_credit_lines_issue) {
    if (!CALLED_AS_TRIGGER(fcinfo)) throw std::runtime_error("witn_credit_lines_issue must be called as a trigger");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!TRIGGER_FIRED_BEFORE(trigger->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
        !TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
        throw std::runtime_error("witn_credit_lines_issue must fire BEFORE INSERT FOR EACH ROW");
    // Deciding credits needs the library and the SQL objects to agree (the trigger's argument
    // is the version of the SQL objects that created it).
    require_schema_version(trigger->tg_trigger->tgnargs > 0 ? trigger->tg_trigger->tgargs[0] : nullptr);
    Relation rel = trigger->tg_relation;
    Placement placement(RelationGetRelid(rel), "credit_lines");
    if (placement.on_shard()) require_node_id_range();
    const TupleDesc desc = RelationGetDescr(rel);
    HeapTuple tuple = trigger->tg_trigtuple;
    auto attr = [&](const char *name) { return column_of(desc, "witn.credit_lines", name); };
    const int a_id = attr("id"), a_customer = attr("customer_key"), a_outcome = attr("outcome_id"),
              a_outcome_key = attr("outcome_key"), a_agent_key = attr("agent_key"), a_amount = attr("amount"),
              a_currency = attr("currency"), a_kind = attr("kind"), a_reason = attr("reason"),
              a_period = attr("billing_period");
    auto get = [&](int attnum, bool *isnull) { return pg([&] { return heap_getattr(tuple, attnum, desc, isnull); }); };
    // witn.reverse_outcome, witn.credit_outcome and the events trigger leave the currency (and
    // the keys and the month) to this trigger; a row that brings its own is a restore.
    bool null_currency;
    const Datum given_currency = get(a_currency, &null_currency);
    if (!null_currency && !text_value(given_currency).empty())
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: credit lines are issued by witn",
                          "an inserted credit line carries its own currency",
                          "Use witn.reverse_outcome or witn.credit_outcome. To restore a dump, load it as a superuser "
                          "with session_replication_role = replica.");
    bool null_id, null_customer, null_outcome, null_amount, null_kind, null_reason;
    const Datum id = get(a_id, &null_id), customer = get(a_customer, &null_customer),
                outcome = get(a_outcome, &null_outcome), amount = get(a_amount, &null_amount),
                kind_datum = get(a_kind, &null_kind), reason_datum = get(a_reason, &null_reason);
    if (null_customer || null_outcome)
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: a credit names its outcome (customer_key, outcome_id)",
                          "witn.credit_lines", "Use witn.reverse_outcome or witn.credit_outcome.");
    if (null_id) throw std::runtime_error("witn: a credit line without an id");
    const std::int64_t outcome_id = DatumGetInt64(outcome);
    const std::string kind_text = null_kind ? std::string() : text_value(kind_datum);
    const auto kind = witn::credit_kind_from_name(kind_text);
    if (!kind)
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: kind must be reversal or adjustment",
                          "outcome " + std::to_string(outcome_id) + ", kind " + (null_kind ? "NULL" : kind_text));
    witn::CreditRequest request;
    request.kind = *kind;
    if (!null_reason) request.reason = text_value(reason_datum);
    if (*kind == witn::CreditKind::Reversal && !null_amount)
        throw witn::Error(witn::Code::ValidationError, "VALIDATION_ERROR: a reversal credits what is left; it takes no amount",
                          "outcome " + std::to_string(outcome_id), "Use witn.credit_outcome to credit a part.");
    if (!null_amount) request.amount = output_text(amount, numeric_out);
    request.automatic = automatic_reversal.active && automatic_reversal.outcome_id == outcome_id &&
                        *kind == witn::CreditKind::Reversal && request.reason == std::string(witn::kReversalConditionReason);
    // When the credit is issued: its created_at, which the statement filled in (on Citus on the
    // coordinator, whose transaction the credit is part of; a shard's own transaction may have
    // started later) or the events trigger set to the events' arrival.
    bool null_created;
    const Datum created = get(attr("created_at"), &null_created);
    const TimestampTz now = null_created ? GetCurrentTransactionStartTimestamp() : DatumGetTimestampTz(created);

    // The outcome, locked: concurrent credits of it (and the events that may reverse it) wait
    // here, and each then sees the credits committed before it.
    TableWriter outcomes(witn_table("outcomes"));
    const OutcomeRow c(outcomes);
    TupleTableSlot *locked = outcomes.find_locked({c.id, c.customer_key}, {outcome, customer});
    if (!locked)
        throw witn::Error(witn::Code::OutcomeNotFound, "OUTCOME_NOT_FOUND: no outcome " + std::to_string(outcome_id),
                          "outcome_id " + std::to_string(outcome_id));
    witn::CreditTarget target;
    target.outcome_id = outcome_id;
    target.status = c.status_of(column_value(locked, c.status));
    target.reversed = !column_null(locked, c.reversed_at);
    CreditNotice notice;
    notice.outcome_id = outcome_id;
    notice.customer_key = text_value(customer);
    notice.outcome_key = text_value(column_value(locked, c.key));
    notice.agent_key = text_value(column_value(locked, c.agent_key));
    notice.kind = kind_text;
    notice.reason = request.reason.value_or("");
    if (!column_null(locked, c.resolved_at)) notice.resolved_at = DatumGetTimestampTz(column_value(locked, c.resolved_at));

    IndexReader lines(witn_table("invoice_lines"), {"customer_key", "outcome_id"}, false, IndexReader::Snapshot::Latest);
    if (TupleTableSlot *line = lines.find({customer, outcome})) {
        target.line_amount = decimal_value(column_value(line, lines.column("amount")));
        notice.currency = text_value(column_value(line, lines.column("currency")));
    } else if (target.status == witn::Status::Confirmed) {
        throw std::runtime_error("witn: confirmed outcome " + std::to_string(outcome_id) + " has no invoice line");
    }
    lines.finish();
    notice.line_amount = target.line_amount;
    IndexReader credits(witn_table("credit_lines"), {"customer_key", "outcome_id"}, false, IndexReader::Snapshot::Latest);
    const int credit_amount = credits.column("amount");
    credits.begin({customer, outcome});
    while (TupleTableSlot *credit = credits.next()) target.credited = target.credited + decimal_value(column_value(credit, credit_amount));
    credits.finish();

    const witn::CreditDecision d = witn::decide_credit(target, request);

    CustomerBilling billing;
    notice.billing_period = billing.period_of(customer, now);
    billing.finish();
    if (d.reverses) {
        TupleTableSlot *next = outcomes.new_row_from(locked);
        c.put_reversal(next, now, text_datum(notice.reason));
        outcomes.update(locked, next);
        notice.reversed_at = now;
    }
    if (d.amount) notice.credit_id = DatumGetInt64(id);

    TableWriter notes(witn_table("notifications"), false);
    const std::string payload = notice_payload(notice, d, now);
    const Datum payload_datum = jsonb_datum(payload);
    TupleTableSlot *note = notes.new_row();
    put_column(note, notes.column("customer_key"), customer);
    put_column(note, notes.column("outcome_id"), outcome);
    put_column(note, notes.column("kind"), text_datum(d.notification_kind));
    put_column(note, notes.column("payload"), payload_datum);
    put_column(note, notes.column("credit_id"), notice.credit_id ? id : Datum(0), !notice.credit_id);
    notes.insert(note);
    WebhookQueue webhooks;
    webhooks.queue(customer, d.notification_kind, DatumGetInt64(column_value(note, notes.column("id"))));
    webhooks.finish();
    notes.finish();
    outcomes.finish();
    // On a Citus shard this runs inside the coordinator's distributed transaction, which the node
    // commits with PREPARE TRANSACTION, and PostgreSQL refuses to prepare one that notified:
    // there the row is the notification (witn.issue_credit sends it from the coordinator).
    if (!placement.on_shard()) {
        const std::string message = pg_notify_mode == static_cast<int>(PgNotify::Each)
                                        ? output_text(payload_datum, jsonb_out)
                                        : std::string("{\"type\": \"notifications\", \"count\": 1}");
        pg([&] { Async_Notify("witn_outcomes", message.c_str()); });
    }

    if (!d.amount) return PointerGetDatum(nullptr); // nothing was left: no credit line
    const Datum amount_value = numeric_datum(*d.amount);
    const Datum outcome_key = text_datum(notice.outcome_key), agent_key = text_datum(notice.agent_key),
                currency = text_datum(notice.currency);
    return pg([&] {
        int columns[] = {a_amount, a_outcome_key, a_agent_key, a_currency, a_period};
        Datum values[] = {amount_value, outcome_key, agent_key, currency, notice.billing_period};
        bool nulls[] = {false, false, false, false, false};
        return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 5, columns, values, nulls));
    });
}
