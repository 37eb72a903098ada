// txn_buffer.cpp — the transaction buffer: ingest_enqueue*() append rows to a backend-local
// buffer; the transaction hands them to the ring when it commits (or earlier, tagged with its xid,
// when the buffer grows large); a rollback simply drops them. With ingest.wait_for_commit the
// commit waits until a worker has committed (or dead-lettered) the rows.
//
// Order on the hand-over path: serialize first (may fail), then reserve ring space (may wait or
// fail cleanly), then copy and publish (cannot fail).
#include "txn_buffer.hpp"

#include <malloc.h>

#include "pg_guard.hpp"
#include "protocol.h"
#include "copy_format.hpp"
#include "settings.hpp"
#include "shmem.hpp"
#include "wal_queue.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/xlog.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "storage/proc.h"
#include "utils/guc.h"
}

// SQLSTATE of the warning that a committing transaction's rows were dead-lettered (class 01,
// warning): PGI_SQLSTATE_ROWS_REJECTED in protocol.h, which clients match on.
#define ERRCODE_PGI_ROWS_REJECTED MAKE_SQLSTATE('0', '1', 'P', 'I', '1')
static_assert(sizeof(PGI_SQLSTATE_ROWS_REJECTED) == 6 && PGI_SQLSTATE_ROWS_REJECTED[2] == 'P' &&
                  PGI_SQLSTATE_ROWS_REJECTED[3] == 'I' && PGI_SQLSTATE_ROWS_REJECTED[4] == '1',
              "ERRCODE_PGI_ROWS_REJECTED must match protocol.h");

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// The backend-local buffer. Everything lives in buf.pending_cxt (PostgreSQL memory), so a
// longjmp out of any PostgreSQL call leaves nothing to destroy.

struct Pending {
    Pending *next;
    Oid reloid;
    Oid roleid;
    int16 natts;
    int16 *attnums;
    uint64 ticket;
    uint32 first_row;
    uint32 nrows;
    SubTransactionId subid;
    StringInfoData data;
    char *producer; // exactly-once producer id, or nullptr
    int64 batch_seq;
    const char *settings; // input settings (copy_format.cpp), shared by the slices of one call
    uint32 settings_len;
    const uint32 *types; // binary rows: the natts column types they were sent as; nullptr: COPY text
};

static uint64 pending_entry_size(const Pending *p) {
    uint64 types_len = p->types ? (uint64)p->natts * sizeof(uint32) : 0;
    return entry_size(p->natts, p->producer ? (uint32)strlen(p->producer) : 0, p->settings_len,
                      p->data.len + types_len);
}

// Everything this backend's current transaction has buffered or handed over. Only the
// transaction callbacks and the enqueue functions touch it (one backend, no locking).
struct TxnBuffer {
    MemoryContext pending_cxt = nullptr; // "pg_ingest pending rows": the entries and their rows
    Pending *pending_head = nullptr;     // entries not handed over yet, oldest first
    Pending **pending_tail = &pending_head;
    uint64 pending_bytes = 0;

    // Ring positions this transaction handed over earlier (spills); the commit waits for them too.
    uint64 *spilled_pos = nullptr;
    int n_spilled = 0, max_spilled = 0;
    uint64 spilled_bytes = 0; // ring bytes those spills hold until this transaction ends

    // What COMMIT must wait for after handing over (set in PRE_COMMIT, used in COMMIT).
    bool wait_after_commit = false;
    // Set when the rows were handed over without an xid at pre-commit (the worker may have
    // committed them already): a later failure of this transaction's commit can no longer
    // withdraw them.
    bool handed_over_without_xid = false;
    uint64 last_envelope_pos = 0;
    uint64 wait_gen = 0;
};

static TxnBuffer buf;

static uint64 spill_threshold() {
    uint64 ring = (uint64)guc_ring_size_kb * 1024;
    return Min(ring / 4, (uint64)8 * 1024 * 1024);
}

static uint64 max_row_bytes() {
    uint64 limit = (uint64)guc_max_record_size_kb * 1024;
    uint64 fit = spill_threshold() - kEnvelopeOverhead - sizeof(EntryHeader) - 64 * 1024;
    return Min(limit, fit);
}

// ---------------------------------------------------------------------------------------------
// Tickets and slices.

