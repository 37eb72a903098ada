// Status, error names, retry backoff, ack mode names and ProducerConfig's string settings and
// validation.
#include <pgingest/config.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <functional>
#include <map>
#include <utility>

namespace pgingest {

const char *error_code_name(ErrorCode code) {
    switch (code) {
    case ErrorCode::kOk:
        return "ok";
    case ErrorCode::kQueueFull:
        return "queue full";
    case ErrorCode::kTimedOut:
        return "timed out";
    case ErrorCode::kClosed:
        return "closed";
    case ErrorCode::kInvalidArgument:
        return "invalid argument";
    case ErrorCode::kRejected:
        return "rejected by the server";
    case ErrorCode::kPermanentError:
        return "permanent error";
    case ErrorCode::kRetriesExhausted:
        return "retries exhausted";
    case ErrorCode::kShutdown:
        return "producer shut down";
    case ErrorCode::kUnknownRowOutcome:
        return "unknown row outcome";
    }
    return "unknown error";
}

std::string Status::to_string() const {
    if (ok())
        return "ok";
    std::string s = error_code_name(code_);
    if (!message_.empty())
        s += ": " + message_;
    if (!sqlstate_.empty())
        s += " [SQLSTATE " + sqlstate_ + "]";
    return s;
}

std::chrono::milliseconds RetryPolicy::backoff(int failed_attempts) const {
    double ms = static_cast<double>(initial_backoff.count()) *
                std::pow(backoff_factor, static_cast<double>(std::max(failed_attempts, 1) - 1));
    ms = std::min(ms, static_cast<double>(max_backoff.count()));
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

namespace {

constexpr std::pair<AckMode, const char *> kAckModes[] = {
    {AckMode::kCommitted, "committed"},
    {AckMode::kLogged, "logged"},
    {AckMode::kQueued, "queued"},
    {AckMode::kMemory, "memory"},
};

Status bad(std::string_view key, std::string_view value, std::string why) {
    return Status(ErrorCode::kInvalidArgument,
                  "setting " + std::string(key) + " = \"" + std::string(value) + "\": " + why);
}

// Why a value was refused: the accepted values of the settings that take a word.
std::string invalid_value(std::string_view key) {
    static const std::map<std::string_view, const char *> choices = {
        {"full_queue_policy", "fail or block"},
        {"ack", "committed, logged, queued or memory"},
        {"durable", "on or off"},
        {"copy_fallback", "on or off"},
        {"log_level", "debug, info, warning, error or off"},
    };
    auto it = choices.find(key);
    return it == choices.end() ? "invalid value" : std::string("invalid value (expected ") + it->second + ")";
}

template <typename T> bool parse_number(std::string_view v, T &out) {
    const char *end = v.data() + v.size();
    auto r = std::from_chars(v.data(), end, out);
    return r.ec == std::errc() && r.ptr == end;
}

bool parse_double(std::string_view v, double &out) {
    std::string s(v); // strtod needs a terminator; from_chars<double> is fine in GCC 12 but not portable
    char *end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return !s.empty() && end == s.c_str() + s.size() && std::isfinite(out);
}

bool parse_bool(std::string_view v, bool &out) {
    if (v == "on" || v == "true" || v == "1" || v == "yes") {
        out = true;
        return true;
    }
    if (v == "off" || v == "false" || v == "0" || v == "no") {
        out = false;
        return true;
    }
    return false;
}

} // namespace

const char *ack_mode_name(AckMode mode) {
    for (const auto &[m, name] : kAckModes)
        if (m == mode)
            return name;
    return nullptr;
}

bool parse_ack_mode(std::string_view name, AckMode &out) {
    for (const auto &[m, n] : kAckModes)
        if (name == n) {
            out = m;
            return true;
        }
    return false;
}

AckMode ProducerConfig::effective_ack() const {
    if (ack)
        return *ack;
    return durable ? AckMode::kCommitted : AckMode::kQueued;
}

Status ProducerConfig::set(std::string_view key, std::string_view value) {
    using Setter = std::function<bool(ProducerConfig &, std::string_view)>;
    auto size = [](std::size_t ProducerConfig::*field) -> Setter {
        return [field](ProducerConfig &c, std::string_view v) { return parse_number(v, c.*field); };
    };
    auto millis = [](auto getter) -> Setter {
        return [getter](ProducerConfig &c, std::string_view v) {
            long long n;
            if (!parse_number(v, n) || n < 0)
                return false;
            getter(c) = std::chrono::milliseconds(n);
            return true;
        };
    };
    static const std::map<std::string_view, Setter> setters = {
        {"conninfo",
         [](ProducerConfig &c, std::string_view v) {
             c.conninfo = std::string(v);
             return true;
         }},
        {"pool_min", size(&ProducerConfig::pool_min)},
        {"pool_max", size(&ProducerConfig::pool_max)},
        {"queue_max_rows", size(&ProducerConfig::queue_max_rows)},
        {"queue_max_bytes", size(&ProducerConfig::queue_max_bytes)},
        {"batch_max_rows", size(&ProducerConfig::batch_max_rows)},
        {"batch_max_bytes", size(&ProducerConfig::batch_max_bytes)},
        {"linger_ms", millis([](ProducerConfig & c) -> auto & { return c.linger; })},
        {"retry_max_attempts",
         [](ProducerConfig &c, std::string_view v) { return parse_number(v, c.retry.max_attempts); }},
        {"retry_initial_backoff_ms",
         millis([](ProducerConfig & c) -> auto & { return c.retry.initial_backoff; })},
        {"retry_backoff_factor",
         [](ProducerConfig &c, std::string_view v) { return parse_double(v, c.retry.backoff_factor); }},
        {"retry_max_backoff_ms", millis([](ProducerConfig & c) -> auto & { return c.retry.max_backoff; })},
        {"retry_jitter",
         [](ProducerConfig &c, std::string_view v) { return parse_double(v, c.retry.jitter); }},
        {"full_queue_policy",
         [](ProducerConfig &c, std::string_view v) {
             if (v == "fail")
                 c.full_queue_policy = FullQueuePolicy::kFail;
             else if (v == "block")
                 c.full_queue_policy = FullQueuePolicy::kBlock;
             else
                 return false;
             return true;
         }},
        {"block_timeout_ms", millis([](ProducerConfig & c) -> auto & { return c.block_timeout; })},
        {"ack",
         [](ProducerConfig &c, std::string_view v) {
             AckMode m;
             if (!parse_ack_mode(v, m))
                 return false;
             c.ack = m;
             return true;
         }},
        {"durable", [](ProducerConfig &c, std::string_view v) { return parse_bool(v, c.durable); }},
        {"copy_fallback",
         [](ProducerConfig &c, std::string_view v) { return parse_bool(v, c.copy_fallback); }},
        {"close_timeout_ms", millis([](ProducerConfig & c) -> auto & { return c.close_timeout; })},
        {"log_level",
         [](ProducerConfig &c, std::string_view v) {
             static const std::map<std::string_view, LogLevel> levels = {{"debug", LogLevel::kDebug},
                                                                         {"info", LogLevel::kInfo},
                                                                         {"warning", LogLevel::kWarning},
                                                                         {"error", LogLevel::kError},
                                                                         {"off", LogLevel::kOff}};
             auto it = levels.find(v);
             if (it == levels.end())
                 return false;
             c.log_level = it->second;
             return true;
         }},
    };
    auto it = setters.find(key);
    if (it == setters.end())
        return Status(ErrorCode::kInvalidArgument, "unknown setting \"" + std::string(key) + "\"");
    ProducerConfig changed = *this;
    if (!it->second(changed, value))
        return bad(key, value, invalid_value(key));
    *this = std::move(changed);
    return Status();
}

Status ProducerConfig::validate() const {
    auto invalid = [](const std::string &why) { return Status(ErrorCode::kInvalidArgument, why); };
    if (pool_min < 1 || pool_max < pool_min)
        return invalid("need 1 <= pool_min <= pool_max");
    if (queue_max_rows < 1 || queue_max_bytes < 1)
        return invalid("queue_max_rows and queue_max_bytes must be positive");
    if (queue_max_rows > (std::size_t(1) << 32))
        return invalid("queue_max_rows must be at most 2^32");
    if (batch_max_rows < 1 || batch_max_bytes < 1)
        return invalid("batch_max_rows and batch_max_bytes must be positive");
    if (retry.max_attempts < 1)
        return invalid("retry.max_attempts must be at least 1");
    if (!(retry.backoff_factor >= 1.0))
        return invalid("retry.backoff_factor must be at least 1");
    if (!(retry.jitter >= 0.0 && retry.jitter <= 1.0))
        return invalid("retry.jitter must be between 0 and 1");
    if (retry.initial_backoff.count() < 0 || retry.max_backoff < retry.initial_backoff)
        return invalid("need 0 <= retry.initial_backoff <= retry.max_backoff");
    if (linger.count() < 0 || block_timeout.count() < 0 || close_timeout.count() < 0)
        return invalid("durations must not be negative");
    if (ack && !ack_mode_name(*ack))
        return invalid("ack: " + invalid_value("ack"));
    return Status();
}

} // namespace pgingest
