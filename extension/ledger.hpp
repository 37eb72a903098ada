// ledger.hpp — the worker's bookkeeping in the extension's tables (ledger.cpp): exactly-once
// records, the batch log behind ingest_ticket_status, dead letters, and their pruning.
#pragma once

#include "batch.hpp"

namespace pg_ingest {

// Inside the batch transaction: marks entries whose (producer_id, batch_seq) was committed
// before under another ticket as duplicates, records the new ones.
void mark_duplicates(WorkerBatch &b);
// Inside the batch transaction: one ingest_batch_log row with the batch's tickets.
void log_batch(const WorkerBatch &b);
// Inside the batch transaction: the group's rows that could not be inserted.
void store_dead_letters(const Group &g, const std::vector<DeadRow> &rows);
// Between batches, in a transaction of its own: drops records older than ingest.ticket_retention
// (every few minutes; a failure is only logged).
void prune_history();

// Whether the extension is (still) installed in this database; runs its own transaction.
bool extension_installed();
// Forgets the cached extension schema (after a failed batch: it may have been dropped or recreated).
void forget_extension_schema();

} // namespace pg_ingest
