// What the evaluator needs to know about an outcome's log, kept incrementally: per action, how
// many accepted events there were and the latest one's value (by occurred_at, ties by arrival).
#pragma once
#include "pure.hpp"

#include "condition.hpp"
#include "scalar.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace witn {

// Timestamps are microseconds on PostgreSQL's timestamptz scale; sequence numbers give arrival
// order (witn.events.id).
struct ActionFact {
    std::int64_t count = 0;
    std::int64_t latest_at = 0;
    std::int64_t latest_seq = 0;
    Scalar latest_value; // Absent when the latest event has no properties.value
};

class Facts {
public:
    Facts() = default;
    // Only the actions the condition mentions are kept; that bounds the state by the condition.
    explicit Facts(const Condition &condition);
    // The actions either condition mentions (an outcome's condition and its reversal condition).
    Facts(const Condition &condition, const Condition &also);

    void fold(std::string_view action, const Scalar &value, std::int64_t occurred_at,
              std::int64_t seq);

    // nullptr when no accepted event of the action was folded.
    const ActionFact *find(std::string_view action) const;

    // {"csat": {"n": 2, "at": 123, "seq": 9, "v": 4}} — "v" omitted when absent.
    std::string to_json() const;
    static Facts from_json(const Condition &condition, std::string_view text);
    static Facts from_json(Facts tracked, std::string_view text);

private:
    // Every tracked action, count 0 until its first event.
    std::map<std::string, ActionFact, std::less<>> tracked_;
};

} // namespace witn
