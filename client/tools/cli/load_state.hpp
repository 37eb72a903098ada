// The state one `pgingest load` shares between its readers, the producer's delivery callbacks
// and the progress line: options, counters, the rejects file, and the Sink rows are sent to.
#pragma once
#include <pgingest/pgingest.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
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
    void reject(std::uint64_t line, const std::string &reason, std::string raw);
    std::uint64_t rejected() const;
    bool error_budget_exhausted() const { return opt_.max_errors > 0 && rejected() >= opt_.max_errors; }
    // What an acknowledged row is, for the summary and the progress line: "committed" with
    // --ack committed, else "accepted" (acknowledged by the server, not yet inserted).
    const char *acked_word() const { return opt_.ack == "committed" ? "committed" : "accepted"; }

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
    Sink(LoadState &st, pgingest::Producer *producer, std::string table_name, std::vector<std::string> columns);

    // The target with another column list (JSON objects with different keys); nullptr past
    // kMaxColumnSets distinct lists, to keep the registry bounded.
    const pgingest::Table *table_for(const std::vector<std::string> &columns);
    static constexpr std::size_t kMaxColumnSets = 256;

    // fields: COPY-escaped values (or "\N"), for the sink's columns or those of `table`.
    void send(std::uint64_t line, const std::vector<std::string> &fields, std::string raw,
              const pgingest::Table *table = nullptr);

  private:
    LoadState &st_;
    pgingest::Producer *producer_;
    std::string name_;
    pgingest::Table table_;
    std::map<std::vector<std::string>, pgingest::Table> by_columns_;
};

} // namespace pgingest_cli
