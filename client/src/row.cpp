// Row: typed values to one COPY text line (the format of PostgreSQL's COPY TO ... text).
#include <pgingest/row.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

namespace pgingest {

namespace {

// Word-at-a-time tests (8 bytes per step) for the byte scans of COPY text below; each says
// exactly whether some byte of the word matches (not which).
constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
inline std::uint64_t load8(const char *p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}
inline std::uint64_t any_zero(std::uint64_t w) {
    return (w - kOnes) & ~w & kHighs;
}
inline std::uint64_t any_equal(std::uint64_t w, unsigned char c) {
    return any_zero(w ^ (kOnes * c));
}
// n <= 128
inline std::uint64_t any_below(std::uint64_t w, unsigned char n) {
    return (w - kOnes * n) & ~w & kHighs;
}

} // namespace

void append_copy_escaped(std::string &out, std::string_view s) {
    const char *p = s.data();
    const std::size_t n = s.size();
    std::size_t start = 0, i = 0;
    while (i < n) {
        if (i + 8 <= n) { // skip 8 bytes without \b \t \n \v \f \r (8..13) or a backslash
            std::uint64_t w = load8(p + i);
            if (!(any_below(w, 14) | any_equal(w, '\\'))) {
                i += 8;
                continue;
            }
        }
        char esc;
        switch (p[i]) {
        case '\\':
            esc = '\\';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        case '\v':
            esc = 'v';
            break;
        default:
            i++;
            continue;
        }
        out.append(p + start, i - start);
        out += '\\';
        out += esc;
        start = ++i;
    }
    out.append(p + start, n - start);
}

namespace {

// The proleptic Gregorian date `z` days after 1970-01-01 (era-based civil calendar arithmetic:
// 400-year eras of 146097 days, years counted from March 1st so the leap day comes last).
Date civil_from_days(long long z) {
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = static_cast<unsigned>(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = static_cast<long long>(yoe) + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return Date{static_cast<int>(y + (m <= 2)), m, d};
}

bool leap(long long y) {
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

bool valid_date(const Date &d) {
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d.month < 1 || d.month > 12 || d.day < 1)
        return false;
    unsigned max = mdays[d.month - 1] + (d.month == 2 && leap(d.year) ? 1 : 0);
    return d.day <= max && d.year > -4713 && d.year < 294277;
}

// "YYYY-MM-DD" (the BC suffix is added by the caller, after any time part).
void append_date(std::string &out, const Date &d) {
    char buf[32];
    int year = d.year > 0 ? d.year : 1 - d.year;
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", year, d.month, d.day);
    out.append(buf, static_cast<std::size_t>(n));
}

void append_time(std::string &out, unsigned h, unsigned mi, unsigned s, unsigned us) {
    char buf[32];
    int n = us ? std::snprintf(buf, sizeof buf, " %02u:%02u:%02u.%06u", h, mi, s, us)
               : std::snprintf(buf, sizeof buf, " %02u:%02u:%02u", h, mi, s);
    out.append(buf, static_cast<std::size_t>(n));
}

template <typename T> void append_number(std::string &out, T v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

template <typename F> void append_float(std::string &out, F v) {
    if (std::isnan(v))
        out += "NaN";
    else if (std::isinf(v))
        out += v > 0 ? "Infinity" : "-Infinity";
    else
        append_number(out, v); // shortest text that reads back to the same value
}

bool valid_numeric(std::string_view s) {
    if (s == "NaN" || s == "Infinity" || s == "+Infinity" || s == "-Infinity")
        return true;
    std::size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
        i++;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < s.size() && s[i] == '.') {
        i++;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < s.size() && (s[i] == '+' || s[i] == '-'))
            i++;
        std::size_t exp_digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    return i == s.size();
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char kHex[] = "0123456789abcdef";

} // namespace

Timestamp Timestamp::from_time_point(std::chrono::system_clock::time_point tp) {
    using namespace std::chrono;
    long long us = duration_cast<microseconds>(tp.time_since_epoch()).count();
    long long day_us = 86400LL * 1000000;
    long long days = us >= 0 ? us / day_us : -((-us + day_us - 1) / day_us);
    long long rest = us - days * day_us;
    Timestamp t{civil_from_days(days)};
    t.hour = static_cast<unsigned>(rest / 3600000000LL);
    t.minute = static_cast<unsigned>(rest / 60000000LL % 60);
    t.second = static_cast<unsigned>(rest / 1000000 % 60);
    t.microsecond = static_cast<unsigned>(rest % 1000000);
    return t;
}

std::optional<Uuid> Uuid::parse(std::string_view text) {
    if (text.size() >= 2 && text.front() == '{' && text.back() == '}')
        text = text.substr(1, text.size() - 2);
    Uuid u;
    std::size_t n = 0;
    for (std::size_t i = 0; i < text.size(); i++) {
        if (text[i] == '-')
            continue;
        int hi = hex_value(text[i]);
        int lo = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
        if (hi < 0 || lo < 0 || n == 16)
            return std::nullopt;
        u.bytes[n++] = static_cast<std::uint8_t>(hi << 4 | lo);
        i++;
    }
    if (n != 16)
        return std::nullopt;
    return u;
}

Uuid Uuid::random_v4() {
    std::random_device rd;
    Uuid u;
    for (std::size_t i = 0; i < 16; i += 4) {
        std::uint32_t r = rd();
        for (std::size_t j = 0; j < 4; j++)
            u.bytes[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
    }
    u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0f) | 0x40); // version 4
    u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3f) | 0x80); // RFC 4122 variant
    return u;
}