uint64 new_ticket() {
    return shared->next_ticket.fetch_add(1, std::memory_order_relaxed);
}

// A transaction's rows live in buffers of up to a few MB (arrays, bulk calls), freed when it
// ends. With glibc's defaults a freed buffer of 128kB or more is handed back to the kernel at once
// (munmap, or a heap trim), and the next transaction faults every page in again: on a 2-core VM
// that was 14% of an array-enqueueing backend's time (TLB shoot-downs) plus page faults in the
// copy. This backend keeps such memory for reuse instead (heap allocations up to 16MB, trimmed
// beyond 32MB of free space at the top), within the range glibc's own adaptive thresholds reach.
// Once per backend, at its first enqueue; the worker at its start.
void keep_freed_memory() {
    mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
}

static Pending *new_pending(const Target &t, const int16 *attnums, int natts, uint64 ticket,
                            uint32 first_row) {
    if (!buf.pending_cxt) {
        buf.pending_cxt =
            AllocSetContextCreate(TopMemoryContext, "pg_ingest pending rows", ALLOCSET_DEFAULT_SIZES);
        keep_freed_memory();
    }
    MemoryContext old = MemoryContextSwitchTo(buf.pending_cxt);
    Pending *p = (Pending *)palloc0(sizeof(Pending));
    p->reloid = t.reloid;
    p->roleid = GetUserId();
    p->natts = (int16)natts;
    if (natts) {
        p->attnums = (int16 *)palloc(sizeof(int16) * natts);
        memcpy(p->attnums, attnums, sizeof(int16) * natts);
    }
    p->ticket = ticket;
    p->first_row = first_row;
    p->subid = GetCurrentSubTransactionId();
    initStringInfo(&p->data);
    MemoryContextSwitchTo(old);
    *buf.pending_tail = p;
    buf.pending_tail = &p->next;
    return p;
}

static void check_row_size(const Target &t, uint64 row_bytes) {
    if (row_bytes > max_row_bytes())
        ereport(
            ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("row for \"%s\" is too large for pg_ingest: %llu bytes", t.relname,
                    (unsigned long long)row_bytes),
             errdetail("The limit is %llu bytes (ingest.max_record_size = %dkB, ingest.ring_size = %dkB).",
                       (unsigned long long)max_row_bytes(), guc_max_record_size_kb, guc_ring_size_kb),
             errhint("Raise ingest.max_record_size, or insert rows this large directly.")));
}

static void maybe_spill();

void SliceWriter::add_row(const char *p, int n, bool add_newline) {
    int len = n + (add_newline ? 1 : 0);
    check_row_size(*t, (uint64)len);
    if (!cur || cur->data.len + (uint64)len > (uint64)guc_max_record_size_kb * 1024) {
        cur = new_pending(*t, attnums, natts, ticket, rows + 1);
        if (!settings) {
            StringInfoData s;
            MemoryContext old = MemoryContextSwitchTo(buf.pending_cxt);
            initStringInfo(&s);
            capture_input_settings(&s, pinned_formats);
            MemoryContextSwitchTo(old);
            settings = s.data;
            settings_len = (uint32)s.len;
        }
        cur->settings = settings;
        cur->settings_len = settings_len;
        if (types) {
            uint32 *copy = (uint32 *)MemoryContextAlloc(buf.pending_cxt, sizeof(uint32) * natts);
            memcpy(copy, types, sizeof(uint32) * natts);
            cur->types = copy;
        }
        if (producer) {
            cur->producer = MemoryContextStrdup(buf.pending_cxt, producer);
            cur->batch_seq = batch_seq;
        }
    }
    MemoryContext old = MemoryContextSwitchTo(buf.pending_cxt);
    appendBinaryStringInfo(&cur->data, p, n);
    if (add_newline)
        appendStringInfoChar(&cur->data, '\n');
    MemoryContextSwitchTo(old);
    cur->nrows++;
    rows++;
    buf.pending_bytes += len;
    if (buf.pending_bytes >= spill_threshold()) {
        maybe_spill();
        cur = nullptr;
    }
}

// ---------------------------------------------------------------------------------------------
// Handing over to the ring.

