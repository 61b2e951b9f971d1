#include "decimal.hpp"

#include <algorithm>
#include <limits>
#include <vector>

namespace witn {

namespace {

// Adds or subtracts magnitudes given as digit strings aligned to the same exponent.
std::string add_magnitudes(const std::string &a, const std::string &b) {
    std::string out;
    int carry = 0;
    for (std::size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
        int d = carry;
        if (i < a.size()) d += a[a.size() - 1 - i] - '0';
        if (i < b.size()) d += b[b.size() - 1 - i] - '0';
        out.push_back(char('0' + d % 10));
        carry = d / 10;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

// a - b for magnitudes with a >= b.
std::string sub_magnitudes(const std::string &a, const std::string &b) {
    std::string out;
    int borrow = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        int d = (a[a.size() - 1 - i] - '0') - borrow;
        if (i < b.size()) d -= b[b.size() - 1 - i] - '0';
        borrow = d < 0;
        out.push_back(char('0' + (d + 10) % 10));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

int compare_magnitudes(const std::string &a, const std::string &b) {
    std::size_t ia = a.find_first_not_of('0'), ib = b.find_first_not_of('0');
    std::string_view sa = ia == std::string::npos ? "" : std::string_view(a).substr(ia);
    std::string_view sb = ib == std::string::npos ? "" : std::string_view(b).substr(ib);
    if (sa.size() != sb.size()) return sa.size() < sb.size() ? -1 : 1;
    int c = sa.compare(sb);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

// Exponents beyond this are rejected at parse time: numeric itself stays far below, and it
// bounds the size of any plain-notation string.
constexpr long long kMaxExponent = 1000000;

} // namespace

std::optional<Decimal> Decimal::parse(std::string_view text) {
    std::size_t i = 0;
    Decimal d;
    if (i < text.size() && text[i] == '-') {
        d.negative_ = true;
        ++i;
    }
    std::string mantissa;
    long long frac_digits = 0;
    std::size_t int_start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') mantissa.push_back(text[i++]);
    std::size_t int_len = i - int_start;
    if (int_len == 0 || (int_len > 1 && text[int_start] == '0')) return std::nullopt;
    if (i < text.size() && text[i] == '.') {
        ++i;
        std::size_t frac_start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') mantissa.push_back(text[i++]);
        frac_digits = static_cast<long long>(i - frac_start);
        if (frac_digits == 0) return std::nullopt;
    }
    long long exp = 0;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        bool exp_negative = false;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) exp_negative = text[i++] == '-';
        std::size_t exp_start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            exp = exp * 10 + (text[i++] - '0');
            if (exp > kMaxExponent) return std::nullopt;
        }
        if (i == exp_start) return std::nullopt;
        if (exp_negative) exp = -exp;
    }
    if (i != text.size()) return std::nullopt;
    d.exponent_ = exp - frac_digits;
    d.scale_ = std::max(0LL, -d.exponent_);
    std::size_t nz = mantissa.find_first_not_of('0');
    if (nz == std::string::npos) {
        d.negative_ = false;
        d.exponent_ = 0;
        return d;
    }
    mantissa.erase(0, nz);
    std::size_t trailing = mantissa.size() - 1 - mantissa.find_last_not_of('0');
    mantissa.resize(mantissa.size() - trailing);
    d.exponent_ += static_cast<long long>(trailing);
    d.digits_ = std::move(mantissa);
    return d;
}

std::strong_ordering Decimal::operator<=>(const Decimal &other) const {
    if (is_zero() && other.is_zero()) return std::strong_ordering::equal;
    bool neg_a = !is_zero() && negative_, neg_b = !other.is_zero() && other.negative_;
    if (neg_a != neg_b) return neg_a ? std::strong_ordering::less : std::strong_ordering::greater;
    int mag;
    if (is_zero()) mag = -1;
    else if (other.is_zero()) mag = 1;
    else {
        // Compare the position of the leading digit first, then the digits themselves.
        long long top_a = exponent_ + static_cast<long long>(digits_.size());
        long long top_b = other.exponent_ + static_cast<long long>(other.digits_.size());
        if (top_a != top_b) mag = top_a < top_b ? -1 : 1;
        else {
            int c = digits_.compare(other.digits_);
            mag = c < 0 ? -1 : c > 0 ? 1 : 0;
        }
    }
    if (neg_a) mag = -mag;
    return mag < 0 ? std::strong_ordering::less
                   : mag > 0 ? std::strong_ordering::greater : std::strong_ordering::equal;
}

Decimal Decimal::operator-() const {
    Decimal r = *this;
    if (!r.is_zero()) r.negative_ = !negative_;
    return r;
}

Decimal Decimal::operator+(const Decimal &other) const {
    if (other.is_zero()) {
        Decimal r = *this;
        r.scale_ = std::max(scale_, other.scale_);
        return r;
    }
    if (is_zero()) {
        Decimal r = other;
        r.scale_ = std::max(scale_, other.scale_);
        return r;
    }
    long long exp = std::min(exponent_, other.exponent_);
    std::string a = digits_ + std::string(static_cast<std::size_t>(exponent_ - exp), '0');
    std::string b = other.digits_ + std::string(static_cast<std::size_t>(other.exponent_ - exp), '0');
    Decimal r;
    if (negative_ == other.negative_) {
        a = add_magnitudes(a, b);
        r.negative_ = negative_;
    } else {
        int c = compare_magnitudes(a, b);
        if (c == 0) {
            r.scale_ = std::max(scale_, other.scale_);
            return r;
        }
        if (c > 0) {
            a = sub_magnitudes(a, b);
            r.negative_ = negative_;
        } else {
            a = sub_magnitudes(b, a);
            r.negative_ = other.negative_;
        }
    }
    std::size_t nz = a.find_first_not_of('0');
    a.erase(0, nz);
    std::size_t trailing = a.size() - 1 - a.find_last_not_of('0');
    a.resize(a.size() - trailing);
    r.digits_ = std::move(a);
    r.exponent_ = exp + static_cast<long long>(trailing);
    r.scale_ = std::max(scale_, other.scale_);
    return r;
}

Decimal Decimal::operator*(const Decimal &other) const {
    Decimal r;
    r.scale_ = scale_ + other.scale_;
    if (is_zero() || other.is_zero()) return r;
    // Schoolbook multiplication of the significant digits; both are short (prices, quantities).
    std::vector<int> acc(digits_.size() + other.digits_.size(), 0);
    for (std::size_t i = digits_.size(); i-- > 0;)
        for (std::size_t j = other.digits_.size(); j-- > 0;)
            acc[i + j + 1] += (digits_[i] - '0') * (other.digits_[j] - '0');
    for (std::size_t k = acc.size(); k-- > 1;) {
        acc[k - 1] += acc[k] / 10;
        acc[k] %= 10;
    }
    std::string product;
    for (int d : acc) product.push_back(char('0' + d));
    std::size_t nz = product.find_first_not_of('0');
    product.erase(0, nz);
    std::size_t trailing = product.size() - 1 - product.find_last_not_of('0');
    product.resize(product.size() - trailing);
    r.digits_ = std::move(product);
    r.exponent_ = exponent_ + other.exponent_ + static_cast<long long>(trailing);
    r.negative_ = negative_ != other.negative_;
    if (r.scale_ > kMaxNumericScale) return r.divide(1, static_cast<int>(kMaxNumericScale));
    return r;
}

Decimal Decimal::divide(long long divisor, int scale) const {
    // Long division of the plain digits, one digit beyond `scale` kept for rounding.
    Decimal r;
    r.scale_ = scale;
    if (is_zero() || divisor <= 0) return r;
    long long shift = exponent_ + scale + 1; // value × 10^(scale+1) = digits × 10^shift
    std::string num = digits_;
    if (shift >= 0) num.append(static_cast<std::size_t>(shift), '0');
    else if (static_cast<long long>(num.size()) + shift <= 0) num = "0";
    else num.resize(num.size() - static_cast<std::size_t>(-shift));
    std::string quotient;
    __int128 rem = 0;
    for (char c : num) {
        rem = rem * 10 + (c - '0');
        quotient.push_back(char('0' + static_cast<int>(rem / divisor)));
        rem %= divisor;
    }
    // Round half away from zero on the extra digit, then drop it.
    bool round_up = quotient.back() >= '5';
    quotient.pop_back();
    if (quotient.empty()) quotient = "0";
    if (round_up) quotient = add_magnitudes(quotient, "1");
    std::size_t nz = quotient.find_first_not_of('0');
    if (nz == std::string::npos) return r;
    quotient.erase(0, nz);
    std::size_t trailing = quotient.size() - 1 - quotient.find_last_not_of('0');
    quotient.resize(quotient.size() - trailing);
    r.digits_ = std::move(quotient);
    r.exponent_ = -scale + static_cast<long long>(trailing);
    r.negative_ = negative_;
    return r;
}

bool Decimal::is_integer() const { return is_zero() || exponent_ >= 0; }

std::size_t Decimal::plain_length() const {
    long long int_digits = std::max(1LL, static_cast<long long>(digits_.size()) + exponent_);
    return static_cast<std::size_t>(int_digits + scale_);
}

std::string Decimal::to_string() const {
    std::string out;
    if (negative_ && !is_zero()) out.push_back('-');
    long long int_digits = static_cast<long long>(digits_.size()) + exponent_;
    if (is_zero()) out.push_back('0');
    else if (int_digits <= 0) out.push_back('0');
    else {
        for (long long i = 0; i < int_digits; ++i)
            out.push_back(i < static_cast<long long>(digits_.size()) ? digits_[static_cast<std::size_t>(i)] : '0');
    }
    if (scale_ > 0) {
        out.push_back('.');
        for (long long pos = 1; pos <= scale_; ++pos) {
            // digit at 10^-pos
            long long idx = int_digits + pos - 1;
            out.push_back(!is_zero() && idx >= 0 && idx < static_cast<long long>(digits_.size())
                              ? digits_[static_cast<std::size_t>(idx)] : '0');
        }
    }
    return out;
}

} // namespace witn
