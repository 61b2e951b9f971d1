// Exact decimals: parsing JSON numbers, comparison, addition, division, plain notation.
#include "test_util.hpp"

#include <limits>
#include <random>

using namespace witn;
using namespace witn::test;

namespace {

std::string plain(std::string_view text) { return D(text).to_string(); }

// An integer mantissa with `scale` fractional digits as plain decimal text: (-1234, 2) -> "-12.34".
std::string fixed_text(__int128 mantissa, int scale) {
    bool neg = mantissa < 0;
    unsigned __int128 m = neg ? static_cast<unsigned __int128>(-mantissa) : static_cast<unsigned __int128>(mantissa);
    std::string digits;
    do {
        digits.insert(digits.begin(), char('0' + int(m % 10)));
        m /= 10;
    } while (m);
    while (static_cast<int>(digits.size()) <= scale) digits.insert(digits.begin(), '0');
    std::string out = neg ? "-" : "";
    out += digits.substr(0, digits.size() - static_cast<std::size_t>(scale));
    if (scale > 0) out += "." + digits.substr(digits.size() - static_cast<std::size_t>(scale));
    return out;
}

__int128 pow10(int n) {
    __int128 p = 1;
    while (n-- > 0) p *= 10;
    return p;
}

} // namespace

TEST(DecimalParse, AcceptsJsonNumbers) {
    for (const char *t : {"0", "-0", "4", "-4", "4.0", "40e-1", "0.4e1", "1E3", "1e+3", "1e-3", "-12.50e3",
                          "0.000", "123456789012345678901234567890", "1e1000000", "1e-1000000",
                          "699.99999999999999999999"})
        EXPECT_TRUE(Decimal::parse(t).has_value()) << t;
}

TEST(DecimalParse, RejectsEverythingElse) {
    for (const char *t : {"", "-", "+1", "01", "-01", "00", "1.", ".5", "-.5", "1e", "1e+", "1e-", "0x10",
                          " 1", "1 ", "NaN", "Infinity", "-Infinity", "1e1000001", "1e-1000001", "--1",
                          "1.2.3", "1e2e3", "1,5", "١", "1_000", "e3", "-e3"})
        EXPECT_FALSE(Decimal::parse(t).has_value()) << '"' << t << '"';
}

TEST(DecimalParse, ExponentBoundIsOnTheWrittenExponent) {
    // 1e1000000 is the largest exponent accepted; digits do not count against it.
    EXPECT_TRUE(Decimal::parse("1e1000000"));
    EXPECT_TRUE(Decimal::parse("1e-1000000"));
    EXPECT_TRUE(Decimal::parse("1e0001000000")); // leading zeros in the exponent are fine
    EXPECT_FALSE(Decimal::parse("1e1000001"));
    EXPECT_FALSE(Decimal::parse("1e99999999999999999999999999999")); // no overflow
}

TEST(DecimalToString, PlainNotationKeepsWrittenScale) {
    EXPECT_EQ(plain("0"), "0");
    EXPECT_EQ(plain("-0"), "0");
    EXPECT_EQ(plain("-0.00"), "0.00");
    EXPECT_EQ(plain("0.000"), "0.000");
    EXPECT_EQ(plain("0e5"), "0");
    EXPECT_EQ(plain("0e-3"), "0.000");
    EXPECT_EQ(plain("-0e-2"), "0.00");
    EXPECT_EQ(plain("4"), "4");
    EXPECT_EQ(plain("4.0"), "4.0");
    EXPECT_EQ(plain("40e-1"), "4.0");
    EXPECT_EQ(plain("0.4e1"), "4");
    EXPECT_EQ(plain("1e3"), "1000");
    EXPECT_EQ(plain("1E+3"), "1000");
    EXPECT_EQ(plain("-12.50e3"), "-12500");
    EXPECT_EQ(plain("1.5e-3"), "0.0015");
    EXPECT_EQ(plain("-1.5e-3"), "-0.0015");
    EXPECT_EQ(plain("123.450"), "123.450");
    EXPECT_EQ(plain("1.23e1"), "12.3");
    EXPECT_EQ(plain("1.23e2"), "123");
    EXPECT_EQ(plain("100"), "100");
    EXPECT_EQ(plain("100.0100"), "100.0100");
    EXPECT_EQ(plain("5e-1"), "0.5");
    EXPECT_EQ(plain("699.99999999999999999999"), "699.99999999999999999999");
    EXPECT_EQ(plain("9007199254740993"), "9007199254740993");
    EXPECT_EQ(plain("1e30"), "1" + std::string(30, '0'));
    EXPECT_EQ(plain("1e-30"), "0." + std::string(29, '0') + "1");
}

