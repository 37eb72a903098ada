// pgi.hpp — the PostgreSQL-facing side of pg_ingest: shared state, settings, and the boundary
// between C++ and PostgreSQL's longjmp-based error handling.
//
// Include this first in every extension .cpp file; it brings in PostgreSQL's headers inside
// extern "C". Plain C++ headers (ring.hpp, record.hpp) must not include it.
//
// The boundary, in both directions:
//  * PGI_FUNCTION(name) defines an SQL-callable V1 function whose C++ body runs inside a
//    catch-all; a caught exception becomes ereport(ERROR) only after the catch block has ended.
//  * pg_guard(f) runs f, which calls PostgreSQL functions that may ereport, inside PG_TRY; a
//    PostgreSQL error comes back as a C++ PgError (with the full ErrorData), a C++ exception
//    thrown by f is carried across PG_TRY and rethrown after it. f must keep no C++ objects with
//    destructors on its own stack frames, since a longjmp skips them.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>

#include "record.hpp"
#include "ring.hpp"

#include "protocol.h"

// SQLSTATE of the warning that a committing transaction's rows were dead-lettered (class 01,
// warning): PGI_SQLSTATE_ROWS_REJECTED in protocol.h, which clients match on.
#define ERRCODE_PGI_ROWS_REJECTED MAKE_SQLSTATE('0', '1', 'P', 'I', '1')
static_assert(sizeof(PGI_SQLSTATE_ROWS_REJECTED) == 6 && PGI_SQLSTATE_ROWS_REJECTED[2] == 'P' &&
                  PGI_SQLSTATE_ROWS_REJECTED[3] == 'I' && PGI_SQLSTATE_ROWS_REJECTED[4] == '1',
              "ERRCODE_PGI_ROWS_REJECTED must match protocol.h");

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// Settings (pg_ingest.cpp). Sizes in bytes, times in milliseconds.
extern int guc_ring_size_kb;
extern int guc_max_record_size_kb;
extern int guc_max_workers;
extern int guc_batch_rows;
extern int guc_batch_bytes_kb;
extern int guc_flush_interval_ms;
extern int guc_enqueue_timeout_ms;
extern int guc_wait_timeout_ms;
extern bool guc_wait_for_commit;
extern int guc_test_worker_delay_ms;
extern int guc_max_tables;
extern int guc_ticket_retention_s;
extern int guc_worker_idle_timeout_s;

// ---------------------------------------------------------------------------------------------
// Shared memory (shmem.cpp). Which lock protects what:
//  * ring head: atomic CAS by producers, no lock. ring tail: moved only under Shared::lock.
//  * WorkerSlot fields dboid/state/pid/latch: Shared::lock. scan_low/done_pos: atomics written
//    by the slot's worker only.
//  * WaitSlot::word: atomic CAS between its backend and workers; failed: atomic.
//  * TableStats counters: atomics; key insertion and last_error text under stats_lock.
enum WorkerState : int { kSlotFree = 0, kSlotStarting = 1, kSlotRunning = 2 };

struct WorkerSlot {
    Oid dboid;
    int state;
    pid_t pid;
    Latch *latch;
    TimestampTz started_at;
    int start_attempts; // consecutive starts that did not get connected (e.g. database dropped)
    std::atomic<int> exiting; // set while the worker decides to exit idle (see try_idle_exit)
    std::atomic<uint64_t> scan_low; // lowest ring position this worker may still read
    std::atomic<uint64_t> done_pos; // every record of this database below it is handled
    std::atomic<uint64_t> commit_lsn; // end of this worker's latest commit record
    ConditionVariable done_cv;      // broadcast after each batch
};

// WaitSlot::word = generation << 2 | state. A backend waiting before its commit publishes
// (gen, kWaitPending); before committing a batch the worker moves it to kWaitCommitting, or
// finds the backend gave up (kWaitCancelled) and leaves its rows out.
enum WaitState : uint64_t { kWaitIdle = 0, kWaitPending = 1, kWaitCommitting = 2, kWaitCancelled = 3 };

struct WaitSlot {
    std::atomic<uint64_t> word;
    std::atomic<uint64_t> failed_rows; // rows of the waited-for envelope that were dead-lettered
    std::atomic<uint64_t> commit_lsn;  // end of the worker's commit record for that envelope
};

constexpr int kLastErrorLen = 256;

struct TableStats {
    std::atomic<uint64_t> key; // dboid << 32 | reloid, 0 = empty
    std::atomic<uint64_t> rows_enqueued;
    std::atomic<uint64_t> bytes_enqueued;
    std::atomic<uint64_t> rows_committed;
    std::atomic<uint64_t> rows_failed;
    std::atomic<uint64_t> rows_discarded; // enqueued by (sub)transactions that rolled back
    std::atomic<uint64_t> batches;
    std::atomic<uint64_t> retries;
    std::atomic<int64_t> oldest_queued_at;
    std::atomic<int64_t> last_commit_time;
    std::atomic<int64_t> last_error_time;
    char last_error[kLastErrorLen]; // under stats_lock
};

struct Shared {
    LWLock *lock;       // worker slots, tail advancement
    LWLock *stats_lock; // stats key insertion, last_error text, stats reset
    std::atomic<uint64_t> next_ticket;
    std::atomic<int64_t> stats_reset;
    ConditionVariable space_cv; // broadcast when tail moves
    int nworkers;
    int nwaitslots;
    int ntables;
    WorkerSlot *workers;
    WaitSlot *waits;
    TableStats *tables;
    Ring *ring;
};

extern Shared *shared;

void shmem_install_hooks();
void shmem_require(); // errors unless the library was preloaded and shared memory exists
TableStats *table_stats(Oid dboid, Oid reloid, bool create);
void record_table_error(TableStats *ts, const char *message);
uint64_t tail_limit();
void advance_tail();

// Workers (worker.cpp)
void ensure_worker(Oid dboid);
void notify_worker(Oid dboid);
WorkerSlot *find_worker(Oid dboid);

// Enqueue side (enqueue.cpp)
void enqueue_install_callbacks();

// ---------------------------------------------------------------------------------------------
// Error boundary

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

extern "C" PGDLLEXPORT void pg_ingest_worker_main(Datum arg);

#define PGI_FUNCTION(name)                                                                            \
    extern "C" {                                                                                      \
    PG_FUNCTION_INFO_V1(name);                                                                        \
    }                                                                                                 \
    static Datum name##_body(FunctionCallInfo fcinfo);                                                \
    extern "C" Datum name(PG_FUNCTION_ARGS) { return pg_ingest::call_guarded(#name, name##_body, fcinfo); } \
    static Datum name##_body(FunctionCallInfo fcinfo)
