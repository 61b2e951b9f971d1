// libFuzzer target: a sequence of credits on one confirmed outcome, decided by the core's
// decide_credit() (CONTRACT §19). The input gives the line's amount and, per step, a kind, an
// amount as text (any bytes: numbers, NaN, garbage) and a reason. Invariants: only witn::Error
// escapes; an accepted credit is more than 0; credits never exceed the line's amount in total;
// credited + remaining = the line's amount, exactly; a reversal leaves nothing and happens once.
#include "core/credit.hpp"
#include "core/error.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace witn;

namespace {

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "credit_fuzz: %s\n", what);
    std::abort();
}

// Splits the input at '|': field by field.
struct Fields {
    std::string_view rest;
    bool more() const { return !rest.empty(); }
    std::string_view next() {
        const std::size_t bar = rest.find('|');
        std::string_view field = rest.substr(0, bar);
        rest = bar == std::string_view::npos ? std::string_view() : rest.substr(bar + 1);
        return field;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    Fields in{std::string_view(reinterpret_cast<const char *>(data), size)};
    const auto line = Decimal::parse(in.next());
    if (!line || line->is_negative() || line->plain_length() > 40) return 0;
    CreditTarget target;
    target.outcome_id = 42;
    target.status = Status::Confirmed;
    target.line_amount = *line;
    for (int step = 0; step < 64 && in.more(); ++step) {
        const std::string_view how = in.next();
        CreditRequest r;
        r.kind = !how.empty() && how[0] == 'r' ? CreditKind::Reversal : CreditKind::Adjustment;
        if (how.size() > 1 && how[1] == 'F') target.status = Status::Failed;
        if (in.more()) {
            const std::string_view amount = in.next();
            if (amount != "NULL" && amount.size() <= 60) r.amount = std::string(amount);
        }
        if (in.more()) r.reason = std::string(in.next());
        CreditDecision d;
        try {
            d = decide_credit(target, r);
        } catch (const Error &) {
            continue; // refused: nothing changes
        }
        if (target.status != Status::Confirmed) fail("a credit on an outcome that is not confirmed");
        if (d.amount && (d.amount->is_negative() || d.amount->is_zero())) fail("a credit of 0 or less");
        if (d.reverses && target.reversed) fail("a second reversal");
        if (d.credited_after > target.line_amount) fail("credits exceed the line's amount");
        if (!(d.credited_after + d.remaining_after == target.line_amount)) fail("credited + remaining != amount");
        if (d.reverses && !d.remaining_after.is_zero()) fail("a reversal left something");
        target.credited = d.credited_after;
        target.reversed = target.reversed || d.reverses;
    }
    return 0;
}
