#include "progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace pgingest_cli {

Progress::Progress(LoadState &st, const std::string &mode, std::uint64_t total_bytes)
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

void Progress::stop() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (th_.joinable())
        th_.join();
    if (mode_ == 1 && printed_)
        std::fprintf(stderr, "\r\033[K");
    printed_ = false;
}

std::string Progress::line(double el) const {
    std::uint64_t rows = st_.read, bytes = st_.bytes, comm = st_.committed;
    std::string s = "rows " + std::to_string(rows) + " (" + st_.acked_word() + " " + std::to_string(comm) +
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
    return s;
}

void Progress::run() {
    auto period = mode_ == 1 ? std::chrono::milliseconds(250) : std::chrono::milliseconds(2000);
    std::unique_lock<std::mutex> lk(mu_);
    while (!cv_.wait_for(lk, period, [this] { return stop_; })) {
        std::string s = line(std::chrono::duration<double>(Clock::now() - start_).count());
        if (mode_ == 1)
            std::fprintf(stderr, "\r\033[K%s", s.c_str());
        else
            std::fprintf(stderr, "pgingest: %s\n", s.c_str());
        std::fflush(stderr);
        printed_ = true;
    }
}

} // namespace pgingest_cli
