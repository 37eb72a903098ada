// pgingest: command-line loader for pg_ingest (CSV, TSV, JSON lines -> libpgingest Producer)
// and a viewer for ingest_status.
//
// Exit codes: 0 all rows committed; 1 some rows rejected; 2 usage error; 3 connection failure;
// 4 input file error; 130 interrupted (SIGINT).
#include <pgingest/pgingest.hpp>

#include <CLI/CLI.hpp>
#include <csv.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kExitOk = 0, kExitRejected = 1, kExitUsage = 2, kExitConnection = 3, kExitInput = 4,
              kExitInterrupted = 130;

// SIGINT count: the first stops reading and flushes what was read, the second stops waiting.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) {
    if (g_interrupted < 2)
        g_interrupted = g_interrupted + 1;
}

using Clock = std::chrono::steady_clock;

struct LoadOptions {
    std::string table;
    std::string format = "csv";
    std::string columns;
    bool header = false;
    std::string delimiter;
    std::string null_string;
    bool null_given = false;
    std::string dsn;
    std::size_t batch_rows = 10000;
    std::size_t workers = 4;
    std::string wait_for_commit = "on";
    std::string rejects;
    std::size_t max_errors = 0; // 0: unlimited
    bool dry_run = false;
    std::string progress = "auto";
    std::vector<std::string> files;
};

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::string trim(const std::string &s) {
    std::size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A reason for the rejects file: one line, no TABs.
std::string one_line(std::string s) {
    for (char &c : s)
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
    return s;
}

// Shared state of one load: counters, the rejects file, the error budget.
class LoadState {
  public:
    explicit LoadState(const LoadOptions &o) : opt_(o) {}

    bool open_rejects() {
        if (opt_.rejects.empty())
            return true;
        rejects_ = std::fopen(opt_.rejects.c_str(), "w");
        return rejects_ != nullptr;
    }
    ~LoadState() {
        if (rejects_)
            std::fclose(rejects_);
    }

    void reject(std::uint64_t line, const std::string &reason, std::string raw) {
        while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r'))
            raw.pop_back();
        std::lock_guard<std::mutex> g(mu_);
        ++rejected_;
        if (rejects_) {
            std::fprintf(rejects_, "%llu\t%s\t%s\n", static_cast<unsigned long long>(line),
                         one_line(reason).c_str(), raw.c_str());
            std::fflush(rejects_);
        }
    }
    std::uint64_t rejected() const {
        std::lock_guard<std::mutex> g(mu_);
        return rejected_;
    }
    bool error_budget_exhausted() const { return opt_.max_errors > 0 && rejected() >= opt_.max_errors; }

    std::atomic<std::uint64_t> read{0}, committed{0}, bytes{0};
    std::atomic<bool> connection_failed{false};

  private:
    const LoadOptions &opt_;
    mutable std::mutex mu_;
    std::uint64_t rejected_ = 0;
    std::FILE *rejects_ = nullptr;
};

// Sink for parsed rows: a Producer, or nothing with --dry-run.
class Sink {
  public:
    Sink(LoadState &st, pgingest::Producer *producer, std::string table_name, std::vector<std::string> columns)
        : st_(st), producer_(producer), name_(std::move(table_name)) {
        if (producer_)
            table_ = producer_->table(name_, std::move(columns));
    }

    // The target with another column list (JSON objects with different keys); nullptr past
    // kMaxColumnSets distinct lists, to keep the registry bounded.
    const pgingest::Table *table_for(const std::vector<std::string> &columns) {
        auto it = by_columns_.find(columns);
        if (it != by_columns_.end())
            return &it->second;
        if (by_columns_.size() >= kMaxColumnSets)
            return nullptr;
        pgingest::Table t = producer_ ? producer_->table(name_, columns) : pgingest::Table();
        return &by_columns_.emplace(columns, std::move(t)).first->second;
    }
    static constexpr std::size_t kMaxColumnSets = 256;

    // fields: COPY-escaped values (or "\N"), for the sink's columns or those of `table`.
    void send(std::uint64_t line, const std::vector<std::string> &fields, std::string raw,
              const pgingest::Table *table = nullptr) {
        std::string copy;
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i)
                copy += '\t';
            copy += fields[i];
        }
        st_.read++;
        if (!producer_) {
            st_.committed++;
            return;
        }
        auto raw_p = std::make_shared<std::string>(std::move(raw));
        LoadState *st = &st_;
        auto cb = [st, line, raw_p](const pgingest::DeliveryReport &r) {
            if (r.status.ok()) {
                st->committed++;
            } else {
                if (r.status.code() == pgingest::ErrorCode::kRetriesExhausted)
                    st->connection_failed = true;
                st->reject(line, r.status.to_string(), *raw_p);
            }
        };
        for (;;) {
            pgingest::Status s =
                producer_->enqueue(table ? *table : table_, pgingest::Row::from_copy_line(copy), cb);
            if (s.ok())
                return;
            if (s.code() == pgingest::ErrorCode::kTimedOut || s.code() == pgingest::ErrorCode::kQueueFull)
                continue; // policy block: wait for room again
            st_.reject(line, s.to_string(), *raw_p);
            return;
        }
    }

  private:
    LoadState &st_;
    pgingest::Producer *producer_;
    std::string name_;
    pgingest::Table table_;
    std::map<std::vector<std::string>, pgingest::Table> by_columns_;
};

