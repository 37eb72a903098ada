#include "readers.hpp"

#include "common.hpp"
#include "record_fields.hpp"

#include <csv.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <set>
#include <sys/types.h>
#include <unistd.h>

namespace pgingest_cli {

namespace {

// The lines of a file, read in large chunks: each a view into the buffer (with its newline; the
// last line may have none), valid until the next call, so reading allocates nothing per line.
// Before a read that may wait for input (a pipe or terminal with nothing ready) it calls
// `before_wait`, so rows already read are not held back meanwhile.
class LineReader {
  public:
    LineReader(std::FILE *f, LoadState &st, std::function<void()> before_wait)
        : fd_(fileno(f)), st_(st), before_wait_(std::move(before_wait)), buf_(kChunk, '\0') {}

    // false at the end, on a read error (then io_error()) or when interrupted.
    bool next(std::string_view &line) {
        for (;;) {
            if (pos_ < end_) {
                const char *p = buf_.data() + pos_;
                if (const void *nl = std::memchr(p, '\n', end_ - pos_)) {
                    std::size_t n = static_cast<std::size_t>(static_cast<const char *>(nl) - p) + 1;
                    line = std::string_view(p, n);
                    pos_ += n;
                    return true;
                }
            }
            if (eof_) {
                if (pos_ == end_)
                    return false;
                line = std::string_view(buf_.data() + pos_, end_ - pos_);
                pos_ = end_;
                return true;
            }
            if (!fill())
                return false;
        }
    }
    bool io_error() const { return io_error_; }

  private:
    static constexpr std::size_t kChunk = 1u << 20;

    // Reads more after the partial line at pos_; false on error or interrupt.
    bool fill() {
        if (pos_ > 0) {
            std::memmove(&buf_[0], buf_.data() + pos_, end_ - pos_);
            end_ -= pos_;
            pos_ = 0;
        }
        if (buf_.size() - end_ < kChunk / 2) // a line longer than the buffer: grow it
            buf_.resize(buf_.size() * 2);
        if (before_wait_) {
            pollfd pfd{fd_, POLLIN, 0};
            if (::poll(&pfd, 1, 0) == 0)
                before_wait_();
        }
        for (;;) {
            ssize_t n = ::read(fd_, &buf_[end_], buf_.size() - end_);
            if (n > 0) {
                end_ += static_cast<std::size_t>(n);
                st_.bytes += static_cast<std::uint64_t>(n);
                return true;
            }
            if (n == 0) {
                eof_ = true;
                return true;
            }
            if (errno == EINTR && !g_interrupted)
                continue;
            if (!g_interrupted)
                io_error_ = true;
            return false;
        }
    }

