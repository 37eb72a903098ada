// shmem.hpp — the layout of pg_ingest's shared memory (created in shmem.cpp) and which lock
// protects what.
#pragma once

#include "pg_headers.hpp"

#include <atomic>

#include "record.hpp"
#include "ring.hpp"

namespace pg_ingest {

// Which lock protects what:
//  * ring head: atomic CAS by producers, no lock. ring tail: moved only under Shared::lock.
//  * WorkerSlot fields dboid/state/pid/latch/lanes: Shared::lock. scan_low/done_pos: atomics
//    written under Shared::lock (by the slot's worker, or by a worker handing it lanes).
//  * WaitSlot::word: atomic CAS between its backend and workers; failed: atomic.
//  * TableStats counters: atomics; key insertion and freeing (tombstones) and last_error text
//    under stats_lock.
enum WorkerState : int { kSlotFree = 0, kSlotStarting = 1, kSlotRunning = 2 };

struct WorkerSlot {
    Oid dboid;
    int state;
    pid_t pid;
    Latch *latch;
    int start_attempts;         // consecutive starts that did not get connected (e.g. database dropped)
    std::atomic<int> exiting;   // set while the worker decides to exit idle (see try_idle_exit)
    std::atomic<int> recovered; // its worker copied the logged envelopes of earlier boots into the ring
    // A group whose code ignored the cancel at ingest.group_timeout ended the worker (insert.cpp):
    // its restart dead-letters that group instead of running it again. Written by the worker's
    // timeout handler (plain stores), read after the restart; 0 = none.
    uint64_t poison_ticket; // a ticket of the group
    Oid poison_rel, poison_role;
    // The lanes (record.hpp) this worker drains: generation << 32 | bit mask. Changed only under
    // Shared::lock: the worker gives its own lanes away (to a helper, or all at an idle exit),
    // and takes lanes nobody owns; another worker may add lanes to it (sharing). The generation
    // moves with every change, and also when the worker must scan again from the tail.
    std::atomic<uint64_t> lanes;
    std::atomic<uint64_t> scan_low;   // lowest ring position this worker may still read
    std::atomic<uint64_t> done_pos;   // every record of this database below it is handled
    std::atomic<uint64_t> commit_lsn; // end of this worker's latest commit record
    ConditionVariable done_cv;        // broadcast after each batch
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

// TableStats::key of a slot whose table was dropped (dboid 0 and relation OID 1 never occur):
// lookups probe past it, insertion may reuse it (see table_stats).
constexpr uint64_t kStatsTombstone = 1;

struct TableStats {
    std::atomic<uint64_t> key; // dboid << 32 | reloid, 0 = empty, kStatsTombstone = freed
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
    uint64_t boot; // random per shared-memory initialisation: the ring's identity in ingest_queue
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
// Maps ring pages into this process's page tables ahead of use, in 256 kB chunks, each at most once
// per process (Linux 5.14+ MADV_POPULATE_WRITE; elsewhere a no-op): without it a process takes a
// page fault on every 4 kB ring page the first time the head passes it, which on a VM doubled the
// cost of a single-row enqueue (docs/PERFORMANCE.md). Cannot fail, never reads or writes the ring.
void prefault_ring_range(uint64_t pos, uint64_t len); // the chunks [pos, pos + len) touches
void prefault_ring();                                 // all of it (the worker, which reads everywhere)
TableStats *table_stats(Oid dboid, Oid reloid, bool create);
// Whether this process found the statistics array full since the last call: the worker then
// reclaims at once rather than at its next periodic pruning.
bool take_table_stats_full();
// Frees the statistics slots of dboid's tables that no longer exist and have nothing queued;
// returns how many. Needs a transaction (catalog lookups); call in that database.
int reclaim_table_stats(Oid dboid);
void record_table_error(TableStats *ts, const char *message);
uint64_t tail_limit();
void advance_tail();

} // namespace pg_ingest
