// worker.cpp — the batch loop of the background worker (one per active database): collect that
// database's ready envelopes from the ring, insert them in one transaction (insert.cpp, with the
// bookkeeping of ledger.cpp), commit, then mark them done and tell the waiting backends.
//
// A batch is one transaction (group commit). Envelopes are marked done only after that
// transaction has committed, so a worker that errors or is killed loses nothing: its successor
// finds the same envelopes still ready. Transient errors are retried; otherwise the batch is
// redone isolating bad rows, which go to ingest_dead_letter. The worker's slot in shared memory
// is managed by worker_slots.cpp.
#include "batch.hpp"
#include "copy_format.hpp"
#include "insert.hpp"
#include "ledger.hpp"
#include "settings.hpp"
#include "shmem.hpp"
#include "txn_buffer.hpp"
#include "wal_queue.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

extern "C" PGDLLEXPORT void pg_ingest_worker_main(Datum arg);

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// Worker state.

static volatile sig_atomic_t got_sigterm = false;
volatile sig_atomic_t worker_shutdown_requested = 0;
static WorkerSlot *my_slot = nullptr;
static Oid my_db = InvalidOid;
static bool probing = false; // started by the launcher: exit as soon as there is nothing to do
static bool helping = false; // started by another worker of the database to share its lanes

static void handle_sigterm(SIGNAL_ARGS) {
    int save_errno = errno;
    got_sigterm = true;
    worker_shutdown_requested = 1;
    // A role's code that is past its group timeout (it may have caught the cancel and gone on)
    // must not hold up a shutdown or pg_terminate_backend: end the worker as a backend would be,
    // at the next interrupt check, with a FATAL that no exception handler catches. Any other
    // group finishes, and the worker drains the ring before it exits.
    if (running_user_code && group_overdue) {
        ProcDiePending = true;
        InterruptPending = true;
    }
    SetLatch(MyLatch);
    errno = save_errno;
}

// ---------------------------------------------------------------------------------------------
// Collecting a batch from the ring.

// Thrown when a waiting backend withdrew its rows while we were inserting them, or when an
// envelope's ingest_queue row was consumed already (recovered twice): the batch is redone
// without it.
struct WithdrawnEnvelope {
    std::vector<uint64_t> pos;
};

static Ring *ring() {
    return shared->ring;
}

static void wake_waiter(EnvelopeHeader *env) {
    if (env->waiter >= 0 && env->waiter < (int)ProcGlobal->allProcCount)
        SetLatch(&ProcGlobal->allProcs[env->waiter].procLatch);
}

static void discard_envelope(uint64_t pos) {
    EnvelopeHeader *env = envelope_of(ring(), pos);
    EntryHeader *e = first_entry(ring(), pos);
    for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e)) {
        TableStats *ts = table_stats(env->dboid, e->reloid, true);
        if (ts)
            ts->rows_discarded.fetch_add(e->nrows, std::memory_order_relaxed);
    }
    ring()->mark(pos, kReady, kDone);
    wake_waiter(env);
}

// Whether the envelope's backend is waiting for it before its commit (pending, or already told
// that its rows are inserted).
static bool waiter_active(const EnvelopeHeader *env) {
    if (env->waiter < 0)
        return false;
    uint64_t word = shared->waits[env->waiter].word.load(std::memory_order_acquire);
    return word == (env->waiter_gen << 2 | kWaitPending) || word == (env->waiter_gen << 2 | kWaitCommitting);
}

// Whether a worker is connected and draining dboid's envelopes.
static bool running_worker(Oid dboid) {
    WorkerSlot *w = find_worker(dboid);
    return w && w->state == kSlotRunning;
}

