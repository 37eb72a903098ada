// Rows for enqueue(): typed values encoded to one line of PostgreSQL's COPY text format.
#pragma once
#include <pgingest/export.h>
#include <pgingest/status.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pgingest {

// Appends s to out escaped as a COPY text field (backslash, \b \f \n \r \t \v), as COPY TO does.
PGINGEST_API void append_copy_escaped(std::string &out, std::string_view s);

// Typed values. The views are read at once by Row::add and need not outlive it.
struct Numeric { // numeric / decimal as text: [+-]digits[.digits][e[+-]digits], NaN, [+-]Infinity
    std::string_view text;
};
struct Bytea { // sent in hex form
    std::string_view bytes;
    Bytea(std::string_view b) : bytes(b) {}
    Bytea(const std::vector<std::uint8_t> &b) : bytes(reinterpret_cast<const char *>(b.data()), b.size()) {}
};
struct Date { // proleptic Gregorian; year <= 0 is 1-year BC (year 0 = 1 BC)
    int year;
    unsigned month, day;
};
struct PGINGEST_API Timestamp { // timestamp without time zone
    Date date;
    unsigned hour = 0, minute = 0, second = 0, microsecond = 0;
    // The UTC calendar time of a time point (microsecond precision).
    static Timestamp from_time_point(std::chrono::system_clock::time_point tp);
};
struct TimestampTz { // timestamptz, sent as UTC ("+00")
    std::chrono::system_clock::time_point at;
};
struct PGINGEST_API Uuid {
    std::array<std::uint8_t, 16> bytes{};
    static std::optional<Uuid> parse(std::string_view text); // 8-4-4-4-12 hex, braces/hyphens optional
    static Uuid random_v4();                                 // from std::random_device
    std::string to_string() const;                           // lower-case 8-4-4-4-12
};
struct Json {
    std::string_view text;
};
struct Jsonb {
    std::string_view text;
};

// One row: add() its fields in the order of the table's column list (see Producer::table).
// Errors (e.g. an invalid date) are remembered and make enqueue() fail with kInvalidArgument.
class PGINGEST_API Row {
  public:
    Row() = default;
    // A complete COPY text line (fields already escaped, TAB-separated, no trailing newline),
    // for types this class does not know or for data already in COPY format.
    static Row from_copy_line(std::string line);

    Row &null();
    Row &add(std::nullptr_t) { return null(); }
    Row &add(bool v);
    template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Row &add(T v) {
        static_assert(!std::is_same_v<T, char> && !std::is_same_v<T, signed char> &&
                          !std::is_same_v<T, unsigned char>,
                      "add a char as text (std::string_view) or as an integer of a wider type");
        if constexpr (std::is_signed_v<T>)
            return add_signed(static_cast<long long>(v));
        else
            return add_unsigned(static_cast<unsigned long long>(v));
    }
    Row &add(float v);
    Row &add(double v);
    Row &add(std::string_view text);
    Row &add(const char *text) { return text ? add(std::string_view(text)) : null(); }
    Row &add(const std::string &text) { return add(std::string_view(text)); }
    Row &add(const Numeric &v);
    Row &add(const Bytea &v);
    Row &add(const Date &v);
    Row &add(const Timestamp &v);
    Row &add(const TimestampTz &v);
    Row &add(const Uuid &v);
    Row &add(const Json &v);
    Row &add(const Jsonb &v);
    template <typename T> Row &add(const std::optional<T> &v) { return v ? add(*v) : null(); }
    // Any other type, in PostgreSQL's text input form (e.g. an interval "1 day", an array "{1,2}");
    // escaped for COPY here.
    Row &add_raw(std::string_view text_input_form);

    const Status &status() const { return status_; }
    std::size_t field_count() const { return fields_; }
    const std::string &line() const { return line_; } // the COPY text line, without newline
    std::string take_line() { return std::move(line_); }

  private:
    Row &add_signed(long long v);
    Row &add_unsigned(unsigned long long v);
    bool begin_field();
    Row &fail(std::string message);

    std::string line_;
    std::size_t fields_ = 0;
    bool whole_line_ = false;
    Status status_;
};

// Many rows for Producer::enqueue_block(): their COPY text lines in one buffer. Adding a row
// copies its line and allocates nothing once the buffer has grown (reserve() it), so a block is
// the cheap way to hand over rows by the thousand. Not thread-safe: one owner at a time.
class PGINGEST_API RowBlock {
  public:
    RowBlock() = default;
    // Appends one complete COPY text line (no newline), checked as Row::from_copy_line checks it;
    // a line that Row::from_copy_line would refuse is not appended and its error is returned
    // (kInvalidArgument).
    Status add_copy_line(std::string_view line);
    // Appends a row's line; a row with an error (Row::status()) or without fields is not appended
    // and the error is returned (kInvalidArgument), as enqueue() would return it.
    Status add(const Row &row);

    std::size_t rows() const { return rows_; }
    std::size_t bytes() const { return data_.size(); } // as the producer's queue counts them
    bool empty() const { return rows_ == 0; }
    const std::string &data() const { return data_; } // the lines, each ending in '\n'
    void reserve(std::size_t bytes) { data_.reserve(bytes); }
    void clear() {
        data_.clear();
        rows_ = 0;
    }
    // The lines, leaving the block empty (used by Producer::enqueue_block).
    std::string take_data() {
        rows_ = 0;
        return std::move(data_);
    }

  private:
    std::string data_;
    std::size_t rows_ = 0;
};

} // namespace pgingest