static uint64 envelope_size(Pending *from, Pending *until) {
    uint64 size = kEnvelopeOverhead;
    for (Pending *p = from; p != until; p = p->next)
        size += pending_entry_size(p);
    return size;
}

// Waits until `len` bytes can be reserved; errors after ingest.enqueue_timeout. Rows spilled
// earlier by this transaction stay in the ring until it commits, so a transaction whose rows do
// not fit in (most of) the ring could only wait for itself: it fails at once instead.
static uint64 reserve_or_wait(uint64 len) {
    Ring *ring = shared->ring;
    if (buf.spilled_bytes + len > ring->capacity / 4 * 3)
        ereport(
            ERROR,
            (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
             errmsg("transaction enqueues more rows than the pg_ingest ring can hold until it commits"),
             errdetail("It has handed over %llu bytes and needs %llu more; a transaction may hold at most "
                       "3/4 of ingest.ring_size (%dkB).",
                       (unsigned long long)buf.spilled_bytes, (unsigned long long)len, guc_ring_size_kb),
             errhint("Commit in smaller transactions, use COPY for very large loads, or raise "
                     "ingest.ring_size.")));
    // The last part of the ring is the workers': rows that a role's trigger enqueues from inside
    // a worker are handed over at the worker's commit, and if backends could fill the ring with
    // that database's rows, the commit that would drain them could never get room.
    uint64 headroom = am_ingest_worker ? 0 : Min(ring->capacity / 16, (uint64)4 * 1024 * 1024);
    uint64 pos;
    auto try_reserve = [&] {
        return ring->used() + len + headroom <= ring->capacity && ring->reserve(len, &pos);
    };
    if (try_reserve())
        return pos;
    TimestampTz start = GetCurrentTimestamp();
    pgstat_report_wait_start(PG_WAIT_EXTENSION);
    ConditionVariablePrepareToSleep(&shared->space_cv);
    for (;;) {
        if (try_reserve())
            break;
        long waited = (long)((GetCurrentTimestamp() - start) / 1000);
        // In a pg_ingest worker (a trigger of a target enqueues) nobody else may free the room.
        if (waited >= guc_enqueue_timeout_ms || am_ingest_worker) {
            ConditionVariableCancelSleep();
            pgstat_report_wait_end();
            ereport(
                ERROR,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED), errmsg("pg_ingest ring is full"),
                 errdetail("No room for %llu bytes in the %dkB ring (ingest.ring_size) after waiting %d ms "
                           "(ingest.enqueue_timeout); %llu bytes are queued.",
                           (unsigned long long)len, guc_ring_size_kb, guc_enqueue_timeout_ms,
                           (unsigned long long)ring->used()),
                 errhint("Check ingest_status for a stalled worker, or raise ingest.ring_size.")));
        }
        ConditionVariableTimedSleep(&shared->space_cv, Min(100, guc_enqueue_timeout_ms - waited),
                                    PG_WAIT_EXTENSION);
    }
    ConditionVariableCancelSleep();
    pgstat_report_wait_end();
    return pos;
}

// Writes the entries [from, until) at dst (the bytes after an EnvelopeHeader). Cannot fail.
static uint32 write_entries(Pending *from, Pending *until, unsigned char *dst) {
    uint32 n = 0;
    EntryHeader *e = reinterpret_cast<EntryHeader *>(dst);
    for (Pending *p = from; p != until; p = p->next, n++) {
        uint32 plen = p->producer ? (uint32)strlen(p->producer) : 0;
        e->len = (uint32)pending_entry_size(p);
        e->reloid = p->reloid;
        e->roleid = p->roleid;
        e->nrows = p->nrows;
        e->ticket = p->ticket;
        e->first_row = p->first_row;
        e->natts = (uint16)p->natts;
        e->flags = (p->producer ? kEntryHasProducer : 0) | (p->types ? kEntryBinary : 0);
        e->data_len = (uint32)p->data.len;
        e->producer_len = plen;
        e->batch_seq = p->batch_seq;
        e->settings_len = p->settings_len;
        e->reserved = 0;
        memcpy((void *)entry_attnums(e), p->attnums, sizeof(int16) * p->natts);
        memcpy((void *)entry_producer(e), p->producer, plen);
        memcpy((void *)entry_settings(e), p->settings, p->settings_len);
        memcpy((void *)entry_data(e), p->data.data, p->data.len);
        if (p->types)
            memcpy((void *)(entry_data(e) + p->data.len), p->types, sizeof(uint32) * p->natts);
        e = next_entry(e);
    }
    return n;
}

