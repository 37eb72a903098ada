// A snapshot of a producer's counters (Producer::metrics()).
#pragma once
#include <cstdint>

namespace pgingest {

struct Metrics {
    std::uint64_t enqueued = 0;         // rows accepted by enqueue()
    std::uint64_t enqueue_rejected = 0; // rows refused by enqueue() (queue full, timeout, closed, invalid)
    std::uint64_t bytes_enqueued = 0;   // their COPY text bytes
    std::uint64_t rows_sent = 0;        // rows sent to the server, resends included
    std::uint64_t batches_sent = 0;     // calls made, resends included
    std::uint64_t acknowledged = 0;     // rows reported OK
    std::uint64_t failed = 0;           // rows reported failed (dead_lettered included)
    std::uint64_t dead_lettered = 0;    // rows the server rejected (ErrorCode::kRejected)
    std::uint64_t retried = 0;          // batch resends scheduled after a transient failure
    std::uint64_t fallback_batches = 0; // batches sent with COPY FROM STDIN
    std::uint64_t connect_failures = 0;
    std::uint64_t connections = 0; // open now
    std::uint64_t queue_depth = 0; // rows enqueued and not yet reported, now
    std::uint64_t queue_bytes = 0; // their bytes, now
    // Enqueue-to-acknowledgement latency of acknowledged rows, microseconds (bucket upper bounds,
    // within 12.5%). 0 when no row has been acknowledged.
    std::uint64_t latency_p50_us = 0, latency_p90_us = 0, latency_p99_us = 0, latency_p999_us = 0,
                  latency_max_us = 0;
};

} // namespace pgingest
