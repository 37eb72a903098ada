// Error codes and the Status every fallible call and every delivery report carries.
#pragma once
#include <pgingest/export.h>

#include <string>

namespace pgingest {

// Values are shared with the C API (pgi_error in pgingest.h).
enum class ErrorCode : int {
    kOk = 0,
    kQueueFull = 1,         // enqueue: the in-process queue is at capacity (FullQueuePolicy::kFail)
    kTimedOut = 2,          // enqueue waited block_timeout for room, or flush() ran out of time
    kClosed = 3,            // enqueue after close()
    kInvalidArgument = 4,   // bad row, table or configuration value
    kRejected = 5,          // the server dead-lettered this row; sqlstate and message are the server's
    kPermanentError = 6,    // the server refused the whole batch (privileges, unknown table/column, format)
    kRetriesExhausted = 7,  // transient failures (connection, full server ring) outlasted the retry policy
    kShutdown = 8,          // the producer was closed before the row was acknowledged
    kUnknownRowOutcome = 9, // the server rejected some rows of the batch but could not say which
};

PGINGEST_API const char *error_code_name(ErrorCode code);

class PGINGEST_API Status {
  public:
    Status() = default;
    Status(ErrorCode code, std::string message, std::string sqlstate = {})
        : code_(code), message_(std::move(message)), sqlstate_(std::move(sqlstate)) {}

    bool ok() const { return code_ == ErrorCode::kOk; }
    explicit operator bool() const { return ok(); }
    ErrorCode code() const { return code_; }
    const std::string &message() const { return message_; }
    const std::string &sqlstate() const { return sqlstate_; } // empty unless the server sent one
    std::string to_string() const;                            // "kind: message [SQLSTATE xxxxx]"

  private:
    ErrorCode code_ = ErrorCode::kOk;
    std::string message_;
    std::string sqlstate_;
};

} // namespace pgingest