std::string Uuid::to_string() const {
    std::string s;
    s.reserve(36);
    for (std::size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            s += '-';
        s += kHex[bytes[i] >> 4];
        s += kHex[bytes[i] & 15];
    }
    return s;
}

namespace {

// Checks a whole COPY text line (for Row::from_copy_line and RowBlock::add_copy_line): nullptr if
// it is one, else why not (the first problem from the left). fields, when asked for: its field count
// (a TAB after a backslash is data, not a separator).
const char *check_copy_line(std::string_view line, std::size_t *fields) {
    const char *p = line.data();
    const std::size_t n = line.size();
    std::size_t tabs = 0;
    const char *error = nullptr;
    for (std::size_t i = 0; i < n;) {
        if (i + 8 <= n) { // skip 8 bytes without a newline, carriage return, NUL, backslash (or TAB)
            std::uint64_t w = load8(p + i);
            if (!(any_zero(w) | any_equal(w, '\n') | any_equal(w, '\r') | any_equal(w, '\\') |
                  (fields ? any_equal(w, '\t') : 0))) {
                i += 8;
                continue;
            }
        }
        char c = p[i];
        if (c == '\t') {
            tabs++;
        } else if (c == '\n' || c == '\r' || c == '\0') {
            if (!error)
                error = "a COPY text line must not contain a raw newline, carriage return or NUL "
                        "(write them as \\n, \\r)";
        } else if (c == '\\') {
            if (i + 1 == n && !error)
                error = "a COPY text line must not end in a lone backslash";
            i += 2; // and the escaped character, whatever it is
            continue;
        }
        if (error && !fields)
            return error;
        i++;
    }
    if (fields)
        *fields = tabs + 1;
    if (!error && line == "\\.")
        error = "\\. is COPY's end-of-data marker, not a row";
    return error;
}

} // namespace

Row Row::from_copy_line(std::string line) {
    Row r;
    r.whole_line_ = true;
    if (const char *error = check_copy_line(line, &r.fields_))
        r.fail(error);
    r.line_ = std::move(line);
    return r;
}

Status RowBlock::add_copy_line(std::string_view line) {
    if (const char *error = check_copy_line(line, nullptr))
        return Status(ErrorCode::kInvalidArgument, error);
    data_.append(line);
    data_ += '\n';
    rows_++;
    return Status();
}

