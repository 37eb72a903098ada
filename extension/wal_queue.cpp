// wal_queue.cpp — the WAL-backed copy of the queue, for ingest.ack = logged and queued, and for
// every envelope handed over by a transaction that has an xid (so that it is all-or-nothing with
// that transaction's own writes across a crash).
//
// Each such envelope is also inserted as one row into ingest_queue (id, boot, enqueued_at,
// nentries, entries bytea) in the enqueuing (sub)transaction: the heap insert is WAL-logged,
// replicated to standbys, checkpointed and recovered by PostgreSQL itself, and commits or aborts
// with the transaction. The worker deletes the row in the transaction that inserts the rows, so
// after any crash the table holds exactly the envelopes of committed transactions that no worker
// committed. `boot` names the ring the row was written under (Shared::boot, random per shared
// memory initialisation): rows of another boot are not in this ring, and the worker copies them
// back into it (recover_logged). The launcher starts a worker in every database at server start
// and after promotion, so that happens without a new enqueue.
#include "wal_queue.hpp"

#include "ledger.hpp"
#include "shmem.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/xlog.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "storage/bufmgr.h"
#include "catalog/dependency.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include <algorithm>
#include <vector>

extern "C" PGDLLEXPORT void pg_ingest_launcher_main(Datum arg);

namespace pg_ingest {

// Columns of ingest_queue (pg_ingest--0.2.0--0.3.0.sql) and their types.
enum QueueColumn {
    kQId = 1,
    kQBoot,
    kQSysid,
    kQDatoid,
    kQEnqueuedAt,
    kQNentries,
    kQEntries,
    kQNatts = kQEntries
};
static const Oid kQueueTypes[kQNatts] = {INT8OID,        INT8OID, INT8OID, OIDOID,
                                         TIMESTAMPTZOID, INT4OID, BYTEAOID};

// Only pg_ingest's own table, with exactly our layout: a table some role created under that name
// in the extension's schema of a database not yet updated to 0.3.0 must never be written to or
// read from (it would receive everyone's rows, and recovery would insert what it holds).
static bool is_our_queue(Oid relid) {
    if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
        return false;
    Oid ext = get_extension_oid("pg_ingest", true);
    if (!OidIsValid(ext) || getExtensionOfObject(RelationRelationId, relid) != ext)
        return false;
    Relation rel = table_open(relid, AccessShareLock);
    TupleDesc d = RelationGetDescr(rel);
    bool ok = d->natts == kQNatts && rel->rd_rel->relam == HEAP_TABLE_AM_OID;
    for (int i = 0; ok && i < kQNatts; i++)
        ok = !TupleDescAttr(d, i)->attisdropped && TupleDescAttr(d, i)->atttypid == kQueueTypes[i];
    table_close(rel, AccessShareLock);
    return ok;
}

static Oid cached_queue = InvalidOid;
static bool queue_looked_up = false;

static void forget_queue(Datum, Oid relid) {
    if (relid == InvalidOid || relid == cached_queue) {
        cached_queue = InvalidOid;
        queue_looked_up = false;
    }
}

Oid queue_relid() {
    static bool callback = false;
    if (!callback) {
        CacheRegisterRelcacheCallback(forget_queue, (Datum)0);
        callback = true;
    }
    if (!queue_looked_up) {
        Oid nsp = extension_schema();
        cached_queue = OidIsValid(nsp) ? get_relname_relid("ingest_queue", nsp) : InvalidOid;
        if (!is_our_queue(cached_queue))
            cached_queue = InvalidOid;
        // Found nothing: look again next time (the extension may be created or updated meanwhile).
        queue_looked_up = OidIsValid(cached_queue);
    }
    return cached_queue;
}

void log_envelope(Oid relid, const char *entries, uint64 len, EnvelopeHeader *env) {
    Relation rel = table_open(relid, RowExclusiveLock);
    bytea *b = (bytea *)palloc(VARHDRSZ + len);
    SET_VARSIZE(b, VARHDRSZ + len);
    memcpy(VARDATA(b), entries, len);
    Datum values[kQNatts];
    bool nulls[kQNatts] = {false, false, false, false, false, false, false};
    uint64 id = shared->next_ticket.fetch_add(1, std::memory_order_relaxed);
    values[kQId - 1] = Int64GetDatum((int64)id);
    values[kQBoot - 1] = Int64GetDatum((int64)shared->boot);
    values[kQSysid - 1] = Int64GetDatum((int64)GetSystemIdentifier());
    values[kQDatoid - 1] = ObjectIdGetDatum(MyDatabaseId);
    values[kQEnqueuedAt - 1] = TimestampTzGetDatum(env->enqueued_at);
    values[kQNentries - 1] = Int32GetDatum((int32)env->nentries);
    values[kQEntries - 1] = PointerGetDatum(b);
    HeapTuple tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
    // The table has no index, trigger or policy: a plain heap insert (it assigns an xid).
    simple_heap_insert(rel, tup);
    env->queue_id = id;
    env->queue_block = ItemPointerGetBlockNumber(&tup->t_self);
    env->queue_offset = ItemPointerGetOffsetNumber(&tup->t_self);
    heap_freetuple(tup);
    pfree(b);
    table_close(rel, NoLock);
}

bool queue_has_rows(Oid dropped) {
    return pg_guard([&] {
        Oid relid = queue_relid();
        if (!OidIsValid(relid) || relid != dropped)
            return false;
        Relation rel = table_open(relid, AccessShareLock);
        Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
        TableScanDesc scan = table_beginscan(rel, snap, 0, nullptr);
        bool any = heap_getnext(scan, ForwardScanDirection) != nullptr;
        table_endscan(scan);
        UnregisterSnapshot(snap);
        table_close(rel, AccessShareLock);
        return any;
    });
}

// ---------------------------------------------------------------------------------------------
// The worker.

// Deletes the row of one logged envelope by tuple id (checking its id: a tuple id may be reused
// after vacuum, and be past the end of the file after VACUUM FULL or a truncation). Returns
// false when no row at that tuple id carries the id.
static bool delete_by_tid(Relation rel, Snapshot snap, const EnvelopeHeader *env) {
    if (env->queue_block >= RelationGetNumberOfBlocks(rel))
        return false;
    HeapTupleData tuple;
    ItemPointerSet(&tuple.t_self, env->queue_block, env->queue_offset);
    Buffer buf;
    bool match = false;
    if (heap_fetch(rel, snap, &tuple, &buf, false)) {
        bool isnull;
        Datum id = heap_getattr(&tuple, kQId, RelationGetDescr(rel), &isnull);
        match = !isnull && (uint64)DatumGetInt64(id) == env->queue_id;
        ReleaseBuffer(buf);
    }
    if (match)
        simple_heap_delete(rel, &tuple.t_self);
    return match;
}

// The slow way, when the tuple id did not match (the table was rewritten): by id, a scan.
static bool delete_by_id(Oid relid, uint64 id) {
    SPI_connect();
    const char *sql =
        psprintf("DELETE FROM %s WHERE id OPERATOR(pg_catalog.=) $1",
                 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), "ingest_queue"));
    Oid types[1] = {INT8OID};
    Datum args[1] = {Int64GetDatum((int64)id)};
    if (SPI_execute_with_args(sql, 1, types, args, nullptr, false, 0) != SPI_OK_DELETE)
        ereport(ERROR, (errmsg("pg_ingest: could not delete from ingest_queue")));
    bool found = SPI_processed > 0;
    SPI_finish();
    return found;
}