std::string copy_escape(std::string_view v) {
    std::string out;
    pgingest::append_copy_escaped(out, v);
    return out;
}

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

// ---- CSV (libcsv) ----------------------------------------------------------------------------
struct CsvCtx {
    std::vector<std::string> fields;
    std::vector<std::vector<std::string>> records; // completed records, escaped fields
    const std::string *null_string = nullptr;
};

extern "C" void csv_field_cb(void *s, size_t len, void *data) {
    auto *c = static_cast<CsvCtx *>(data);
    if (s == nullptr) { // empty unquoted field (CSV_EMPTY_IS_NULL): NULL unless --null names another marker
        bool other_marker = c->null_string && !c->null_string->empty();
        c->fields.emplace_back(other_marker ? "" : "\\N");
        return;
    }
    std::string_view v(static_cast<const char *>(s), len);
    if (c->null_string && !c->null_string->empty() && v == *c->null_string)
        c->fields.emplace_back("\\N");
    else
        c->fields.push_back(copy_escape(v));
}
extern "C" void csv_record_cb(int, void *data) {
    auto *c = static_cast<CsvCtx *>(data);
    c->records.push_back(std::move(c->fields));
    c->fields.clear();
}

// Mapping of input to columns, decided by the first record/object when not given.
struct Columns {
    std::vector<std::string> names; // empty: all table columns (count from the server)
    std::size_t count = 0;          // expected field count (0: unknown yet)
};

using SinkFactory = std::function<Sink *(const Columns &)>;

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

// Returns false on an input error.
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
    using json = nlohmann::ordered_json;
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
        std::vector<std::string> names;
        if (fixed) {
            names = cols.names;
        } else {
            for (const auto &c : table_cols)
                if (obj.contains(c))
                    names.push_back(c);
        }
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
        std::vector<std::string> fields;
        fields.reserve(names.size());
        for (const auto &name : names) {
            auto it = obj.find(name);
            if (it == obj.end() || it->is_null())
                fields.emplace_back("\\N");
            else if (it->is_string())
                fields.push_back(copy_escape(it->get_ref<const std::string &>()));
            else
                fields.push_back(copy_escape(it->dump()));
        }
        sink->send(line_no, fields, body, table);
    }
    return !io_error;
}

// ---- libpq helpers -----------------------------------------------------------------------------
struct PgConn {
    PGconn *c = nullptr;
    ~PgConn() {
        if (c)
            PQfinish(c);
    }
};

