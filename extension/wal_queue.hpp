// wal_queue.hpp — the WAL-backed copy of the queue (wal_queue.cpp): the table ingest_queue holds
// one row per logged envelope, written in the enqueuing transaction and deleted in the worker's
// transaction that inserts its rows. The ring stays the fast path; the table is read only to
// recover envelopes a crash or a failover took out of the ring.
#pragma once

#include "batch.hpp"

extern "C" {
#include "storage/itemptr.h"
}

namespace pg_ingest {

// --- Backends -------------------------------------------------------------------------------

// This database's ingest_queue, or InvalidOid (pg_ingest older than 0.3.0 has none). Cached,
// forgotten on any invalidation of the relation.
Oid queue_relid();

// Inserts one envelope (its entries: the bytes after EnvelopeHeader) into ingest_queue in the
// current (sub)transaction, so it commits or aborts with it, WAL-logged like any heap row.
// Fills env->queue_id and the tuple id. May fail (it is serialization, before the reservation).
void log_envelope(Oid relid, const char *entries, uint64 len, EnvelopeHeader *env);

// Whether `dropped` is this database's ingest_queue and holds an envelope (committed, not yet
// inserted): DROP EXTENSION checks it when it drops the table (drop_guard.cpp).
bool queue_has_rows(Oid dropped);

// --- The worker -----------------------------------------------------------------------------

// Inside the batch transaction, after every enqueuing transaction of the batch has committed:
// deletes the queue rows of the batch's logged envelopes. Returns the ring positions of those
// whose row is gone already (an envelope recovered twice: its rows are in the table already).
std::vector<uint64_t> consume_logged(const std::vector<uint64_t> &envelopes);

// Copies ingest_queue rows written under another ring (before a crash-restart, or on the primary
// this server was promoted from) into the ring, in id order after *after_id, as long as the ring
// has room. Runs its own transaction. Returns true while some are left for a later call.
bool recover_logged(uint64_t *after_id, uint64_t *recovered);

// The launcher (a static background worker): after every start of the server, and after
// promotion, starts a worker in each database so that recovered envelopes land without waiting
// for a new enqueue there.
void register_launcher();

} // namespace pg_ingest
