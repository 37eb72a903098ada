// drop_guard.cpp — DROP EXTENSION pg_ingest refuses while this database has rows queued: they
// would have nowhere to go (the dead-letter table goes with the extension). The caller is told to
// run ingest_flush() first. An object-access hook sees the extension's drop, whatever command
// causes it (DROP EXTENSION, DROP SCHEMA ... CASCADE, DROP OWNED).
#include "drop_guard.hpp"

#include "shmem.hpp"
#include "txn_buffer.hpp"
#include "wal_queue.hpp"

extern "C" {
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
}

namespace pg_ingest {

static object_access_hook_type prev_object_access_hook = nullptr;

// Rows of this database in the ring not yet inserted or dead-lettered. Holds the consumer lock so
// the tail cannot move (and no header be reused) meanwhile. Cannot throw.
static uint64 queued_rows_here() {
    Ring *r = shared->ring;
    uint64 rows = 0;
    LWLockAcquire(shared->lock, LW_SHARED);
    for (RingCursor c(r, r->tail.load(std::memory_order_acquire)); c.valid(); c.next()) {
        if (c.state() != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(r, c.pos());
        if (env->dboid != MyDatabaseId)
            continue;
        EntryHeader *e = first_entry(r, c.pos());
        for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e))
            rows += e->nrows;
    }
    LWLockRelease(shared->lock);
    return rows;
}

static void refuse_while_queued();

// queue_has_rows() for this C hook: its C++ objects live and die in this frame, so the hook's own
// ereport(ERROR) below crosses none.
static bool queue_holds_envelopes(Oid relid) {
    std::optional<PgError> err;
    bool refuse = false;
    try {
        refuse = queue_has_rows(relid);
    } catch (const PgError &e) {
        err = e;
    }
    if (err)
        rethrow_pg_error(err);
    return refuse;
}

// A C hook: only PostgreSQL calls and code that cannot throw.
static void on_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg) {
    if (prev_object_access_hook)
        prev_object_access_hook(access, classId, objectId, subId, arg);
    if (access != OAT_DROP || !shared)
        return;
    // PostgreSQL drops an extension's member tables before the extension itself: ingest_queue
    // with envelopes left to recover (after a crash) must stop the drop here.
    if (classId == RelationRelationId && subId == 0) {
        if (!queue_holds_envelopes(objectId))
            return;
        refuse_while_queued(); // rows in the ring come with rows in the table: say so first
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_IN_USE),
                 errmsg("cannot drop ingest_queue while it holds envelopes not yet inserted"),
                 errdetail("They were logged before a crash or failover and are being inserted again."),
                 errhint("Wait until ingest_status shows logged_envelopes = 0, then try again.")));
    }
    if (classId != ExtensionRelationId)
        return;
    char *name = get_extension_name(objectId);
    if (!name || strcmp(name, "pg_ingest") != 0)
        return;
    if (txn_has_rows())
        ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                        errmsg("cannot drop extension pg_ingest in a transaction that enqueued rows"),
                        errhint("Commit or roll back the rows first.")));
    refuse_while_queued();
}

// Errors when this database has rows in the ring.
static void refuse_while_queued() {
    uint64 rows = queued_rows_here();
    if (rows > 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                        errmsg("cannot drop extension pg_ingest while %llu rows are queued in this database",
                               (unsigned long long)rows),
                        errdetail("Their dead letters, tickets and exactly-once records would go with it."),
                        errhint("Run SELECT ingest_flush(); and try again.")));
}

void install_drop_guard() {
    prev_object_access_hook = object_access_hook;
    object_access_hook = on_object_access;
}

} // namespace pg_ingest