std::vector<uint64_t> consume_logged(const std::vector<uint64_t> &envelopes) {
    std::vector<uint64_t> gone;
    bool any = false;
    for (uint64_t pos : envelopes)
        any |= envelope_of(shared->ring, pos)->queue_id != 0;
    if (!any)
        return gone;
    std::vector<uint64_t> seen; // queue ids consumed in this batch: a second copy is a duplicate
    pg_guard([&] {
        Oid relid = queue_relid();
        if (!OidIsValid(relid))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                            errmsg("pg_ingest: ingest_queue is missing while logged rows are queued")));
        Relation rel = table_open(relid, RowExclusiveLock);
        // A snapshot taken now: every enqueuing transaction of the batch has ended (committed).
        Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
        for (uint64_t pos : envelopes) {
            EnvelopeHeader *env = envelope_of(shared->ring, pos);
            if (env->queue_id == 0)
                continue;
            if (std::find(seen.begin(), seen.end(), env->queue_id) != seen.end()) {
                gone.push_back(pos);
                continue;
            }
            seen.push_back(env->queue_id);
            if (!delete_by_tid(rel, snap, env) && !delete_by_id(relid, env->queue_id))
                gone.push_back(pos);
        }
        UnregisterSnapshot(snap);
        table_close(rel, NoLock);
    });
    return gone;
}

