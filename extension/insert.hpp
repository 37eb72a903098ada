// insert.hpp — the insert path (insert.cpp): a group's rows into its table through COPY FROM,
// as the enqueuing role.
#pragma once

#include "batch.hpp"
#include "shmem.hpp"

namespace pg_ingest {

// Inside the batch transaction: inserts the group's rows (duplicates left out). A group that
// would fail every row alike (role or table dropped, INSERT revoked) is dead-lettered whole with
// the reason. Otherwise the group goes in one COPY, errors propagate as PgError; with
// isolate_bad_rows it is bisected in subtransactions instead and bad rows are dead-lettered.
void insert_group_rows(WorkerBatch &b, const Group &g, bool isolate_bad_rows);

// Ends a group's ingest.group_timeout; the batch's error path calls it after an error.
void end_group_timeout();

// Set while a role's code runs, and once its group is past ingest.group_timeout (read by the
// worker's SIGTERM handler: only then does a shutdown end the worker rather than let it drain).
extern volatile sig_atomic_t running_user_code;
extern volatile sig_atomic_t group_overdue;
// Set by the worker's SIGTERM handler.
extern volatile sig_atomic_t worker_shutdown_requested;
// Registers the group's overdue timeouts; once, in the worker, after connecting, with its slot
// (where a group that ignores its cancel is recorded before the worker ends itself).
void register_group_timeout(WorkerSlot *slot);
// Whether this batch met the group recorded in the slot (it was dead-lettered): the worker then
// clears the record after the batch committed.
bool poison_group_met();
void clear_poison_group();

} // namespace pg_ingest
