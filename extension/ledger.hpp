// ledger.hpp — the worker's bookkeeping in the extension's tables (ledger.cpp): exactly-once
// records, the batch log behind ingest_ticket_status, dead letters, and their pruning. Since
// 0.2.0 all of them are scoped to the enqueuing role (role_oid).
#pragma once

#include "batch.hpp"

namespace pg_ingest {

// Inside the batch transaction: marks entries whose (role, producer_id, batch_seq) was committed
// before under another ticket as duplicates (a pre-0.2.0 key of role 0 matches every role),
// records the new ones.
void mark_duplicates(WorkerBatch &b);
// Inside the batch transaction: one ingest_batch_log row per enqueuing role with its tickets.
void log_batch(const WorkerBatch &b);
// Inside the batch transaction: the group's rows that could not be inserted, byte-exact (raw_data
// bytea; ingest_raw_text() renders them).
void store_dead_letters(const Group &g, const std::vector<DeadRow> &rows);
// Between batches, in a transaction of its own: drops records older than ingest.ticket_retention,
// dead letters older than ingest.dead_letter_retention, and frees the statistics slots of dropped
// tables (every few minutes, sooner when the slots are all taken; a failure is only logged).
void prune_history();

// The schema pg_ingest is installed in, or InvalidOid (catalog lookup; needs a transaction).
Oid extension_schema();
// Whether the extension is (still) installed in this database; runs its own transaction.
bool extension_installed();
// Forgets the cached extension schema (after a failed batch: it may have been dropped or recreated).
void forget_extension_schema();

} // namespace pg_ingest