// Copies one recovered envelope into the ring. Returns false when the ring has no room now.
static bool publish_recovered(uint64 id, ItemPointer tid, int32 nentries, TimestampTz at, const char *entries,
                              uint64 len) {
    Ring *ring = shared->ring;
    uint64 total = kEnvelopeOverhead + len;
    // Leave the headroom that backends leave, for rows triggers enqueue inside the worker.
    uint64 headroom = Min(ring->capacity / 16, (uint64)4 * 1024 * 1024);
    uint64 pos;
    if (ring->used() + total + headroom > ring->capacity || !ring->reserve(total, &pos))
        return false;
    // From here to publish() nothing can fail.
    EnvelopeHeader *env = envelope_of(ring, pos);
    env->dboid = MyDatabaseId;
    env->xid = InvalidTransactionId; // its transaction committed before the crash
    env->waiter = -1;
    env->waiter_gen = 0;
    env->enqueued_at = at;
    env->nentries = (uint32)nentries;
    env->queue_id = id;
    env->queue_block = ItemPointerGetBlockNumber(tid);
    env->queue_offset = ItemPointerGetOffsetNumber(tid);
    env->lane_key = 0; // recovered in their logged order, in one lane
    memcpy(first_entry(ring, pos), entries, len);
    ring->publish(pos, total);
    EntryHeader *e = first_entry(ring, pos);
    for (int32 i = 0; i < nentries; i++, e = next_entry(e)) {
        TableStats *ts = table_stats(MyDatabaseId, e->reloid, true);
        if (ts) {
            ts->rows_enqueued.fetch_add(e->nrows, std::memory_order_relaxed);
            ts->bytes_enqueued.fetch_add(e->data_len, std::memory_order_relaxed);
        }
    }
    return true;
}

// Whether len bytes hold exactly n entries whose lengths and parts add up (recovery reads what
// an earlier server wrote; a row that does not is never handed to the insert path).
static bool entries_well_formed(const char *p, uint64 len, int32 n) {
    uint64 off = 0;
    for (int32 i = 0; i < n; i++) {
        if (off + sizeof(EntryHeader) > len)
            return false;
        const EntryHeader *e = reinterpret_cast<const EntryHeader *>(p + off);
        if ((e->flags & kEntryBinary) && e->natts == 0)
            return false;
        uint64 need =
            entry_size(e->natts, e->producer_len, e->settings_len, (uint64)e->data_len + entry_types_len(e));
        if (e->len != need || e->len % kAlign != 0 || off + e->len > len)
            return false;
        off += e->len;
    }
    return n > 0 && off == len;
}

bool recover_logged(uint64_t *after_id, uint64_t *recovered) {
    return pg_guard([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        bool more = false;
        Oid relid = queue_relid();
        if (OidIsValid(relid)) {
            SPI_connect();
            // Only this cluster's (a physical standby shares the system identifier; a logical
            // subscriber or a pg_upgrade does not) and this database's (CREATE DATABASE ...
            // TEMPLATE copies the table) rows of an earlier ring.
            const char *sql = psprintf(
                "SELECT ctid, id, nentries, enqueued_at, entries FROM %s "
                "WHERE boot OPERATOR(pg_catalog.<>) $1 AND id OPERATOR(pg_catalog.>) $2 "
                "AND sysid OPERATOR(pg_catalog.=) $3 AND datoid OPERATOR(pg_catalog.=) $4 ORDER BY id LIMIT "
                "64",
                quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), "ingest_queue"));
            Oid types[4] = {INT8OID, INT8OID, INT8OID, OIDOID};
            Datum args[4] = {Int64GetDatum((int64)shared->boot), Int64GetDatum((int64)*after_id),
                             Int64GetDatum((int64)GetSystemIdentifier()), ObjectIdGetDatum(MyDatabaseId)};
            for (;;) {
                if (SPI_execute_with_args(sql, 4, types, args, nullptr, true, 0) != SPI_OK_SELECT)
                    ereport(ERROR, (errmsg("pg_ingest: could not read ingest_queue")));
                uint64 n = SPI_processed;
                bool full = false;
                for (uint64 i = 0; i < n && !full; i++) {
                    HeapTuple t = SPI_tuptable->vals[i];
                    TupleDesc d = SPI_tuptable->tupdesc;
                    bool isnull;
                    ItemPointer tid = (ItemPointer)DatumGetPointer(SPI_getbinval(t, d, 1, &isnull));
                    uint64 id = (uint64)DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
                    int32 nentries = DatumGetInt32(SPI_getbinval(t, d, 3, &isnull));
                    TimestampTz at = DatumGetTimestampTz(SPI_getbinval(t, d, 4, &isnull));
                    bytea *entries = DatumGetByteaPP(SPI_getbinval(t, d, 5, &isnull)); // detoasted
                    if (kEnvelopeOverhead + VARSIZE_ANY_EXHDR(entries) > shared->ring->capacity / 4 * 3) {
                        ereport(
                            WARNING,
                            (errmsg("pg_ingest: ingest_queue row %llu (%llu bytes) does not fit in the "
                                    "ring; left in place",
                                    (unsigned long long)id, (unsigned long long)VARSIZE_ANY_EXHDR(entries)),
                             errhint("Raise ingest.ring_size to what it was when it was enqueued.")));
                        *after_id = id;
                        continue;
                    }
                    if (!entries_well_formed(VARDATA_ANY(entries), VARSIZE_ANY_EXHDR(entries), nentries)) {
                        ereport(WARNING,
                                (errmsg("pg_ingest: ingest_queue row %llu is malformed; left in place",
                                        (unsigned long long)id)));
                        *after_id = id;
                        continue;
                    }
                    if (!publish_recovered(id, tid, nentries, at, VARDATA_ANY(entries),
                                           VARSIZE_ANY_EXHDR(entries))) {
                        full = true;
                        break;
                    }
                    *after_id = id;
                    (*recovered)++;
                }
                if (full || n == 0) {
                    more = full;
                    break;
                }
                args[1] = Int64GetDatum((int64)*after_id);
            }
            SPI_finish();
        }
        PopActiveSnapshot();
        CommitTransactionCommand();
        return more;
    });
}

