// worker_slots.cpp — the worker slots in shared memory: one per database being served, at most
// ingest.max_workers. Backends find, start and wake workers here; a worker claims its slot when it
// starts, and gives it up when it exits idle or cannot connect. All under shared->lock; every
// state change goes through set_slot_state().
#include "worker_slots.hpp"

#include "settings.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
}

#include <algorithm>
#include <atomic>

namespace pg_ingest {

bool am_ingest_worker = false;

// A slot's state changes only here, under shared->lock (exclusive):
//   Free     -> Starting  a backend claims the slot for a database and registers its worker
//   Starting -> Free      registering failed, or the worker gives up (it cannot connect)
//   Starting -> Running   the worker connected and claimed its slot
//   Free     -> Running   the same after a crash-restart reinitialized shared memory
//   Running  -> Running   the same, in a slot a backend reused meanwhile (see claim_slot)
//   Running  -> Starting  the worker exits with an error: the slot stays reserved for its restart
//   Running  -> Free      the worker exits idle, or gives up
// Leaving Free, the slot's scan positions start at the tail.
[[maybe_unused]] static bool slot_transition_legal(int from, WorkerState to) {
    if (from == kSlotFree)
        return to != kSlotFree;
    if (from == kSlotStarting)
        return to != kSlotStarting;
    return from == kSlotRunning;
}

static uint32_t lane_mask(const WorkerSlot *w) {
    return (uint32_t)w->lanes.load(std::memory_order_acquire);
}

// Under shared->lock: gives w exactly these lanes, in a new generation.
static void set_lanes(WorkerSlot *w, uint32_t mask) {
    uint64_t gen = (w->lanes.load(std::memory_order_relaxed) >> 32) + 1;
    w->lanes.store(gen << 32 | mask, std::memory_order_release);
}

// Under shared->lock: w starts its next scan at the tail (every record below it is handled), and
// publishes no progress from a scan made before (a new generation).
static void rescan_from_tail(WorkerSlot *w) {
    uint64_t tail = shared->ring->tail.load(std::memory_order_acquire);
    w->scan_low.store(tail, std::memory_order_release);
    if (w->done_pos.load(std::memory_order_relaxed) > tail)
        w->done_pos.store(tail, std::memory_order_release);
    set_lanes(w, lane_mask(w));
}

// Under shared->lock, when a slot of dboid gives up all its lanes: the database's other workers may
// have passed records of those lanes as someone else's in a scan under way; they scan again from
// the tail and take those lanes when they meet their records (adopt_lane).
static void lanes_released(WorkerSlot *from, Oid dboid) {
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w == from || w->state == kSlotFree || w->dboid != dboid)
            continue;
        rescan_from_tail(w);
        if (w->state == kSlotRunning && w->latch)
            SetLatch(w->latch);
    }
}

static void set_slot_state(WorkerSlot *w, WorkerState to, Oid dboid) {
    Assert(LWLockHeldByMeInMode(shared->lock, LW_EXCLUSIVE));
    Assert(slot_transition_legal(w->state, to));
    if (to == kSlotFree && w->state != kSlotFree && lane_mask(w) != 0) {
        set_lanes(w, 0);
        lanes_released(w, w->dboid);
    }
    if (w->state == kSlotFree) {
        set_lanes(w, 0);
        uint64 tail = shared->ring->tail.load(std::memory_order_acquire);
        w->scan_low.store(tail, std::memory_order_release);
        w->done_pos.store(tail, std::memory_order_release);
        w->start_attempts = 0;
        w->exiting.store(0, std::memory_order_relaxed);
        w->recovered.store(0, std::memory_order_relaxed);
        w->poison_ticket = 0;
    }
    if (to == kSlotRunning) {
        // While the slot was not running, the tail may have passed its scan positions (only over
        // handled records): resume no lower than the tail, whose records are all handled.
        uint64 tail = shared->ring->tail.load(std::memory_order_acquire);
        if (w->scan_low.load(std::memory_order_relaxed) < tail)
            w->scan_low.store(tail, std::memory_order_release);
        if (w->done_pos.load(std::memory_order_relaxed) < tail)
            w->done_pos.store(tail, std::memory_order_release);
    }
    w->dboid = to == kSlotFree ? InvalidOid : dboid;
    w->pid = to == kSlotRunning ? MyProcPid : 0;
    w->latch = to == kSlotRunning ? MyLatch : nullptr;
    if (to != kSlotStarting)
        w->start_attempts = 0;
    if (to == kSlotRunning)
        w->exiting.store(0, std::memory_order_relaxed);
    w->state = to;
}

