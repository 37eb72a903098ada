// The progress line of `pgingest load` on stderr: redrawn in place on a terminal (auto), a line
// every 2 s (log), or nothing (none). Rows, rows/s, MB/s, and percent and ETA when the input
// size is known.
#pragma once
#include "common.hpp"
#include "load_state.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace pgingest_cli {

class Progress {
  public:
    // mode: auto | log | none; total_bytes 0: unknown (no percent, no ETA).
    Progress(LoadState &st, const std::string &mode, std::uint64_t total_bytes);
    ~Progress() { stop(); }
    Progress(const Progress &) = delete;
    Progress &operator=(const Progress &) = delete;
    // Stops the refresh thread and clears a live line. Idempotent.
    void stop();

  private:
    void run();
    std::string line(double elapsed) const;

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

} // namespace pgingest_cli
