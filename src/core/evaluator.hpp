// Evaluates a condition over facts. The same code serves the events trigger, witn.evaluate,
// witn.explain and witn.replay.
#pragma once
#include "pure.hpp"

#include "condition.hpp"
#include "event.hpp"
#include "facts.hpp"

#include <vector>

namespace witn {

bool leaf_holds(const Leaf &leaf, const ActionFact *fact);
bool evaluate(const Condition &condition, const Facts &facts);

struct LeafExplanation {
    const Leaf *leaf;
    const ActionFact *fact; // nullptr: no event of that action
    bool passes;
};
// Folds a whole log (in arrival order) and evaluates: the definition the incremental path must
// agree with.
bool evaluate_log(const Condition &condition, const std::vector<Event> &events);

std::vector<LeafExplanation> explain(const Condition &condition, const Facts &facts);

} // namespace witn