// ---------------------------------------------------------------------------------------------
// Starting and waking workers (called by backends).

WorkerSlot *find_worker(Oid dboid) {
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state != kSlotFree && w->dboid == dboid)
            return w;
    }
    return nullptr;
}

// The worker of dboid that owns lane, or nullptr. Lock-free reads: exact under shared->lock.
static WorkerSlot *lane_owner(Oid dboid, int lane) {
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state != kSlotFree && w->dboid == dboid && (lane_mask(w) >> lane & 1))
            return w;
    }
    return nullptr;
}

static int workers_of(Oid dboid) {
    int n = 0;
    for (int i = 0; i < shared->nworkers; i++)
        n += shared->workers[i].state != kSlotFree && shared->workers[i].dboid == dboid;
    return n;
}

uint64_t db_done_pos(Oid dboid, WorkerSlot **slowest) {
    uint64_t low = UINT64_MAX;
    *slowest = nullptr;
    LWLockAcquire(shared->lock, LW_SHARED);
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state == kSlotFree || w->dboid != dboid)
            continue;
        uint64_t d = w->done_pos.load(std::memory_order_acquire);
        if (d < low || !*slowest) {
            low = d;
            *slowest = w;
        }
    }
    LWLockRelease(shared->lock);
    return low;
}

uint64_t db_commit_lsn(Oid dboid) {
    uint64_t lsn = 0;
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state != kSlotFree && w->dboid == dboid)
            lsn = std::max(lsn, w->commit_lsn.load(std::memory_order_acquire));
    }
    return lsn;
}

static bool register_worker(int idx, Oid dboid, bool probe, bool helper) {
    BackgroundWorker bgw;
    memset(&bgw, 0, sizeof(bgw));
    bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
    bgw.bgw_restart_time = 1; // restarted after an error exit (code 1); never for code 0
    strlcpy(bgw.bgw_library_name, "pg_ingest", BGW_MAXLEN);
    strlcpy(bgw.bgw_function_name, "pg_ingest_worker_main", BGW_MAXLEN);
    snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest worker for database %u", dboid);
    strlcpy(bgw.bgw_type, "pg_ingest worker", BGW_MAXLEN);
    bgw.bgw_main_arg = Int32GetDatum(idx);
    memcpy(bgw.bgw_extra, &dboid, sizeof(dboid));
    bgw.bgw_extra[sizeof(dboid)] = probe ? 1 : 0;
    bgw.bgw_extra[sizeof(dboid) + 1] = helper ? 1 : 0;
    bgw.bgw_notify_pid = 0;
    return RegisterDynamicBackgroundWorker(&bgw, nullptr);
}

// Under shared->lock: claims a free slot for dboid and registers its worker. Returns nullptr, or
// the reason it could not (palloc'd).
static const char *start_worker_locked(Oid dboid, bool probe = false, bool helper = false) {
    int idx = -1;
    for (int i = 0; i < shared->nworkers && idx < 0; i++)
        if (shared->workers[i].state == kSlotFree)
            idx = i;
    if (idx < 0)
        return psprintf("all %d pg_ingest workers (ingest.max_workers) serve other databases",
                        shared->nworkers);
    WorkerSlot *w = &shared->workers[idx];
    set_slot_state(w, kSlotStarting, dboid);
    if (register_worker(idx, dboid, probe, helper))
        return nullptr;
    set_slot_state(w, kSlotFree, InvalidOid);
    return "no background worker slot is free (max_worker_processes)";
}

// Before handing rows over: makes sure this database has a worker, or fails cleanly.
void ensure_worker(Oid dboid) {
    if (find_worker(dboid))
        return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    const char *why = find_worker(dboid) ? nullptr : start_worker_locked(dboid);
    LWLockRelease(shared->lock);
    if (why)
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("could not start a pg_ingest worker for database \"%s\": %s",
                               get_database_name(dboid), why),
                        errhint("Raise ingest.max_workers or max_worker_processes and restart the server.")));
}

