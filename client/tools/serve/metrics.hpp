// The gateway's own counters and the request latency histogram, rendered in Prometheus' text
// exposition format (names pgingest_*). The database's figures are added at scrape time.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace pgingest_serve {

class GatewayMetrics {
  public:
    // One finished request: its route (rows, ticket, metrics, healthz, readyz, other), HTTP code
    // and duration.
    void request(const std::string &route, int code, double seconds);

    std::atomic<std::uint64_t> rows_accepted{0}, rows_committed{0}, rows_failed{0}, rows_refused{0};
    std::atomic<std::int64_t> queue_rows{0}, queue_bytes{0}; // accepted and not yet reported

    std::string render() const; // counters and histogram, without the database part

    static constexpr std::array<double, 14> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,    1,     2.5,  5,     10,   30};

  private:
    struct Histogram {
        std::array<std::uint64_t, kBuckets.size()> counts{};
        std::uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
};

} // namespace pgingest_serve