TEST(DecimalToString, RoundTripsThroughParse) {
    for (const char *t : {"0", "0.000", "-1", "4.0", "40e-1", "1e3", "-12.50e3", "1.5e-3", "123.450",
                          "699.99999999999999999999", "1e-40", "-7e40", "0.1e-1"}) {
        std::string once = plain(t);
        EXPECT_EQ(plain(once), once) << t;
        EXPECT_EQ(D(once), D(t)) << t;
    }
}

TEST(DecimalToString, HugeExponentsArePlainToo) {
    std::string big = plain("1e1000000");
    EXPECT_EQ(big.size(), 1000001u);
    EXPECT_EQ(big.front(), '1');
    EXPECT_EQ(big.find_first_not_of('0', 1), std::string::npos);
    std::string small = plain("1e-1000000");
    EXPECT_EQ(small.size(), 1000002u);
    EXPECT_EQ(small.substr(0, 2), "0.");
    EXPECT_EQ(small.back(), '1');
    EXPECT_EQ(D(big), D("1e1000000"));
    EXPECT_EQ(D(small), D("1e-1000000"));
}

TEST(DecimalCompare, ContractExamples) {
    EXPECT_LT(D("699.99999999999999999999"), D("700"));
    EXPECT_GT(D("9007199254740993"), D("9007199254740992"));
    EXPECT_NE(D("9007199254740993"), D("9007199254740992"));
    EXPECT_EQ(D("4"), D("4.0"));
    EXPECT_EQ(D("4.0"), D("40e-1"));
    EXPECT_EQ(D("4"), D("40e-1"));
    EXPECT_EQ(D("4"), D("0.4e1"));
    EXPECT_EQ(D("4"), D("4.000000000000000000000000000000"));
}

TEST(DecimalCompare, NegativeZeroIsZero) {
    EXPECT_EQ(D("-0"), D("0"));
    EXPECT_EQ(D("-0.0"), D("0"));
    EXPECT_EQ(D("-0e10"), D("0.000"));
    EXPECT_EQ(D("-0"), Decimal());
    EXPECT_FALSE(D("-0").is_negative());
    EXPECT_FALSE(D("-0.000").is_negative());
    EXPECT_TRUE(D("-0").is_zero());
    EXPECT_LT(D("-0.0000001"), D("-0"));
    EXPECT_GT(D("0.0000001"), D("-0"));
}