// After publishing into lane: wakes the worker that owns the lane, or (nobody owns it) another
// worker of the database, which takes the lane when it meets the record, or starts one. Cannot
// fail (the rows are in the ring already). A worker deciding to exit for idleness sets `exiting`,
// then scans the ring for records of its lanes (try_idle_exit); we published, then read
// `exiting`. With a full fence on both sides, either its scan sees our record or we see `exiting`
// and take the lock, which orders us after its decision (then the lane has no owner if it left).
void notify_worker(Oid dboid, int lane) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WorkerSlot *w = lane_owner(dboid, lane);
    if (w && w->state == kSlotRunning && w->latch && !w->exiting.load(std::memory_order_relaxed)) {
        SetLatch(w->latch);
        return;
    }
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    w = lane_owner(dboid, lane);
    const char *why = nullptr;
    if (w) {
        if (w->state == kSlotRunning && w->latch)
            SetLatch(w->latch); // a starting owner (a restart) scans when it runs
    } else if (workers_of(dboid) == 0)
        why = start_worker_locked(dboid);
    else
        for (int i = 0; i < shared->nworkers; i++) {
            WorkerSlot *o = &shared->workers[i];
            if (o->state == kSlotRunning && o->dboid == dboid && o->latch)
                SetLatch(o->latch);
        }
    LWLockRelease(shared->lock);
    if (why)
        ereport(WARNING, (errmsg("pg_ingest rows are queued but no worker could be started: %s", why)));
}

void wake_workers(Oid dboid) {
    bool any = false;
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state == kSlotRunning && w->dboid == dboid && w->latch) {
            SetLatch(w->latch);
            any = true;
        }
    }
    if (!any)
        notify_worker(dboid, 0);
}

bool start_probe_worker(Oid dboid) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    bool ok = find_worker(dboid) || start_worker_locked(dboid, true) == nullptr;
    LWLockRelease(shared->lock);
    return ok;
}

bool probe_finished(Oid dboid) {
    LWLockAcquire(shared->lock, LW_SHARED);
    bool done = true;
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state != kSlotFree && w->dboid == dboid && !w->recovered.load(std::memory_order_acquire))
            done = false;
    }
    LWLockRelease(shared->lock);
    return done;
}

// ---------------------------------------------------------------------------------------------
// Lanes (record.hpp): how the workers of one database share its envelopes. Each lane is drained
// by at most one worker at a time, and changes hands only between that worker's batches (it gives
// lanes away, or releases them when it exits), so a lane's records are inserted in ring order.

bool lane_owned(Oid dboid, int lane, bool wake) {
    WorkerSlot *w = lane_owner(dboid, lane);
    if (w && wake && w->state == kSlotRunning && w->latch)
        SetLatch(w->latch);
    return w != nullptr;
}

bool adopt_lane(WorkerSlot *slot, Oid dboid, int lane) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    bool ok = lane_owner(dboid, lane) == nullptr;
    if (ok) {
        set_lanes(slot, lane_mask(slot) | 1u << lane);
        rescan_from_tail(slot);
    }
    LWLockRelease(shared->lock);
    return ok;
}

void publish_scan(WorkerSlot *slot, uint64_t lanes_seen, uint64_t low) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (slot->lanes.load(std::memory_order_relaxed) == lanes_seen) {
        slot->scan_low.store(low, std::memory_order_release);
        slot->done_pos.store(low, std::memory_order_release);
    }
    LWLockRelease(shared->lock);
}

bool other_workers(Oid dboid) {
    LWLockAcquire(shared->lock, LW_SHARED);
    bool others = workers_of(dboid) > 1;
    LWLockRelease(shared->lock);
    return others;
}

bool share_lanes(WorkerSlot *slot, Oid dboid, int max_workers, bool may_start, uint32_t busy) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    uint32_t mine = lane_mask(slot);
    bool changed = false;
    // Only lanes with work are worth sharing: one busy session is one lane, and stays ours.
    if (__builtin_popcount(mine & busy) >= 2) {
        WorkerSlot *idle = nullptr;
        for (int i = 0; i < shared->nworkers && !idle; i++) {
            WorkerSlot *w = &shared->workers[i];
            if (w != slot && w->state == kSlotRunning && w->dboid == dboid && lane_mask(w) == 0)
                idle = w;
        }
        if (idle) {
            // Every second busy lane of ours. The helper may have passed their records already:
            // it starts no higher than we are.
            uint32_t give = 0;
            bool odd = false;
            for (int l = 0; l < kLanes; l++)
                if ((mine & busy) >> l & 1) {
                    if (odd)
                        give |= 1u << l;
                    odd = !odd;
                }
            set_lanes(slot, mine & ~give);
            if (idle->scan_low.load(std::memory_order_relaxed) >
                slot->scan_low.load(std::memory_order_relaxed))
                idle->scan_low.store(slot->scan_low.load(std::memory_order_relaxed),
                                     std::memory_order_release);
            if (idle->done_pos.load(std::memory_order_relaxed) >
                slot->done_pos.load(std::memory_order_relaxed))
                idle->done_pos.store(slot->done_pos.load(std::memory_order_relaxed),
                                     std::memory_order_release);
            set_lanes(idle, give);
            if (idle->latch)
                SetLatch(idle->latch);
            changed = true;
        } else if (may_start && workers_of(dboid) < max_workers)
            (void)start_worker_locked(dboid, false, true); // none free: go on alone
    }
    LWLockRelease(shared->lock);
    return changed;
}