// Envelopes of databases no worker serves (collect lists them): those of a dropped database can
// never be inserted; discard them, or they would hold the ring's tail for every database. Each
// database is looked up at most every few seconds. Runs before scan_low passes them.
static void discard_dropped_databases(const WorkerBatch &b) {
    static std::map<Oid, TimestampTz> checked;
    TimestampTz now = GetCurrentTimestamp();
    std::map<Oid, bool> gone;
    for (const auto &u : b.unserved) {
        if (gone.count(u.second))
            continue;
        auto it = checked.find(u.second);
        if (it != checked.end() && now - it->second < 2 * USECS_PER_SEC)
            continue;
        checked[u.second] = now;
        try {
            gone[u.second] = pg_guard([&] {
                SetCurrentStatementStartTimestamp();
                StartTransactionCommand();
                bool exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(u.second));
                CommitTransactionCommand();
                return !exists;
            });
        } catch (const PgError &e) {
            abort_batch_transaction(); // housekeeping: try again later, keep draining
            ereport(WARNING, (errmsg("pg_ingest: could not look up database %u: %s", u.second, e.what())));
        }
    }
    for (const auto &u : b.unserved) {
        auto it = gone.find(u.second);
        if (it == gone.end() || !it->second || ring()->state(u.first) != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(ring(), u.first);
        ereport(LOG, (errmsg("pg_ingest: discarding queued rows of dropped database %u", env->dboid)));
        discard_envelope(u.first);
    }
}

// Scans the ring from scan_low and takes this database's ready envelopes of this worker's lanes,
// up to the batch limits. Envelopes of a (sub)transaction still in progress are left for later;
// those of one that rolled back are discarded. An envelope of a lane no worker owns makes the lane
// ours; the scan then starts again from the tail, where records of that lane may lie.
static WorkerBatch collect_once(bool *adopted);

static WorkerBatch collect() {
    for (int tries = 0;; tries++) {
        bool adopted = false;
        WorkerBatch b = collect_once(&adopted);
        if (!adopted || tries >= kLanes)
            return b;
    }
}

static WorkerBatch collect_once(bool *adopted) {
    WorkerBatch b;
    Ring *r = ring();
    b.lanes_seen = my_slot->lanes.load(std::memory_order_acquire);
    uint32_t mine = (uint32_t)b.lanes_seen;
    TimestampTz now = 0;
    constexpr int64 kStaleUs = 100 * 1000;
    uint64_t max_rows = (uint64_t)guc_batch_rows;
    uint64_t max_bytes = (uint64_t)guc_batch_bytes_kb * 1024;
    std::map<std::tuple<Oid, Oid, std::vector<int16_t>, std::string, std::vector<uint32_t>>, size_t> group_of;
    RingCursor c(r, my_slot->scan_low.load(std::memory_order_relaxed));
    for (; c.valid() && b.rows < max_rows && b.bytes < max_bytes; c.next()) {
        uint64_t pos = c.pos();
        if (c.state() != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(r, pos);
        if (env->dboid != my_db) {
            // Another database's: its worker takes it. If none runs, the database may have been
            // dropped; the loop checks (discard_dropped_databases) before scan_low moves past it.
            if (!running_worker(env->dboid))
                b.unserved.emplace_back(pos, env->dboid);
            continue;
        }
        int lane = lane_of(env);
        if (!(mine >> lane & 1)) {
            if (now == 0)
                now = GetCurrentTimestamp();
            bool stale = now - env->enqueued_at > kStaleUs;
            if (lane_owned(my_db, lane, stale) || !adopt_lane(my_slot, my_db, lane))
                continue; // another worker's
            *adopted = true;
            return b;
        }
        b.lanes_busy |= 1u << lane;
        if (env->xid != InvalidTransactionId) {
            TransactionId xid = env->xid;
            // In progress: take it only if its backend waits before committing (it waits for us
            // to insert; we then wait for its commit before ours). Otherwise leave it for later.
            if (pg_guard([&] { return TransactionIdIsInProgress(xid); })) {
                if (!waiter_active(env)) {
                    b.first_pending = std::min(b.first_pending, pos);
                    continue;
                }
            } else if (!pg_guard([&] { return TransactionIdDidCommit(xid); })) {
                discard_envelope(pos);
                continue;
            }
        }
        b.envelopes.push_back(pos);
        b.bytes += c.length();
        EntryHeader *e = first_entry(r, pos);
        for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e)) {
            std::vector<int16_t> atts(entry_attnums(e), entry_attnums(e) + e->natts);
            std::string settings(entry_settings(e), e->settings_len);
            std::vector<uint32_t> types;
            for (int t = 0; t < (int)(entry_types_len(e) / sizeof(uint32_t)); t++)
                types.push_back(entry_type(e, t));
            auto key = std::make_tuple((Oid)e->reloid, (Oid)e->roleid, atts, settings, types);
            auto it = group_of.find(key);
            if (it == group_of.end()) {
                it = group_of.emplace(key, b.groups.size()).first;
                b.groups.push_back(Group{e->reloid, e->roleid, atts, settings, {}, types});
            }
            b.groups[it->second].entries.push_back(b.entries.size());
            b.entries.push_back(EntryRef{pos, e});
            b.rows += e->nrows;
        }
    }
    b.scan_end = c.pos(); // the first record not taken or skipped, or the head
    return b;
}

