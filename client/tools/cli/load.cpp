// pgingest load, step by step: check the options, check the inputs, ask the server for the
// table's columns, read every input through its reader into a Sink (created with its Producer
// on the first record), drain the producer, print the summary and choose the exit code.
#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"
#include "readers.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace pgingest_cli {

namespace {

// Step 1: option combinations CLI11 cannot check. kExitOk or kExitUsage.
int check_options(LoadOptions &o) {
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
    // --ack, else the deprecated --wait-for-commit (the parser refuses both) mapped as
    // ProducerConfig's durable: on (the default) = committed, off = queued.
    if (o.ack.empty())
        o.ack = o.wait_for_commit == "off" ? "queued" : "committed";
    if (o.files.empty())
        o.files.push_back("-");
    return kExitOk;
}

// Step 2: every input must be readable before anything is sent; their total size (for the
// progress line's percent and ETA) is known when all are regular files.
struct InputSize {
    std::uint64_t total = 0;
    bool known = true;
};

int check_inputs(const LoadOptions &o, InputSize &size) {
    for (const auto &f : o.files) {
        struct stat sb;
        if (f == "-") {
            if (fstat(STDIN_FILENO, &sb) == 0 && S_ISREG(sb.st_mode))
                size.total += static_cast<std::uint64_t>(sb.st_size);
            else
                size.known = false;
            continue;
        }
        if (::stat(f.c_str(), &sb) != 0 || access(f.c_str(), R_OK) != 0) {
            std::fprintf(stderr, "pgingest: cannot read %s: %s\n", f.c_str(), std::strerror(errno));
            return kExitInput;
        }
        if (S_ISREG(sb.st_mode))
            size.total += static_cast<std::uint64_t>(sb.st_size);
        else
            size.known = false;
    }
    return kExitOk;
}

// Step 3: --columns, when given.
Columns given_columns(const LoadOptions &o) {
    Columns cols;
    if (!o.columns.empty()) {
        for (auto &c : split(o.columns, ','))
            cols.names.push_back(trim(c));
        cols.count = cols.names.size();
    }
    return cols;
}

// Step 4: connect once to check the server and read the table's columns (needed unless a dry
// run knows its columns from --columns or a CSV/TSV header).
int probe_table(const LoadOptions &o, const Columns &cols, std::vector<std::string> &table_cols) {
    bool need_server = !o.dry_run || (cols.names.empty() && (!o.header || o.format == "jsonl"));
    if (!need_server)
        return kExitOk;
    PgConn pg;
    std::string err;
    if (!pg.connect(o.dsn, err)) {
        std::fprintf(stderr, "pgingest: cannot connect: %s\n", err.c_str());
        return kExitConnection;
    }
    if (!table_columns(pg.c, o.table, table_cols, err)) {
        std::fprintf(stderr, "pgingest: table %s: %s\n", o.table.c_str(), err.c_str());
        return kExitUsage;
    }
    return kExitOk;
}

// On a terminal, a log line first clears the progress line.
const char *clear_line() {
    return isatty(STDERR_FILENO) ? "\r\033[K" : "";
}

pgingest::ProducerConfig producer_config(const LoadOptions &o) {
    pgingest::ProducerConfig cfg;
    cfg.conninfo = o.dsn;
    cfg.pool_min = 1;
    cfg.pool_max = o.workers;
    cfg.batch_max_rows = o.batch_rows;
    pgingest::AckMode ack = pgingest::AckMode::kCommitted;
    pgingest::parse_ack_mode(o.ack, ack); // a valid name: the option parser checked it
    cfg.ack = ack;
    cfg.full_queue_policy = pgingest::FullQueuePolicy::kBlock;
    cfg.block_timeout = std::chrono::milliseconds(1000);
    cfg.log_level = pgingest::LogLevel::kWarning;
    cfg.on_log = [](pgingest::LogLevel, const std::string &m) {
        std::fprintf(stderr, "%spgingest: %s\n", clear_line(), m.c_str());
    };
    return cfg;
}

// Step 5: the Sink (and its Producer), made when the first record says which columns it fills.
class SinkMaker {
  public:
    SinkMaker(const LoadOptions &o, LoadState &st, const std::vector<std::string> &table_cols)
        : o_(o), st_(st), table_cols_(table_cols) {}

    Sink *operator()(const Columns &c) {
        if (sink_)
            return sink_.get();
        if (failed_)
            return nullptr;
        Columns &mc = const_cast<Columns &>(c);
        if (mc.count == 0)
            mc.count = table_cols_.size();
        if (o_.dry_run) {
            sink_ = std::make_unique<Sink>(st_, nullptr, o_.table, c.names);
            return sink_.get();
        }
        try {
            producer_ = std::make_unique<pgingest::Producer>(producer_config(o_));
        } catch (const std::exception &e) {
            std::fprintf(stderr, "pgingest: %s\n", e.what());
            failed_ = true;
            return nullptr;
        }
        sink_ = std::make_unique<Sink>(st_, producer_.get(), o_.table, c.names);
        return sink_.get();
    }