TEST(DecimalCompare, TotalOrderOverAscendingList) {
    // Groups of equal values, in strictly ascending order.
    const std::vector<std::vector<const char *>> groups = {
        {"-1e1000000"},
        {"-9e999999"},
        {"-9007199254740993"},
        {"-9007199254740992", "-9.007199254740992e15"},
        {"-700", "-7e2", "-700.000"},
        {"-699.99999999999999999999"},
        {"-10"},
        {"-9.99"},
        {"-2"},
        {"-1", "-1.0", "-10e-1"},
        {"-0.5", "-5e-1"},
        {"-0.15"},
        {"-0.1"},
        {"-1e-1000000"},
        {"0", "-0", "0.0", "0e7", "-0e-7"},
        {"1e-1000000"},
        {"1e-999999"},
        {"0.1", "1e-1", "0.10"},
        {"0.11"},
        {"0.15"},
        {"0.151"},
        {"0.5"},
        {"1", "1.0", "10e-1", "0.1e1"},
        {"1.000000000000000000000000001"},
        {"1.5", "1.50", "15e-1"},
        {"2"},
        {"4", "4.0", "40e-1"},
        {"9.99"},
        {"10", "1e1"},
        {"99"},
        {"100", "1e2"},
        {"699.99999999999999999999"},
        {"700", "7e2"},
        {"9007199254740992"},
        {"9007199254740993"},
        {"1e30"},
        {"9e999999"},
        {"1e1000000", "10e999999"},
    };
    std::vector<std::pair<Decimal, std::size_t>> all;
    for (std::size_t g = 0; g < groups.size(); ++g)
        for (const char *t : groups[g]) all.emplace_back(D(t), g);
    for (const auto &[a, ga] : all)
        for (const auto &[b, gb] : all) {
            auto expected = ga <=> gb;
            EXPECT_EQ(a <=> b, expected) << a.to_string().substr(0, 30) << " vs " << b.to_string().substr(0, 30);
            EXPECT_EQ(a == b, ga == gb);
        }
}

TEST(DecimalPredicates, IntegerNegativeZero) {
    EXPECT_TRUE(D("4").is_integer());
    EXPECT_TRUE(D("4.0").is_integer());
    EXPECT_TRUE(D("4.000").is_integer());
    EXPECT_TRUE(D("1e3").is_integer());
    EXPECT_TRUE(D("1.5e1").is_integer());
    EXPECT_TRUE(D("0").is_integer());
    EXPECT_TRUE(D("0.0").is_integer());
    EXPECT_TRUE(D("-3").is_integer());
    EXPECT_FALSE(D("4.5").is_integer());
    EXPECT_FALSE(D("1.25e1").is_integer());
    EXPECT_FALSE(D("1e-1").is_integer());
    EXPECT_FALSE(D("1e-1000000").is_integer());
    EXPECT_TRUE(D("-1").is_negative());
    EXPECT_TRUE(D("-0.001").is_negative());
    EXPECT_FALSE(D("1").is_negative());
    EXPECT_TRUE(Decimal().is_zero());
    EXPECT_FALSE(D("1e-1000000").is_zero());
}

TEST(DecimalPredicates, PlainLength) {
    EXPECT_EQ(D("0").plain_length(), 1u);
    EXPECT_EQ(D("123").plain_length(), 3u);
    EXPECT_EQ(D("-123").plain_length(), 3u);
    EXPECT_EQ(D("0.5").plain_length(), 2u);
    EXPECT_EQ(D("1e-5").plain_length(), 6u);
    EXPECT_EQ(D("1.50").plain_length(), 3u);
    EXPECT_EQ(D("1e999").plain_length(), 1000u);
    EXPECT_EQ(D("1e-999").plain_length(), 1000u);
    EXPECT_EQ(D("0e-999").plain_length(), 1000u);
    EXPECT_EQ(D("1e1000").plain_length(), 1001u);
    for (const char *t : {"0", "12.5", "1e-5", "-3e4", "0.000"}) {
        std::string s = D(t).to_string();
        std::size_t digits = 0;
        for (char c : s) digits += c >= '0' && c <= '9';
        EXPECT_EQ(D(t).plain_length(), digits) << t;
    }
}

TEST(DecimalAdd, Basics) {
    EXPECT_EQ((D("1") + D("2")).to_string(), "3");
    EXPECT_EQ((D("0.1") + D("0.2")).to_string(), "0.3");
    EXPECT_EQ(D("0.1") + D("0.2"), D("0.3"));
    EXPECT_EQ((D("1.5") + D("2.25")).to_string(), "3.75");
    EXPECT_EQ((D("1.10") + D("2")).to_string(), "3.10");
    EXPECT_EQ((D("999") + D("1")).to_string(), "1000");
    EXPECT_EQ((D("9007199254740992") + D("1")).to_string(), "9007199254740993");
    EXPECT_EQ((D("1e-20") + D("1")).to_string(), "1.00000000000000000001");
    EXPECT_EQ((D("1e3") + D("1e-3")).to_string(), "1000.001");
    EXPECT_EQ((D("699.99999999999999999999") + D("0.00000000000000000001")).to_string(), "700.00000000000000000000");
}

