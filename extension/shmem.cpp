// shmem.cpp — pg_ingest's shared memory: the ring, worker slots, wait slots, per-table stats.
//
// Requested in shmem_request_hook (PostgreSQL 15), created in shmem_startup_hook under
// AddinShmemInitLock. Both hooks run again after a crash-restart, which recreates everything
// empty: rows that were only in the ring are gone (see docs/ARCHITECTURE.md, "Crashes").
#include "shmem.hpp"

#include "pg_guard.hpp"
#include "settings.hpp"

extern "C" {
#include "access/twophase.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/syscache.h"
}

#include <algorithm>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>

namespace pg_ingest {

Shared *shared = nullptr;

static shmem_request_hook_type prev_shmem_request_hook = nullptr;
static shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

static int wait_slot_count() {
    return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts + 1;
}

static Size shared_size() {
    Size size = MAXALIGN(sizeof(Shared));
    size = add_size(size, mul_size(guc_max_workers, sizeof(WorkerSlot)));
    size = add_size(size, mul_size(wait_slot_count(), sizeof(WaitSlot)));
    size = add_size(size, mul_size(guc_max_tables, sizeof(TableStats)));
    size = add_size(size, kAlign);
    size = add_size(size, Ring::shmem_size((uint64_t)guc_ring_size_kb * 1024));
    return size;
}

static void shmem_request() {
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(shared_size());
    RequestNamedLWLockTranche("pg_ingest", 2);
}

static void shmem_startup() {
    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();

    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    char *base = static_cast<char *>(ShmemInitStruct("pg_ingest", shared_size(), &found));
    shared = reinterpret_cast<Shared *>(base);
    if (!found) {
        memset(base, 0, shared_size());
        char *p = base + MAXALIGN(sizeof(Shared));
        shared->nworkers = guc_max_workers;
        shared->workers = reinterpret_cast<WorkerSlot *>(p);
        p += guc_max_workers * sizeof(WorkerSlot);
        shared->nwaitslots = wait_slot_count();
        shared->waits = reinterpret_cast<WaitSlot *>(p);
        p += shared->nwaitslots * sizeof(WaitSlot);
        shared->ntables = guc_max_tables;
        shared->tables = reinterpret_cast<TableStats *>(p);
        p += guc_max_tables * sizeof(TableStats);
        p = reinterpret_cast<char *>(align_up(reinterpret_cast<uintptr_t>(p)));
        shared->ring = reinterpret_cast<Ring *>(p);
        shared->ring->init((uint64_t)guc_ring_size_kb * 1024);

        LWLockPadded *locks = GetNamedLWLockTranche("pg_ingest");
        shared->lock = &locks[0].lock;
        shared->stats_lock = &locks[1].lock;
        ConditionVariableInit(&shared->space_cv);
        for (int i = 0; i < shared->nworkers; i++)
            ConditionVariableInit(&shared->workers[i].done_cv);
        // Tickets stay monotonic across restarts: each start begins at the current time in
        // microseconds, ahead of any ticket an earlier run could have handed out.
        shared->next_ticket.store((uint64_t)GetCurrentTimestamp(), std::memory_order_relaxed);
        shared->stats_reset.store(GetCurrentTimestamp(), std::memory_order_relaxed);
        // This ring's identity (wal_queue.cpp): rows of ingest_queue written under another one
        // (before a crash, or on the primary this server was a standby of) are not in the ring.
        uint64_t rnd = 0;
        if (!pg_strong_random(&rnd, sizeof(rnd)))
            rnd = (uint64_t)MyProcPid << 32;
        shared->boot = ((uint64_t)GetCurrentTimestamp() ^ rnd) & INT64_MAX;
    }
    LWLockRelease(AddinShmemInitLock);
}

void shmem_install_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = shmem_startup;
}

// Which chunks of the ring this process has populated (one bit each; malloc'd once).
constexpr uint64_t kPrefaultChunk = 256 * 1024;
static uint64_t *populated = nullptr;

static void populate(uint64_t offset, uint64_t len) {
#ifdef MADV_POPULATE_WRITE
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = reinterpret_cast<uintptr_t>(shared->ring->data + offset);
    uintptr_t start = from & ~(page - 1);
    // Page-table entries only: no byte of the ring is read or written. Errors (an old kernel)
    // leave the pages to be faulted in as before.
    (void)madvise(reinterpret_cast<void *>(start), from + len - start, MADV_POPULATE_WRITE);
#endif
}

void prefault_ring_range(uint64_t pos, uint64_t len) {
    if (!shared)
        return;
    uint64_t cap = shared->ring->capacity;
    uint64_t nchunks = (cap + kPrefaultChunk - 1) / kPrefaultChunk;
    if (!populated) {
        populated = static_cast<uint64_t *>(calloc((nchunks + 63) / 64, sizeof(uint64_t)));
        if (!populated)
            return;
    }
    for (uint64_t p = pos - pos % kPrefaultChunk; p < pos + len; p += kPrefaultChunk) {
        uint64_t idx = (p % cap) / kPrefaultChunk;
        if (populated[idx / 64] & (UINT64_C(1) << (idx % 64)))
            continue;
        populated[idx / 64] |= UINT64_C(1) << (idx % 64);
        uint64_t off = idx * kPrefaultChunk;
        populate(off, std::min(kPrefaultChunk, cap - off));
    }
}

void prefault_ring() {
    if (shared)
        prefault_ring_range(0, shared->ring->capacity);
}

