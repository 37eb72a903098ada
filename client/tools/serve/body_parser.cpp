#include "body_parser.hpp"

#include "../cli/record_fields.hpp"

#include <csv.h>

#include <algorithm>
#include <map>

namespace pgingest_serve {

using pgingest_cli::Json;

std::optional<BodyFormat> body_format(std::string_view ct) {
    std::string t(ct.substr(0, ct.find(';')));
    t.erase(std::remove(t.begin(), t.end(), ' '), t.end());
    std::transform(t.begin(), t.end(), t.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
    if (t.empty() || t == "application/json")
        return BodyFormat::kJson;
    if (t == "application/x-ndjson" || t == "application/jsonlines" || t == "application/jsonl")
        return BodyFormat::kNdjson;
    if (t == "text/csv")
        return BodyFormat::kCsv;
    return std::nullopt;
}

namespace {

// Line and column (1-based) of byte offset pos in text.
std::string where(std::string_view text, std::size_t pos) {
    pos = std::min(pos, text.size());
    std::size_t line = 1 + std::count(text.begin(), text.begin() + pos, '\n');
    std::size_t nl = text.rfind('\n', pos == 0 ? 0 : pos - 1);
    std::size_t col = nl == std::string_view::npos || pos == 0 ? pos + 1 : pos - nl;
    return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

class Builder {
  public:
    Builder(const std::vector<std::string> &table_cols, ParsedBody &out)
        : table_cols_(table_cols), out_(out) {}

    // Adds one record from its column list and COPY fields; false with err past the column-set limit.
    bool add(const std::vector<std::string> &columns, const std::vector<std::string> &fields,
             std::string &err) {
        auto it = sets_.find(columns);
        if (it == sets_.end()) {
            if (out_.column_sets.size() >= ParsedBody::kMaxColumnSets) {
                err = "more than " + std::to_string(ParsedBody::kMaxColumnSets) +
                      " different key sets in one request";
                return false;
            }
            it = sets_.emplace(columns, static_cast<std::uint32_t>(out_.column_sets.size())).first;
            out_.column_sets.push_back(columns);
        }
        std::string line;
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i)
                line += '\t';
            line += fields[i];
        }
        out_.bytes += line.size() + 1;
        out_.records.push_back({it->second, std::move(line)});
        return true;
    }

    // One JSON value as record n: an object whose keys are all columns.
    bool add_object(const Json &obj, std::size_t n, const std::string &pos, std::string &err) {
        std::string prefix = "record " + std::to_string(n) + " (" + pos + "): ";
        if (!obj.is_object()) {
            err = prefix + "not a JSON object";
            return false;
        }
        if (const std::string *k = pgingest_cli::json_unknown_key(obj, table_cols_)) {
            err = prefix + "key \"" + *k + "\" is not a column of the table";
            return false;
        }
        std::vector<std::string> names = pgingest_cli::json_columns(obj, table_cols_);
        if (names.empty()) {
            err = prefix + "no key of the object names a column";
            return false;
        }
        if (!add(names, pgingest_cli::json_fields(obj, names), err)) {
            err = prefix + err;
            return false;
        }
        return true;
    }

  private:
    const std::vector<std::string> &table_cols_;
    ParsedBody &out_;
    std::map<std::vector<std::string>, std::uint32_t> sets_;
};

bool parse_json_array(const std::string &body, Builder &b, std::string &err) {
    // Element boundaries for the error message: how many top-level elements were complete.
    std::size_t complete = 0;
    Json doc;
    try {
        doc = Json::parse(body, [&complete](int depth, Json::parse_event_t ev, Json &) {
            if (depth == 1 && (ev == Json::parse_event_t::object_end ||
                               ev == Json::parse_event_t::array_end || ev == Json::parse_event_t::value))
                ++complete;
            return true;
        });
    } catch (const Json::parse_error &e) {
        err = "malformed JSON in record " + std::to_string(complete + 1) + " (" +
              where(body, e.byte ? e.byte - 1 : 0) + "): " + e.what();
        return false;
    }
    if (doc.is_object()) // a single object is one record
        return b.add_object(doc, 1, "line 1", err);
    if (!doc.is_array()) {
        err = "the body must be a JSON array of objects";
        return false;
    }
    for (std::size_t i = 0; i < doc.size(); ++i)
        if (!b.add_object(doc[i], i + 1, "element " + std::to_string(i + 1) + " of the array", err))
            return false;
    return true;
}

bool parse_ndjson(const std::string &body, Builder &b, std::string &err) {
    std::size_t n = 0, line_no = 0, start = 0;
    while (start < body.size()) {
        std::size_t end = body.find('\n', start);
        if (end == std::string::npos)
            end = body.size();
        std::string_view line(body.data() + start, end - start);
        ++line_no;
        start = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos)
            continue;
        ++n;
        Json obj;
        try {
            obj = Json::parse(line);
        } catch (const Json::parse_error &e) {
            err = "malformed JSON in record " + std::to_string(n) + " (line " + std::to_string(line_no) +
                  ", column " + std::to_string(e.byte) + "): " + e.what();
            return false;
        }
        if (!b.add_object(obj, n, "line " + std::to_string(line_no), err))
            return false;
    }
    return true;
}

// CSV with a header naming the columns; fed line by line to libcsv so errors carry line numbers.
bool parse_csv(const std::string &body, const std::vector<std::string> &table_cols, Builder &b,
               std::string &err) {
    pgingest_cli::CsvCtx ctx;
    csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
    std::vector<std::string> header;
    std::size_t line_no = 0, record_line = 1, n = 0, start = 0;
    bool ok = true;
    auto take = [&]() {
        for (auto &rec : ctx.records) {
            if (header.empty()) {
                header = rec;
                for (const auto &h : header)
                    if (h == "\\N" ||
                        std::find(table_cols.begin(), table_cols.end(), h) == table_cols.end()) {
                        err = "CSV header (line 1): \"" + h + "\" is not a column of the table";
                        return false;
                    }
                continue;
            }
            ++n;
            std::string pos = "record " + std::to_string(n) + " (line " + std::to_string(record_line) + "): ";
            if (rec.size() != header.size()) {
                err = pos + "expected " + std::to_string(header.size()) + " fields, got " +
                      std::to_string(rec.size());
                return false;
            }
            if (!b.add(header, rec, err)) {
                err = pos + err;
                return false;
            }
        }
        ctx.records.clear();
        return true;
    };
    while (ok && start < body.size()) {
        std::size_t end = std::min(body.find('\n', start), body.size() - 1) + 1;
        ++line_no;
        std::size_t done = csv_parse(&p, body.data() + start, end - start, pgingest_cli::csv_field_cb,
                                     pgingest_cli::csv_record_cb, &ctx);
        if (done != end - start) {
            err = "malformed CSV in record " + std::to_string(n + (header.empty() ? 0 : 1)) + " (line " +
                  std::to_string(line_no) + ", column " + std::to_string(done + 1) +
                  "): " + csv_strerror(csv_error(&p));
            ok = false;
            break;
        }
        start = end;
        if (!ctx.records.empty()) {
            ok = take();
            record_line = line_no + 1;
        }
    }
    if (ok && csv_fini(&p, pgingest_cli::csv_field_cb, pgingest_cli::csv_record_cb, &ctx) != 0) {
        err = "malformed CSV in record " + std::to_string(n + 1) + " (line " + std::to_string(record_line) +
              "): " + csv_strerror(csv_error(&p));
        ok = false;
    }
    if (ok)
        ok = take();
    if (ok && header.empty()) {
        err = "CSV body without a header line";
        ok = false;
    }
    csv_free(&p);
    return ok;
}

} // namespace

bool parse_body(BodyFormat format, const std::string &body, const std::vector<std::string> &table_cols,
                ParsedBody &out, std::string &err) {
    Builder b(table_cols, out);
    switch (format) {
    case BodyFormat::kJson:
        return parse_json_array(body, b, err);
    case BodyFormat::kNdjson:
        return parse_ndjson(body, b, err);
    case BodyFormat::kCsv:
        return parse_csv(body, table_cols, b, err);
    }
    return false;
}

} // namespace pgingest_serve