TEST(DecimalAdd, MixedSigns) {
    EXPECT_EQ((D("1.5") + D("-0.5")).to_string(), "1.0");
    EXPECT_EQ((D("-1.5") + D("0.5")).to_string(), "-1.0");
    EXPECT_EQ((D("5") + D("-7")).to_string(), "-2");
    EXPECT_EQ((D("-5") + D("7")).to_string(), "2");
    EXPECT_EQ((D("-5") + D("-7")).to_string(), "-12");
    EXPECT_EQ((D("1000") + D("-0.001")).to_string(), "999.999");
    EXPECT_EQ((D("-1000") + D("0.001")).to_string(), "-999.999");
    EXPECT_EQ((D("0.001") + D("-1000")).to_string(), "-999.999");
    EXPECT_EQ((D("100") + D("-99.99")).to_string(), "0.01");
}

TEST(DecimalAdd, ZeroResultsAreNotNegative) {
    Decimal z = D("1") + D("-1");
    EXPECT_TRUE(z.is_zero());
    EXPECT_FALSE(z.is_negative());
    EXPECT_EQ(z.to_string(), "0");
    EXPECT_EQ((D("1.00") + D("-1")).to_string(), "0.00");
    EXPECT_EQ((D("-0") + D("0.0")).to_string(), "0.0");
    EXPECT_EQ((D("0") + D("-3.5")).to_string(), "-3.5");
    EXPECT_EQ((D("-3.5") + D("0.000")).to_string(), "-3.500");
    EXPECT_EQ((Decimal() + Decimal()).to_string(), "0");
    EXPECT_EQ((D("-2") + D("2")) <=> Decimal(), std::strong_ordering::equal);
}

TEST(DecimalAdd, FarApartExponents) {
    Decimal s = D("1e1000") + D("1");
    EXPECT_EQ(s, D("1" + std::string(999, '0') + "1"));
    EXPECT_TRUE(s.is_integer());
    Decimal t = D("1e1000") + D("-1e1000");
    EXPECT_TRUE(t.is_zero());
    Decimal u = D("1e-1000") + D("-1e-1000");
    EXPECT_TRUE(u.is_zero());
    EXPECT_EQ(u.to_string(), "0." + std::string(1000, '0'));
}

TEST(DecimalAdd, RandomAgreesWithIntegerArithmetic) {
    std::mt19937_64 rng(20240611);
    std::uniform_int_distribution<long long> mant(-1000000000000LL, 1000000000000LL);
    std::uniform_int_distribution<int> scale(0, 8);
    for (int i = 0; i < 5000; ++i) {
        long long a = mant(rng), b = mant(rng);
        if (i % 7 == 0) b = -a; // exact cancellation
        int sa = scale(rng), sb = scale(rng);
        int s = std::max(sa, sb);
        __int128 sum = static_cast<__int128>(a) * pow10(s - sa) + static_cast<__int128>(b) * pow10(s - sb);
        Decimal da = D(fixed_text(a, sa)), db = D(fixed_text(b, sb));
        std::string expected = fixed_text(sum, s);
        EXPECT_EQ((da + db).to_string(), expected) << fixed_text(a, sa) << " + " << fixed_text(b, sb);
        EXPECT_EQ((db + da).to_string(), expected);
        EXPECT_EQ(da + db, D(expected));
        // Comparison agrees with the integers too.
        __int128 ia = static_cast<__int128>(a) * pow10(s - sa), ib = static_cast<__int128>(b) * pow10(s - sb);
        EXPECT_EQ(da <=> db, ia <=> ib);
    }
}

