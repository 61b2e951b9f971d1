// libFuzzer target: arbitrary bytes as a condition, a contract and an outcome's event log (small
// alphabets of actions, values, attribution, timestamps, agents, duplicates), split into
// statements at chosen points, with settlement runs between them and, sometimes, a block of
// concurrent statements whose ids interleave taking the lock out of id order. Folding it
// statement by statement with StatementFold must give what the events give one by one in id
// order with apply_event: the same state, late count, last id, dispositions and rejections.
#include "unit/reference_fold.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace witn::testing;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    Bytes in(data, size);
    Scenario sc = decode_scenario(in, Order::Any);
    std::string diff = check_scenario(sc);
    if (!diff.empty()) {
        std::fprintf(stderr, "statement_fold_fuzz: %s\n%s\n", diff.c_str(), describe(sc).c_str());
        std::abort();
    }
    return 0;
}
