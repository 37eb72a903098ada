#include "retry.hpp"

#include <string_view>

namespace pgingest::detail {

FailureKind classify(const CallResult &r) {
    if (r.connection_lost || r.sqlstate.empty())
        return FailureKind::kTransient;
    std::string_view s = r.sqlstate;
    if (s == "42883")
        return FailureKind::kUndefinedFunction;
    std::string_view cls = s.substr(0, 2);
    if (cls == "08" || // connection exception
        cls == "53" || // insufficient resources: "pg_ingest ring is full" (53400), out of memory, disk full
        cls == "58" || // system error (I/O)
        s == "57P01" || s == "57P02" || s == "57P03" || // admin/crash shutdown, cannot connect now
        s == "40001" || s == "40P01" ||                 // serialization failure, deadlock
        s == "55P03") // lock not available: ingest.wait_timeout, rows withdrawn
        return FailureKind::kTransient;
    return FailureKind::kPermanent; // 42501, 42P01, 42703, 22P04 and everything else
}

std::chrono::milliseconds jittered_backoff(const RetryPolicy &policy, int failed_attempts,
                                           std::mt19937_64 &rng) {
    auto full = policy.backoff(failed_attempts).count();
    auto low = static_cast<long long>(static_cast<double>(full) * (1.0 - policy.jitter));
    if (full <= low)
        return std::chrono::milliseconds(full);
    std::uniform_int_distribution<long long> pick(low, full);
    return std::chrono::milliseconds(pick(rng));
}

} // namespace pgingest::detail