TEST(DecimalAdd, Associative) {
    std::vector<Decimal> v = {D("0.1"), D("-7.25"), D("1e20"), D("-1e20"), D("3.000"), D("1e-15"), D("-0")};
    for (const Decimal &a : v)
        for (const Decimal &b : v)
            for (const Decimal &c : v) EXPECT_EQ((a + b) + c, a + (b + c));
}

TEST(DecimalDivide, RoundsHalfAwayFromZero) {
    EXPECT_EQ(D("1").divide(3, 20).to_string(), "0.33333333333333333333");
    EXPECT_EQ(D("2").divide(3, 20).to_string(), "0.66666666666666666667");
    EXPECT_EQ(D("-2").divide(3, 20).to_string(), "-0.66666666666666666667");
    EXPECT_EQ(D("5").divide(2, 0).to_string(), "3");
    EXPECT_EQ(D("-5").divide(2, 0).to_string(), "-3");
    EXPECT_EQ(D("7").divide(2, 0).to_string(), "4");
    EXPECT_EQ(D("0.5").divide(1, 0).to_string(), "1");
    EXPECT_EQ(D("-0.5").divide(1, 0).to_string(), "-1");
    EXPECT_EQ(D("0.49999999999").divide(1, 0).to_string(), "0");
    EXPECT_EQ(D("1.25").divide(1, 1).to_string(), "1.3");
    EXPECT_EQ(D("-1.25").divide(1, 1).to_string(), "-1.3");
    EXPECT_EQ(D("1.35").divide(1, 1).to_string(), "1.4");
    EXPECT_EQ(D("10").divide(4, 1).to_string(), "2.5");
    EXPECT_EQ(D("10").divide(4, 3).to_string(), "2.500");
    EXPECT_EQ(D("7").divide(7, 20).to_string(), "1.00000000000000000000");
    EXPECT_EQ(D("8.5").divide(4, 20).to_string(), "2.12500000000000000000");
}

TEST(DecimalDivide, TinyAndZeroResults) {
    Decimal z = D("-0.4").divide(1, 0);
    EXPECT_TRUE(z.is_zero());
    EXPECT_FALSE(z.is_negative());
    EXPECT_EQ(z.to_string(), "0");
    EXPECT_EQ(D("1e-30").divide(1, 20).to_string(), "0.00000000000000000000");
    EXPECT_EQ(D("-1e-30").divide(1, 20).to_string(), "0.00000000000000000000");
    EXPECT_EQ(D("5e-21").divide(1, 20).to_string(), "0.00000000000000000001");
    EXPECT_EQ(D("-5e-21").divide(1, 20).to_string(), "-0.00000000000000000001");
    EXPECT_EQ(D("4.9e-21").divide(1, 20).to_string(), "0.00000000000000000000");
    EXPECT_EQ(D("1e-1000000").divide(3, 20).to_string(), "0.00000000000000000000");
    EXPECT_EQ(Decimal().divide(3, 2).to_string(), "0.00");
    EXPECT_EQ(D("0.000").divide(7, 20), Decimal());
}

TEST(DecimalDivide, LargeOperands) {
    constexpr long long kMax = std::numeric_limits<long long>::max();
    EXPECT_EQ(D("9223372036854775807").divide(kMax, 0).to_string(), "1");
    EXPECT_EQ(D("1").divide(kMax, 20).to_string(), "0.00000000000000000011");
    EXPECT_EQ(D("1e30").divide(3, 2).to_string(), std::string(30, '3') + ".33");
    EXPECT_EQ(D("2e30").divide(3, 0).to_string(), std::string(29, '6') + "7");
    EXPECT_EQ(D("1e40").divide(1, 20), D("1e40"));
}