// The lane an envelope travels in (record.hpp): its first entry's exactly-once producer, whose
// batches may arrive over any connection, or else this session.
static uint16 lane_key(const Pending *from) {
    if (from && from->producer) {
        uint32 h = 2166136261u; // FNV-1a
        for (const char *c = from->producer; *c; c++)
            h = (h ^ (unsigned char)*c) * 16777619u;
        return (uint16)(h ^ (h >> 16));
    }
    return (uint16)MyProc->pgprocno;
}

// Copies the entries [from, until) into one envelope and publishes it. Returns its position.
// waiter/gen describe a backend that waits before committing (cancellable), or -1. With a valid
// queue (wal_queue.cpp) the envelope is first inserted into ingest_queue in the current
// (sub)transaction, whose xid it then carries.
static uint64 hand_over(Pending *from, Pending *until, TransactionId xid, int waiter, uint64 gen, Oid queue) {
    ensure_worker(MyDatabaseId);
    uint64 len = envelope_size(from, until);
    EnvelopeHeader logged{};
    logged.enqueued_at = GetCurrentTimestamp();
    unsigned char *copy = nullptr;
    if (OidIsValid(queue)) {
        // Serialize and log first (both may fail), then reserve, copy, publish.
        copy = (unsigned char *)palloc(len - kEnvelopeOverhead);
        logged.nentries = write_entries(from, until, copy);
        log_envelope(queue, (const char *)copy, len - kEnvelopeOverhead, &logged);
    }
    // Where the head is now, with room for a padding record before ours: the copy after the
    // reservation then faults on no page.
    prefault_ring_range(shared->ring->head.load(std::memory_order_relaxed), 2 * len);
    uint16 key = lane_key(from);
    uint64 pos = reserve_or_wait(len);

    // From here to publish() nothing can fail.
    Ring *ring = shared->ring;
    EnvelopeHeader *env = envelope_of(ring, pos);
    *env = logged;
    env->dboid = MyDatabaseId;
    env->xid = xid;
    env->waiter = waiter;
    env->waiter_gen = gen;
    env->lane_key = key;
    if (copy)
        memcpy(first_entry(ring, pos), copy, len - kEnvelopeOverhead);
    else
        env->nentries = write_entries(from, until, reinterpret_cast<unsigned char *>(first_entry(ring, pos)));
    ring->publish(pos, len);
    if (copy)
        pfree(copy);

    for (Pending *p = from; p != until; p = p->next) {
        TableStats *ts = table_stats(MyDatabaseId, p->reloid, true);
        if (ts) {
            ts->rows_enqueued.fetch_add(p->nrows, std::memory_order_relaxed);
            ts->bytes_enqueued.fetch_add(p->data.len, std::memory_order_relaxed);
        }
    }
    notify_worker(MyDatabaseId, key % kLanes);
    return pos;
}

static void remember_spill(uint64 pos) {
    if (buf.n_spilled == buf.max_spilled) {
        buf.max_spilled = buf.max_spilled ? buf.max_spilled * 2 : 16;
        buf.spilled_pos =
            (uint64 *)(buf.spilled_pos
                           ? repalloc(buf.spilled_pos, sizeof(uint64) * buf.max_spilled)
                           : MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * buf.max_spilled));
    }
    buf.spilled_pos[buf.n_spilled++] = pos;
}

// Hands over the current subtransaction's buffered rows early, tagged with its xid: the worker
// inserts them only if that (sub)transaction commits.
static void maybe_spill() {
    SubTransactionId cur = GetCurrentSubTransactionId();
    // The current level's entries are at the end of the list (deeper levels have ended already).
    Pending **link = &buf.pending_head;
    while (*link && (*link)->subid != cur)
        link = &(*link)->next;
    if (!*link)
        return;
    TransactionId xid = GetCurrentTransactionId();
    // Spilled rows are logged whatever ingest.ack says: across a crash they must be
    // all-or-nothing with the rest of the transaction.
    Oid queue = queue_relid();
    Pending *from = *link;
    while (from) {
        // Split into envelopes no larger than the spill threshold.
        uint64 size = kEnvelopeOverhead;
        Pending *until = from;
        do {
            size += pending_entry_size(until);
            until = until->next;
        } while (until && size + pending_entry_size(until) <= spill_threshold());
        uint64 pos = hand_over(from, until, xid, -1, 0, queue);
        remember_spill(pos);
        buf.spilled_bytes += shared->ring->length(pos);
        for (Pending *p = from; p != until; p = p->next)
            buf.pending_bytes -= p->data.len;
        from = until;
    }
    *link = nullptr;
    buf.pending_tail = link;
}

