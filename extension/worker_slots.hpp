// worker_slots.hpp — the worker slots in shared memory: which database each worker serves, and
// starting or waking it (worker_slots.cpp).
#pragma once

#include "shmem.hpp"

namespace pg_ingest {

// True in a pg_ingest worker process: code it runs on a role's behalf (a trigger that enqueues)
// must never wait for a worker.
extern bool am_ingest_worker;

// Called by backends.
WorkerSlot *find_worker(Oid dboid); // the slot serving dboid, or nullptr
void ensure_worker(Oid dboid);      // before handing rows over: a worker exists, or an error
void notify_worker(Oid dboid);      // after publishing: wake (or start) it; cannot fail

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
// Idle: gives the slot up unless something of this database was handed over meanwhile.
bool try_idle_exit(WorkerSlot *slot, Oid dboid);

} // namespace pg_ingest
