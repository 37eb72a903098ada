// COPY text encoding: escaping, every typed value, whole lines.
#include <pgingest/row.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <random>

using namespace pgingest;

namespace {

// Decodes one COPY text field the way COPY FROM does (for the round-trip test).
std::string decode_field(const std::string &f) {
    std::string out;
    for (std::size_t i = 0; i < f.size(); i++) {
        if (f[i] != '\\') {
            out += f[i];
            continue;
        }
        char c = f[++i];
        switch (c) {
        case 'b':
            out += '\b';
            break;
        case 'f':
            out += '\f';
            break;
        case 'n':
            out += '\n';
            break;
        case 'r':
            out += '\r';
            break;
        case 't':
            out += '\t';
            break;
        case 'v':
            out += '\v';
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string line_of(Row r) {
    EXPECT_TRUE(r.status().ok()) << r.status().to_string();
    return r.line();
}

} // namespace

TEST(CopyText, EscapesExactlyLikeCopyTo) {
    std::string out;
    append_copy_escaped(out, "a\\b\tc\nd\re\bf\fg\vh");
    EXPECT_EQ(out, "a\\\\b\\tc\\nd\\re\\bf\\fg\\vh");
    out.clear();
    append_copy_escaped(out, "plain text, \"quotes\" and 'ticks' and \\N");
    EXPECT_EQ(out, "plain text, \"quotes\" and 'ticks' and \\\\N");
}

TEST(CopyText, RandomStringsRoundTrip) {
    std::mt19937 rng(42);
    const std::string alphabet = "ab\\\t\n\r\b\f\v N.x\x7f\xc3\xa9";
    for (int n = 0; n < 2000; n++) {
        std::string s;
        for (int i = rng() % 20; i > 0; i--)
            s += alphabet[rng() % alphabet.size()];
        std::string enc;
        append_copy_escaped(enc, s);
        EXPECT_EQ(enc.find_first_of("\t\n\r"), std::string::npos);
        EXPECT_EQ(decode_field(enc), s);
    }
}

TEST(CopyText, ScalarTypes) {
    EXPECT_EQ(line_of(Row().null().add(nullptr)), "\\N\t\\N");
    EXPECT_EQ(line_of(Row().add(true).add(false)), "t\tf");
    EXPECT_EQ(line_of(Row()
                          .add(std::numeric_limits<std::int16_t>::min())
                          .add(std::int32_t{42})
                          .add(std::numeric_limits<std::int64_t>::min())
                          .add(std::uint64_t{18446744073709551615ull})),
              "-32768\t42\t-9223372036854775808\t18446744073709551615");
    EXPECT_EQ(line_of(Row().add(0.1).add(1.5f).add(-2.0).add(1e300)), "0.1\t1.5\t-2\t1e+300");
    EXPECT_EQ(line_of(Row()
                          .add(std::numeric_limits<double>::quiet_NaN())
                          .add(std::numeric_limits<double>::infinity())
                          .add(-std::numeric_limits<float>::infinity())),
              "NaN\tInfinity\t-Infinity");
    // Shortest text that reads back to the same double.
    double third = 1.0 / 3.0;
    std::string t = line_of(Row().add(third));
    EXPECT_EQ(std::stod(t), third);
}

TEST(CopyText, TextAndOptional) {
    EXPECT_EQ(
        line_of(Row().add("tab\there").add(std::string("new\nline")).add(std::string_view("back\\slash"))),
        "tab\\there\tnew\\nline\tback\\\\slash");
    EXPECT_EQ(line_of(Row().add(std::optional<int>()).add(std::optional<int>(7))), "\\N\t7");
    EXPECT_EQ(line_of(Row().add(static_cast<const char *>(nullptr))), "\\N");
    EXPECT_EQ(line_of(Row().add("")), "");
    Row nul;
    nul.add(std::string_view("a\0b", 3));
    EXPECT_EQ(nul.status().code(), ErrorCode::kInvalidArgument);
}

TEST(CopyText, Numeric) {
    EXPECT_EQ(
        line_of(Row().add(Numeric{"-12.340"}).add(Numeric{"1e-5"}).add(Numeric{"NaN"}).add(Numeric{".5"})),
        "-12.340\t1e-5\tNaN\t.5");
    for (const char *bad : {"", "1.2.3", "abc", "1e", "--1", "1;DROP"}) {
        Row r;
        r.add(Numeric{bad});
        EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
    }
}

TEST(CopyText, Bytea) {
    EXPECT_EQ(line_of(Row().add(Bytea(std::string_view("\x00\x01\xff\\", 4)))), "\\\\x0001ff5c");
    EXPECT_EQ(line_of(Row().add(Bytea(std::vector<std::uint8_t>{}))), "\\\\x");
}

TEST(CopyText, DatesAndTimestamps) {
    EXPECT_EQ(line_of(Row().add(Date{2024, 2, 29})), "2024-02-29");
    EXPECT_EQ(line_of(Row().add(Date{0, 3, 15})), "0001-03-15 BC");
    EXPECT_EQ(line_of(Row().add(Date{-43, 3, 15})), "0044-03-15 BC");
    EXPECT_EQ(line_of(Row().add(Timestamp{Date{1999, 12, 31}, 23, 59, 58, 0})), "1999-12-31 23:59:58");
    EXPECT_EQ(line_of(Row().add(Timestamp{Date{2000, 1, 2}, 3, 4, 5, 6})), "2000-01-02 03:04:05.000006");
    for (Date bad : {Date{2023, 2, 29}, Date{2024, 13, 1}, Date{2024, 4, 31}, Date{2024, 1, 0}}) {
        Row r;
        r.add(bad);
        EXPECT_FALSE(r.status().ok());
    }
    Row bad_time;
    bad_time.add(Timestamp{Date{2024, 1, 1}, 24, 0, 0, 0});
    EXPECT_FALSE(bad_time.status().ok());

    using namespace std::chrono;
    system_clock::time_point epoch{};
    EXPECT_EQ(line_of(Row().add(TimestampTz{epoch})), "1970-01-01 00:00:00+00");
    EXPECT_EQ(line_of(Row().add(TimestampTz{epoch + seconds(951782400) + microseconds(123456)})),
              "2000-02-29 00:00:00.123456+00");
    EXPECT_EQ(line_of(Row().add(TimestampTz{epoch - microseconds(1)})), "1969-12-31 23:59:59.999999+00");
    EXPECT_EQ(line_of(Row().add(TimestampTz{epoch + seconds(4102444800LL)})), "2100-01-01 00:00:00+00");
    Timestamp t = Timestamp::from_time_point(epoch + hours(24 * 365));
    EXPECT_EQ(t.date.year, 1971);
    EXPECT_EQ(t.date.month, 1u);
    EXPECT_EQ(t.date.day, 1u);
}

TEST(CopyText, UuidAndJson) {
    auto u = Uuid::parse("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->to_string(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_EQ(line_of(Row().add(*u)), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    EXPECT_TRUE(Uuid::parse("a0eebc999c0b4ef8bb6d6bb9bd380a11"));
    EXPECT_FALSE(Uuid::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"));
    EXPECT_FALSE(Uuid::parse("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    Uuid r1 = Uuid::random_v4(), r2 = Uuid::random_v4();
    EXPECT_NE(r1.to_string(), r2.to_string());
    EXPECT_EQ(r1.to_string()[14], '4');
    EXPECT_NE(std::string("89ab").find(r1.to_string()[19]), std::string::npos);

    EXPECT_EQ(line_of(Row().add(Json{"{\"a\": \"x\\ty\"}"}).add(Jsonb{"[1,\n2]"})),
              "{\"a\": \"x\\\\ty\"}\t[1,\\n2]");
    EXPECT_EQ(line_of(Row().add_raw("{1,2}").add_raw("1 day\t")), "{1,2}\t1 day\\t");
}

TEST(CopyText, WholeLines) {
    Row r = Row::from_copy_line("1\t\\N\tx\\ty");
    EXPECT_TRUE(r.status().ok());
    EXPECT_EQ(r.field_count(), 3u);
    EXPECT_EQ(r.line(), "1\t\\N\tx\\ty");
    for (const char *bad : {"a\nb", "a\rb", "\\.", "ends in \\"}) {
        EXPECT_FALSE(Row::from_copy_line(bad).status().ok()) << bad;
    }
    Row more = Row::from_copy_line("1");
    more.add(2);
    EXPECT_FALSE(more.status().ok());
}