// ---------------------------------------------------------------------------------------------
// The worker's own slot.

static WorkerSlot *claimed_slot = nullptr; // this worker's, released at exit

// Idle: give the slot (and its lanes) up, unless something of its lanes was handed over
// meanwhile. Holding shared->lock keeps the tail still (safe to read the ring) and orders this
// decision with notify_worker().
bool try_idle_exit(WorkerSlot *slot, Oid dboid) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    slot->exiting.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst); // pairs with notify_worker()'s
    Ring *r = shared->ring;
    uint32_t mine = lane_mask(slot);
    auto ours = [&](uint64_t pos) {
        const EnvelopeHeader *env = envelope_of(r, pos);
        return env->dboid == dboid && (mine >> lane_of(env) & 1);
    };
    RingCursor c(r, slot->scan_low.load(std::memory_order_acquire));
    while (c.valid() && !(c.state() == kReady && ours(c.pos())))
        c.next();
    // Stopped at one of ours, or at a record someone is still writing (maybe ours).
    bool work = c.valid() || c.unpublished();
    if (work)
        slot->exiting.store(0, std::memory_order_relaxed);
    else {
        set_slot_state(slot, kSlotFree, InvalidOid);
        claimed_slot = nullptr; // given up: nothing to release at exit
    }
    LWLockRelease(shared->lock);
    return !work;
}

static void release_slot(int, Datum) {
    if (!claimed_slot)
        return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    // Keep the slot reserved for this database: the postmaster restarts us after an error exit,
    // and during shutdown nothing starts again anyway.
    set_slot_state(claimed_slot, kSlotStarting, claimed_slot->dboid);
    LWLockRelease(shared->lock);
    claimed_slot = nullptr;
}

bool worker_gives_up(int idx, Oid dboid) {
    if (idx < 0 || idx >= shared->nworkers)
        return false; // claim_slot says so
    WorkerSlot *w = &shared->workers[idx];
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    bool give_up = (w->state != kSlotFree && w->dboid != dboid) || ++w->start_attempts > 10;
    if (give_up && w->dboid == dboid)
        set_slot_state(w, kSlotFree, InvalidOid);
    LWLockRelease(shared->lock);
    return give_up;
}

WorkerSlot *claim_slot(int idx, Oid dboid) {
    if (idx < 0 || idx >= shared->nworkers)
        ereport(FATAL, (errmsg("pg_ingest worker slot %d out of range", idx)));
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    WorkerSlot *w = &shared->workers[idx];
    bool other = w->state == kSlotRunning && w->pid != 0 && w->pid != MyProcPid && w->dboid == dboid;
    // After a crash-restart every slot is free: a backend may have started a new worker for this
    // database in another slot before the postmaster restarted us. No more workers per database
    // than ingest.workers_per_database (they would share its lanes; the extra ones are not needed).
    int others = 0;
    for (int i = 0; i < shared->nworkers; i++)
        others += i != idx && shared->workers[i].state != kSlotFree && shared->workers[i].dboid == dboid;
    other = other || others >= guc_workers_per_database;
    if (other) {
        // The slot that was reserved for us (not one another worker runs in) is given up, with
        // any lanes it kept: the database's other workers take them.
        if (w->state == kSlotStarting && w->dboid == dboid)
            set_slot_state(w, kSlotFree, InvalidOid);
        LWLockRelease(shared->lock);
        ereport(LOG, (errmsg("pg_ingest worker for database %u already running", dboid)));
        proc_exit(0);
    }
    set_slot_state(w, kSlotRunning, dboid); // from Free: shared memory was reinitialized after a crash
    claimed_slot = w;
    LWLockRelease(shared->lock);
    before_shmem_exit(release_slot, 0);
    return w;
}

} // namespace pg_ingest
