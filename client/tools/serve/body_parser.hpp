// Request bodies -> rows: a JSON array of objects (application/json), JSON lines
// (application/x-ndjson) or CSV with a header (text/csv). Objects and header names map to the
// table's columns by name; the whole body is parsed before anything is queued, so a malformed
// record fails the request (400, naming the record and position) and queues nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgingest_serve {

enum class BodyFormat { kJson, kNdjson, kCsv };

// From a Content-Type header (parameters ignored; empty: JSON); nothing when unsupported.
std::optional<BodyFormat> body_format(std::string_view content_type);

struct ParsedBody {
    // Distinct column lists (objects with different keys), at most kMaxColumnSets.
    std::vector<std::vector<std::string>> column_sets;
    struct Record {
        std::uint32_t column_set;
        std::string line; // COPY text, no newline
    };
    std::vector<Record> records;
    std::size_t bytes = 0; // COPY text bytes of all records, newlines included
    static constexpr std::size_t kMaxColumnSets = 64;
};

// false with err set ("record 3 (line 4, column 7): ...") when the body is malformed.
bool parse_body(BodyFormat format, const std::string &body, const std::vector<std::string> &table_cols,
                ParsedBody &out, std::string &err);

} // namespace pgingest_serve