    int fd_;
    LoadState &st_;
    std::function<void()> before_wait_;
    std::string buf_;
    std::size_t pos_ = 0, end_ = 0;
    bool eof_ = false, io_error_ = false;
};

// A header record names the columns, unless --columns did.
void take_header(std::vector<std::string> names, Columns &cols) {
    if (cols.names.empty() && cols.count == 0) { // plain names need no unescaping
        cols.count = names.size();
        cols.names = std::move(names);
    }
}

// A delimited record (CSV or TSV) of nfields fields after the header: the sink to send it to, or
// nullptr when it was consumed here (a wrong field count is rejected); sets stop when no sink can
// be had.
Sink *route_record(std::size_t nfields, std::uint64_t line, std::string_view raw, Columns &cols,
                   LoadState &st, const SinkFactory &sink_for, bool &stop) {
    Sink *sink = sink_for(cols);
    if (!sink) {
        stop = true;
        return nullptr;
    }
    if (cols.count && nfields != cols.count) {
        st.read++;
        st.reject(line, "expected " + std::to_string(cols.count) + " fields, got " + std::to_string(nfields),
                  raw);
        return nullptr;
    }
    return sink;
}

// libcsv callbacks of the loader: each record becomes one COPY text line (fields escaped and
// TAB-separated as they arrive; a record's buffer is reused for the next). With
// CSV_EMPTY_IS_NULL an empty unquoted field is NULL, unless null_string names another marker
// (then it is the empty string and the marker is NULL), as CsvCtx does for `serve`.
struct CsvLines {
    std::string cur; // the record being parsed
    std::size_t cur_fields = 0;
    std::vector<std::string> lines; // completed records of the current input line: lines[0, n)
    std::vector<std::size_t> fields;
    std::size_t n = 0;
    const std::string *null_string = nullptr;
    void reset() {
        cur.clear();
        cur_fields = 0;
        n = 0;
    }
};

extern "C" void csv_line_field_cb(void *s, std::size_t len, void *data) {
    auto *c = static_cast<CsvLines *>(data);
    if (c->cur_fields++)
        c->cur += '\t';
    const bool other_marker = c->null_string && !c->null_string->empty();
    if (s == nullptr) { // empty unquoted field
        if (!other_marker)
            c->cur += "\\N";
        return;
    }
    std::string_view v(static_cast<const char *>(s), len);
    if (other_marker && v == *c->null_string)
        c->cur += "\\N";
    else
        pgingest::append_copy_escaped(c->cur, v);
}

extern "C" void csv_line_record_cb(int, void *data) {
    auto *c = static_cast<CsvLines *>(data);
    if (c->n == c->lines.size()) {
        c->lines.emplace_back();
        c->fields.push_back(0);
    }
    std::swap(c->lines[c->n], c->cur);
    c->fields[c->n] = c->cur_fields;
    c->n++;
    c->cur.clear();
    c->cur_fields = 0;
}

// The common CSV line, parsed without libcsv: a whole record on one line (ending in '\n', or
// "\r\n"), without quotes, other carriage returns, or fields with leading or trailing blanks.
// Split at the delimiter it gives the fields libcsv gives (an empty field is NULL as with
// CSV_EMPTY_IS_NULL), so the record is put in ctx as csv_line_record_cb puts it; false (and
// nothing done) for any other line, which libcsv then parses.
bool simple_csv_line(std::string_view line, char delim, CsvLines &ctx) {
    if (line.empty() || line.back() != '\n')
        return false;
    std::string_view body = line.substr(0, line.size() - 1);
    if (!body.empty() && body.back() == '\r')
        body.remove_suffix(1);
    if (body.empty() || std::memchr(body.data(), '"', body.size()) ||
        std::memchr(body.data(), '\r', body.size()))
        return false;
    auto blank = [delim](char c) { return (c == ' ' || c == '\t') && c != delim; };
    const bool other_marker = ctx.null_string && !ctx.null_string->empty();
    ctx.cur.clear();
    ctx.cur_fields = 0;
    for (std::size_t start = 0;;) {
        const void *d = std::memchr(body.data() + start, delim, body.size() - start);
        const std::size_t end =
            d ? static_cast<std::size_t>(static_cast<const char *>(d) - body.data()) : body.size();
        std::string_view v = body.substr(start, end - start);
        if (!v.empty() && (blank(v.front()) || blank(v.back()))) { // libcsv trims these
            ctx.cur.clear();
            ctx.cur_fields = 0;
            return false;
        }
        if (ctx.cur_fields++)
            ctx.cur += '\t';
        if (v.empty() ? !other_marker : other_marker && v == *ctx.null_string)
            ctx.cur += "\\N";
        else
            pgingest::append_copy_escaped(ctx.cur, v);
        if (!d)
            break;
        start = end + 1;
    }
    csv_line_record_cb(0, &ctx);
    return true;
}

} // namespace

// ---- CSV (libcsv, and simple_csv_line for the common lines) ------------------------------------
bool load_csv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no) {
    char delim = o.format == "tsv" ? '\t' : ',';
    if (!o.delimiter.empty())
        delim = o.delimiter[0];
    std::string null_s = o.null_string;
    CsvLines ctx;
    ctx.null_string = &null_s;
    csv_parser p;
    auto init = [&] {
        csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
        csv_set_delim(&p, static_cast<unsigned char>(delim));
    };
    init();
    const int between_records = p.pstate; // libcsv's state when no record is under way
    std::string raw;                      // the input lines of the record libcsv is reading
    std::uint64_t record_line = line_no + 1;
    Sink *last_sink = nullptr;
    LineReader reader(f, st, [&last_sink] {
        if (last_sink)
            last_sink->flush();
    });
    auto handle_records = [&](std::string_view raw_input) {
        for (std::size_t i = 0; i < ctx.n; i++) {
            if (header_pending) {
                header_pending = false;
                take_header(split(ctx.lines[i], '\t'), cols);
                continue;
            }
            bool stop = false;
            if (Sink *sink = route_record(ctx.fields[i], record_line, raw_input, cols, st, sink_for, stop)) {
                last_sink = sink;
                sink->send_line(record_line, ctx.lines[i], raw_input);
            }
            if (stop)
                break;
        }
        ctx.n = 0;
    };
    std::string_view line;
    while (!g_interrupted && !st.error_budget_exhausted() && reader.next(line)) {
        ++line_no;
        if (raw.empty() && p.pstate == between_records && simple_csv_line(line, delim, ctx)) {
            record_line = line_no;
            handle_records(line);
            continue;
        }
        if (raw.empty())
            record_line = line_no;
        raw += line;
        std::size_t done =
            csv_parse(&p, line.data(), line.size(), csv_line_field_cb, csv_line_record_cb, &ctx);
        if (done != line.size()) {
            st.read++;
            st.reject(record_line, std::string("CSV parse error: ") + csv_strerror(csv_error(&p)), raw);
            csv_free(&p);
            init();
            ctx.reset();
            raw.clear();
            continue;
        }
        if (ctx.n > 0) {
            handle_records(raw);
            raw.clear();
        }
    }
    if (!g_interrupted && !st.error_budget_exhausted()) {
        if (csv_fini(&p, csv_line_field_cb, csv_line_record_cb, &ctx) != 0) {
            st.read++;
            st.reject(record_line, std::string("CSV parse error: ") + csv_strerror(csv_error(&p)), raw);
        } else {
            handle_records(raw);
        }
    }
    csv_free(&p);
    return !reader.io_error();
}

