// worker_slots.hpp — the worker slots in shared memory: which database each worker serves, and
// starting or waking it (worker_slots.cpp).
#pragma once

#include "shmem.hpp"

namespace pg_ingest {

// Called by backends.
WorkerSlot *find_worker(Oid dboid); // the slot serving dboid, or nullptr
void ensure_worker(Oid dboid);      // before handing rows over: a worker exists, or an error
void notify_worker(Oid dboid);      // after publishing: wake (or start) it; cannot fail

} // namespace pg_ingest
