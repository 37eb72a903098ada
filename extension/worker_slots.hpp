// worker_slots.hpp — the worker slots in shared memory: which database each worker serves, and
// starting or waking it (worker_slots.cpp).
#pragma once

#include "shmem.hpp"

#include <cstdint>

namespace pg_ingest {

// True in a pg_ingest worker process: code it runs on a role's behalf (a trigger that enqueues)
// must never wait for a worker.
extern bool am_ingest_worker;

// Called by backends.
WorkerSlot *find_worker(Oid dboid); // a slot serving dboid, or nullptr
void ensure_worker(Oid dboid);      // before handing rows over: a worker exists, or an error
void notify_worker(Oid dboid,
                   int lane); // after publishing into lane: wake (or start) its worker; cannot fail
void wake_workers(Oid dboid); // a worker may wait for this backend's decision: wake them all
// The lowest done_pos of dboid's workers (UINT64_MAX: none), and the slot that has it.
uint64_t db_done_pos(Oid dboid, WorkerSlot **slowest);
uint64_t db_commit_lsn(Oid dboid); // the latest commit of dboid's workers

// Called by the launcher (wal_queue.cpp): makes sure dboid has a worker, starting one that exits
// as soon as it has nothing to do; false when no slot is free. probe_finished: that worker has
// copied the database's logged envelopes from before the last restart into the ring (or is gone).
bool start_probe_worker(Oid dboid);
bool probe_finished(Oid dboid);

// Called by the worker of slot idx.
// Before connecting: after repeated failed starts (e.g. its database was dropped), or when the
// slot serves another database now, the worker gives up (frees the slot if it is its own).
bool worker_gives_up(int idx, Oid dboid);
// After connecting: marks the slot running (or exits if another worker serves the database);
// at exit the slot is kept reserved for the restart.
WorkerSlot *claim_slot(int idx, Oid dboid);
// Idle: gives the slot and its lanes up unless something of its lanes was handed over meanwhile.
bool try_idle_exit(WorkerSlot *slot, Oid dboid);

// Lanes (record.hpp). A worker drains the envelopes of the lanes its slot owns, and of a lane
// nobody owns once it has taken it (adopt_lane: false if another worker was quicker; true: its
// next scan starts at the tail). After a batch it publishes how far it got (publish_scan), which
// counts only if its lanes did not change since it read them (lanes_seen). With a backlog it
// shares (share_lanes): gives every second lane of those that had work (busy) to a running worker
// of the database that has none (true), or starts one while the database has fewer than
// max_workers (may_start); nothing while fewer than two of its lanes have work.
// wake: set the owner's latch (a record of its lane has waited long: a producer may have woken
// the lane's previous owner just as the lane changed hands).
bool lane_owned(Oid dboid, int lane, bool wake = false);
bool adopt_lane(WorkerSlot *slot, Oid dboid, int lane);
void publish_scan(WorkerSlot *slot, uint64_t lanes_seen, uint64_t low);
bool share_lanes(WorkerSlot *slot, Oid dboid, int max_workers, bool may_start, uint32_t busy);
bool other_workers(Oid dboid); // whether dboid has more workers than the caller

} // namespace pg_ingest