// ---- TSV (no quoting; --null, default \N, marks NULL) ------------------------------------------
bool load_tsv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no) {
    char delim = o.delimiter.empty() ? '\t' : o.delimiter[0];
    std::string null_s = o.null_given ? o.null_string : "\\N";
    Sink *last_sink = nullptr;
    LineReader reader(f, st, [&last_sink] {
        if (last_sink)
            last_sink->flush();
    });
    std::string_view line;
    std::vector<std::string> parts;
    std::string copy;
    while (!g_interrupted && !st.error_budget_exhausted() && reader.next(line)) {
        ++line_no;
        std::string_view body = line;
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
            body.remove_suffix(1);
        if (body.empty())
            continue;
        if (header_pending) {
            header_pending = false;
            take_header(split(std::string(body), delim), cols);
            continue;
        }
        std::size_t nfields = 1;
        for (char c : body)
            nfields += c == delim;
        bool stop = false;
        Sink *sink = route_record(nfields, line_no, body, cols, st, sink_for, stop);
        if (stop)
            break;
        if (!sink)
            continue;
        last_sink = sink;
        copy.clear();
        for (std::size_t start = 0;;) { // each field: the NULL marker to \N, else escaped
            std::size_t end = body.find(delim, start);
            std::string_view field =
                body.substr(start, end == std::string_view::npos ? body.size() - start : end - start);
            if (start)
                copy += '\t';
            if (field == null_s)
                copy += "\\N";
            else
                pgingest::append_copy_escaped(copy, field);
            if (end == std::string_view::npos)
                break;
            start = end + 1;
        }
        sink->send_line(line_no, copy, body);
    }
    return !reader.io_error();
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
    Sink *sink = sink_for(cols);
    if (!sink)
        return true;
    LineReader reader(f, st, [sink] { sink->flush(); });
    std::string_view line;
    while (!g_interrupted && !st.error_budget_exhausted() && reader.next(line)) {
        ++line_no;
        std::string body(line);
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
    return !reader.io_error();
}

} // namespace pgingest_cli