TEST(DecimalDivide, RandomAgreesWithIntegerArithmetic) {
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<long long> mant(-1000000000000LL, 1000000000000LL);
    std::uniform_int_distribution<long long> div(1, 5000);
    std::uniform_int_distribution<int> scale(0, 6);
    for (int i = 0; i < 5000; ++i) {
        long long a = mant(rng), d = div(rng);
        int sa = scale(rng), s = scale(rng);
        // a/10^sa / d rounded to s digits: round(a × 10^s / (10^sa × d)), half away from zero.
        __int128 num = static_cast<__int128>(a < 0 ? -a : a) * pow10(s);
        __int128 den = pow10(sa) * d;
        __int128 q = (2 * num + den) / (2 * den);
        if (a < 0) q = -q;
        Decimal got = D(fixed_text(a, sa)).divide(d, s);
        EXPECT_EQ(got.to_string(), fixed_text(q, s)) << fixed_text(a, sa) << " / " << d << " @" << s;
    }
}

// ---- multiplication ----------------------------------------------------------------------

namespace {

std::string product(std::string_view a, std::string_view b) { return (D(a) * D(b)).to_string(); }

// A decimal as the reference multiplies it, independent of Decimal: the value times 10^scale as
// a digit string (no leading zeros, "0" for zero), its sign and its scale.
struct Fixed {
    bool negative = false;
    std::string digits = "0";
    int scale = 0;
};

std::string strip_leading_zeros(const std::string &s) {
    std::size_t nz = s.find_first_not_of('0');
    return nz == std::string::npos ? "0" : s.substr(nz);
}

std::string add_digit_strings(const std::string &a, const std::string &b) {
    std::string out;
    int carry = 0;
    for (std::size_t i = 0; i < a.size() || i < b.size() || carry; ++i) {
        int d = carry + (i < a.size() ? a[a.size() - 1 - i] - '0' : 0) + (i < b.size() ? b[b.size() - 1 - i] - '0' : 0);
        out.insert(out.begin(), char('0' + d % 10));
        carry = d / 10;
    }
    return strip_leading_zeros(out);
}

// a × b by Horner's rule: for each digit of b, shift the running product and add a that many times.
std::string multiply_digit_strings(const std::string &a, const std::string &b) {
    std::string out = "0";
    for (char c : b) {
        out = strip_leading_zeros(out + "0");
        for (int k = 0; k < c - '0'; ++k) out = add_digit_strings(out, a);
    }
    return out;
}

Fixed multiply(const Fixed &a, const Fixed &b) {
    Fixed p;
    p.digits = multiply_digit_strings(a.digits, b.digits);
    p.scale = a.scale + b.scale;
    p.negative = p.digits != "0" && a.negative != b.negative;
    return p;
}

// Plain notation with exactly `scale` fractional digits, as numeric prints it.
std::string plain_text(const Fixed &f) {
    std::string d = f.digits;
    if (static_cast<int>(d.size()) <= f.scale) d.insert(0, static_cast<std::size_t>(f.scale) + 1 - d.size(), '0');
    std::string out = f.negative ? "-" : "";
    out += d.substr(0, d.size() - static_cast<std::size_t>(f.scale));
    if (f.scale > 0) out += "." + d.substr(d.size() - static_cast<std::size_t>(f.scale));
    return out;
}

// The same value and scale written with an exponent: digits e-scale, or d.ddd e k with as many
// fractional digits as make the same scale.
std::string exponent_text(const Fixed &f, std::mt19937_64 &rng) {
    std::string sign = f.negative ? "-" : "";
    const int len = static_cast<int>(f.digits.size());
    if (len < 2 || rng() % 2) return sign + f.digits + "e-" + std::to_string(f.scale);
    int frac = 1 + static_cast<int>(rng() % static_cast<unsigned>(len - 1));
    return sign + f.digits.substr(0, static_cast<std::size_t>(len - frac)) + "." +
           f.digits.substr(static_cast<std::size_t>(len - frac)) + "e" + std::to_string(frac - f.scale);
}

Fixed random_fixed(std::mt19937_64 &rng, int max_digits) {
    Fixed f;
    int len = static_cast<int>(rng() % static_cast<unsigned>(max_digits + 1));
    std::string d;
    for (int i = 0; i < len; ++i) d.push_back(char('0' + rng() % 10));
    f.digits = strip_leading_zeros(d);
    if (rng() % 8 == 0) f.digits = "0";
    f.scale = static_cast<int>(rng() % 26);
    f.negative = f.digits != "0" && rng() % 2;
    return f;
}

} // namespace