void shmem_require() {
    if (!shared)
        throw UserError(
            ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "pg_ingest must be loaded via shared_preload_libraries",
            "Add pg_ingest to shared_preload_libraries in postgresql.conf and restart the server.");
}

// Lock-free lookup; insertion of a new key under stats_lock. Returns nullptr when the table is
// full (the rows still flow; only their statistics are not kept).
//
// Open addressing with linear probing. A slot freed by reclaim_table_stats() becomes a tombstone,
// not empty, so every key stored past it stays reachable: lookups probe past tombstones and stop
// only at an empty slot. Insertion (under stats_lock, so no key is inserted twice) reuses the
// first tombstone of the probe sequence, once the key is known to be absent.
static bool stats_full_seen = false;

TableStats *table_stats(Oid dboid, Oid reloid, bool create) {
    uint64_t key = ((uint64_t)dboid << 32) | reloid;
    int n = shared->ntables;
    uint64_t h = key * UINT64CONST(0x9E3779B97F4A7C15);
    int start = (int)(h % (uint64_t)n);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!create)
                return nullptr;
            LWLockAcquire(shared->stats_lock, LW_EXCLUSIVE);
        }
        TableStats *reuse = nullptr;
        for (int i = 0; i < n; i++) {
            TableStats *ts = &shared->tables[(start + i) % n];
            uint64_t k = ts->key.load(std::memory_order_acquire);
            if (k == key) {
                if (pass == 1)
                    LWLockRelease(shared->stats_lock);
                return ts;
            }
            if (k == kStatsTombstone && !reuse)
                reuse = ts;
            if (k == 0) {
                if (pass == 0)
                    break;
                if (!reuse)
                    reuse = ts;
                break;
            }
        }
        if (pass == 1 && reuse) {
            // The slot's counters are those of a dropped table (or zero): start afresh before
            // the key makes it visible.
            reuse->rows_enqueued.store(0, std::memory_order_relaxed);
            reuse->bytes_enqueued.store(0, std::memory_order_relaxed);
            reuse->rows_committed.store(0, std::memory_order_relaxed);
            reuse->rows_failed.store(0, std::memory_order_relaxed);
            reuse->rows_discarded.store(0, std::memory_order_relaxed);
            reuse->batches.store(0, std::memory_order_relaxed);
            reuse->retries.store(0, std::memory_order_relaxed);
            reuse->oldest_queued_at.store(0, std::memory_order_relaxed);
            reuse->last_commit_time.store(0, std::memory_order_relaxed);
            reuse->last_error_time.store(0, std::memory_order_relaxed);
            reuse->last_error[0] = '\0';
            reuse->key.store(key, std::memory_order_release);
            LWLockRelease(shared->stats_lock);
            return reuse;
        }
    }
    LWLockRelease(shared->stats_lock);
    stats_full_seen = true;
    return nullptr;
}

bool take_table_stats_full() {
    bool seen = stats_full_seen;
    stats_full_seen = false;
    return seen;
}

// Slots of dboid whose relation no longer exists and that have nothing queued become tombstones.
// The catalog is read without the lock; a slot is freed under the lock only if its key is still
// the one checked. A process that looked the slot up before (say, a backend counting rows of the
// table it just dropped) may still add to its counters: at worst a few counts land on the
// table that reuses the slot.
int reclaim_table_stats(Oid dboid) {
    int freed = 0;
    for (int i = 0; i < shared->ntables; i++) {
        TableStats *ts = &shared->tables[i];
        uint64_t key = ts->key.load(std::memory_order_acquire);
        if (key == 0 || key == kStatsTombstone || (Oid)(key >> 32) != dboid)
            continue;
        uint64_t done = ts->rows_committed.load() + ts->rows_failed.load() + ts->rows_discarded.load();
        if (ts->rows_enqueued.load() > done)
            continue; // rows still queued: the worker will count them here
        if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum((Oid)(key & 0xffffffff))))
            continue;
        LWLockAcquire(shared->stats_lock, LW_EXCLUSIVE);
        if (ts->key.load(std::memory_order_relaxed) == key) {
            ts->key.store(kStatsTombstone, std::memory_order_release);
            freed++;
        }
        LWLockRelease(shared->stats_lock);
    }
    return freed;
}

void record_table_error(TableStats *ts, const char *message) {
    if (!ts)
        return;
    LWLockAcquire(shared->stats_lock, LW_EXCLUSIVE);
    strlcpy(ts->last_error, message, kLastErrorLen);
    ts->last_error_time.store(GetCurrentTimestamp(), std::memory_order_relaxed);
    LWLockRelease(shared->stats_lock);
}

// The tail may pass only positions that every running worker has already read past, so no
// worker ever reads a header whose bytes a producer is rewriting.
uint64_t tail_limit() {
    uint64_t limit = shared->ring->head.load(std::memory_order_acquire);
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        // Only a running worker reads the ring; a slot kept for a restart resumes at the tail at
        // the earliest (set_slot_state), so it need not hold the tail back meanwhile.
        if (w->state == kSlotRunning) {
            uint64_t low = w->scan_low.load(std::memory_order_acquire);
            if (low < limit)
                limit = low;
        }
    }
    return limit;
}

void advance_tail() {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    uint64_t before = shared->ring->tail.load(std::memory_order_relaxed);
    uint64_t after = shared->ring->advance_tail(tail_limit());
    LWLockRelease(shared->lock);
    if (after != before)
        ConditionVariableBroadcast(&shared->space_cv);
}

} // namespace pg_ingest