// ---------------------------------------------------------------------------------------------
// The launcher.

void register_launcher() {
    BackgroundWorker bgw;
    memset(&bgw, 0, sizeof(bgw));
    bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    bgw.bgw_start_time = BgWorkerStart_RecoveryFinished; // on a standby: once promoted
    bgw.bgw_restart_time = 10;                           // runs again after a crash-restart
    strlcpy(bgw.bgw_library_name, "pg_ingest", BGW_MAXLEN);
    strlcpy(bgw.bgw_function_name, "pg_ingest_launcher_main", BGW_MAXLEN);
    strlcpy(bgw.bgw_name, "pg_ingest launcher", BGW_MAXLEN);
    strlcpy(bgw.bgw_type, "pg_ingest launcher", BGW_MAXLEN);
    RegisterBackgroundWorker(&bgw);
}

static std::vector<Oid> connectable_databases() {
    std::vector<Oid> dbs;
    pg_guard([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        Relation rel = table_open(DatabaseRelationId, AccessShareLock);
        TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
            Form_pg_database db = (Form_pg_database)GETSTRUCT(tup);
            if (db->datallowconn && !db->datistemplate && db->datconnlimit != DATCONNLIMIT_INVALID_DB)
                dbs.push_back(db->oid);
        }
        table_endscan(scan);
        table_close(rel, AccessShareLock);
        CommitTransactionCommand();
    });
    return dbs;
}

static void launcher_sleep(long ms) {
    pg_guard([&] {
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        // Barriers (DROP DATABASE waits for every process to absorb one) and reloads.
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
    });
}

// One database after the other, so the launcher never holds more than one worker slot: start a
// probing worker (it exits at once when the extension is absent or nothing is queued) and wait
// until it has copied the recovered envelopes into the ring (or exited).
// Returns the databases it could not get a worker slot for (the caller tries them again later).
static std::vector<Oid> launch_all(const std::vector<Oid> &dbs) {
    std::vector<Oid> skipped;
    for (Oid db : dbs) {
        if (ShutdownRequestPending)
            return skipped;
        TimestampTz deadline = GetCurrentTimestamp() + 60 * USECS_PER_SEC;
        bool started = false;
        while (!started && GetCurrentTimestamp() < deadline && !ShutdownRequestPending) {
            started = start_probe_worker(db);
            if (!started)
                launcher_sleep(1000); // every slot busy: wait for one
        }
        if (!started) {
            ereport(
                LOG,
                (errmsg("pg_ingest launcher: no worker slot for database %u now; trying again in a minute",
                        db)));
            skipped.push_back(db);
            continue;
        }
        while (!probe_finished(db) && GetCurrentTimestamp() < deadline && !ShutdownRequestPending)
            launcher_sleep(100);
    }
    return skipped;
}

} // namespace pg_ingest

using namespace pg_ingest;

void pg_ingest_launcher_main(Datum) {
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0); // shared catalogs only
    pgstat_report_appname("pg_ingest launcher");
    const char *msg = nullptr;
    std::optional<PgError> pg_error;
    try {
        std::vector<Oid> left = launch_all(connectable_databases());
        // Then only the databases that found no slot, every minute; after that nothing until the
        // next start (the postmaster restarts us after a crash).
        while (!ShutdownRequestPending) {
            launcher_sleep(60 * 1000);
            if (!left.empty() && !ShutdownRequestPending)
                left = launch_all(left);
        }
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    }
    if (pg_error)
        rethrow_pg_error(pg_error);
    if (msg)
        ereport(ERROR, (errmsg("pg_ingest launcher failed: %s", msg)));
    // Code 1: after pg_terminate_backend the postmaster starts it again (code 0 would make it
    // forget a static worker until the next server start); at shutdown nothing restarts anyway.
    proc_exit(1);
}
