// Producer configuration. Every field has a usable default; set() accepts the same settings as
// "key", "value" strings (used by the C API and handy for configuration files).
#pragma once
#include <pgingest/delivery.hpp>
#include <pgingest/export.h>
#include <pgingest/status.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace pgingest {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };
using LogCallback = std::function<void(LogLevel, const std::string &)>;

// What enqueue() does when the queue is at capacity (rows or bytes).
enum class FullQueuePolicy : int {
    kFail = 0,  // return ErrorCode::kQueueFull at once
    kBlock = 1, // wait up to block_timeout for room, then return ErrorCode::kTimedOut
};

struct PGINGEST_API RetryPolicy {
    int max_attempts = 3;                                 // sends of a batch, the first included
    std::chrono::milliseconds initial_backoff{500};       // wait before the 2nd attempt
    double backoff_factor = 2.0;                          // each further wait multiplied by this
    std::chrono::milliseconds max_backoff{10000};         // no wait is longer
    double jitter = 0.5; // each wait is drawn uniformly from [(1 - jitter) * w, w]

    // The un-jittered wait after `failed_attempts` (>= 1) failures.
    std::chrono::milliseconds backoff(int failed_attempts) const;
};

struct PGINGEST_API ProducerConfig {
    std::string conninfo;               // libpq conninfo or URI; empty: the PG* environment variables
    std::size_t pool_min = 5;           // connections opened at start
    std::size_t pool_max = 20;          // the pool grows on demand up to this
    std::size_t queue_max_rows = 100000;            // rows enqueued and not yet reported
    std::size_t queue_max_bytes = 64u << 20;        // their COPY text bytes
    std::size_t batch_max_rows = 10000;             // a batch is sent when it has this many rows
    std::size_t batch_max_bytes = 1u << 20;         //   or this many bytes
    std::chrono::milliseconds linger{5};            //   or its first row has waited this long
    RetryPolicy retry;
    FullQueuePolicy full_queue_policy = FullQueuePolicy::kFail;
    std::chrono::milliseconds block_timeout{1000};  // for FullQueuePolicy::kBlock
    bool durable = true;                // ingest.wait_for_commit: acknowledge only committed rows
    bool copy_fallback = false;         // server without pg_ingest: send with COPY FROM STDIN instead
    std::chrono::milliseconds close_timeout{10000}; // the destructor's bound when close() was not called

    DeliveryCallback on_delivery;       // called once for every enqueued row, on a sender thread
    LogCallback on_log;                 // default: messages at log_level or above go to stderr
    LogLevel log_level = LogLevel::kInfo;

    // Keys: conninfo, pool_min, pool_max, queue_max_rows, queue_max_bytes, batch_max_rows,
    // batch_max_bytes, linger_ms, retry_max_attempts, retry_initial_backoff_ms,
    // retry_backoff_factor, retry_max_backoff_ms, retry_jitter, full_queue_policy (fail|block),
    // block_timeout_ms, durable (on|off), copy_fallback (on|off), close_timeout_ms,
    // log_level (debug|info|warning|error|off).
    Status set(std::string_view key, std::string_view value);
    Status validate() const;
};

} // namespace pgingest
