#include "timestamp.hpp"

namespace witn {

namespace {

// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}
    bool digits(int n, int &out) {
        out = 0;
        for (int i = 0; i < n; ++i) {
            if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return false;
            out = out * 10 + (s_[pos_++] - '0');
        }
        return true;
    }
    bool accept(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool peek_digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
    bool done() const { return pos_ == s_.size(); }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
};

} // namespace

std::optional<std::int64_t> parse_iso8601(std::string_view text) {
    Reader r(text);
    int year, month, day, hour, minute, second = 0;
    if (!r.digits(4, year) || !r.accept('-') || !r.digits(2, month) || !r.accept('-') ||
        !r.digits(2, day))
        return std::nullopt;
    if (!r.accept('T') && !r.accept('t') && !r.accept(' ')) return std::nullopt;
    if (!r.digits(2, hour) || !r.accept(':') || !r.digits(2, minute)) return std::nullopt;
    std::int64_t micros = 0;
    if (r.accept(':')) {
        if (!r.digits(2, second)) return std::nullopt;
        if (r.accept('.')) {
            int scale = 0;
            while (r.peek_digit()) {
                int d;
                r.digits(1, d);
                if (++scale > 6) return std::nullopt;
                micros = micros * 10 + d;
            }
            if (scale == 0) return std::nullopt;
            for (; scale < 6; ++scale) micros *= 10;
        }
    }
    int offset_minutes = 0;
    if (r.accept('Z') || r.accept('z')) {
    } else {
        int sign = r.accept('+') ? 1 : r.accept('-') ? -1 : 0;
        if (!sign) return std::nullopt; // an offset is required: no session-dependent readings
        int oh, om = 0;
        if (!r.digits(2, oh)) return std::nullopt;
        if (r.accept(':')) {
            if (!r.digits(2, om)) return std::nullopt;
        } else if (r.peek_digit() && !r.digits(2, om)) {
            return std::nullopt;
        }
        if (oh > 15 || om > 59) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
    }
    if (!r.done()) return std::nullopt;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1) return std::nullopt;
    if (day > month_days[month - 1] + (month == 2 && leap(year) ? 1 : 0)) return std::nullopt;
    if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
    constexpr std::int64_t kEpochDays2000 = 10957; // 1970-01-01 to 2000-01-01
    std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) - kEpochDays2000;
    std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    return seconds * 1000000 + micros;
}

} // namespace witn
