// Which failures are worth a resend, and how long to wait before it.
#pragma once
#include <pgingest/config.hpp>
#include <pgingest/transport.hpp>

#include <chrono>
#include <random>

namespace pgingest::detail {

enum class FailureKind {
    kTransient,         // connection trouble, full server ring, shutdown, serialization: resend
    kPermanent,         // the same call would fail again: fail the rows now
    kUndefinedFunction, // 42883: the server has no pg_ingest (COPY fallback candidate)
};

FailureKind classify(const CallResult &result);

// The policy's wait after `failed_attempts` failures, drawn uniformly from [(1 - jitter) w, w].
std::chrono::milliseconds jittered_backoff(const RetryPolicy &policy, int failed_attempts,
                                           std::mt19937_64 &rng);

} // namespace pgingest::detail
