#include "pg/event_log.hpp"

#include "pg/event_row.hpp"
#include "pg/values.hpp"

extern "C" {
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

#include <algorithm>

namespace witn::pg {

EventLog::EventLog(Datum customer_key, Datum key, IndexReader::Snapshot snapshot,
                   const std::vector<std::int64_t> *skip, bool with_late)
    : customer_key_(customer_key), key_(key), snapshot_(snapshot), skip_(skip), with_late_(with_late) {}

const witn::Event *EventLog::next() {
    if (!reader_) {
        reader_ = std::make_unique<IndexReader>(witn_table("events"),
                                                std::initializer_list<const char *>{"customer_key", "key", "id"},
                                                false, snapshot_);
        id_ = reader_->column("id");
        action_ = reader_->column("action");
        properties_ = reader_->column("properties");
        occurred_at_ = reader_->column("occurred_at");
        received_at_ = reader_->column("received_at");
        after_resolution_ = reader_->column("after_resolution");
        late_ = reader_->column("late");
        duplicate_ = reader_->column("duplicate_of");
        reader_->begin({customer_key_, key_});
    }
    while (TupleTableSlot *e = reader_->next()) {
        const std::int64_t id = DatumGetInt64(column_value(e, id_));
        if ((!with_late_ && DatumGetBool(column_value(e, late_))) || !column_null(e, duplicate_)) continue;
        if (skip_ && std::find(skip_->begin(), skip_->end(), id) != skip_->end()) continue;
        Jsonb *properties = pg([&] { return DatumGetJsonbP(column_value(e, properties_)); });
        event_ = event_from_properties(text_value(column_value(e, action_)), &properties->root,
                                       DatumGetTimestampTz(column_value(e, occurred_at_)), id, "properties");
        event_.received_at = DatumGetTimestampTz(column_value(e, received_at_));
        event_.after_resolution = DatumGetBool(column_value(e, after_resolution_));
        return &event_;
    }
    return nullptr;
}

void EventLog::finish() {
    if (reader_) reader_->finish();
    reader_.reset();
}

} // namespace witn::pg
