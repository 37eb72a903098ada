// The state one `pgingest load` shares between its readers, the producer's delivery callbacks
// and the progress line: options, counters, the rejects file, and the Sink rows are sent to.
#pragma once
#include <pgingest/pgingest.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pgingest_cli {

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
    std::string ack;             // --ack; check_options() resolves it (default committed)
    std::string wait_for_commit; // --wait-for-commit, deprecated alias of --ack: on = committed, off = queued
    std::string rejects;
    std::size_t max_errors = 0; // 0: unlimited
    bool dry_run = false;
    std::string progress = "auto";
    std::vector<std::string> files;
};

// Shared state of one load: counters, the rejects file, the error budget.
class LoadState {
  public:
    explicit LoadState(const LoadOptions &o) : opt_(o) {}
    LoadState(const LoadState &) = delete;
    LoadState &operator=(const LoadState &) = delete;
    ~LoadState();

    bool open_rejects();
    bool keeps_rejects() const { return rejects_ != nullptr; } // raw input is only needed then
    void reject(std::uint64_t line, const std::string &reason, std::string_view raw);
    std::uint64_t rejected() const { return rejected_.load(); }
    bool error_budget_exhausted() const { return opt_.max_errors > 0 && rejected() >= opt_.max_errors; }
    // What an acknowledged row is, for the summary and the progress line: "committed" with
    // --ack committed, else "accepted" (acknowledged by the server, not yet inserted).
    const char *acked_word() const { return opt_.ack == "committed" ? "committed" : "accepted"; }

    std::atomic<std::uint64_t> read{0}, committed{0}, bytes{0};
    std::atomic<bool> connection_failed{false};

  private:
    const LoadOptions &opt_;
    std::mutex mu_; // the rejects file
    std::atomic<std::uint64_t> rejected_{0};
    std::FILE *rejects_ = nullptr;
};

// Sink for parsed rows: a Producer, or nothing with --dry-run. Rows are collected into blocks
// (pgingest::RowBlock) of at most kBlockRows rows / kBlockBytes bytes, each handed over with one
// Producer::enqueue_block() when full, when flush() is called (the readers do before a read that
// may wait, so rows trickling in through a pipe are not held back) and at the end. A block keeps
// the input line number of each row, and its raw input only when there is a rejects file. Not
// thread-safe: the reading thread's.
class Sink {
  public:
    Sink(LoadState &st, pgingest::Producer *producer, std::string table_name,
         std::vector<std::string> columns);
    Sink(const Sink &) = delete;
    Sink &operator=(const Sink &) = delete;

    // The target with another column list (JSON objects with different keys); nullptr past
    // kMaxColumnSets distinct lists, to keep the registry bounded.
    const pgingest::Table *table_for(const std::vector<std::string> &columns);
    static constexpr std::size_t kMaxColumnSets = 256;
    static constexpr std::size_t kBlockRows = 1000, kBlockBytes = 96u << 10; // below malloc's mmap threshold

    // One row: copy_line is its COPY text line (escaped fields, TAB-separated, no newline), for the
    // sink's columns or those of `table`; raw the input it came from (for the rejects file).
    void send_line(std::uint64_t line, std::string_view copy_line, std::string_view raw,
                   const pgingest::Table *table = nullptr);
    // The same with the fields (COPY-escaped values, or "\N") apart.
    void send(std::uint64_t line, const std::vector<std::string> &fields, std::string_view raw,
              const pgingest::Table *table = nullptr);
    // Hands the rows collected so far to the producer.
    void flush();

  private:
    // What the delivery callback of a block needs to report its rows: line numbers, raw input.
    struct BlockRows {
        std::vector<std::uint64_t> lines;
        std::string raw;                  // with a rejects file: the rows' raw input, one after the other
        std::vector<std::size_t> raw_end; // end of each row's raw input in `raw`
        std::string_view raw_of(std::size_t i) const {
            if (raw_end.empty())
                return {};
            std::size_t b = i ? raw_end[i - 1] : 0;
            return std::string_view(raw).substr(b, raw_end[i] - b);
        }
    };
    void start_block();

    LoadState &st_;
    pgingest::Producer *producer_;
    std::string name_;
    pgingest::Table table_;
    std::map<std::vector<std::string>, pgingest::Table> by_columns_;
    pgingest::RowBlock block_;
    const pgingest::Table *block_table_ = nullptr;
    std::shared_ptr<BlockRows> rows_;
    std::string join_; // send()'s line
};

} // namespace pgingest_cli
