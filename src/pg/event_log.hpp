// An outcome's accepted events as witn.events holds them (not late, not duplicates), in id
// order, read through the (customer_key, key, id) index: for witn.replay, and for the write
// path's replay in arrival order (the core's History).
#pragma once

#include "pg/postgres.hpp"

#include "core/statement_fold.hpp"
#include "pg/table_writer.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace witn::pg {

class EventLog final : public witn::History {
public:
    // `skip`: ids to leave out (this statement's rows already decided, which the table does not
    // show yet); it must outlive the log. The walk starts on the first next().
    // `with_late`: late events too (every event but duplicates: witn.simulate decides lateness
    // anew).
    EventLog(Datum customer_key, Datum key, IndexReader::Snapshot snapshot,
             const std::vector<std::int64_t> *skip = nullptr, bool with_late = false);
    ~EventLog() override = default;
    const witn::Event *next() override;
    void finish();

private:
    Datum customer_key_, key_;
    IndexReader::Snapshot snapshot_;
    const std::vector<std::int64_t> *skip_;
    bool with_late_;
    std::unique_ptr<IndexReader> reader_;
    int id_ = 0, action_ = 0, properties_ = 0, occurred_at_ = 0, received_at_ = 0, after_resolution_ = 0, late_ = 0, duplicate_ = 0;
    witn::Event event_;
};

} // namespace witn::pg