TEST(DecimalMultiply, KeepsTheSumOfTheScalesLikeNumeric) {
    EXPECT_EQ(product("0.99", "1.5"), "1.485");
    EXPECT_EQ(product("10", "1.20"), "12.00");
    EXPECT_EQ(product("0.99", "3"), "2.97");
    EXPECT_EQ(product("1.50", "2.0"), "3.000");
    EXPECT_EQ(product("2.5", "4"), "10.0");
    EXPECT_EQ(product("0.5", "0.2"), "0.10");
    EXPECT_EQ(product("100", "100"), "10000");
    EXPECT_EQ(product("7", "6"), "42");
    EXPECT_TRUE((D("2.5") * D("4")).is_integer());
    EXPECT_EQ((D("1.50") * D("2.0")).plain_length(), 4u);
}

TEST(DecimalMultiply, Signs) {
    EXPECT_EQ(product("-2", "3"), "-6");
    EXPECT_EQ(product("2", "-3"), "-6");
    EXPECT_EQ(product("-2", "-3"), "6");
    EXPECT_EQ(product("-2", "-0.5"), "1.0");
    EXPECT_EQ(product("2", "-0.5"), "-1.0");
    EXPECT_EQ(product("-0.001", "0.001"), "-0.000001");
    EXPECT_TRUE((D("-2") * D("3")).is_negative());
    EXPECT_FALSE((D("-2") * D("-3")).is_negative());
}

TEST(DecimalMultiply, ZerosKeepTheScaleAndAreNeverNegative) {
    EXPECT_EQ(product("0", "1.5"), "0.0");
    EXPECT_EQ(product("1.5", "0"), "0.0");
    EXPECT_EQ(product("-0.0", "1.5"), "0.00");
    EXPECT_EQ(product("0.00", "0.000"), "0.00000");
    EXPECT_EQ(product("-1.5", "0"), "0.0");
    EXPECT_EQ(product("0", "-1e-3"), "0.000");
    EXPECT_EQ(product("0e5", "7"), "0");
    for (const char *z : {"0", "-0", "0.00", "-0e-4"})
        for (const char *x : {"-1.5", "1", "-1e-20", "123456789012345678901234567890"}) {
            Decimal p = D(z) * D(x);
            EXPECT_TRUE(p.is_zero()) << z << " x " << x;
            EXPECT_FALSE(p.is_negative()) << z << " x " << x;
            EXPECT_EQ(p, Decimal());
        }
    EXPECT_EQ((Decimal() * Decimal()).to_string(), "0");
}

TEST(DecimalMultiply, Exponents) {
    EXPECT_EQ(product("1e3", "1e3"), "1000000");
    EXPECT_EQ(product("1e3", "1.5"), "1500.0");
    EXPECT_EQ(product("1.5e1", "2"), "30");
    EXPECT_EQ(product("40e-1", "25e-1"), "10.00");
    EXPECT_EQ(product("1e-3", "1e-3"), "0.000001");
    EXPECT_EQ(product("1e20", "1e-20"), "1.00000000000000000000");
    EXPECT_EQ(product("1e-20", "1e-20"), "0." + std::string(39, '0') + "1");
    EXPECT_EQ(product("-12.50e3", "4e-2"), "-500.00");
    // Digits are not expanded: a product of huge exponents costs nothing but its plain length,
    // whose scale stops at numeric's 16383.
    Decimal huge = D("1e1000000") * D("1e-1000000");
    EXPECT_EQ(huge, D("1"));
    EXPECT_EQ(huge.plain_length(), 1u + 16383u);
    EXPECT_EQ((D("5e500000") * D("2e499999")).plain_length(), 1000001u);
    EXPECT_EQ(D("5e500000") * D("2e499999"), D("1e1000000"));
}

