#include "metrics_internal.hpp"

#include <algorithm>
#include <cmath>

namespace pgingest::detail {

std::size_t LatencyHistogram::bucket_of(std::uint64_t v) {
    if (v < 8)
        return static_cast<std::size_t>(v);
    unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v)); // v in [2^e, 2^(e+1)), e >= 3
    std::size_t sub = static_cast<std::size_t>(v >> (e - 3)) & 7;
    return 8 + (e - 3) * 8 + sub;
}

std::uint64_t LatencyHistogram::bucket_upper(std::size_t b) {
    if (b < 8)
        return b;
    unsigned e = static_cast<unsigned>((b - 8) / 8 + 3);
    std::uint64_t sub = (b - 8) % 8;
    std::uint64_t width = std::uint64_t(1) << (e - 3);
    return ((8 + sub) << (e - 3)) + width - 1;
}

void LatencyHistogram::record(std::uint64_t v, std::uint64_t times) {
    if (times == 0)
        return;
    counts_[bucket_of(v)].fetch_add(times, std::memory_order_relaxed);
    std::uint64_t m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
}

std::uint64_t LatencyHistogram::percentile(double q) const {
    std::array<std::uint64_t, kBuckets> snap;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kBuckets; i++)
        total += snap[i] = counts_[i].load(std::memory_order_relaxed);
    if (total == 0)
        return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    rank = std::clamp<std::uint64_t>(rank, 1, total);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; i++) {
        seen += snap[i];
        if (seen >= rank)
            return std::min(bucket_upper(i), max());
    }
    return max();
}

void Counters::fill(Metrics &m) const {
    auto get = [](const std::atomic<std::uint64_t> &c) { return c.load(std::memory_order_relaxed); };
    m.enqueued = get(enqueued);
    m.enqueue_rejected = get(enqueue_rejected);
    m.bytes_enqueued = get(bytes_enqueued);
    m.rows_sent = get(rows_sent);
    m.batches_sent = get(batches_sent);
    m.acknowledged = get(acknowledged);
    m.failed = get(failed);
    m.dead_lettered = get(dead_lettered);
    m.retried = get(retried);
    m.fallback_batches = get(fallback_batches);
    m.connect_failures = get(connect_failures);
    m.connections = get(connections);
}

} // namespace pgingest::detail
