// Counters behind Producer::metrics() and the latency histogram (lock-free: relaxed atomics).
#pragma once
#include <pgingest/metrics.hpp>

#include <array>
#include <atomic>
#include <cstdint>

namespace pgingest::detail {

// Log-linear buckets: exact below 8, then 8 buckets per power of two (at most 12.5% wide).
class LatencyHistogram {
  public:
    static constexpr std::size_t kBuckets = 8 + 61 * 8;
    void record(std::uint64_t value, std::uint64_t times = 1);
    // The upper bound of the bucket holding the q-quantile (0 < q <= 1); 0 if empty.
    std::uint64_t percentile(double q) const;
    std::uint64_t max() const { return max_.load(std::memory_order_relaxed); }

    static std::size_t bucket_of(std::uint64_t value);
    static std::uint64_t bucket_upper(std::size_t bucket);

  private:
    std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
    std::atomic<std::uint64_t> max_{0};
};

struct Counters {
    std::atomic<std::uint64_t> enqueued{0}, enqueue_rejected{0}, bytes_enqueued{0}, rows_sent{0},
        batches_sent{0}, acknowledged{0}, failed{0}, dead_lettered{0}, retried{0}, fallback_batches{0},
        connect_failures{0}, connections{0};

    static void add(std::atomic<std::uint64_t> &c, std::uint64_t n = 1) {
        c.fetch_add(n, std::memory_order_relaxed);
    }
    void fill(Metrics &m) const;
};

} // namespace pgingest::detail
