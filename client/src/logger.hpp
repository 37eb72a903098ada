// The logging hook: messages at or above the configured level go to the user's callback (or
// stderr). Callback exceptions are swallowed: logging must never take a sender thread down.
#pragma once
#include <pgingest/config.hpp>

#include <sstream>
#include <string>

namespace pgingest::detail {

class Logger {
  public:
    Logger(LogCallback callback, LogLevel min_level) : callback_(std::move(callback)), min_(min_level) {}
    bool enabled(LogLevel level) const { return min_ != LogLevel::kOff && level >= min_; }

    template <typename... Parts> void log(LogLevel level, const Parts &...parts) const {
        if (!enabled(level))
            return;
        std::ostringstream os;
        (os << ... << parts);
        emit(level, os.str());
    }
    template <typename... Parts> void debug(const Parts &...p) const { log(LogLevel::kDebug, p...); }
    template <typename... Parts> void info(const Parts &...p) const { log(LogLevel::kInfo, p...); }
    template <typename... Parts> void warning(const Parts &...p) const { log(LogLevel::kWarning, p...); }
    template <typename... Parts> void error(const Parts &...p) const { log(LogLevel::kError, p...); }

  private:
    void emit(LogLevel level, const std::string &message) const;
    LogCallback callback_;
    LogLevel min_;
};

} // namespace pgingest::detail
