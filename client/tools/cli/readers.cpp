#include "readers.hpp"

#include "common.hpp"
#include "record_fields.hpp"

#include <csv.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <set>
#include <sys/types.h>

namespace pgingest_cli {

namespace {

// Reads lines (with their newline) from a FILE, counting bytes; false at EOF/error/interrupt.
bool read_line(std::FILE *f, std::string &line, LoadState &st, bool &io_error) {
    line.clear();
    char *buf = nullptr;
    std::size_t cap = 0;
    errno = 0;
    ssize_t n = ::getline(&buf, &cap, f);
    if (n >= 0)
        line.assign(buf, static_cast<std::size_t>(n));
    std::free(buf);
    if (n < 0) {
        if (std::ferror(f) && !g_interrupted)
            io_error = true;
        return false;
    }
    st.bytes += static_cast<std::uint64_t>(n);
    return true;
}

// One delimited record (CSV or TSV fields): the header record names the columns unless
// --columns did, and a record with the wrong field count is rejected. Returns the sink to send the
// record to, or nullptr when it was consumed here; sets stop when no sink can be had.
Sink *route_record(const std::vector<std::string> &fields, std::uint64_t line, const std::string &raw, Columns &cols,
                   bool &header_pending, LoadState &st, const SinkFactory &sink_for, bool &stop) {
    if (header_pending) {
        header_pending = false;
        if (cols.names.empty() && cols.count == 0) { // plain names need no unescaping
            cols.names = fields;
            cols.count = fields.size();
        }
        return nullptr;
    }
    Sink *sink = sink_for(cols);
    if (!sink) {
        stop = true;
        return nullptr;
    }
    if (cols.count && fields.size() != cols.count) {
        st.read++;
        st.reject(line, "expected " + std::to_string(cols.count) + " fields, got " + std::to_string(fields.size()),
                  raw);
        return nullptr;
    }
    return sink;
}

} // namespace

// ---- CSV (libcsv; its callbacks are in record_fields.cpp) ---------------------------------------
bool load_csv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no) {
    char delim = o.format == "tsv" ? '\t' : ',';
    if (!o.delimiter.empty())
        delim = o.delimiter[0];
    std::string null_s = o.null_string;
    CsvCtx ctx;
    ctx.null_string = &null_s;
    csv_parser p;
    auto init = [&] {
        csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
        csv_set_delim(&p, static_cast<unsigned char>(delim));
    };
    init();
    std::string line, raw;
    std::uint64_t record_line = line_no + 1;
    bool io_error = false;
    auto handle_records = [&]() {
        for (auto &rec : ctx.records) {
            bool stop = false;
            if (Sink *sink = route_record(rec, record_line, raw, cols, header_pending, st, sink_for, stop))
                sink->send(record_line, rec, raw);
            if (stop)
                return;
        }
        ctx.records.clear();
    };
    while (!g_interrupted && !st.error_budget_exhausted() && read_line(f, line, st, io_error)) {
        ++line_no;
        if (raw.empty())
            record_line = line_no;
        raw += line;
        std::size_t done = csv_parse(&p, line.data(), line.size(), csv_field_cb, csv_record_cb, &ctx);
        if (done != line.size()) {
            st.read++;
            st.reject(record_line, std::string("CSV parse error: ") + csv_strerror(csv_error(&p)), raw);
            csv_free(&p);
            init();
            ctx.fields.clear();
            ctx.records.clear();
            raw.clear();
            continue;
        }
        if (!ctx.records.empty()) {
            handle_records();
            raw.clear();
        }
    }
    if (!g_interrupted && !st.error_budget_exhausted()) {
        if (csv_fini(&p, csv_field_cb, csv_record_cb, &ctx) != 0) {
            st.read++;
            st.reject(record_line, std::string("CSV parse error: ") + csv_strerror(csv_error(&p)), raw);
        } else {
            handle_records();
        }
    }
    csv_free(&p);
    return !io_error;
}

// ---- TSV (no quoting; --null, default \N, marks NULL) ------------------------------------------
bool load_tsv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no) {
    char delim = o.delimiter.empty() ? '\t' : o.delimiter[0];
    std::string null_s = o.null_given ? o.null_string : "\\N";
    std::string line;
    bool io_error = false;
    while (!g_interrupted && !st.error_budget_exhausted() && read_line(f, line, st, io_error)) {
        ++line_no;
        std::string body = line;
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
            body.pop_back();
        if (body.empty())
            continue;
        std::vector<std::string> parts = split(body, delim);
        bool stop = false;
        Sink *sink = route_record(parts, line_no, body, cols, header_pending, st, sink_for, stop);
        if (stop)
            break;
        if (!sink)
            continue;
        for (auto &p : parts)
            p = (p == null_s) ? std::string("\\N") : copy_escape(p);
        sink->send(line_no, parts, body);
    }
    return !io_error;
}

// ---- JSON lines (nlohmann) ---------------------------------------------------------------------
// Each object is mapped to columns by key, like ingest_enqueue(target, jsonb): the row names the
// table columns that are keys of the object (in table order), so a missing key takes the column
// default and a JSON null loads NULL. Keys that are not columns are ignored, with one warning
// each. With --columns, exactly those columns are loaded (a missing key loads NULL).
bool load_jsonl(std::FILE *f, const LoadOptions &, LoadState &st, Columns &cols, const SinkFactory &sink_for,
                const std::vector<std::string> &table_cols, std::uint64_t &line_no) {
    using json = Json;
    const bool fixed = !cols.names.empty();
    std::set<std::string> warned_keys;
    std::string line;
    bool io_error = false;
    Sink *sink = sink_for(cols);
    if (!sink)
        return true;
    while (!g_interrupted && !st.error_budget_exhausted() && read_line(f, line, st, io_error)) {
        ++line_no;
        std::string body = line;
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
            body.pop_back();
        if (trim(body).empty())
            continue;
        json obj;
        try {
            obj = json::parse(body);
        } catch (const std::exception &e) {
            st.read++;
            st.reject(line_no, std::string("bad JSON: ") + e.what(), body);
            continue;
        }
        if (!obj.is_object()) {
            st.read++;
            st.reject(line_no, "not a JSON object", body);
            continue;
        }
        const std::vector<std::string> &known = fixed ? cols.names : table_cols;
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            if (std::find(known.begin(), known.end(), it.key()) == known.end() &&
                warned_keys.insert(it.key()).second)
                std::fprintf(stderr, "pgingest: line %llu: ignoring key \"%s\" (not a column of %s)\n",
                             static_cast<unsigned long long>(line_no), it.key().c_str(),
                             fixed ? "--columns" : "the table");
        }
        std::vector<std::string> names = fixed ? cols.names : json_columns(obj, table_cols);
        if (names.empty()) {
            st.read++;
            st.reject(line_no, "no key of the object names a column", body);
            continue;
        }
        const pgingest::Table *table = fixed ? nullptr : sink->table_for(names);
        if (!fixed && !table) {
            st.read++;
            st.reject(line_no,
                      "more than " + std::to_string(Sink::kMaxColumnSets) +
                          " different key sets in one load (give --columns)",
                      body);
            continue;
        }
        std::vector<std::string> fields = json_fields(obj, names);
        sink->send(line_no, fields, body, table);
    }
    return !io_error;
}

} // namespace pgingest_cli