TEST(DecimalMultiply, OperandsBeyondSixtyFourBits) {
    EXPECT_EQ(product("9223372036854775807", "9223372036854775807"), "85070591730234615847396907784232501249");
    EXPECT_EQ(product("18446744073709551616", "18446744073709551616"), "340282366920938463463374607431768211456");
    EXPECT_EQ(product("99999999999999999999", "99999999999999999999"), "9999999999999999999800000000000000000001");
    EXPECT_EQ(product("-99999999999999999999", "99999999999999999999"), "-9999999999999999999800000000000000000001");
    EXPECT_EQ(product("12345678901234567890.12", "98765432109876543210"), "1219326311370217952249315652964448712085.20");
    EXPECT_EQ(product("9007199254740993", "1.0"), "9007199254740993.0");
    EXPECT_EQ(product("699.99999999999999999999", "700"), "489999.99999999999999999300");
    // 10^200 - 1 squared: 99...9800...01 with 199 nines and 199 zeros.
    const std::string nines(200, '9');
    EXPECT_EQ(product(nines, nines), std::string(199, '9') + "8" + std::string(199, '0') + "1");
}

TEST(DecimalMultiply, ScaleAboveNumericsMaximumIsRoundedLikeNumeric) {
    // PostgreSQL rounds a product whose scale would exceed NUMERIC_DSCALE_MAX (16383) to that
    // scale; an exact scale beyond it would make numeric_in reject the amount, and an outcome
    // with attribution 1e-16383 at a price of 0.99 could never settle.
    // PostgreSQL: 0.99 * '1e-16383'::numeric = 1e-16383, scale 16383.
    EXPECT_EQ(product("0.99", "1e-16383"), "0." + std::string(16382, '0') + "1");
    EXPECT_EQ(product("1e-10000", "1e-10000"), "0." + std::string(16383, '0'));
}

TEST(DecimalMultiply, RandomAgreesWithADigitStringReference) {
    std::mt19937_64 rng(0xD1617u);
    for (int i = 0; i < 3000; ++i) {
        int max_digits = i % 50 == 0 ? 120 : 30;
        Fixed a = random_fixed(rng, max_digits), b = random_fixed(rng, max_digits);
        std::string ta = rng() % 3 ? plain_text(a) : exponent_text(a, rng);
        std::string tb = rng() % 3 ? plain_text(b) : exponent_text(b, rng);
        std::string expected = plain_text(multiply(a, b));
        Decimal da = D(ta), db = D(tb);
        ASSERT_EQ(da.to_string(), plain_text(a)) << ta; // the operand is what the reference thinks
        Decimal ab = da * db, ba = db * da;
        ASSERT_EQ(ab.to_string(), expected) << ta << " x " << tb;
        ASSERT_EQ(ba.to_string(), expected) << tb << " x " << ta; // commutative, scale included
        ASSERT_EQ(ab, D(expected));
        ASSERT_FALSE(ab.is_zero() && ab.is_negative());
    }
}

TEST(DecimalMultiply, AssociativeDistributiveAndOneIsNeutral) {
    std::vector<Decimal> v = {D("0.1"), D("-7.25"), D("1e20"), D("-1e-20"), D("3.000"), D("0"), D("-0.0"),
                              D("99999999999999999999"), D("1"), D("-1")};
    for (const Decimal &a : v) {
        EXPECT_EQ((a * D("1")).to_string(), a.to_string());
        EXPECT_EQ((a * D("-1")) + a, Decimal());
        for (const Decimal &b : v)
            for (const Decimal &c : v) {
                EXPECT_EQ(((a * b) * c).to_string(), (a * (b * c)).to_string());
                // Same value and, as scales add and take the maximum alike, the same scale.
                EXPECT_EQ(((a + b) * c).to_string(), (a * c + b * c).to_string());
            }
    }
}