bool txn_has_rows() {
    return buf.pending_head != nullptr || buf.n_spilled > 0;
}

static void reset_pending() {
    buf.pending_head = nullptr;
    buf.pending_tail = &buf.pending_head;
    buf.pending_bytes = 0;
    buf.n_spilled = 0;
    buf.spilled_bytes = 0;
    if (buf.pending_cxt)
        MemoryContextReset(buf.pending_cxt);
}

// ---------------------------------------------------------------------------------------------
// Waiting for the worker.

static WaitSlot *my_wait_slot() {
    return &shared->waits[MyProc->pgprocno];
}

enum class WaitFor {
    kDoneBeforeCommit,     // no xid: until the worker committed the rows; cancellable
    kInsertedBeforeCommit, // xid: until the worker inserted them and waits for our commit; cancellable
    kDoneAfterCommit,      // xid, after our commit: until the worker committed them; can only warn
};

static bool all_handled(uint64 pos) {
    Ring *ring = shared->ring;
    if (!ring->handled(pos))
        return false;
    for (int i = 0; i < buf.n_spilled; i++)
        if (!ring->handled(buf.spilled_pos[i]))
            return false;
    return true;
}

// Waits for the worker (see docs/ARCHITECTURE.md, "Waiting"). Before commit, a timeout or a
// cancel request withdraws the rows (CAS pending -> cancelled) and raises an error; if the worker
// got there first, we wait for it instead. After commit the wait can only warn.
static void wait_for_worker(uint64 pos, WaitFor what, uint64 gen) {
    WaitSlot *ws = my_wait_slot();
    bool cancellable = what != WaitFor::kDoneAfterCommit;
    TimestampTz start = GetCurrentTimestamp();
    pgstat_report_wait_start(PG_WAIT_EXTENSION);
    for (;;) {
        if (what == WaitFor::kInsertedBeforeCommit) {
            if ((ws->word.load(std::memory_order_acquire) & 3) != kWaitPending || all_handled(pos))
                break;
        } else if (all_handled(pos))
            break;
        long waited = (long)((GetCurrentTimestamp() - start) / 1000);
        bool timed_out = waited >= guc_wait_timeout_ms;
        bool interrupted = QueryCancelPending || ProcDiePending;
        if (timed_out || interrupted) {
            if (cancellable) {
                uint64 expected = gen << 2 | kWaitPending;
                if (ws->word.compare_exchange_strong(expected, gen << 2 | kWaitCancelled)) {
                    pgstat_report_wait_end();
                    wake_workers(MyDatabaseId); // one may be waiting for our decision
                    CHECK_FOR_INTERRUPTS();
                    ereport(
                        ERROR,
                        (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                         errmsg(
                             "timed out after %d ms waiting for pg_ingest to commit this transaction's rows",
                             guc_wait_timeout_ms),
                         errdetail("The rows were withdrawn and will not be inserted (ingest.wait_timeout)."),
                         errhint(
                             "If this transaction holds a lock the worker needs (e.g. on the target table, "
                             "or a key it inserts), the worker cannot insert until it ends: commit first, "
                             "or set ingest.wait_for_commit = off.")));
                }
                // The worker got there first: it is committing the rows, so wait for it (no
                // timeout: acknowledging now would skip the flush below).
                cancellable = false;
            } else if (what != WaitFor::kDoneAfterCommit) {
                // Before our commit, after a failed withdrawal: keep waiting. A terminate
                // request ends the session (no acknowledgement); a cancel is ignored here.
                if (ProcDiePending)
                    CHECK_FOR_INTERRUPTS();
            } else if (timed_out) {
                pgstat_report_wait_end();
                ereport(WARNING, (errmsg("pg_ingest rows not yet confirmed after %d ms (ingest.wait_timeout)",
                                         guc_wait_timeout_ms),
                                  errdetail("The transaction has committed; its rows stay queued and will be "
                                            "inserted. Check them with ingest_ticket_status().")));
                return;
            } else if (interrupted && waited > 100) {
                // Committed already; a cancel or terminate request ends the wait, not the rows.
                pgstat_report_wait_end();
                QueryCancelPending = false;
                ereport(WARNING,
                        (errmsg("canceling the wait for pg_ingest to commit this transaction's rows"),
                         errdetail("The transaction has committed; its rows stay queued and will be "
                                   "inserted. Check them with ingest_ticket_status().")));
                return;
            }
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
    pgstat_report_wait_end();
    if (what == WaitFor::kInsertedBeforeCommit)
        return; // the rest is waited for after our commit
    // The worker commits asynchronously; make its commit durable before we acknowledge. Its
    // latest commit LSN, read after our envelopes were marked done, covers them too (e.g. when
    // only spilled envelopes, which carry no waiter, were left to wait for).
    uint64 lsn = ws->commit_lsn.load(std::memory_order_acquire);
    lsn = Max(lsn, db_commit_lsn(MyDatabaseId));
    if (lsn != 0) {
        XLogFlush((XLogRecPtr)lsn);
        // As a COMMIT of our own would: wait for synchronous standbys when they are configured
        // (returns at once otherwise; a cancel ends it with PostgreSQL's own warning).
        SyncRepWaitForLSN((XLogRecPtr)lsn, true);
    }
    uint64 failed = ws->failed_rows.load(std::memory_order_acquire);
    if (failed)
        ereport(WARNING,
                (errcode(ERRCODE_PGI_ROWS_REJECTED),
                 errmsg("pg_ingest rejected %llu row(s) of this transaction", (unsigned long long)failed),
                 errdetail_internal(PGI_REJECTED_DETAIL_KEY "%llu", (unsigned long long)failed),
                 errhint("They were stored in ingest_dead_letter with the reason; "
                         "ingest_dead_letters(ticket) lists them.")));
}

// Like SET LOCAL synchronous_commit, for this transaction's commit record (undone at its end).
static void set_local_synchronous_commit(const char *value) {
    (void)set_config_option("synchronous_commit", value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true,
                            0, false);
}

static void hand_over_at_commit(bool pre_commit) {
    if (!buf.pending_head && buf.n_spilled == 0)
        return;
    TransactionId xid = GetTopTransactionIdIfAny();
    // A serializable transaction may still fail its commit after this point (PostgreSQL checks
    // for serialization failures after the pre-commit callbacks): take the xid path, where the
    // worker commits only after seeing our commit.
    if (pre_commit && !TransactionIdIsValid(xid) && (IsolationIsSerializable() || am_ingest_worker))
        xid = GetTopTransactionId();
    // Code run by a pg_ingest worker (a target's trigger that enqueues) never waits: the rows go
    // over tagged with the worker's xid, and a worker takes them once that transaction committed.
    AckMode mode = am_ingest_worker ? AckMode::kQueued : effective_ack();
    bool wait = mode == AckMode::kCommitted;
    if (pre_commit) {
        // The envelope goes into ingest_queue too (WAL) unless COMMIT waits for the worker's own
        // commit anyway and nothing else in this transaction must be atomic with the rows.
        Oid queue = queue_relid();
        if (!OidIsValid(queue) && mode == AckMode::kLogged)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("ingest.ack = logged needs pg_ingest 0.3.0 or later in this database"),
                            errhint("Run ALTER EXTENSION pg_ingest UPDATE.")));
        if ((mode == AckMode::kCommitted || mode == AckMode::kMemory) && !TransactionIdIsValid(xid))
            queue = InvalidOid;
        if (OidIsValid(queue) && !TransactionIdIsValid(xid)) {
            // Only the envelope needs this transaction's xid: with queued, its commit need not
            // wait for the WAL flush (like synchronous_commit = off, which bounds the loss).
            if (mode == AckMode::kQueued)
                set_local_synchronous_commit("off");
            xid = GetTopTransactionId();
        }
        // logged: the commit record (and the envelope before it) must be flushed, and on
        // synchronous standbys when there are any.
        if (mode == AckMode::kLogged && synchronous_commit < SYNCHRONOUS_COMMIT_REMOTE_FLUSH)
            set_local_synchronous_commit("on");
        int waiter = -1;
        uint64 gen = 0;
        if (wait) {
            gen = new_ticket();
            WaitSlot *ws = my_wait_slot();
            ws->failed_rows.store(0, std::memory_order_relaxed);
            ws->commit_lsn.store(0, std::memory_order_relaxed);
            ws->word.store(gen << 2 | kWaitPending, std::memory_order_release);
            waiter = MyProc->pgprocno;
        }
        if (TransactionIdIsValid(xid)) {
            // The rows must be atomic with this transaction's other writes: the worker inserts
            // them, tells us (INSERTED), and commits only once it has seen our commit.
            if (buf.pending_head) {
                buf.last_envelope_pos = hand_over(buf.pending_head, nullptr, xid, waiter, gen, queue);
                if (wait)
                    wait_for_worker(buf.last_envelope_pos, WaitFor::kInsertedBeforeCommit, gen);
            } else
                buf.last_envelope_pos = buf.spilled_pos[buf.n_spilled - 1];
            buf.wait_after_commit = wait;
            buf.wait_gen = gen;
            if (!wait)
                reset_pending();
            return;
        }
        // No xid: nothing else in this transaction must be atomic with the rows.
        uint64 pos = hand_over(buf.pending_head, nullptr, InvalidTransactionId, waiter, gen, InvalidOid);
        if (wait)
            wait_for_worker(pos, WaitFor::kDoneBeforeCommit, gen); // an error here withdrew them
        buf.handed_over_without_xid = true;
        reset_pending();
        return;
    }
    if (buf.wait_after_commit) {
        buf.wait_after_commit = false;
        wake_workers(MyDatabaseId); // a worker may be waiting to see our commit
        wait_for_worker(buf.last_envelope_pos, WaitFor::kDoneAfterCommit, buf.wait_gen);
    }
    reset_pending();
}

