// pg_guard.hpp — the boundary between C++ and PostgreSQL's longjmp-based error handling.
//
// The boundary, in both directions:
//  * PGI_FUNCTION(name) defines an SQL-callable V1 function whose C++ body runs inside a
//    catch-all; a caught exception becomes ereport(ERROR) only after the catch block has ended.
//  * pg_guard(f) runs f, which calls PostgreSQL functions that may ereport, inside PG_TRY; a
//    PostgreSQL error comes back as a C++ PgError (with the full ErrorData), a C++ exception
//    thrown by f is carried across PG_TRY and rethrown after it. f must keep no C++ objects with
//    destructors on its own stack frames, since a longjmp skips them.
#pragma once

#include "pg_headers.hpp"

#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>

namespace pg_ingest {

// A PostgreSQL error caught by pg_guard, carrying the copied ErrorData. The copy lives in
// TopMemoryContext and is freed with the last PgError that refers to it, so it stays valid after
// the transaction or subtransaction that raised it was aborted (the worker reads it then).
class PgError : public std::exception {
  public:
    explicit PgError(ErrorData *edata) : edata_(edata, FreeErrorData) {}
    const char *what() const noexcept override { return edata_->message ? edata_->message : "error"; }
    ErrorData *data() const { return edata_.get(); }
    int sqlerrcode() const { return edata_->sqlerrcode; }

  private:
    std::shared_ptr<ErrorData> edata_;
};

// Re-raises a caught PgError as a PostgreSQL ERROR. Call it outside any catch block, with no
// live C++ objects in the calling frame but `keep` (emptied here before the longjmp).
[[noreturn]] void rethrow_pg_error(std::optional<PgError> &keep);

template <typename F> auto pg_guard(F &&f) -> decltype(f()) {
    using R = decltype(f());
    if constexpr (!std::is_void_v<R>) {
        R result{};
        pg_guard([&] { result = f(); });
        return result;
    } else {
        MemoryContext oldcxt = CurrentMemoryContext;
        ErrorData *volatile edata = nullptr;
        std::exception_ptr cpp_exc_holder;
        std::exception_ptr *const cpp_exc = &cpp_exc_holder;
        PG_TRY();
        {
            try {
                f();
            } catch (...) {
                *cpp_exc = std::current_exception();
            }
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(TopMemoryContext);
            edata = CopyErrorData();
            MemoryContextSwitchTo(oldcxt);
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata)
            throw PgError(edata);
        if (*cpp_exc)
            std::rethrow_exception(*cpp_exc);
    }
}

// Runs a C++ body for an SQL-callable function; raises any exception as a PostgreSQL ERROR
// after the catch block has been left.
Datum call_guarded(const char *name, Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo);

// Thrown by our own C++ code for user-facing errors with a SQLSTATE.
class UserError : public std::exception {
  public:
    UserError(int sqlstate, std::string msg, std::string hint = std::string())
        : sqlstate_(sqlstate), msg_(std::move(msg)), hint_(std::move(hint)) {}
    const char *what() const noexcept override { return msg_.c_str(); }
    int sqlstate() const { return sqlstate_; }
    const std::string &hint() const { return hint_; }

  private:
    int sqlstate_;
    std::string msg_;
    std::string hint_;
};

} // namespace pg_ingest

#define PGI_FUNCTION(name)                                                                                   \
    extern "C" {                                                                                             \
    PG_FUNCTION_INFO_V1(name);                                                                               \
    }                                                                                                        \
    static Datum name##_body(FunctionCallInfo fcinfo);                                                       \
    extern "C" Datum name(PG_FUNCTION_ARGS) {                                                                \
        return pg_ingest::call_guarded(#name, name##_body, fcinfo);                                          \
    }                                                                                                        \
    static Datum name##_body(FunctionCallInfo fcinfo)