    bool failed() const { return failed_; }
    pgingest::Producer *producer() { return producer_.get(); }
    Sink *sink() { return sink_.get(); }

  private:
    const LoadOptions &o_;
    LoadState &st_;
    const std::vector<std::string> &table_cols_;
    std::unique_ptr<pgingest::Producer> producer_;
    std::unique_ptr<Sink> sink_;
    bool failed_ = false;
};

// Step 6: read every input in turn (line numbers are per file). kExitOk, or kExitInput.
int read_inputs(const LoadOptions &o, LoadState &st, Columns &cols, SinkMaker &maker,
                const std::vector<std::string> &table_cols) {
    SinkFactory sink_for = [&maker](const Columns &c) { return maker(c); };
    for (const auto &f : o.files) {
        if (g_interrupted || st.error_budget_exhausted() || maker.failed())
            break;
        std::FILE *in = f == "-" ? stdin : std::fopen(f.c_str(), "r");
        if (!in) {
            std::fprintf(stderr, "pgingest: cannot open %s: %s\n", f.c_str(), std::strerror(errno));
            return kExitInput;
        }
        std::uint64_t line_no = 0;
        bool header_pending = o.header;
        bool ok = o.format == "csv"   ? load_csv(in, o, st, cols, sink_for, header_pending, line_no)
                  : o.format == "tsv" ? load_tsv(in, o, st, cols, sink_for, header_pending, line_no)
                                      : load_jsonl(in, o, st, cols, sink_for, table_cols, line_no);
        if (in != stdin)
            std::fclose(in);
        if (!ok) {
            std::fprintf(stderr, "pgingest: read error on %s\n", f.c_str());
            return kExitInput;
        }
    }
    return kExitOk;
}

// Step 7: flush what was read (bounded by the retry policy), unless a second Ctrl-C says stop
// waiting: then what is left is reported as not committed by this run.
void drain(pgingest::Producer &producer) {
    bool told = false;
    while (!producer.flush(std::chrono::milliseconds(200)).ok()) {
        if (g_interrupted == 1 && !told) {
            std::fprintf(stderr,
                         "%spgingest: interrupted: stopped reading, waiting for the rows already read "
                         "(Ctrl-C again to stop waiting)\n",
                         clear_line());
            told = true;
        }
        if (g_interrupted >= 2) {
            std::fprintf(stderr, "pgingest: stopped waiting; rows not yet acknowledged are reported as "
                                 "rejected, but those already sent may still be committed by the server\n");
            break;
        }
    }
    producer.close(std::chrono::seconds(g_interrupted >= 2 ? 1 : 10));
}

// Step 8: the summary line, then the exit code.
void print_summary(const LoadOptions &o, const LoadState &st, double el) {
    char summary[512];
    std::snprintf(summary, sizeof summary,
                  "pgingest: %s%llu rows read, %llu %s, %llu rejected in %.2f s (%.0f rows/s)%s\n",
                  o.dry_run ? "dry run: " : "", static_cast<unsigned long long>(st.read.load()),
                  static_cast<unsigned long long>(st.committed.load()), o.dry_run ? "valid" : st.acked_word(),
                  static_cast<unsigned long long>(st.rejected()), el, el > 0 ? st.committed.load() / el : 0.0,
                  g_interrupted ? " (interrupted)" : "");
    std::fputs(summary, stderr);
    if (st.error_budget_exhausted())
        std::fprintf(stderr, "pgingest: stopped after %zu errors (--max-errors)\n", o.max_errors);
}

int exit_code(int rc, const LoadState &st) {
    if (g_interrupted)
        return kExitInterrupted;
    if (rc != kExitOk)
        return rc;
    std::uint64_t rej = st.rejected();
    if (rej > 0 && st.connection_failed && st.committed == 0)
        return kExitConnection;
    return rej > 0 ? kExitRejected : kExitOk;
}

} // namespace

int run_load(LoadOptions &o) {
    int rc = check_options(o);
    InputSize size;
    if (rc == kExitOk)
        rc = check_inputs(o, size);
    if (rc != kExitOk)
        return rc;
    Columns cols = given_columns(o);
    std::vector<std::string> table_cols;
    if ((rc = probe_table(o, cols, table_cols)) != kExitOk)
        return rc;

    LoadState st(o);
    if (!st.open_rejects()) {
        std::fprintf(stderr, "pgingest: cannot write %s: %s\n", o.rejects.c_str(), std::strerror(errno));
        return kExitInput;
    }
    install_sigint_handler();

    auto start = Clock::now();
    SinkMaker maker(o, st, table_cols);
    {
        Progress progress(st, o.progress, size.known ? size.total : 0);
        rc = read_inputs(o, st, cols, maker, table_cols);
        if (maker.sink()) // the rows read and not yet handed over (also after Ctrl-C or an error)
            maker.sink()->flush();
        if (maker.producer())
            drain(*maker.producer());
        progress.stop();
    }
    if (maker.failed() && rc == kExitOk)
        rc = kExitUsage;
    print_summary(o, st, std::chrono::duration<double>(Clock::now() - start).count());
    return exit_code(rc, st);
}

} // namespace pgingest_cli