Status RowBlock::add(const Row &row) {
    if (!row.status().ok())
        return row.status();
    if (row.field_count() == 0)
        return Status(ErrorCode::kInvalidArgument, "a row needs at least one field");
    data_.append(row.line());
    data_ += '\n';
    rows_++;
    return Status();
}

bool Row::begin_field() {
    if (whole_line_) {
        fail("a row made from a COPY line cannot take more fields");
        return false;
    }
    if (fields_++ > 0)
        line_ += '\t';
    return true;
}

Row &Row::fail(std::string message) {
    if (status_.ok())
        status_ = Status(ErrorCode::kInvalidArgument, std::move(message));
    return *this;
}

Row &Row::null() {
    if (begin_field())
        line_ += "\\N";
    return *this;
}

Row &Row::add(bool v) {
    if (begin_field())
        line_ += v ? 't' : 'f';
    return *this;
}

Row &Row::add_signed(long long v) {
    if (begin_field())
        append_number(line_, v);
    return *this;
}

Row &Row::add_unsigned(unsigned long long v) {
    if (begin_field())
        append_number(line_, v);
    return *this;
}

Row &Row::add(float v) {
    if (begin_field())
        append_float(line_, v);
    return *this;
}

Row &Row::add(double v) {
    if (begin_field())
        append_float(line_, v);
    return *this;
}

Row &Row::add(std::string_view text) {
    if (text.find('\0') != std::string_view::npos)
        fail("text must not contain NUL bytes (use bytea)");
    if (begin_field())
        append_copy_escaped(line_, text);
    return *this;
}

Row &Row::add_raw(std::string_view text) {
    return add(text);
}

Row &Row::add(const Numeric &v) {
    if (!valid_numeric(v.text))
        fail("invalid numeric \"" + std::string(v.text) + "\"");
    if (begin_field())
        line_.append(v.text.data(), v.text.size()); // digits, signs, '.', 'e': nothing to escape
    return *this;
}

Row &Row::add(const Bytea &v) {
    if (!begin_field())
        return *this;
    line_ += "\\\\x"; // the bytea hex prefix \x, its backslash escaped for COPY
    line_.reserve(line_.size() + 2 * v.bytes.size());
    for (char c : v.bytes) {
        auto b = static_cast<unsigned char>(c);
        line_ += kHex[b >> 4];
        line_ += kHex[b & 15];
    }
    return *this;
}

Row &Row::add(const Date &v) {
    if (!valid_date(v))
        return fail("invalid date " + std::to_string(v.year) + "-" + std::to_string(v.month) + "-" +
                    std::to_string(v.day));
    if (begin_field()) {
        append_date(line_, v);
        if (v.year <= 0)
            line_ += " BC";
    }
    return *this;
}

Row &Row::add(const Timestamp &v) {
    if (!valid_date(v.date) || v.hour > 23 || v.minute > 59 || v.second > 59 || v.microsecond > 999999)
        return fail("invalid timestamp");
    if (begin_field()) {
        append_date(line_, v.date);
        append_time(line_, v.hour, v.minute, v.second, v.microsecond);
        if (v.date.year <= 0)
            line_ += " BC";
    }
    return *this;
}

Row &Row::add(const TimestampTz &v) {
    Timestamp t = Timestamp::from_time_point(v.at);
    if (!valid_date(t.date))
        return fail("timestamptz out of range");
    if (begin_field()) {
        append_date(line_, t.date);
        append_time(line_, t.hour, t.minute, t.second, t.microsecond);
        line_ += "+00";
        if (t.date.year <= 0)
            line_ += " BC";
    }
    return *this;
}

Row &Row::add(const Uuid &v) {
    if (begin_field())
        line_ += v.to_string();
    return *this;
}

Row &Row::add(const Json &v) {
    return add(v.text);
}
Row &Row::add(const Jsonb &v) {
    return add(v.text);
}

} // namespace pgingest
