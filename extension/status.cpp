// status.cpp — what ingest_status, ingest_ring and ingest_reset_stats() show.
#include "pg_guard.hpp"
#include "shmem.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

using namespace pg_ingest;

static Datum time_or_null(int64_t t, bool *isnull) {
    *isnull = (t == 0);
    return TimestampTzGetDatum(t);
}

// ingest_table_stats(): one row per (database, target table) seen since the server started.
// An error message may quote row data (e.g. a duplicate key): like pg_stat_activity's query, it
// is shown only to roles that may SELECT the table (tables of the current database only), or
// that have the privileges of pg_read_all_stats; others see '<insufficient privilege>'.
PGI_FUNCTION(pg_ingest_table_stats) {
    return pg_guard([&]() -> Datum {
        shmem_require();
        ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
        InitMaterializedSRF(fcinfo, 0);
        Oid me = GetUserId();
        bool read_all = has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
        for (int i = 0; i < shared->ntables; i++) {
            TableStats *ts = &shared->tables[i];
            uint64_t key = ts->key.load(std::memory_order_acquire);
            if (key == 0 || key == kStatsTombstone)
                continue;
            bool may_read_error = read_all;
            if (!may_read_error && (Oid)(key >> 32) == MyDatabaseId) {
                bool missing = false;
                may_read_error =
                    pg_class_aclcheck_ext((Oid)(key & 0xffffffff), me, ACL_SELECT, &missing) == ACLCHECK_OK &&
                    !missing;
            }
            Datum v[14];
            bool n[14] = {false};
            uint64_t enq = ts->rows_enqueued.load(), com = ts->rows_committed.load(),
                     fail = ts->rows_failed.load(), disc = ts->rows_discarded.load(),
                     batches = ts->batches.load();
            v[0] = ObjectIdGetDatum((Oid)(key >> 32));
            v[1] = ObjectIdGetDatum((Oid)(key & 0xffffffff));
            v[2] = Int64GetDatum((int64)enq);
            v[3] = Int64GetDatum((int64)ts->bytes_enqueued.load());
            v[4] = Int64GetDatum((int64)com);
            v[5] = Int64GetDatum((int64)fail);
            v[6] = Int64GetDatum((int64)disc);
            v[7] = Int64GetDatum((int64)batches);
            v[8] = Int64GetDatum((int64)ts->retries.load());
            uint64_t done = com + fail + disc;
            v[9] = Int64GetDatum(enq > done ? (int64)(enq - done) : 0);
            v[10] = time_or_null(ts->oldest_queued_at.load(), &n[10]);
            LWLockAcquire(shared->stats_lock, LW_SHARED);
            n[11] = ts->last_error[0] == '\0';
            v[11] = n[11] ? (Datum)0
                          : CStringGetTextDatum(may_read_error ? ts->last_error : "<insufficient privilege>");
            LWLockRelease(shared->stats_lock);
            v[12] = time_or_null(ts->last_error_time.load(), &n[12]);
            v[13] = time_or_null(ts->last_commit_time.load(), &n[13]);
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
        }
        return (Datum)0;
    });
}

// ingest_ring_stats(): one row about the ring and the workers.
PGI_FUNCTION(pg_ingest_ring_stats) {
    return pg_guard([&]() -> Datum {
        shmem_require();
        TupleDesc desc;
        if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
            ereport(ERROR, (errmsg("return type must be a row type")));
        Ring *r = shared->ring;
        int running = 0;
        LWLockAcquire(shared->lock, LW_SHARED);
        for (int i = 0; i < shared->nworkers; i++)
            running += shared->workers[i].state == kSlotRunning;
        LWLockRelease(shared->lock);
        Datum v[6];
        bool n[6] = {false};
        v[0] = Int64GetDatum((int64)r->capacity);
        v[1] = Int64GetDatum((int64)r->used());
        v[2] = Int64GetDatum((int64)r->head.load());
        v[3] = Int64GetDatum((int64)r->tail.load());
        v[4] = Int32GetDatum(running);
        v[5] = TimestampTzGetDatum(shared->stats_reset.load());
        return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), v, n));
    });
}

// ingest_reset_stats(): zeroes the counters (not what is queued).
PGI_FUNCTION(pg_ingest_reset_stats) {
    return pg_guard([&]() -> Datum {
        shmem_require();
        LWLockAcquire(shared->stats_lock, LW_EXCLUSIVE);
        for (int i = 0; i < shared->ntables; i++) {
            TableStats *ts = &shared->tables[i];
            // rows_enqueued keeps what is still queued, so rows_queued stays right.
            uint64_t done = ts->rows_committed.load() + ts->rows_failed.load() + ts->rows_discarded.load();
            uint64_t enq = ts->rows_enqueued.load();
            ts->rows_enqueued.store(enq > done ? enq - done : 0);
            ts->bytes_enqueued.store(0);
            ts->rows_committed.store(0);
            ts->rows_failed.store(0);
            ts->rows_discarded.store(0);
            ts->batches.store(0);
            ts->retries.store(0);
            ts->last_error[0] = '\0';
            ts->last_error_time.store(0);
            ts->last_commit_time.store(0);
        }
        shared->stats_reset.store(GetCurrentTimestamp());
        LWLockRelease(shared->stats_lock);
        PG_RETURN_VOID();
    });
}

// ingest_ticket_queued(ticket): whether an envelope holding the ticket is in the ring, not yet
// handled. Holds the consumer lock so the tail cannot move (and no header be reused) meanwhile.
// Answers only about tickets of roles whose privileges the caller has, or to pg_read_all_stats:
// for any other ticket it says false, as for one that does not exist. Privileges are checked
// after the lock is released (they may read the catalog).
PGI_FUNCTION(pg_ingest_ticket_queued) {
    return pg_guard([&]() -> Datum {
        shmem_require();
        uint64_t ticket = (uint64_t)PG_GETARG_INT64(0);
        Ring *r = shared->ring;
        bool found = false;
        Oid owner = InvalidOid;
        LWLockAcquire(shared->lock, LW_SHARED);
        for (RingCursor c(r, r->tail.load(std::memory_order_acquire)); c.valid() && !found; c.next()) {
            if (c.state() != kReady)
                continue;
            EnvelopeHeader *env = envelope_of(r, c.pos());
            EntryHeader *e = first_entry(r, c.pos());
            for (uint32_t i = 0; i < env->nentries && !found; i++, e = next_entry(e))
                if (e->ticket == ticket) {
                    found = true;
                    owner = e->roleid;
                }
        }
        LWLockRelease(shared->lock);
        if (found) {
            Oid me = GetUserId();
            found = has_privs_of_role(me, owner) || has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
        }
        PG_RETURN_BOOL(found);
    });
}
