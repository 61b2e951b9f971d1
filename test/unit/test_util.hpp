// Shared helpers for the core unit tests.
#pragma once

#include "core/attribution.hpp"
#include "core/condition.hpp"
#include "core/decimal.hpp"
#include "core/error.hpp"
#include "core/evaluator.hpp"
#include "core/event.hpp"
#include "core/facts.hpp"
#include "core/json.hpp"
#include "core/outcome.hpp"
#include "core/scalar.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace witn::test {

// A decimal literal that must parse.
inline Decimal D(std::string_view text) {
    auto d = Decimal::parse(text);
    if (!d) throw std::runtime_error("test bug: not a decimal: " + std::string(text));
    return *d;
}

inline Scalar num(std::string_view text) {
    Scalar s;
    s.kind = Scalar::Kind::Number;
    s.number = D(text);
    return s;
}
inline Scalar str(std::string_view text) {
    Scalar s;
    s.kind = Scalar::Kind::String;
    s.string = std::string(text);
    return s;
}
inline Scalar boolean(bool b) {
    Scalar s;
    s.kind = Scalar::Kind::Bool;
    s.boolean = b;
    return s;
}
inline Scalar absent() { return Scalar{}; }
inline Scalar other() {
    Scalar s;
    s.kind = Scalar::Kind::Other;
    return s;
}

inline Event ev(std::string action, Scalar value = absent(), std::int64_t occurred_at = 0,
                std::int64_t seq = 0) {
    Event e;
    e.action = std::move(action);
    e.value = std::move(value);
    e.occurred_at = occurred_at;
    e.seq = seq;
    return e;
}

constexpr std::int64_t kHour = kMicrosPerHour;

inline Contract contract_of(std::string_view condition, std::int64_t period,
                            AttributionMethod method = AttributionMethod::Last) {
    Contract c;
    c.condition = parse_condition(condition);
    c.settlement_period = period;
    c.attribution_method = method;
    return c;
}

// What f throws, as "CODE|message|detail"; "no error" when it returns normally. Any exception
// that is not a witn::Error propagates and fails the test.
struct Thrown {
    bool thrown = false;
    Code code = Code::ValidationError;
    std::string message;
    std::string detail;
    std::string hint;
};

inline Thrown thrown_by(const std::function<void()> &f) {
    Thrown t;
    try {
        f();
    } catch (const Error &e) {
        t.thrown = true;
        t.code = e.code();
        t.message = e.what();
        t.detail = e.detail();
        t.hint = e.hint();
    }
    return t;
}

// The message of the VALIDATION_ERROR f throws, or a description of what happened instead.
inline std::string validation_message(const std::function<void()> &f) {
    Thrown t = thrown_by(f);
    if (!t.thrown) return "<no error>";
    if (t.code != Code::ValidationError) return std::string("<wrong code ") + code_name(t.code) + ">";
    return t.message;
}

inline std::string condition_error(std::string_view text) {
    return validation_message([&] { parse_condition(text); });
}

inline std::string condition_detail(std::string_view text) {
    return thrown_by([&] { parse_condition(text); }).detail;
}

inline std::string canonical(std::string_view text) { return condition_to_json(parse_condition(text)); }

inline bool same_scalar(const Scalar &a, const Scalar &b) {
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case Scalar::Kind::Bool: return a.boolean == b.boolean;
    case Scalar::Kind::Number: return a.number == b.number && a.number.to_string() == b.number.to_string();
    case Scalar::Kind::String: return a.string == b.string;
    default: return true;
    }
}

inline bool same_condition(const Condition &a, const Condition &b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].fact != b[i].fact || a[i].op != b[i].op || a[i].count != b[i].count ||
            !same_scalar(a[i].value, b[i].value))
            return false;
    }
    return true;
}

inline bool eval_events(std::string_view condition_text, const std::vector<Event> &events) {
    return evaluate_log(parse_condition(condition_text), events);
}

} // namespace witn::test
