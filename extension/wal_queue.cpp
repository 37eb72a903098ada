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
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "storage/bufmgr.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include <vector>

extern "C" PGDLLEXPORT void pg_ingest_launcher_main(Datum arg);

namespace pg_ingest {

// Columns of ingest_queue (pg_ingest--0.2.0--0.3.0.sql).
enum QueueColumn { kQId = 1, kQBoot, kQEnqueuedAt, kQNentries, kQEntries, kQNatts = kQEntries };

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
        // Found nothing: look again next time (the extension may be created or updated meanwhile).
        queue_looked_up = OidIsValid(cached_queue);
    }
    return cached_queue;
}

void log_envelope(Oid relid, const char *entries, uint64 len, EnvelopeHeader *env) {
    Relation rel = table_open(relid, RowExclusiveLock);
    if (RelationGetDescr(rel)->natts != kQNatts)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_ingest: ingest_queue does not have the expected layout")));
    bytea *b = (bytea *)palloc(VARHDRSZ + len);
    SET_VARSIZE(b, VARHDRSZ + len);
    memcpy(VARDATA(b), entries, len);
    Datum values[kQNatts];
    bool nulls[kQNatts] = {false, false, false, false, false};
    uint64 id = shared->next_ticket.fetch_add(1, std::memory_order_relaxed);
    values[kQId - 1] = Int64GetDatum((int64)id);
    values[kQBoot - 1] = Int64GetDatum((int64)shared->boot);
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

bool queue_has_rows() {
    return pg_guard([] {
        Oid relid = queue_relid();
        if (!OidIsValid(relid))
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

std::vector<uint64_t> consume_logged(const std::vector<uint64_t> &envelopes) {
    std::vector<uint64_t> gone;
    bool any = false;
    for (uint64_t pos : envelopes)
        any |= envelope_of(shared->ring, pos)->queue_id != 0;
    if (!any)
        return gone;
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
            else
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
    if (total > ring->capacity / 4 * 3)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("pg_ingest: a logged envelope of %llu bytes does not fit in the ring",
                               (unsigned long long)total),
                        errhint("Raise ingest.ring_size to what it was when the rows were enqueued.")));
    uint64 pos;
    if (ring->used() + total > ring->capacity || !ring->reserve(total, &pos))
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
    env->reserved = 0;
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

bool recover_logged(uint64_t *after_id, uint64_t *recovered) {
    return pg_guard([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        bool more = false;
        Oid relid = queue_relid();
        if (OidIsValid(relid)) {
            SPI_connect();
            const char *sql =
                psprintf("SELECT ctid, id, nentries, enqueued_at, entries FROM %s "
                         "WHERE boot <> $1 AND id > $2 ORDER BY id LIMIT 64",
                         quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), "ingest_queue"));
            Oid types[2] = {INT8OID, INT8OID};
            Datum args[2] = {Int64GetDatum((int64)shared->boot), Int64GetDatum((int64)*after_id)};
            for (;;) {
                if (SPI_execute_with_args(sql, 2, types, args, nullptr, true, 0) != SPI_OK_SELECT)
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
    bgw.bgw_restart_time = 10;                            // runs again after a crash-restart
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
            if (db->datallowconn && !db->datistemplate)
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
static void launch_all() {
    for (Oid db : connectable_databases()) {
        if (ShutdownRequestPending)
            return;
        TimestampTz deadline = GetCurrentTimestamp() + 60 * USECS_PER_SEC;
        bool started = false;
        while (!started && GetCurrentTimestamp() < deadline && !ShutdownRequestPending) {
            started = start_probe_worker(db);
            if (!started)
                launcher_sleep(1000); // every slot busy: wait for one
        }
        if (!started) {
            ereport(LOG, (errmsg("pg_ingest launcher: no worker slot for database %u; its logged rows are "
                                 "inserted when a worker next starts there",
                                 db)));
            continue;
        }
        while (!probe_finished(db) && GetCurrentTimestamp() < deadline && !ShutdownRequestPending)
            launcher_sleep(100);
    }
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
        launch_all();
        // Nothing more to do until the next start (the postmaster restarts us after a crash).
        while (!ShutdownRequestPending)
            launcher_sleep(60 * 1000);
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    }
    if (pg_error)
        rethrow_pg_error(pg_error);
    if (msg)
        ereport(ERROR, (errmsg("pg_ingest launcher failed: %s", msg)));
    proc_exit(0);
}
