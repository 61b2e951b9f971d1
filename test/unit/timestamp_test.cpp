// ISO 8601 timestamps with a mandatory offset, on PostgreSQL's timestamptz scale.
#include "test_util.hpp"

#include "core/timestamp.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

using namespace witn;

TEST(Timestamp, KnownInstants) {
    EXPECT_EQ(parse_iso8601("2000-01-01T00:00:00Z"), 0);
    EXPECT_EQ(parse_iso8601("2000-01-01 00:00:00+00:00"), 0);
    EXPECT_EQ(parse_iso8601("2000-01-01T01:00:00+01:00"), 0);
    EXPECT_EQ(parse_iso8601("1999-12-31T23:00:00-01:00"), 0);
    EXPECT_EQ(parse_iso8601("2000-01-01t00:00z"), 0);
    EXPECT_EQ(parse_iso8601("2026-11-23T10:15:00Z"), 848744100000000LL);
    EXPECT_EQ(parse_iso8601("2026-11-23T10:15Z"), 848744100000000LL);
    EXPECT_EQ(parse_iso8601("2026-11-23 10:15:00.123456+01:00"), 848740500123456LL);
    EXPECT_EQ(parse_iso8601("2026-11-23T10:15+0100"), 848744100000000LL - 3600000000LL);
    EXPECT_EQ(parse_iso8601("2026-11-23T10:15+01"), 848744100000000LL - 3600000000LL);
    EXPECT_EQ(parse_iso8601("2024-02-29T12:00-05:30"), 762543000000000LL);
    EXPECT_EQ(parse_iso8601("0001-01-01T00:00:00Z"), -63082281600000000LL);
    EXPECT_EQ(parse_iso8601("9999-12-31T23:59:59.999999-15:59"), 252455673539999999LL);
}

TEST(Timestamp, FractionalSeconds) {
    EXPECT_EQ(parse_iso8601("2000-01-01T00:00:00.5Z"), 500000);
    EXPECT_EQ(parse_iso8601("2000-01-01T00:00:00.000001Z"), 1);
    EXPECT_EQ(parse_iso8601("2000-01-01T00:00:00.100Z"), 100000);
    EXPECT_FALSE(parse_iso8601("2000-01-01T00:00:00.1234567Z"));
    EXPECT_FALSE(parse_iso8601("2000-01-01T00:00:00.Z"));
    EXPECT_FALSE(parse_iso8601("2000-01-01T00:00.5Z")); // fractions only after seconds
}

TEST(Timestamp, Rejections) {
    for (const char *bad : {"", "now", "today", "infinity", "2026-11-23", "2026-11-23T10:15:00",
                            "2026-11-23 10:15", "2026-11-23T10:15:00 Z", "2026-11-23T10:15:00Z ",
                            " 2026-11-23T10:15:00Z", "26-11-23T10:15Z", "2026-1-23T10:15Z", "2026/11/23T10:15Z",
                            "2026-11-23X10:15Z", "2026-11-23T1015Z", "2026-11-23T10:15:0Z",
                            "0000-01-01T00:00Z", "2026-00-01T00:00Z", "2026-13-01T00:00Z", "2026-01-00T00:00Z",
                            "2026-01-32T00:00Z", "2026-04-31T00:00Z", "2026-02-29T00:00Z", "1900-02-29T00:00Z",
                            "2026-01-01T24:00Z", "2026-01-01T00:60Z", "2026-01-01T00:00:60Z",
                            "2026-01-01T00:00+16:00", "2026-01-01T00:00+01:60", "2026-01-01T00:00+1",
                            "2026-01-01T00:00+01:", "2026-01-01T00:00+01:0", "2026-01-01T00:00+010",
                            "2026-01-01T00:00UTC", "2026-01-01T00:00+01:00:00", "+2026-01-01T00:00Z",
                            "20260-01-01T00:00Z"})
        EXPECT_FALSE(parse_iso8601(bad).has_value()) << '"' << bad << '"';
    EXPECT_TRUE(parse_iso8601("2024-02-29T00:00Z"));
    EXPECT_TRUE(parse_iso8601("2000-02-29T00:00Z"));
    EXPECT_TRUE(parse_iso8601("2026-01-01T00:00+15:59"));
    EXPECT_TRUE(parse_iso8601("2026-01-01T00:00-00:00"));
}

TEST(Timestamp, AgreesWithChronoOnRandomInstants) {
    using namespace std::chrono;
    std::mt19937_64 rng(2026);
    const sys_days epoch2000 = sys_days(year(2000) / January / 1);
    for (int i = 0; i < 20000; ++i) {
        int y = std::uniform_int_distribution<int>(1, 9999)(rng);
        unsigned m = std::uniform_int_distribution<unsigned>(1, 12)(rng);
        unsigned last = static_cast<unsigned>((year(y) / month(m) / std::chrono::last).day());
        unsigned d = std::uniform_int_distribution<unsigned>(1, last)(rng);
        int hh = std::uniform_int_distribution<int>(0, 23)(rng), mm = std::uniform_int_distribution<int>(0, 59)(rng);
        int ss = std::uniform_int_distribution<int>(0, 59)(rng), us = std::uniform_int_distribution<int>(0, 999999)(rng);
        int off = std::uniform_int_distribution<int>(-(15 * 60 + 59), 15 * 60 + 59)(rng);
        char text[64];
        std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06d%c%02d:%02d", y, m, d, hh, mm, ss, us,
                      off < 0 ? '-' : '+', std::abs(off) / 60, std::abs(off) % 60);
        std::int64_t days = (sys_days(year(y) / month(m) / std::chrono::day(d)) - epoch2000).count();
        std::int64_t expected = ((days * 86400 + hh * 3600 + mm * 60 + ss) - off * 60LL) * 1000000 + us;
        ASSERT_EQ(parse_iso8601(text), expected) << text;
        // One day past the end of the month is rejected.
        if (m != 2 || d != last) continue;
        std::snprintf(text, sizeof text, "%04d-02-%02uT00:00Z", y, last + 1);
        EXPECT_FALSE(parse_iso8601(text).has_value()) << text;
    }
}