// ---------------------------------------------------------------------------------------------
// One batch: insert, confirm the waiters, commit, finish; retry or isolate bad rows on error.

static bool is_transient(int code) {
    return code == ERRCODE_T_R_SERIALIZATION_FAILURE || code == ERRCODE_T_R_DEADLOCK_DETECTED ||
           code == ERRCODE_LOCK_NOT_AVAILABLE || code == ERRCODE_QUERY_CANCELED ||
           ERRCODE_TO_CATEGORY(code) == ERRCODE_INSUFFICIENT_RESOURCES ||
           code == ERRCODE_CANNOT_CONNECT_NOW || code == ERRCODE_ADMIN_SHUTDOWN;
}

// Before committing: every backend waiting (cancellably) for rows in this batch must still want
// them. Moves their wait slots from pending to committing; a withdrawn envelope is thrown out.
static void confirm_waiters(const WorkerBatch &b) {
    std::vector<std::pair<TransactionId, uint64_t>> must_commit; // xid, envelope
    for (uint64_t pos : b.envelopes) {
        EnvelopeHeader *env = envelope_of(ring(), pos);
        if (env->xid != InvalidTransactionId) {
            TransactionId xid = env->xid;
            if (!pg_guard([&] { return TransactionIdIsInProgress(xid); })) {
                if (!pg_guard([&] { return TransactionIdDidCommit(xid); }))
                    throw WithdrawnEnvelope{{pos}};
                continue; // committed: nothing to confirm
            }
            must_commit.emplace_back(xid, pos);
        }
        if (env->waiter < 0)
            continue;
        WaitSlot *ws = &shared->waits[env->waiter];
        uint64_t pending = env->waiter_gen << 2 | kWaitPending;
        uint64_t committing = env->waiter_gen << 2 | kWaitCommitting;
        uint64_t cur = pending;
        if (!ws->word.compare_exchange_strong(cur, committing) && cur != committing)
            throw WithdrawnEnvelope{{pos}};
        if (env->xid != InvalidTransactionId)
            SetLatch(&ProcGlobal->allProcs[env->waiter].procLatch); // "inserted": it may commit now
    }
    // Our commit must follow theirs: wait (on our latch; they set it when they end) until each of
    // those transactions has ended, and leave out the rows of any that rolled back.
    for (auto &mc : must_commit) {
        TransactionId xid = mc.first;
        while (pg_guard([&] { return TransactionIdIsInProgress(xid); }))
            pg_guard([] {
                (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
                                PG_WAIT_EXTENSION);
                ResetLatch(MyLatch);
                CHECK_FOR_INTERRUPTS();
            });
        if (!pg_guard([&] { return TransactionIdDidCommit(xid); }))
            throw WithdrawnEnvelope{{mc.second}};
    }
}

