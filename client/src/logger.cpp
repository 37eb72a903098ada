#include "logger.hpp"

#include <cstdio>

namespace pgingest::detail {

void Logger::emit(LogLevel level, const std::string &message) const {
    if (callback_) {
        try {
            callback_(level, message);
        } catch (...) {
        }
        return;
    }
    static const char *const names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
    std::fprintf(stderr, "pgingest %s: %s\n", names[static_cast<int>(level)], message.c_str());
}

} // namespace pgingest::detail