// The table's columns, in order; false with err set on failure.
bool table_columns(PGconn *c, const std::string &table, std::vector<std::string> &out, std::string &err) {
    const char *params[1] = {table.c_str()};
    PGresult *r = PQexecParams(c,
                               "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                               "AND NOT attisdropped ORDER BY attnum",
                               1, nullptr, params, nullptr, nullptr, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok) {
        for (int i = 0; i < PQntuples(r); ++i)
            out.emplace_back(PQgetvalue(r, i, 0));
    } else {
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        err = primary ? primary : trim(PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

std::string fmt_rate(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
}

// ---- progress ----------------------------------------------------------------------------------
class Progress {
  public:
    Progress(LoadState &st, std::string mode, std::uint64_t total_bytes)
        : st_(st), total_(total_bytes), start_(Clock::now()) {
        if (mode == "auto")
            mode_ = isatty(STDERR_FILENO) ? 1 : 0;
        else if (mode == "log")
            mode_ = 2;
        else
            mode_ = 0;
        if (mode_)
            th_ = std::thread([this] { run(); });
    }
    ~Progress() { stop(); }
    void stop() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (th_.joinable())
            th_.join();
        if (mode_ == 1 && printed_)
            std::fprintf(stderr, "\r\033[K");
    }

  private:
    void run() {
        auto period = mode_ == 1 ? std::chrono::milliseconds(250) : std::chrono::milliseconds(2000);
        std::unique_lock<std::mutex> lk(mu_);
        while (!cv_.wait_for(lk, period, [this] { return stop_; })) {
            double el = std::chrono::duration<double>(Clock::now() - start_).count();
            std::uint64_t rows = st_.read, bytes = st_.bytes, comm = st_.committed;
            std::string s = "rows " + std::to_string(rows) + " (committed " + std::to_string(comm) +
                            ", rejected " + std::to_string(st_.rejected()) + "), " +
                            fmt_rate(el > 0 ? rows / el : 0) + " rows/s";
            char mb[64];
            std::snprintf(mb, sizeof mb, ", %.1f MB/s", el > 0 ? bytes / el / 1e6 : 0.0);
            s += mb;
            if (total_ > 0) {
                double frac = static_cast<double>(bytes) / static_cast<double>(total_);
                char pc[96];
                double eta = frac > 0 ? el / frac - el : 0;
                std::snprintf(pc, sizeof pc, ", %.1f%%, ETA %.0fs", frac * 100, eta < 0 ? 0 : eta);
                s += pc;
            }
            if (mode_ == 1)
                std::fprintf(stderr, "\r\033[K%s", s.c_str());
            else
                std::fprintf(stderr, "pgingest: %s\n", s.c_str());
            std::fflush(stderr);
            printed_ = true;
        }
    }

    LoadState &st_;
    std::uint64_t total_;
    Clock::time_point start_;
    int mode_ = 0; // 0 none, 1 live, 2 log
    bool printed_ = false;
    std::thread th_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
};

int run_load(LoadOptions &o) {
    if (o.format != "csv" && o.format != "tsv" && o.format != "jsonl") {
        std::fprintf(stderr, "pgingest: --format must be csv, tsv or jsonl\n");
        return kExitUsage;
    }
    if (o.delimiter.size() > 1) {
        std::fprintf(stderr, "pgingest: --delimiter must be a single character\n");
        return kExitUsage;
    }
    if (o.workers == 0 || o.batch_rows == 0) {
        std::fprintf(stderr, "pgingest: --workers and --batch-rows must be positive\n");
        return kExitUsage;
    }
    if (o.files.empty())
        o.files.push_back("-");

    // Input files: all must be readable before anything is sent.
    std::uint64_t total_bytes = 0;
    bool sizes_known = true;
    for (const auto &f : o.files) {
        if (f == "-") {
            struct stat sb;
            if (fstat(STDIN_FILENO, &sb) == 0 && S_ISREG(sb.st_mode))
                total_bytes += static_cast<std::uint64_t>(sb.st_size);
            else
                sizes_known = false;
            continue;
        }
        struct stat sb;
        if (::stat(f.c_str(), &sb) != 0 || access(f.c_str(), R_OK) != 0) {
            std::fprintf(stderr, "pgingest: cannot read %s: %s\n", f.c_str(), std::strerror(errno));
            return kExitInput;
        }
        if (S_ISREG(sb.st_mode))
            total_bytes += static_cast<std::uint64_t>(sb.st_size);
        else
            sizes_known = false;
    }

    Columns cols;
    if (!o.columns.empty()) {
        for (auto &c : split(o.columns, ','))
            cols.names.push_back(trim(c));
        cols.count = cols.names.size();
    }

    // Connection check (and the table's column count when needed).
    PgConn pg;
    std::vector<std::string> table_cols;
    bool need_server = !o.dry_run || (cols.names.empty() && (!o.header || o.format == "jsonl"));
    if (need_server) {
        pg.c = PQconnectdb(o.dsn.c_str());
        if (PQstatus(pg.c) != CONNECTION_OK) {
            std::fprintf(stderr, "pgingest: cannot connect: %s\n", trim(PQerrorMessage(pg.c)).c_str());
            return kExitConnection;
        }
        std::string err;
        if (!table_columns(pg.c, o.table, table_cols, err)) {
            std::fprintf(stderr, "pgingest: table %s: %s\n", o.table.c_str(), err.c_str());
            return kExitUsage;
        }
        PQfinish(pg.c);
        pg.c = nullptr;
    }

    LoadState st(o);
    if (!st.open_rejects()) {
        std::fprintf(stderr, "pgingest: cannot write %s: %s\n", o.rejects.c_str(), std::strerror(errno));
        return kExitInput;
    }

    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked read returns
    sigaction(SIGINT, &sa, nullptr);

    std::unique_ptr<pgingest::Producer> producer;
    std::unique_ptr<Sink> sink;
    bool sink_failed = false;
    auto start = Clock::now();
    SinkFactory sink_for = [&](const Columns &c) -> Sink * {
        if (sink)
            return sink.get();
        if (sink_failed)
            return nullptr;
        Columns &mc = const_cast<Columns &>(c);
        if (mc.count == 0)
            mc.count = table_cols.size();
        if (o.dry_run) {
            sink = std::make_unique<Sink>(st, nullptr, o.table, c.names);
            return sink.get();
        }
        pgingest::ProducerConfig cfg;
        cfg.conninfo = o.dsn;
        cfg.pool_min = 1;
        cfg.pool_max = o.workers;
        cfg.batch_max_rows = o.batch_rows;
        cfg.durable = o.wait_for_commit != "off";
        cfg.full_queue_policy = pgingest::FullQueuePolicy::kBlock;
        cfg.block_timeout = std::chrono::milliseconds(1000);
        cfg.log_level = pgingest::LogLevel::kWarning;
        cfg.on_log = [](pgingest::LogLevel, const std::string &m) {
            // On a terminal, clear the progress line first.
            std::fprintf(stderr, "%spgingest: %s\n", isatty(STDERR_FILENO) ? "\r\033[K" : "", m.c_str());
        };
        try {
            producer = std::make_unique<pgingest::Producer>(cfg);
        } catch (const std::exception &e) {
            std::fprintf(stderr, "pgingest: %s\n", e.what());
            sink_failed = true;
            return nullptr;
        }
        sink = std::make_unique<Sink>(st, producer.get(), o.table, c.names);
        return sink.get();
    };

    int rc = kExitOk;
    {
        Progress progress(st, o.progress, sizes_known ? total_bytes : 0);
        std::uint64_t line_no = 0;
        bool header_pending = o.header;
        for (const auto &f : o.files) {
            if (g_interrupted || st.error_budget_exhausted() || sink_failed)
                break;
            std::FILE *in = f == "-" ? stdin : std::fopen(f.c_str(), "r");
            if (!in) {
                std::fprintf(stderr, "pgingest: cannot open %s: %s\n", f.c_str(), std::strerror(errno));
                rc = kExitInput;
                break;
            }
            line_no = 0; // line numbers are per file
            header_pending = o.header;
            bool ok = o.format == "csv"   ? load_csv(in, o, st, cols, sink_for, header_pending, line_no)
                      : o.format == "tsv" ? load_tsv(in, o, st, cols, sink_for, header_pending, line_no)
                                          : load_jsonl(in, o, st, cols, sink_for, table_cols, line_no);
            if (in != stdin)
                std::fclose(in);
            if (!ok) {
                std::fprintf(stderr, "pgingest: read error on %s\n", f.c_str());
                rc = kExitInput;
                break;
            }
        }
        if (producer) {
            // Flush what was read (bounded by the retry policy), unless a second Ctrl-C says stop
            // waiting: then what is left is reported as not committed by this run.
            bool told = false;
            while (!producer->flush(std::chrono::milliseconds(200)).ok()) {
                if (g_interrupted == 1 && !told) {
                    std::fprintf(stderr, "%spgingest: interrupted: stopped reading, waiting for the rows already read "
                                         "(Ctrl-C again to stop waiting)\n",
                                 isatty(STDERR_FILENO) ? "\r\033[K" : "");
                    told = true;
                }
                if (g_interrupted >= 2) {
                    std::fprintf(stderr, "pgingest: stopped waiting; rows not yet acknowledged are reported as "
                                         "rejected, but those already sent may still be committed by the server\n");
                    break;
                }
            }
            producer->close(std::chrono::seconds(g_interrupted >= 2 ? 1 : 10));
        }
        progress.stop();
    }
    if (sink_failed && rc == kExitOk)
        rc = kExitUsage;

    double el = std::chrono::duration<double>(Clock::now() - start).count();
    std::uint64_t rej = st.rejected();
    char summary[512];
    std::snprintf(summary, sizeof summary,
                  "pgingest: %s%llu rows read, %llu %s, %llu rejected in %.2f s (%.0f rows/s)%s\n",
                  o.dry_run ? "dry run: " : "", static_cast<unsigned long long>(st.read.load()),
                  static_cast<unsigned long long>(st.committed.load()), o.dry_run ? "valid" : "committed",
                  static_cast<unsigned long long>(rej), el,
                  el > 0 ? st.committed.load() / el : 0.0, g_interrupted ? " (interrupted)" : "");
    std::fputs(summary, stderr);
    if (st.error_budget_exhausted())
        std::fprintf(stderr, "pgingest: stopped after %zu errors (--max-errors)\n", o.max_errors);

    if (g_interrupted)
        return kExitInterrupted;
    if (rc != kExitOk)
        return rc;
    if (rej > 0 && st.connection_failed && st.committed == 0)
        return kExitConnection;
    return rej > 0 ? kExitRejected : kExitOk;
}

// ---- status ------------------------------------------------------------------------------------
int run_status(const std::string &dsn, bool as_json) {
    PgConn pg;
    pg.c = PQconnectdb(dsn.c_str());
    if (PQstatus(pg.c) != CONNECTION_OK) {
        std::fprintf(stderr, "pgingest: cannot connect: %s\n", trim(PQerrorMessage(pg.c)).c_str());
        return kExitConnection;
    }
    PGresult *r = PQexec(pg.c, "SELECT * FROM ingest_status");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::fprintf(stderr, "pgingest: %s\n", trim(PQerrorMessage(pg.c)).c_str());
        PQclear(r);
        return kExitConnection;
    }
    int nf = PQnfields(r), nt = PQntuples(r);
    if (as_json) {
        nlohmann::ordered_json arr = nlohmann::ordered_json::array();
        for (int i = 0; i < nt; ++i) {
            nlohmann::ordered_json row = nlohmann::ordered_json::object();
            for (int j = 0; j < nf; ++j) {
                const char *name = PQfname(r, j);
                if (PQgetisnull(r, i, j)) {
                    row[name] = nullptr;
                    continue;
                }
                std::string v = PQgetvalue(r, i, j);
                Oid t = PQftype(r, j);
                if (t == 16) // bool
                    row[name] = (v == "t");
                else if (t == 20 || t == 21 || t == 23 || t == 26) // int8, int2, int4, oid
                    row[name] = std::stoll(v);
                else if (t == 700 || t == 701 || t == 1700) { // float4/8, numeric
                    try {
                        row[name] = std::stod(v);
                    } catch (...) {
                        row[name] = v;
                    }
                } else
                    row[name] = v;
            }
            arr.push_back(std::move(row));
        }
        std::printf("%s\n", (nt == 1 ? arr[0] : arr).dump(2).c_str());
    } else {
        std::size_t w = 0;
        for (int j = 0; j < nf; ++j)
            w = std::max(w, std::strlen(PQfname(r, j)));
        for (int i = 0; i < nt; ++i) {
            if (nt > 1)
                std::printf("-[ row %d ]\n", i + 1);
            for (int j = 0; j < nf; ++j)
                std::printf("%-*s : %s\n", static_cast<int>(w), PQfname(r, j),
                            PQgetisnull(r, i, j) ? "(null)" : PQgetvalue(r, i, j));
        }
    }
    PQclear(r);
    return kExitOk;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"pgingest: load CSV, TSV or JSON lines into PostgreSQL through pg_ingest"};
    app.require_subcommand(1);
    LoadOptions o;
    CLI::App *load = app.add_subcommand("load", "load rows from files (or stdin: -)");
    load->add_option("--table,-t", o.table, "target table")->required();
    load->add_option("--format,-f", o.format, "csv | tsv | jsonl")
        ->check(CLI::IsMember({"csv", "tsv", "jsonl"}));
    load->add_option("--columns,-c", o.columns, "comma-separated column list");
    load->add_flag("--header", o.header, "the first record is a header (its names are the columns)");
    load->add_option("--delimiter,-d", o.delimiter, "field delimiter (csv: ',', tsv: TAB)");
    auto *null_opt = load->add_option("--null", o.null_string, "string that marks NULL");
    load->add_option("--dsn", o.dsn, "libpq conninfo (default: PG* environment)");
    load->add_option("--batch-rows", o.batch_rows, "rows per batch")->check(CLI::PositiveNumber);
    load->add_option("--workers,-j", o.workers, "connections")->check(CLI::PositiveNumber);
    load->add_option("--wait-for-commit", o.wait_for_commit, "on | off")->check(CLI::IsMember({"on", "off"}));
    load->add_option("--rejects", o.rejects, "write rejected rows here");
    load->add_option("--max-errors", o.max_errors, "stop reading after N rejects (0: no limit)");
    load->add_flag("--dry-run", o.dry_run, "parse and validate only");
    load->add_option("--progress", o.progress, "auto | log | none")
        ->check(CLI::IsMember({"auto", "log", "none"}));
    load->add_option("files", o.files, "input files ('-' = stdin)");

    std::string status_dsn;
    bool status_json = false;
    CLI::App *status = app.add_subcommand("status", "show ingest_status");
    status->add_option("--dsn", status_dsn, "libpq conninfo (default: PG* environment)");
    status->add_flag("--json", status_json, "JSON output");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        app.exit(e);
        return kExitUsage;
    }
    if (*load) {
        o.null_given = null_opt->count() > 0;
        return run_load(o);
    }
    return run_status(status_dsn, status_json);
}
