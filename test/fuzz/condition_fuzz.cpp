// libFuzzer target: arbitrary bytes as a condition. Invalid input must be a witn::Error with
// VALIDATION_ERROR (any other exception escapes and crashes the run). Valid input must round-trip
// through its canonical JSON, describe itself, and evaluate the same way incrementally, over the
// whole log, after a facts round-trip and by an independent reference over a derived event stream.
#include "core/attribution.hpp"
#include "core/condition.hpp"
#include "core/error.hpp"
#include "core/evaluator.hpp"
#include "core/facts.hpp"
#include "core/outcome.hpp"
#include "reference_evaluator.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

using namespace witn;

namespace {

[[noreturn]] void fail(const char *what, std::string_view input) {
    std::fprintf(stderr, "condition_fuzz: %s\ninput: %.*s\n", what, static_cast<int>(input.size()), input.data());
    std::abort();
}

void check(bool ok, const char *what, std::string_view input) {
    if (!ok) fail(what, input);
}

bool same_scalar(const Scalar &a, const Scalar &b) {
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case Scalar::Kind::Bool: return a.boolean == b.boolean;
    case Scalar::Kind::Number: return a.number == b.number && a.number.to_string() == b.number.to_string();
    case Scalar::Kind::String: return a.string == b.string;
    default: return true;
    }
}

// Deterministic randomness derived from the input.
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
    int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
};

using witn::testing::reference_leaf;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char *>(data), size);
    Condition c;
    try {
        c = parse_condition(input);
    } catch (const Error &e) {
        check(e.code() == Code::ValidationError, "rejection is not a VALIDATION_ERROR", input);
        check(std::string_view(e.what()).rfind("VALIDATION_ERROR: ", 0) == 0, "message prefix", input);
        check(e.detail().rfind("at ", 0) == 0, "detail does not say where", input);
        return 0;
    }

    // Canonical JSON: re-parses (no exception may escape here) to the same condition and text.
    std::string canon = condition_to_json(c);
    Condition again = parse_condition(canon);
    check(condition_to_json(again) == canon, "canonical JSON is not idempotent", input);
    check(again.size() == c.size(), "round-trip changed the leaf count", input);
    for (std::size_t i = 0; i < c.size(); ++i) {
        check(again[i].fact == c[i].fact && again[i].op == c[i].op && again[i].count == c[i].count &&
                  same_scalar(again[i].value, c[i].value),
              "round-trip changed a leaf", input);
        check(!c[i].fact.empty() && c[i].fact.size() <= kMaxFactLength, "fact limits", input);
    }
    check(c.size() <= kMaxLeaves, "leaf limit", input);
    std::string words = describe(c);
    check(!words.empty() && describe(again) == words, "describe differs after round-trip", input);

    // A small event stream derived from the condition: its facts with its own values, values next
    // to the thresholds, missing and wrongly typed values, and colliding timestamps.
    Rng rng{std::hash<std::string_view>{}(input) | 1};
    std::vector<Event> events;
    int n = c.empty() ? 3 : std::min<int>(24, static_cast<int>(2 * c.size() + 2));
    static const Decimal one = *Decimal::parse("1"), minus_one = *Decimal::parse("-1");
    for (int i = 0; i < n; ++i) {
        Event e;
        e.seq = i + 1;
        e.occurred_at = rng.below(6) - 2;
        e.action = c.empty() || rng.below(8) == 0 ? "unrelated" : c[static_cast<std::size_t>(rng.below(static_cast<int>(c.size())))].fact;
        const Leaf *source = c.empty() ? nullptr : &c[static_cast<std::size_t>(rng.below(static_cast<int>(c.size())))];
        switch (rng.below(7)) {
        case 0: break; // absent
        case 1: e.value.kind = Scalar::Kind::Other; break;
        case 2:
            e.value.kind = Scalar::Kind::String;
            e.value.string = source && source->value.kind == Scalar::Kind::String ? source->value.string : "4";
            break;
        case 3:
            e.value.kind = Scalar::Kind::Bool;
            e.value.boolean = rng.below(2);
            break;
        default:
            e.value.kind = Scalar::Kind::Number;
            if (source && source->value.kind == Scalar::Kind::Number) {
                int k = rng.below(3);
                e.value.number = k == 0 ? source->value.number : source->value.number + (k == 1 ? one : minus_one);
            } else {
                e.value.number = rng.below(2) ? one : minus_one;
            }
        }
        if (rng.below(3) == 0) e.attribution = rng.below(2) ? one : Decimal();
        events.push_back(std::move(e));
    }

    Contract contract;
    contract.condition = c;
    contract.settlement_period = 1000;
    OutcomeState state = OutcomeState::open(contract);
    Facts facts(c);
    std::vector<Event> log;
    bool ever_held = false;
    for (std::size_t i = 0; i < events.size(); ++i) {
        const Event &e = events[i];
        if (i == events.size() / 2) {
            Facts restored = Facts::from_json(c, facts.to_json());
            check(restored.to_json() == facts.to_json(), "facts round-trip", input);
            facts = restored;
            state.facts = Facts::from_json(c, state.facts.to_json());
            state.attribution = Attribution::from_json(state.attribution.to_json());
        }
        facts.fold(e.action, e.value, e.occurred_at, e.seq);
        log.push_back(e);
        check(apply_event(state, contract, e, 0) == Applied::Accepted, "event late before its time", input);
        bool got = evaluate(c, facts);
        check(got == evaluate_log(c, log), "incremental differs from evaluate_log", input);
        bool expected = true;
        for (const Leaf &leaf : c) expected = expected && reference_leaf(leaf, log);
        check(got == expected, "evaluate differs from the reference", input);
        check(state.condition_holds == got, "apply_event differs from evaluate", input);
        ever_held = ever_held || got;
        check(state.status == (ever_held ? Status::Pending : Status::Open), "status", input);
        std::vector<LeafExplanation> ex = explain(c, facts);
        bool all = true;
        for (const LeafExplanation &x : ex) all = all && x.passes;
        check(ex.size() == c.size() && all == got, "explain disagrees with evaluate", input);
    }
    check(state.facts.to_json() == facts.to_json(), "outcome facts differ", input);
    if (!events.empty()) {
        std::optional<Status> final_status = settle(state, state.settles_at);
        check(final_status.has_value(), "not due at settles_at", input);
        check(*final_status == (ever_held && evaluate(c, facts) ? Status::Confirmed : Status::Failed),
              "settlement result", input);
    }
    return 0;
}