// Transaction and subtransaction callbacks: C functions, so nothing C++ may escape them.
static void on_xact(XactEvent event, void *) {
    const char *msg = nullptr;
    std::optional<PgError> pg_error;
    try {
        switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            pg_guard([] { hand_over_at_commit(true); });
            break;
        case XACT_EVENT_COMMIT:
            buf.handed_over_without_xid = false;
            pg_guard([] { hand_over_at_commit(false); });
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            if (buf.handed_over_without_xid) {
                // Something after our pre-commit step failed (e.g. a NOTIFY queue that is full).
                buf.handed_over_without_xid = false;
                pg_guard([] {
                    ereport(
                        WARNING,
                        (errmsg("this transaction failed after pg_ingest took its rows; they are inserted "
                                "although the transaction rolled back"),
                         errdetail(
                             "Check the tickets of its ingest_enqueue calls with ingest_ticket_status().")));
                });
            }
            // A worker holding our inserted rows waits to see how we end.
            if (buf.wait_after_commit && shared)
                wake_workers(MyDatabaseId);
            buf.wait_after_commit = false;
            reset_pending();
            break;
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PRE_PREPARE:
            if (buf.pending_head || buf.n_spilled)
                pg_guard([] { // raised as a PgError: no longjmp out of this try block
                    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                    errmsg("cannot PREPARE a transaction that has enqueued pg_ingest rows")));
                });
            break;
        default:
            break;
        }
        return;
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    }
    reset_pending();
    if (pg_error)
        rethrow_pg_error(pg_error);
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pg_ingest: %s", msg)));
}

static void on_subxact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *) {
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        Pending **link = &buf.pending_head;
        while (*link) {
            if ((*link)->subid == mySubid) {
                buf.pending_bytes -= (*link)->data.len;
                *link = (*link)->next;
            } else
                link = &(*link)->next;
        }
        buf.pending_tail = link;
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (Pending *p = buf.pending_head; p; p = p->next)
            if (p->subid == mySubid)
                p->subid = parentSubid;
    }
}

void enqueue_install_callbacks() {
    static bool done = false;
    if (done)
        return;
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
    done = true;
}

} // namespace pg_ingest