// One attempt at the whole batch, in one transaction. isolate_bad_rows = false: each group in one
// COPY, no subtransactions (the fast path). true: bisect failing groups, dead-letter bad rows.
static void attempt_batch(WorkerBatch &b, bool isolate_bad_rows) {
    pg_guard([&] {
        start_batch_transaction(isolate_bad_rows ? "isolating bad rows" : "inserting batch");
        // SET CONSTRAINTS ALL IMMEDIATE: a deferred constraint must fail at the insert, where
        // bisection can isolate the row, not at our commit, where the whole batch would fail
        // again on every attempt.
        ConstraintsSetStmt *all_immediate = makeNode(ConstraintsSetStmt);
        all_immediate->constraints = NIL;
        all_immediate->deferred = false;
        AfterTriggerSetState(all_immediate);
    });
    for (auto &er : b.entries)
        er.failed = 0;
    mark_duplicates(b);
    for (const Group &g : b.groups)
        insert_group_rows(b, g, isolate_bad_rows);
    // Temporary objects a role's code created in this session (a security-restricted operation
    // refuses temporary tables, not temporary types or functions) go with the batch; the staging
    // tables of RLS groups would go at commit anyway.
    pg_guard([] { ResetTempTableNamespace(); });
    log_batch(b);
    confirm_waiters(b);
    // Exactly once across crashes: the envelopes' ingest_queue rows go in this transaction.
    std::vector<uint64_t> gone = consume_logged(b.envelopes);
    if (!gone.empty())
        throw WithdrawnEnvelope{gone};
    pg_guard([&] {
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

// Marks everything done after the commit and tells waiters and the statistics.
static void finish_batch(const WorkerBatch &b) {
    TimestampTz now = GetCurrentTimestamp();
    std::map<Oid, std::pair<uint64_t, uint64_t>> per_table; // committed, failed
    std::map<uint64_t, uint64_t> failed_per_env;
    for (const EntryRef &er : b.entries) {
        if (er.duplicate) {
            TableStats *ts = table_stats(my_db, er.e->reloid, true);
            if (ts)
                ts->rows_discarded.fetch_add(er.e->nrows, std::memory_order_relaxed);
            failed_per_env[er.env_pos] += er.failed_before;
            continue;
        }
        auto &t = per_table[er.e->reloid];
        t.first += er.e->nrows - er.failed;
        t.second += er.failed;
        failed_per_env[er.env_pos] += er.failed;
    }
    for (auto &kv : per_table) {
        TableStats *ts = table_stats(my_db, kv.first, true);
        if (!ts)
            continue;
        ts->rows_committed.fetch_add(kv.second.first, std::memory_order_relaxed);
        ts->rows_failed.fetch_add(kv.second.second, std::memory_order_relaxed);
        ts->batches.fetch_add(1, std::memory_order_relaxed);
        ts->last_commit_time.store(now, std::memory_order_relaxed);
    }
    // The worker commits asynchronously: a waiter flushes WAL up to this LSN itself before it
    // returns (concurrent flushes are grouped by PostgreSQL), so the worker never waits for fsync.
    uint64_t lsn = XactLastCommitEnd;
    my_slot->commit_lsn.store(lsn, std::memory_order_release);
    for (uint64_t pos : b.envelopes) {
        EnvelopeHeader *env = envelope_of(ring(), pos);
        uint64_t failed = failed_per_env[pos];
        if (env->waiter >= 0) {
            WaitSlot *ws = &shared->waits[env->waiter];
            if ((ws->word.load(std::memory_order_acquire) >> 2) == env->waiter_gen) {
                if (failed)
                    ws->failed_rows.fetch_add(failed, std::memory_order_release);
                ws->commit_lsn.store(lsn, std::memory_order_release);
            }
        }
        ring()->mark(pos, kReady, kDone);
        wake_waiter(env);
    }
}

static void note_error(const WorkerBatch &b, const PgError &e) {
    std::string msg = e.what();
    std::map<Oid, bool> seen;
    for (const Group &g : b.groups) {
        if (seen[g.reloid])
            continue;
        seen[g.reloid] = true;
        record_table_error(table_stats(my_db, g.reloid, true), msg.c_str());
    }
}

static void sleep_ms(long ms) {
    pg_guard([&] {
        (void)WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
        CHECK_FOR_INTERRUPTS();
    });
}

// The extension is gone while rows were queued (DROP EXTENSION refuses while this database has
// rows queued, but rows enqueued meanwhile may remain): there is nowhere to put them any more.
// Their tickets and counts are logged (not their contents) and they are marked done.
static void drop_orphaned(WorkerBatch &b) {
    ereport(WARNING,
            (errmsg("pg_ingest is no longer installed in database %u: %llu queued rows are discarded", my_db,
                    (unsigned long long)b.rows)));
    for (EntryRef &er : b.entries) {
        // Tickets and counts only: the rows' contents may be anyone's data.
        ereport(LOG, (errmsg("pg_ingest discarded %u rows of ticket %llu for table %u", er.e->nrows,
                             (unsigned long long)er.e->ticket, er.e->reloid)));
        er.failed = er.e->nrows;
    }
    finish_batch(b);
}

// Retry policy for transient errors: 3 attempts in all (the first and 2 retries), 100 ms before
// the first retry, doubling each time, at most 10 s apart.
constexpr int kMaxRetries = 2;
constexpr long kFirstBackoffMs = 100;
constexpr long kMaxBackoffMs = 10000;

// Returns false only during shutdown, for a batch that could not be stored (left in the ring).
static bool process_batch(WorkerBatch &b) {
    int attempts = 0;
    bool isolate_bad_rows = false;
    long backoff_ms = kFirstBackoffMs;
    for (;;) {
        try {
            attempt_batch(b, isolate_bad_rows);
            finish_batch(b);
            if (poison_group_met())
                clear_poison_group(); // dead-lettered and committed
            return true;
        } catch (const WithdrawnEnvelope &w) {
            end_group_timeout();
            abort_batch_transaction();
            auto withdrawn = [&](uint64_t pos) { return std::count(w.pos.begin(), w.pos.end(), pos) > 0; };
            for (uint64_t pos : w.pos) {
                auto it = std::find(b.envelopes.begin(), b.envelopes.end(), pos);
                if (it != b.envelopes.end()) {
                    b.envelopes.erase(it);
                    discard_envelope(pos);
                }
            }
            // Rebuild the groups without the withdrawn envelope.
            WorkerBatch rebuilt;
            rebuilt.envelopes = b.envelopes;
            for (const Group &g : b.groups) {
                Group ng{g.reloid, g.roleid, g.attnums, g.settings, {}, g.types};
                for (size_t ei : g.entries)
                    if (!withdrawn(b.entries[ei].env_pos)) {
                        ng.entries.push_back(rebuilt.entries.size());
                        rebuilt.entries.push_back(b.entries[ei]);
                    }
                if (!ng.entries.empty())
                    rebuilt.groups.push_back(std::move(ng));
            }
            rebuilt.scan_end = b.scan_end;
            rebuilt.first_pending = b.first_pending;
            rebuilt.lanes_seen = b.lanes_seen;
            rebuilt.lanes_busy = b.lanes_busy;
            b = std::move(rebuilt);
            if (b.envelopes.empty())
                return true;
        } catch (const PgError &e) {
            end_group_timeout();
            abort_batch_transaction();
            note_error(b, e);
            forget_extension_schema();
            if (!extension_installed()) {
                drop_orphaned(b);
                return true;
            }
            if (is_transient(e.sqlerrcode()) && attempts < kMaxRetries && !got_sigterm) {
                attempts++;
                for (const Group &g : b.groups) {
                    TableStats *ts = table_stats(my_db, g.reloid, true);
                    if (ts)
                        ts->retries.fetch_add(1, std::memory_order_relaxed);
                }
                ereport(LOG, (errmsg("pg_ingest: batch failed (%s), retry %d in %ld ms", e.what(), attempts,
                                     backoff_ms)));
                sleep_ms(backoff_ms);
                backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
                continue;
            }
            if (!isolate_bad_rows) {
                isolate_bad_rows = true;
                continue;
            }
            // Even isolating failed (e.g. the dead-letter table is gone): keep the rows and retry
            // later rather than lose them. Not during shutdown, which must complete: the rows stay
            // in the ring, which a shutdown loses (said in the log, with the count).
            if (got_sigterm) {
                ereport(WARNING,
                        (errmsg("pg_ingest: shutting down with a batch of %llu rows that could not be "
                                "stored: %s",
                                (unsigned long long)b.rows, e.what())));
                return false;
            }
            ereport(LOG, (errmsg("pg_ingest: could not store batch of %llu rows: %s; retrying in 10 s",
                                 (unsigned long long)b.rows, e.what())));
            sleep_ms(kMaxBackoffMs);
            attempts = 0;
            backoff_ms = kFirstBackoffMs;
            isolate_bad_rows = false;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loop.

// Session-level advisory locks a role's code took (pg_advisory_lock) would outlive its group in
// this long-lived session: release them after every batch.
static void release_session_locks() {
    pg_guard([] { LockReleaseSession(USER_LOCKMETHOD); });
}

static void publish_progress(const WorkerBatch &b) {
    uint64_t low = std::min(b.first_pending, b.scan_end);
    publish_scan(my_slot, b.lanes_seen, low);
    advance_tail();
    ConditionVariableBroadcast(&my_slot->done_cv);
}

static void update_oldest() {
    // Oldest queued age per table: from the first ready envelope of each table past the tail, in
    // any lane. At most ten times a second (it walks every table slot), and by the first of the
    // database's workers only. The shared lock keeps the tail (and the records past it) still.
    static TimestampTz last = 0;
    TimestampTz now = GetCurrentTimestamp();
    if (now - last < 100 * 1000 || find_worker(my_db) != my_slot)
        return;
    last = now;
    Ring *r = ring();
    std::map<Oid, int64_t> oldest;
    int budget = 1000;
    LWLockAcquire(shared->lock, LW_SHARED);
    for (RingCursor c(r, r->tail.load(std::memory_order_acquire)); c.valid() && budget-- > 0; c.next()) {
        if (c.state() != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(r, c.pos());
        if (env->dboid == my_db) {
            EntryHeader *e = first_entry(r, c.pos());
            for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e))
                oldest.emplace(e->reloid, env->enqueued_at);
        }
    }
    LWLockRelease(shared->lock);
    for (int i = 0; i < shared->ntables; i++) {
        TableStats *ts = &shared->tables[i];
        uint64_t key = ts->key.load(std::memory_order_acquire);
        if (key == 0 || (Oid)(key >> 32) != my_db)
            continue;
        auto it = oldest.find((Oid)(key & 0xffffffff));
        ts->oldest_queued_at.store(it == oldest.end() ? 0 : it->second, std::memory_order_relaxed);
    }
}

// Load-driven batching. Whatever arrived while the previous batch committed forms the next one,
// so under load batches grow by themselves and a lone row is inserted at once. Only when nobody
// waits for the batch (fire-and-forget), it is small, and the measured arrival rate says that
// waiting up to ingest.flush_interval would at least double it, the worker lingers that long.
constexpr long kWaiterLingerUs = 500;

struct LoadMeter {
    double rows_per_ms = 0;
    TimestampTz last = 0;

    void observe(uint64_t rows) {
        TimestampTz now = GetCurrentTimestamp();
        if (last != 0) {
            double ms = std::max(0.05, (now - last) / 1000.0);
            rows_per_ms = 0.8 * rows_per_ms + 0.2 * (rows / ms);
        }
        last = now;
    }

    // How long to let the batch grow before inserting it, in microseconds.
    long linger_us(const WorkerBatch &b) const {
        if (b.envelopes.empty() || guc_flush_interval_ms <= 0 || b.rows * 2 >= (uint64_t)guc_batch_rows)
            return 0;
        bool waiters = false;
        for (uint64_t pos : b.envelopes)
            waiters |= envelope_of(ring(), pos)->waiter >= 0;
        // Someone waits: linger only briefly (each waiter pays it in latency), and only when the
        // measured rate says it would at least double the batch.
        long us = waiters ? std::min(kWaiterLingerUs, guc_flush_interval_ms * 1000L)
                          : guc_flush_interval_ms * 1000L;
        double expected = rows_per_ms * us / 1000.0;
        return expected >= (double)b.rows ? us : 0;
    }
};

// ingest.test_worker_delay: pause before the batch, but end the pause as soon as a reload
// changes the setting (tests pause the worker, fill the ring, then release it) or on SIGTERM.
static void test_delay() {
    TimestampTz start = GetCurrentTimestamp();
    for (;;) {
        long left = guc_test_worker_delay_ms - (long)((GetCurrentTimestamp() - start) / 1000);
        if (left <= 0 || got_sigterm)
            return;
        pg_guard([&] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left,
                            PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
            if (ConfigReloadPending) {
                ConfigReloadPending = false;
                ProcessConfigFile(PGC_SIGHUP);
            }
        });
    }
}

constexpr int64 kProbeIdleUs = 5 * USECS_PER_SEC;
// A worker that is not its database's only one leaves after this long without work: the lanes
// it gives up go to the others.
constexpr int64 kSharedIdleUs = 5 * USECS_PER_SEC;

// How much of the time this worker spends on batches (wall clock, over windows of half a second):
// a worker that is busy nearly all the time is what its callers wait for, whether the queue backs
// up (fire-and-forget) or the callers wait for each batch (durable, ingest.ack = committed).
struct BusyMeter {
    TimestampTz window_start = 0;
    int64 busy_us = 0;
    bool saturated = false;

    void batch(TimestampTz start, TimestampTz end) {
        busy_us += end - start;
        if (window_start == 0)
            window_start = start;
        if (end - window_start >= 500 * 1000) {
            saturated = busy_us * 4 >= (end - window_start) * 3; // busy 75% of the window or more
            window_start = end;
            busy_us = 0;
        }
    }
};

// Parallel drain. A batch that reached the batch limits (a backlog), or a worker busy nearly all
// the time: share our lanes with a worker of this database that has none, or start one (at most
// once a second) while the database has fewer than ingest.workers_per_database.
static void share_on_backlog(const WorkerBatch &b, const BusyMeter &busy) {
    static TimestampTz last_start = 0;
    if (guc_workers_per_database <= 1 || got_sigterm)
        return;
    if (b.rows < (uint64_t)guc_batch_rows && b.bytes < (uint64_t)guc_batch_bytes_kb * 1024 && !busy.saturated)
        return;
    TimestampTz now = GetCurrentTimestamp();
    bool may_start = now - last_start >= USECS_PER_SEC;
    if (may_start)
        last_start = now;
    if (share_lanes(my_slot, my_db, guc_workers_per_database, may_start, b.lanes_busy))
        ereport(DEBUG1,
                (errmsg("pg_ingest worker for database %u shares its lanes with another worker", my_db)));
}

static void worker_loop() {
    LoadMeter meter;
    BusyMeter busy;
    TimestampTz last_work = GetCurrentTimestamp();
    uint64_t drain_target = 0;
    bool draining = false;
    bool recovering = !helping; // the database's first worker brings logged envelopes back
    uint64_t recovered_after = 0, recovered = 0;
    bool did_work = false;
    for (;;) {
        pg_guard([] {
            CHECK_FOR_INTERRUPTS();
            if (ConfigReloadPending) {
                ConfigReloadPending = false;
                ProcessConfigFile(PGC_SIGHUP);
            }
        });
        if (got_sigterm && !draining) {
            draining = true;
            drain_target = ring()->head.load(std::memory_order_acquire);
            ereport(LOG, (errmsg("pg_ingest worker draining the ring before exit")));
        }
        if (recovering && !draining) {
            // Logged envelopes that a crash or failover took out of the ring go back into it
            // first, as far as it has room (the rest after the next batches).
            recovering = recover_logged(&recovered_after, &recovered);
            if (!recovering) {
                my_slot->recovered.store(1, std::memory_order_release);
                if (recovered)
                    ereport(LOG, (errmsg("pg_ingest worker recovered %llu logged envelopes for database %u",
                                         (unsigned long long)recovered, my_db)));
            }
        }
        if (guc_test_worker_delay_ms > 0 && !draining)
            test_delay();
        WorkerBatch b = collect();
        meter.observe(b.rows);
        long linger = draining ? 0 : meter.linger_us(b);
        if (linger > 0) {
            pg_usleep(linger);
            b = collect();
        }
        if (!b.unserved.empty())
            discard_dropped_databases(b);
        prune_history();
        if (!b.envelopes.empty()) {
            last_work = GetCurrentTimestamp();
            did_work = true;
            TimestampTz batch_start = last_work;
            bool stored = process_batch(b);
            release_session_locks();
            if (!stored)
                return; // shutting down
            publish_progress(b);
            busy.batch(batch_start, GetCurrentTimestamp());
            share_on_backlog(b, busy);
            update_oldest();
            continue;
        }
        publish_progress(b);
        update_oldest();
        if (draining && my_slot->scan_low.load() >= drain_target)
            return;
        // A probing worker (the launcher's) that found nothing leaves at once.
        // One that recovered rows leaves after 5 s idle, so that after a crash the launcher's
        // probes do not hold worker slots other databases need.
        int64 idle_us = GetCurrentTimestamp() - last_work;
        bool idle_long =
            (probing && !recovering && (!did_work || idle_us > kProbeIdleUs)) ||
            (guc_worker_idle_timeout_s > 0 && idle_us > (int64)guc_worker_idle_timeout_s * USECS_PER_SEC) ||
            (idle_us > kSharedIdleUs && !recovering && other_workers(my_db));
        if (!draining && idle_long && b.first_pending == UINT64_MAX && try_idle_exit(my_slot, my_db)) {
            my_slot = nullptr;
            if (probing && !did_work)
                ereport(DEBUG1, (errmsg("pg_ingest worker for database %u: nothing queued", my_db)));
            else
                ereport(LOG, (errmsg("pg_ingest worker for database %u exits after %lld s idle", my_db,
                                     (long long)(idle_us / USECS_PER_SEC))));
            proc_exit(0); // code 0: not restarted; the next hand-over starts a new worker
        }
        pg_guard([] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
                            PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        });
    }
}

} // namespace pg_ingest

using namespace pg_ingest;

void pg_ingest_worker_main(Datum arg) {
    int idx = DatumGetInt32(arg);
    Oid dboid;
    memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(dboid));
    probing = MyBgworkerEntry->bgw_extra[sizeof(dboid)] != 0;
    helping = MyBgworkerEntry->bgw_extra[sizeof(dboid) + 1] != 0;
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, handle_sigterm);
    BackgroundWorkerUnblockSignals();
    am_ingest_worker = true;
    // A worker whose database was dropped would fail to connect and be restarted every second
    // forever: after repeated failed starts give the slot up and exit for good (code 0).
    if (worker_gives_up(idx, dboid)) {
        ereport(LOG, (errmsg("pg_ingest worker for database %u gives up: it could not connect", dboid)));
        proc_exit(0);
    }
    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    my_db = dboid;
    my_slot = claim_slot(idx, dboid);
    pgstat_report_appname("pg_ingest worker");
    pin_input_formats(); // read queued rows back in the formats they were written with
    prefault_ring();
    keep_freed_memory(); // every batch allocates and frees its COPY buffers again
    register_group_timeout(my_slot);
    if (helping)
        my_slot->recovered.store(1, std::memory_order_release); // the first worker recovers
    if (my_slot->poison_ticket != 0)
        ereport(
            LOG,
            (errmsg("pg_ingest worker restarted: the rows of table %u enqueued by role %u (ticket %llu) ran "
                    "past ingest.group_timeout after its cancel; they are dead-lettered, not run again",
                    my_slot->poison_rel, my_slot->poison_role, (unsigned long long)my_slot->poison_ticket)));
    // Durability comes from the waiters' XLogFlush (see finish_batch), not from this process.
    SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
    // Statement snapshots (wal_queue.cpp reads ingest_queue rows of transactions that committed
    // after the batch began), whatever default_transaction_isolation says.
    SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
    ereport(probing ? DEBUG1 : LOG, (errmsg("pg_ingest worker started for database %u", dboid)));

    const char *msg = nullptr;
    std::optional<PgError> pg_error;
    try {
        // The launcher probes every database: one without pg_ingest has nothing for us.
        if (probing && !extension_installed() && try_idle_exit(my_slot, my_db))
            proc_exit(0);
        worker_loop();
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    } catch (...) {
        msg = "unknown exception";
    }
    if (pg_error)
        rethrow_pg_error(pg_error); // exits with code 1: the postmaster restarts us
    if (msg)
        ereport(ERROR, (errmsg("pg_ingest worker failed: %s", msg)));
    // Drained after SIGTERM. Exit code 1 so that pg_terminate_backend() leads to a restart; during
    // shutdown nothing is restarted anyway.
    proc_exit(1);
}
