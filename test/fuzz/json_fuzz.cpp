// libFuzzer target: arbitrary bytes as JSON, as exact decimals, as an ISO 8601 timestamp, and as
// stored facts and attribution state. Rejections must be witn::Error (anything else escapes and crashes); what is
// accepted must round-trip, and decimal arithmetic must be consistent.
#include "core/attribution.hpp"
#include "core/condition.hpp"
#include "core/decimal.hpp"
#include "core/error.hpp"
#include "core/evaluator.hpp"
#include "core/facts.hpp"
#include "core/json.hpp"
#include "core/timestamp.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace witn;

namespace {

[[noreturn]] void fail(const char *what, std::string_view input) {
    std::fprintf(stderr, "json_fuzz: %s\ninput: %.*s\n", what, static_cast<int>(input.size()), input.data());
    std::abort();
}

void check(bool ok, const char *what, std::string_view input) {
    if (!ok) fail(what, input);
}

// Arithmetic on numbers whose plain form is huge (1e1000000) is exact but slow; keep those to
// comparisons.
constexpr std::size_t kMaxArithmeticDigits = 5000;

void collect_numbers(const json::Value &v, std::vector<std::string> &out) {
    if (out.size() >= 16) return;
    if (v.kind == json::Kind::Number) out.push_back(v.text);
    for (const json::Value &item : v.items) collect_numbers(item, out);
    for (const auto &member : v.members) collect_numbers(member.second, out);
}

void check_decimals(const std::vector<Decimal> &ds, std::string_view input) {
    for (const Decimal &d : ds) {
        check(d == d && (d <=> d) == 0, "a decimal differs from itself", input);
        check(!(d.is_zero() && d.is_negative()), "negative zero", input);
        if (d.plain_length() > kMaxArithmeticDigits) continue;
        std::string text = d.to_string();
        std::optional<Decimal> back = Decimal::parse(text);
        check(back && *back == d && back->to_string() == text, "to_string does not round-trip", input);
        Decimal neg_sum = d + d;
        check((neg_sum <=> d) == (d <=> Decimal()), "d + d is not on the side of d away from zero", input);
        for (long long divisor : {1LL, 3LL, 7LL}) {
            Decimal q = d.divide(divisor, 20);
            check(!(q.is_zero() && q.is_negative()), "negative zero quotient", input);
            if (divisor == 1 && d.is_integer()) check(q == d, "an integer divided by 1 changed", input);
            if (d.is_zero()) check(q.is_zero(), "zero divided is not zero", input);
        }
    }
    for (std::size_t i = 0; i < ds.size(); ++i)
        for (std::size_t j = 0; j < ds.size(); ++j) {
            const Decimal &a = ds[i], &b = ds[j];
            auto ab = a <=> b, ba = b <=> a;
            check((ab < 0) == (ba > 0) && (ab == 0) == (ba == 0), "comparison is not antisymmetric", input);
            if (a.plain_length() > kMaxArithmeticDigits || b.plain_length() > kMaxArithmeticDigits) continue;
            Decimal s = a + b, t = b + a;
            check(s == t && s.to_string() == t.to_string(), "addition is not commutative", input);
            // Adding something positive moves up, negative moves down, zero stays.
            check((s <=> a) == (b <=> Decimal()), "a + b is not ordered like b against zero", input);
            for (const Decimal &c : ds) {
                if (c.plain_length() > kMaxArithmeticDigits) continue;
                check((a <=> b) != 0 || (a <=> c) == (b <=> c), "equal values compare differently", input);
            }
        }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char *>(data), size);

    // The whole input as a timestamp: years 1..9999 with offsets up to 15:59.
    if (std::optional<std::int64_t> t = parse_iso8601(input))
        check(*t >= -63082281600000000LL - 16LL * 3600000000LL && *t <= 252455673600000000LL + 16LL * 3600000000LL,
              "timestamp out of range", input);

    // The whole input as one decimal.
    std::optional<Decimal> whole = Decimal::parse(input);
    if (whole) check_decimals({*whole}, input);

    // As a JSON document.
    std::vector<std::string> numbers;
    try {
        json::Value v = json::parse(input);
        std::string once = json::write(v);
        json::Value again = json::parse(once);
        check(json::write(again) == once, "json::write is not idempotent", input);
        collect_numbers(v, numbers);
    } catch (const Error &e) {
        check(e.code() == Code::ValidationError, "JSON rejection is not a VALIDATION_ERROR", input);
    }
    std::vector<Decimal> ds;
    for (const std::string &t : numbers) {
        std::optional<Decimal> d = Decimal::parse(t);
        // The JSON grammar and Decimal agree, except for exponents beyond Decimal's range.
        check(d.has_value() || t.find_first_of("eE") != std::string::npos, "a JSON number Decimal rejects", input);
        if (d) ds.push_back(*d);
    }
    check_decimals(ds, input);

    // As stored facts and attribution state: corrupt state is a witn::Error, valid state
    // round-trips exactly.
    static const Condition condition = parse_condition(
        R"([{"fact":"a","operator":"gte","value":1},{"fact":"b","operator":"match","value":"x"},)"
        R"({"fact":"c","operator":"count_gte","value":2}])");
    try {
        Facts f = Facts::from_json(condition, input);
        std::string text = f.to_json();
        check(Facts::from_json(condition, text).to_json() == text, "facts do not round-trip", input);
        evaluate(condition, f);
    } catch (const Error &e) {
        check(e.code() == Code::ValidationError, "facts rejection is not a VALIDATION_ERROR", input);
    }
    try {
        Attribution a = Attribution::from_json(input);
        std::string text = a.to_json();
        check(Attribution::from_json(text).to_json() == text, "attribution does not round-trip", input);
        if (a.count > 0 && a.sum.plain_length() <= kMaxArithmeticDigits) a.quantity(AttributionMethod::Average);
    } catch (const Error &e) {
        check(e.code() == Code::ValidationError, "attribution rejection is not a VALIDATION_ERROR", input);
    }
    return 0;
}
