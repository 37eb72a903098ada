// Producer configuration. Every field has a usable default; set() accepts the same settings as
// "key", "value" strings (used by the C API and handy for configuration files).
#pragma once
#include <pgingest/delivery.hpp>
#include <pgingest/export.h>
#include <pgingest/status.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
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

// What the server's acknowledgement of a batch means: the producer sets ingest.ack to this on
// every connection (README.md, "ingest.ack"), and a row's delivery report with status.ok() says:
enum class AckMode : int {
    // Committed: the pg_ingest worker inserted and committed the rows before the call returned;
    // rows the server rejects are reported with kRejected. The slowest: each call waits for the
    // insert. The default.
    kCommitted = 0,
    // Accepted: the rows are in WAL flushed to disk (and on synchronous standbys), not inserted
    // yet. They land exactly once through server crashes and failovers. Rows the server rejects
    // later are not reported here: look up the report's ticket (ingest_ticket_status,
    // ingest_dead_letter).
    kLogged = 1,
    // Accepted: in WAL, not flushed. As kLogged, except that a server crash may lose the rows
    // acknowledged in its last ~600 ms (3 x wal_writer_delay); never inserted twice.
    kQueued = 2,
    // Accepted: only in the server's shared memory until the worker inserts them; a server crash
    // loses them. The fastest.
    kMemory = 3,
};

// "committed", "logged", "queued", "memory"; nullptr for a value outside AckMode.
PGINGEST_API const char *ack_mode_name(AckMode mode);
// The mode named `name` (as ack_mode_name spells it); false if there is none.
PGINGEST_API bool parse_ack_mode(std::string_view name, AckMode &out);

struct PGINGEST_API RetryPolicy {
    int max_attempts = 3;                           // sends of a batch, the first included
    std::chrono::milliseconds initial_backoff{500}; // wait before the 2nd attempt
    double backoff_factor = 2.0;                    // each further wait multiplied by this
    std::chrono::milliseconds max_backoff{10000};   // no wait is longer
    double jitter = 0.5;                            // each wait is drawn uniformly from [(1 - jitter) * w, w]

    // The un-jittered wait after `failed_attempts` (>= 1) failures.
    std::chrono::milliseconds backoff(int failed_attempts) const;
};

struct PGINGEST_API ProducerConfig {
    std::string conninfo;                    // libpq conninfo or URI; empty: the PG* environment variables
    std::size_t pool_min = 5;                // connections opened at start
    std::size_t pool_max = 20;               // the pool grows on demand up to this
    std::size_t queue_max_rows = 100000;     // rows enqueued and not yet reported
    std::size_t queue_max_bytes = 64u << 20; // their COPY text bytes
    std::size_t batch_max_rows = 10000;      // a batch is sent when it has this many rows
    std::size_t batch_max_bytes = 1u << 20;  //   or this many bytes
    std::chrono::milliseconds linger{5};     //   or its first row has waited this long
    RetryPolicy retry;
    FullQueuePolicy full_queue_policy = FullQueuePolicy::kFail;
    std::chrono::milliseconds block_timeout{1000}; // for FullQueuePolicy::kBlock
    std::optional<AckMode> ack;                    // ingest.ack on the connections; unset: from durable
    bool durable = true;        // deprecated, ack's older form: true = kCommitted, false = kQueued
                                // (used only when ack is unset)
    bool copy_fallback = false; // server without pg_ingest: send with COPY FROM STDIN instead
    std::chrono::milliseconds close_timeout{10000}; // the destructor's bound when close() was not called

    DeliveryCallback on_delivery; // called once for every enqueued row, on a sender thread
    LogCallback on_log;           // default: messages at log_level or above go to stderr
    LogLevel log_level = LogLevel::kInfo;

    // Keys: conninfo, pool_min, pool_max, queue_max_rows, queue_max_bytes, batch_max_rows,
    // batch_max_bytes, linger_ms, retry_max_attempts, retry_initial_backoff_ms,
    // retry_backoff_factor, retry_max_backoff_ms, retry_jitter, full_queue_policy (fail|block),
    // block_timeout_ms, ack (committed|logged|queued|memory), durable (on|off; ack wins when both
    // are set, in either order), copy_fallback (on|off), close_timeout_ms,
    // log_level (debug|info|warning|error|off).
    Status set(std::string_view key, std::string_view value);
    Status validate() const;
    // The mode the connections use: ack if set, else durable's (kCommitted or kQueued).
    AckMode effective_ack() const;
};

} // namespace pgingest
