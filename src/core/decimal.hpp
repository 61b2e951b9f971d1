// Exact decimal numbers as they appear in JSON text: no binary floating point anywhere, so
// 9007199254740993 > 9007199254740992 and 699.99999999999999999999 < 700 hold.
#pragma once
#include "pure.hpp"

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace witn {

// numeric's largest display scale (NUMERIC_DSCALE_MAX).
constexpr long long kMaxNumericScale = 16383;

class Decimal {
public:
    Decimal() = default; // zero

    // Parses a JSON number ("-12.50e3"). Returns nullopt for anything else.
    static std::optional<Decimal> parse(std::string_view text);

    // Exact comparison by value: 4 == 4.0 == 40e-1.
    std::strong_ordering operator<=>(const Decimal &other) const;
    bool operator==(const Decimal &other) const { return (*this <=> other) == 0; }

    Decimal operator+(const Decimal &other) const;
    Decimal operator-() const;
    Decimal operator-(const Decimal &other) const { return *this + -other; }
    // The product with the sum of both scales, as numeric's multiplication gives it
    // (0.99 x 1.5 = 1.485, 10 x 1.20 = 12.00): exact up to numeric's largest scale, 16383
    // fractional digits, and rounded half away from zero there.
    Decimal operator*(const Decimal &other) const;
    // this / divisor (divisor > 0), rounded half away from zero to `scale` fractional digits.
    Decimal divide(long long divisor, int scale) const;

    bool is_negative() const { return negative_; }
    bool is_zero() const { return digits_.empty(); }
    bool is_integer() const;
    // Number of digits in the plain-notation form; bounds what validation accepts.
    std::size_t plain_length() const;

    // Plain notation, keeping the scale it was written with ("4.0" stays "4.0", "1e3" is "1000").
    std::string to_string() const;

private:
    bool negative_ = false;
    std::string digits_;  // significant digits, no leading zeros; empty means zero
    long long exponent_ = 0; // value = digits_ × 10^exponent_
    long long scale_ = 0;    // fractional digits to print (>= 0)
};

} // namespace witn
