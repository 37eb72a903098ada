// enqueue.cpp — the producer side: ingest_enqueue*() serialize rows into a backend-local buffer;
// the transaction hands them to the ring when it commits (or earlier, tagged with its xid, when the
// buffer grows large); a rollback simply drops them. With ingest.wait_for_commit the commit waits
// until a worker has committed (or dead-lettered) the rows.
//
// Order on the hand-over path: serialize first (may fail), then reserve ring space (may wait or
// fail cleanly), then copy and publish (cannot fail).
#include "pg_guard.hpp"
#include "privilege.hpp"
#include "protocol.h"
#include "settings.hpp"
#include "shmem.hpp"
#include "txn_buffer.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
}

// SQLSTATE of the warning that a committing transaction's rows were dead-lettered (class 01,
// warning): PGI_SQLSTATE_ROWS_REJECTED in protocol.h, which clients match on.
#define ERRCODE_PGI_ROWS_REJECTED MAKE_SQLSTATE('0', '1', 'P', 'I', '1')
static_assert(sizeof(PGI_SQLSTATE_ROWS_REJECTED) == 6 && PGI_SQLSTATE_ROWS_REJECTED[2] == 'P' &&
                  PGI_SQLSTATE_ROWS_REJECTED[3] == 'I' && PGI_SQLSTATE_ROWS_REJECTED[4] == '1',
              "ERRCODE_PGI_ROWS_REJECTED must match protocol.h");

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// The backend-local buffer. Everything lives in PendingCxt (PostgreSQL memory), so a longjmp out
// of any PostgreSQL call leaves nothing to destroy.

struct Pending {
    Pending *next;
    Oid reloid;
    Oid roleid;
    int16 natts;
    int16 *attnums;
    uint64 ticket;
    uint32 first_row;
    uint32 nrows;
    SubTransactionId subid;
    StringInfoData data;
    char *producer; // exactly-once producer id, or nullptr
    int64 batch_seq;
};

static MemoryContext PendingCxt = nullptr;
static Pending *pending_head = nullptr;
static Pending **pending_tail = &pending_head;
static uint64 pending_bytes = 0;

// Ring positions this transaction handed over earlier (spills); the commit waits for them too.
static uint64 *spilled_pos = nullptr;
static int n_spilled = 0, max_spilled = 0;
static uint64 spilled_bytes = 0; // ring bytes those spills hold until this transaction ends

// What COMMIT must wait for after handing over (set in PRE_COMMIT, used in COMMIT).
static bool wait_after_commit = false;
// Set when the rows were handed over without an xid at pre-commit (the worker may have committed
// them already): a later failure of this transaction's commit can no longer withdraw them.
static bool handed_over_without_xid = false;
static uint64 last_envelope_pos = 0;
static uint64 wait_gen = 0;

static uint64 spill_threshold() {
    uint64 ring = (uint64)guc_ring_size_kb * 1024;
    return Min(ring / 4, (uint64)8 * 1024 * 1024);
}

static uint64 max_row_bytes() {
    uint64 limit = (uint64)guc_max_record_size_kb * 1024;
    uint64 fit = spill_threshold() - kEnvelopeOverhead - sizeof(EntryHeader) - 64 * 1024;
    return Min(limit, fit);
}

// ---------------------------------------------------------------------------------------------
// Target checks, done at enqueue time as the calling role.

struct Target {
    Oid reloid;
    Oid reltype;
    char relkind;
    const char *relname;
};

// Opens the target (kept locked AccessShare to the end of the transaction) and checks that it is
// something the worker can insert into on this role's behalf. Row-level security is applied by
// the worker, when it inserts as this role.
static Target open_target(FunctionCallInfo fcinfo, const int16 *attnums, int natts, bool check_priv = true) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("ingest target must not be NULL")));
    Oid reloid = PG_GETARG_OID(0);
    Relation rel = try_relation_open(reloid, AccessShareLock);
    if (!rel)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", reloid)));
    Target t;
    t.reloid = reloid;
    t.reltype = rel->rd_rel->reltype;
    t.relkind = rel->rd_rel->relkind;
    t.relname = pstrdup(RelationGetRelationName(rel));
    if (t.relkind != RELKIND_RELATION && t.relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("cannot enqueue rows into \"%s\"", t.relname),
                        errdetail("pg_ingest targets must be tables or partitioned tables.")));
    if (IsCatalogRelation(rel))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("cannot enqueue rows into system catalog \"%s\"", t.relname)));
    if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot enqueue rows into temporary table \"%s\"", t.relname),
                        errdetail("The ingest worker runs in its own session and cannot see it.")));
    if (check_priv)
        check_insert_privilege(rel, attnums, natts);
    relation_close(rel, NoLock);
    return t;
}

static int16 column_attnum(Oid reloid, const char *relname, const char *colname) {
    AttrNumber att = get_attnum(reloid, colname);
    if (att == InvalidAttrNumber)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of relation \"%s\" does not exist", colname, relname)));
    if (att < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
                        errmsg("cannot insert into system column \"%s\"", colname)));
    if (get_attgenerated(reloid, att))
        ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
                        errmsg("column \"%s\" is a generated column", colname),
                        errdetail("Generated columns cannot be used in COPY.")));
    return (int16)att;
}

// ---------------------------------------------------------------------------------------------
// Serialization to COPY text.

static void append_copy_escaped(StringInfo buf, const char *s, size_t len) {
    const char *start = s;
    const char *end = s + len;
    for (const char *p = s; p < end; p++) {
        char c = *p;
        const char *esc;
        switch (c) {
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: continue;
        }
        appendBinaryStringInfo(buf, start, (int)(p - start));
        appendBinaryStringInfo(buf, esc, 2);
        start = p + 1;
    }
    appendBinaryStringInfo(buf, start, (int)(end - start));
}

// Output functions depend on session settings (DateStyle, IntervalStyle, extra_float_digits,
// bytea_output); the worker parses in its own session. While serializing we pin the formats the
// worker reads back unambiguously and without loss, and restore the caller's afterwards (the
// destructor also runs when a PostgreSQL error comes back as a C++ exception).
struct StableFormats {
    int date_style = DateStyle, date_order = DateOrder, interval_style = IntervalStyle;
    int float_digits = extra_float_digits, bytea_out = bytea_output;
    StableFormats() {
        DateStyle = USE_ISO_DATES;
        DateOrder = DATEORDER_MDY;
        IntervalStyle = INTSTYLE_POSTGRES;
        extra_float_digits = 1;
        bytea_output = BYTEA_OUTPUT_HEX;
    }
    ~StableFormats() {
        DateStyle = date_style;
        DateOrder = date_order;
        IntervalStyle = interval_style;
        extra_float_digits = float_digits;
        bytea_output = bytea_out;
    }
};

// Output functions of a row type, cached per backend and refreshed when the type changes.
struct RowOutput {
    Oid typid;
    uint64 tupdesc_id;
    TupleDesc tupdesc;
    FmgrInfo *out;
};

static RowOutput *row_output(Oid typid) {
    static RowOutput cache = {InvalidOid, 0, nullptr, nullptr};
    TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_TUPDESC);
    if (!tc->tupDesc)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("type %s is not composite", format_type_be(typid))));
    if (cache.typid == typid && cache.tupdesc_id == tc->tupDesc_identifier)
        return &cache;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    if (cache.tupdesc)
        FreeTupleDesc(cache.tupdesc);
    if (cache.out)
        pfree(cache.out);
    cache.tupdesc = CreateTupleDescCopy(tc->tupDesc);
    cache.out = (FmgrInfo *)palloc0(sizeof(FmgrInfo) * Max(cache.tupdesc->natts, 1));
    for (int i = 0; i < cache.tupdesc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(cache.tupdesc, i);
        if (a->attisdropped)
            continue;
        Oid fn;
        bool varlena;
        getTypeOutputInfo(a->atttypid, &fn, &varlena);
        fmgr_info_cxt(fn, &cache.out[i], TopMemoryContext);
    }
    MemoryContextSwitchTo(old);
    cache.typid = typid;
    cache.tupdesc_id = tc->tupDesc_identifier;
    return &cache;
}

// Appends one composite value as a COPY text line (all non-dropped, non-generated columns).
static void append_composite_row(StringInfo buf, const Target &t, HeapTupleHeader td) {
    Oid typid = HeapTupleHeaderGetTypeId(td);
    if (typid != t.reltype)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("row type %s does not match target table \"%s\"", format_type_be(typid), t.relname),
                        errhint("Pass a row of the table's type, e.g. ROW(...)::%s.", t.relname)));
    RowOutput *ro = row_output(typid);
    TupleDesc desc = ro->tupdesc;
    HeapTupleData tuple;
    tuple.t_len = HeapTupleHeaderGetDatumLength(td);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = td;
    bool first = true;
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped || a->attgenerated)
            continue;
        if (!first)
            appendStringInfoChar(buf, '\t');
        first = false;
        bool isnull;
        Datum d = heap_getattr(&tuple, i + 1, desc, &isnull);
        if (isnull) {
            appendBinaryStringInfo(buf, "\\N", 2);
            continue;
        }
        char *s = OutputFunctionCall(&ro->out[i], d);
        append_copy_escaped(buf, s, strlen(s));
        pfree(s);
    }
    appendStringInfoChar(buf, '\n');
}

static void append_json_scalar(StringInfo buf, JsonbValue *v) {
    switch (v->type) {
    case jbvNull: appendBinaryStringInfo(buf, "\\N", 2); break;
    case jbvString: append_copy_escaped(buf, v->val.string.val, v->val.string.len); break;
    case jbvNumeric: {
        char *s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
        appendStringInfoString(buf, s);
        break;
    }
    case jbvBool: appendStringInfoString(buf, v->val.boolean ? "true" : "false"); break;
    case jbvBinary: {
        char *s = JsonbToCString(nullptr, v->val.binary.data, v->val.binary.len);
        append_copy_escaped(buf, s, strlen(s));
        break;
    }
    default: ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unexpected JSON value")));
    }
}

// ---------------------------------------------------------------------------------------------
// Tickets and the local buffer.

static uint64 new_ticket() { return shared->next_ticket.fetch_add(1, std::memory_order_relaxed); }

static Pending *new_pending(const Target &t, const int16 *attnums, int natts, uint64 ticket, uint32 first_row) {
    if (!PendingCxt)
        PendingCxt = AllocSetContextCreate(TopMemoryContext, "pg_ingest pending rows", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(PendingCxt);
    Pending *p = (Pending *)palloc0(sizeof(Pending));
    p->reloid = t.reloid;
    p->roleid = GetUserId();
    p->natts = (int16)natts;
    if (natts) {
        p->attnums = (int16 *)palloc(sizeof(int16) * natts);
        memcpy(p->attnums, attnums, sizeof(int16) * natts);
    }
    p->ticket = ticket;
    p->first_row = first_row;
    p->subid = GetCurrentSubTransactionId();
    initStringInfo(&p->data);
    MemoryContextSwitchTo(old);
    *pending_tail = p;
    pending_tail = &p->next;
    return p;
}

static void check_row_size(const Target &t, uint64 row_bytes) {
    if (row_bytes > max_row_bytes())
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("row for \"%s\" is too large for pg_ingest: %llu bytes", t.relname,
                               (unsigned long long)row_bytes),
                        errdetail("The limit is %llu bytes (ingest.max_record_size = %dkB, ingest.ring_size = %dkB).",
                                  (unsigned long long)max_row_bytes(), guc_max_record_size_kb, guc_ring_size_kb),
                        errhint("Raise ingest.max_record_size, or insert rows this large directly.")));
}

// Collects the rows of one call into Pending slices of bounded size. Each add_row() call appends
// exactly one line that the caller has already written into `scratch`.
struct SliceWriter {
    const Target *t;
    const int16 *attnums;
    int natts;
    uint64 ticket;
    const char *producer = nullptr; // exactly-once identity of a client batch, on every slice
    int64 batch_seq = 0;
    uint32 rows = 0;
    Pending *cur = nullptr;

    // Appends one row: n bytes at p, plus a newline when the bytes do not end in one.
    void add_row(const char *p, int n, bool add_newline);
    void add_row(StringInfo line) {
        add_row(line->data, line->len, false);
        resetStringInfo(line);
    }
};

static void maybe_spill();

void SliceWriter::add_row(const char *p, int n, bool add_newline) {
    int len = n + (add_newline ? 1 : 0);
    check_row_size(*t, (uint64)len);
    if (!cur || cur->data.len + (uint64)len > (uint64)guc_max_record_size_kb * 1024) {
        cur = new_pending(*t, attnums, natts, ticket, rows + 1);
        if (producer) {
            cur->producer = MemoryContextStrdup(PendingCxt, producer);
            cur->batch_seq = batch_seq;
        }
    }
    MemoryContext old = MemoryContextSwitchTo(PendingCxt);
    appendBinaryStringInfo(&cur->data, p, n);
    if (add_newline)
        appendStringInfoChar(&cur->data, '\n');
    MemoryContextSwitchTo(old);
    cur->nrows++;
    rows++;
    pending_bytes += len;
    if (pending_bytes >= spill_threshold()) {
        maybe_spill();
        cur = nullptr;
    }
}

// ---------------------------------------------------------------------------------------------
// Handing over to the ring.

static uint64 envelope_size(Pending *from, Pending *until) {
    uint64 size = kEnvelopeOverhead;
    for (Pending *p = from; p != until; p = p->next)
        size += entry_size(p->natts, p->producer ? strlen(p->producer) : 0, p->data.len);
    return size;
}

// Waits until `len` bytes can be reserved; errors after ingest.enqueue_timeout. Rows spilled
// earlier by this transaction stay in the ring until it commits, so a transaction whose rows do
// not fit in (most of) the ring could only wait for itself: it fails at once instead.
static uint64 reserve_or_wait(uint64 len) {
    Ring *ring = shared->ring;
    if (spilled_bytes + len > ring->capacity / 4 * 3)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("transaction enqueues more rows than the pg_ingest ring can hold until it commits"),
                        errdetail("It has handed over %llu bytes and needs %llu more; a transaction may hold at most "
                                  "3/4 of ingest.ring_size (%dkB).",
                                  (unsigned long long)spilled_bytes, (unsigned long long)len, guc_ring_size_kb),
                        errhint("Commit in smaller transactions, use COPY for very large loads, or raise "
                                "ingest.ring_size.")));
    uint64 pos;
    if (ring->reserve(len, &pos))
        return pos;
    TimestampTz start = GetCurrentTimestamp();
    pgstat_report_wait_start(PG_WAIT_EXTENSION);
    ConditionVariablePrepareToSleep(&shared->space_cv);
    for (;;) {
        if (ring->reserve(len, &pos))
            break;
        long waited = (long)((GetCurrentTimestamp() - start) / 1000);
        if (waited >= guc_enqueue_timeout_ms) {
            ConditionVariableCancelSleep();
            pgstat_report_wait_end();
            ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                            errmsg("pg_ingest ring is full"),
                            errdetail("No room for %llu bytes in the %dkB ring (ingest.ring_size) after waiting %d ms "
                                      "(ingest.enqueue_timeout); %llu bytes are queued.",
                                      (unsigned long long)len, guc_ring_size_kb, guc_enqueue_timeout_ms,
                                      (unsigned long long)ring->used()),
                            errhint("Check ingest_status for a stalled worker, or raise ingest.ring_size.")));
        }
        ConditionVariableTimedSleep(&shared->space_cv, Min(100, guc_enqueue_timeout_ms - waited), PG_WAIT_EXTENSION);
    }
    ConditionVariableCancelSleep();
    pgstat_report_wait_end();
    return pos;
}

// Copies the entries [from, until) into one envelope and publishes it. Returns its position.
// waiter/gen describe a backend that waits before committing (cancellable), or -1.
static uint64 hand_over(Pending *from, Pending *until, TransactionId xid, int waiter, uint64 gen) {
    ensure_worker(MyDatabaseId);
    uint64 len = envelope_size(from, until);
    uint64 pos = reserve_or_wait(len);

    // From here to publish() nothing can fail.
    Ring *ring = shared->ring;
    EnvelopeHeader *env = envelope_of(ring, pos);
    env->dboid = MyDatabaseId;
    env->xid = xid;
    env->waiter = waiter;
    env->waiter_gen = gen;
    env->enqueued_at = GetCurrentTimestamp();
    uint32 n = 0;
    EntryHeader *e = first_entry(ring, pos);
    for (Pending *p = from; p != until; p = p->next, n++) {
        uint32 plen = p->producer ? (uint32)strlen(p->producer) : 0;
        e->len = (uint32)entry_size(p->natts, plen, p->data.len);
        e->reloid = p->reloid;
        e->roleid = p->roleid;
        e->nrows = p->nrows;
        e->ticket = p->ticket;
        e->first_row = p->first_row;
        e->natts = (uint16)p->natts;
        e->flags = p->producer ? kEntryHasProducer : 0;
        e->data_len = (uint32)p->data.len;
        e->producer_len = plen;
        e->batch_seq = p->batch_seq;
        memcpy((void *)entry_attnums(e), p->attnums, sizeof(int16) * p->natts);
        memcpy((void *)entry_producer(e), p->producer, plen);
        memcpy((void *)entry_data(e), p->data.data, p->data.len);
        e = next_entry(e);
    }
    env->nentries = n;
    ring->publish(pos, len);

    for (Pending *p = from; p != until; p = p->next) {
        TableStats *ts = table_stats(MyDatabaseId, p->reloid, true);
        if (ts) {
            ts->rows_enqueued.fetch_add(p->nrows, std::memory_order_relaxed);
            ts->bytes_enqueued.fetch_add(p->data.len, std::memory_order_relaxed);
        }
    }
    notify_worker(MyDatabaseId);
    return pos;
}

static void remember_spill(uint64 pos) {
    if (n_spilled == max_spilled) {
        max_spilled = max_spilled ? max_spilled * 2 : 16;
        spilled_pos = (uint64 *)(spilled_pos ? repalloc(spilled_pos, sizeof(uint64) * max_spilled)
                                             : MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * max_spilled));
    }
    spilled_pos[n_spilled++] = pos;
}

// Hands over the current subtransaction's buffered rows early, tagged with its xid: the worker
// inserts them only if that (sub)transaction commits.
static void maybe_spill() {
    SubTransactionId cur = GetCurrentSubTransactionId();
    // The current level's entries are at the end of the list (deeper levels have ended already).
    Pending **link = &pending_head;
    while (*link && (*link)->subid != cur)
        link = &(*link)->next;
    if (!*link)
        return;
    TransactionId xid = GetCurrentTransactionId();
    Pending *from = *link;
    while (from) {
        // Split into envelopes no larger than the spill threshold.
        uint64 size = kEnvelopeOverhead;
        Pending *until = from;
        do {
            size += entry_size(until->natts, until->producer ? strlen(until->producer) : 0, until->data.len);
            until = until->next;
        } while (until && size + entry_size(until->natts, 0, until->data.len) <= spill_threshold());
        uint64 pos = hand_over(from, until, xid, -1, 0);
        remember_spill(pos);
        spilled_bytes += shared->ring->length(pos);
        for (Pending *p = from; p != until; p = p->next)
            pending_bytes -= p->data.len;
        from = until;
    }
    *link = nullptr;
    pending_tail = link;
}

static void reset_pending() {
    pending_head = nullptr;
    pending_tail = &pending_head;
    pending_bytes = 0;
    n_spilled = 0;
    spilled_bytes = 0;
    if (PendingCxt)
        MemoryContextReset(PendingCxt);
}

// ---------------------------------------------------------------------------------------------
// Waiting for the worker.

static WaitSlot *my_wait_slot() { return &shared->waits[MyProc->pgprocno]; }

enum class WaitFor {
    kDoneBeforeCommit,     // no xid: until the worker committed the rows; cancellable
    kInsertedBeforeCommit, // xid: until the worker inserted them and waits for our commit; cancellable
    kDoneAfterCommit,      // xid, after our commit: until the worker committed them; can only warn
};

static bool all_handled(uint64 pos) {
    Ring *ring = shared->ring;
    if (!ring->handled(pos))
        return false;
    for (int i = 0; i < n_spilled; i++)
        if (!ring->handled(spilled_pos[i]))
            return false;
    return true;
}

// Waits for the worker (see docs/ARCHITECTURE.md, "Waiting"). Before commit, a timeout or a
// cancel request withdraws the rows (CAS pending -> cancelled) and raises an error; if the worker
// got there first, we wait for it instead. After commit the wait can only warn.
static void wait_for_worker(uint64 pos, WaitFor what, uint64 gen) {
    WaitSlot *ws = my_wait_slot();
    bool cancellable = what != WaitFor::kDoneAfterCommit;
    TimestampTz start = GetCurrentTimestamp();
    pgstat_report_wait_start(PG_WAIT_EXTENSION);
    for (;;) {
        if (what == WaitFor::kInsertedBeforeCommit) {
            if ((ws->word.load(std::memory_order_acquire) & 3) != kWaitPending || all_handled(pos))
                break;
        } else if (all_handled(pos))
            break;
        long waited = (long)((GetCurrentTimestamp() - start) / 1000);
        bool timed_out = waited >= guc_wait_timeout_ms;
        bool interrupted = QueryCancelPending || ProcDiePending;
        if (timed_out || interrupted) {
            if (cancellable) {
                uint64 expected = gen << 2 | kWaitPending;
                if (ws->word.compare_exchange_strong(expected, gen << 2 | kWaitCancelled)) {
                    pgstat_report_wait_end();
                    notify_worker(MyDatabaseId); // it may be waiting for our decision
                    CHECK_FOR_INTERRUPTS();
                    ereport(ERROR,
                            (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                             errmsg("timed out after %d ms waiting for pg_ingest to commit this transaction's rows",
                                    guc_wait_timeout_ms),
                             errdetail("The rows were withdrawn and will not be inserted (ingest.wait_timeout)."),
                             errhint("If this transaction holds a lock the worker needs (e.g. on the target table, "
                                     "or a key it inserts), the worker cannot insert until it ends: commit first, "
                                     "or set ingest.wait_for_commit = off.")));
                }
                // The worker got there first: it is committing the rows, so wait for it (no
                // timeout: acknowledging now would skip the flush below).
                cancellable = false;
            } else if (what != WaitFor::kDoneAfterCommit) {
                // Before our commit, after a failed withdrawal: keep waiting. A terminate
                // request ends the session (no acknowledgement); a cancel is ignored here.
                if (ProcDiePending)
                    CHECK_FOR_INTERRUPTS();
            } else if (timed_out) {
                pgstat_report_wait_end();
                ereport(WARNING, (errmsg("pg_ingest rows not yet confirmed after %d ms (ingest.wait_timeout)",
                                         guc_wait_timeout_ms),
                                  errdetail("The transaction has committed; its rows stay queued and will be "
                                            "inserted. Check them with ingest_ticket_status().")));
                return;
            } else if (interrupted && waited > 100) {
                // Committed already; a cancel or terminate request ends the wait, not the rows.
                pgstat_report_wait_end();
                QueryCancelPending = false;
                ereport(WARNING, (errmsg("canceling the wait for pg_ingest to commit this transaction's rows"),
                                  errdetail("The transaction has committed; its rows stay queued and will be "
                                            "inserted. Check them with ingest_ticket_status().")));
                return;
            }
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
    pgstat_report_wait_end();
    if (what == WaitFor::kInsertedBeforeCommit)
        return; // the rest is waited for after our commit
    // The worker commits asynchronously; make its commit durable before we acknowledge. Its
    // latest commit LSN, read after our envelopes were marked done, covers them too (e.g. when
    // only spilled envelopes, which carry no waiter, were left to wait for).
    uint64 lsn = ws->commit_lsn.load(std::memory_order_acquire);
    if (WorkerSlot *w = find_worker(MyDatabaseId))
        lsn = Max(lsn, w->commit_lsn.load(std::memory_order_acquire));
    if (lsn != 0) {
        XLogFlush((XLogRecPtr)lsn);
        // As a COMMIT of our own would: wait for synchronous standbys when they are configured
        // (returns at once otherwise; a cancel ends it with PostgreSQL's own warning).
        SyncRepWaitForLSN((XLogRecPtr)lsn, true);
    }
    uint64 failed = ws->failed_rows.load(std::memory_order_acquire);
    if (failed)
        ereport(WARNING, (errcode(ERRCODE_PGI_ROWS_REJECTED),
                          errmsg("pg_ingest rejected %llu row(s) of this transaction", (unsigned long long)failed),
                          errdetail_internal(PGI_REJECTED_DETAIL_KEY "%llu", (unsigned long long)failed),
                          errhint("They were stored in ingest_dead_letter with the reason; "
                                  "ingest_dead_letters(ticket) lists them.")));
}

static void hand_over_at_commit(bool pre_commit) {
    if (!pending_head && n_spilled == 0)
        return;
    TransactionId xid = GetTopTransactionIdIfAny();
    // A serializable transaction may still fail its commit after this point (PostgreSQL checks
    // for serialization failures after the pre-commit callbacks): take the xid path, where the
    // worker commits only after seeing our commit.
    if (pre_commit && !TransactionIdIsValid(xid) && IsolationIsSerializable())
        xid = GetTopTransactionId();
    bool wait = guc_wait_for_commit;
    if (pre_commit) {
        int waiter = -1;
        uint64 gen = 0;
        if (wait) {
            gen = new_ticket();
            WaitSlot *ws = my_wait_slot();
            ws->failed_rows.store(0, std::memory_order_relaxed);
            ws->commit_lsn.store(0, std::memory_order_relaxed);
            ws->word.store(gen << 2 | kWaitPending, std::memory_order_release);
            waiter = MyProc->pgprocno;
        }
        if (TransactionIdIsValid(xid)) {
            // The rows must be atomic with this transaction's other writes: the worker inserts
            // them, tells us (INSERTED), and commits only once it has seen our commit.
            if (pending_head) {
                last_envelope_pos = hand_over(pending_head, nullptr, xid, waiter, gen);
                if (wait)
                    wait_for_worker(last_envelope_pos, WaitFor::kInsertedBeforeCommit, gen);
            } else
                last_envelope_pos = spilled_pos[n_spilled - 1];
            wait_after_commit = wait;
            wait_gen = gen;
            if (!wait)
                reset_pending();
            return;
        }
        // No xid: nothing else in this transaction must be atomic with the rows.
        uint64 pos = hand_over(pending_head, nullptr, InvalidTransactionId, waiter, gen);
        if (wait)
            wait_for_worker(pos, WaitFor::kDoneBeforeCommit, gen); // an error here withdrew them
        handed_over_without_xid = true;
        reset_pending();
        return;
    }
    if (wait_after_commit) {
        wait_after_commit = false;
        notify_worker(MyDatabaseId); // the worker may be waiting to see our commit
        wait_for_worker(last_envelope_pos, WaitFor::kDoneAfterCommit, wait_gen);
    }
    reset_pending();
}

// Transaction and subtransaction callbacks: C functions, so nothing C++ may escape them.
static void on_xact(XactEvent event, void *) {
    const char *msg = nullptr;
    std::optional<PgError> pg_error;
    try {
        switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            pg_guard([] { hand_over_at_commit(true); });
            break;
        case XACT_EVENT_COMMIT:
            handed_over_without_xid = false;
            pg_guard([] { hand_over_at_commit(false); });
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            if (handed_over_without_xid) {
                // Something after our pre-commit step failed (e.g. a NOTIFY queue that is full).
                handed_over_without_xid = false;
                pg_guard([] {
                    ereport(WARNING,
                            (errmsg("this transaction failed after pg_ingest took its rows; they are inserted "
                                    "although the transaction rolled back"),
                             errdetail("Check the tickets of its ingest_enqueue calls with ingest_ticket_status().")));
                });
            }
            // A worker holding our inserted rows waits to see how we end.
            if (wait_after_commit && shared)
                notify_worker(MyDatabaseId);
            wait_after_commit = false;
            reset_pending();
            break;
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PRE_PREPARE:
            if (pending_head || n_spilled)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("cannot PREPARE a transaction that has enqueued pg_ingest rows")));
            break;
        default:
            break;
        }
        return;
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    }
    reset_pending();
    if (pg_error)
        rethrow_pg_error(pg_error);
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("pg_ingest: %s", msg)));
}

static void on_subxact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *) {
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        Pending **link = &pending_head;
        while (*link) {
            if ((*link)->subid == mySubid) {
                pending_bytes -= (*link)->data.len;
                *link = (*link)->next;
            } else
                link = &(*link)->next;
        }
        pending_tail = link;
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (Pending *p = pending_head; p; p = p->next)
            if (p->subid == mySubid)
                p->subid = parentSubid;
    }
}

void enqueue_install_callbacks() {
    static bool done = false;
    if (done)
        return;
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
    done = true;
}

static void prepare_call() {
    shmem_require();
    if (IsInParallelMode())
        ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE), errmsg("cannot enqueue rows in parallel mode")));
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot enqueue rows during recovery")));
    enqueue_install_callbacks();
}

} // namespace pg_ingest

using namespace pg_ingest;

// ---------------------------------------------------------------------------------------------
// SQL-callable functions. Each body runs inside call_guarded(); PostgreSQL calls go through
// pg_guard() so no longjmp crosses a frame with C++ objects.

// ingest_enqueue(target regclass, rec anyelement) and (target regclass, recs anyarray)
PGI_FUNCTION(pg_ingest_enqueue_row) {
    StableFormats formats;
    return pg_guard([&]() -> Datum {
        prepare_call();
        if (PG_ARGISNULL(1))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("row to enqueue must not be NULL")));
        Target t = open_target(fcinfo, nullptr, 0);
        Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 1);
        uint64 ticket = new_ticket();
        SliceWriter w{&t, nullptr, 0, ticket};
        StringInfoData line;
        initStringInfo(&line);
        Oid elemtype = get_element_type(argtype);
        if (OidIsValid(elemtype)) {
            ArrayType *arr = PG_GETARG_ARRAYTYPE_P(1);
            if (elemtype != t.reltype)
                ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                errmsg("array of %s does not match target table \"%s\"", format_type_be(elemtype),
                                       t.relname),
                                errhint("Pass an array of the table's row type, e.g. ARRAY[...]::%s[].", t.relname)));
            ArrayIterator it = array_create_iterator(arr, 0, nullptr);
            Datum d;
            bool isnull;
            while (array_iterate(it, &d, &isnull)) {
                if (isnull)
                    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                    errmsg("array element %u is NULL", w.rows + 1)));
                append_composite_row(&line, t, DatumGetHeapTupleHeader(d));
                w.add_row(&line);
            }
            array_free_iterator(it);
        } else {
            if (!type_is_rowtype(argtype))
                ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                errmsg("cannot enqueue a value of type %s into \"%s\"", format_type_be(argtype),
                                       t.relname),
                                errhint("Pass a row of the table's type, e.g. ROW(...)::%s.", t.relname)));
            append_composite_row(&line, t, PG_GETARG_HEAPTUPLEHEADER(1));
            w.add_row(&line);
        }
        pfree(line.data);
        PG_RETURN_INT64((int64)ticket);
    });
}

// Appends one JSON object as a row; consecutive objects with the same keys share a slice.
static void enqueue_json_object(const Target &t, JsonbContainer *obj, uint64 ticket, uint32 *rowno,
                                StringInfo line, SliceWriter **writer, int16 **attnums, int *natts) {
    // Keys of a jsonb object come back in a fixed order, so the same key set gives the same list.
    int16 cols[MaxHeapAttributeNumber];
    int n = 0;
    JsonbIterator *it = JsonbIteratorInit(obj);
    JsonbValue v;
    JsonbIteratorToken tok;
    bool first = true;
    while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (tok == WJB_KEY) {
            if (n >= MaxHeapAttributeNumber)
                ereport(ERROR, (errcode(ERRCODE_TOO_MANY_COLUMNS), errmsg("too many keys in JSON object")));
            char *key = pnstrdup(v.val.string.val, v.val.string.len);
            cols[n++] = column_attnum(t.reloid, t.relname, key);
        } else if (tok == WJB_VALUE) {
            if (!first)
                appendStringInfoChar(line, '\t');
            first = false;
            append_json_scalar(line, &v);
        }
    }
    appendStringInfoChar(line, '\n');
    if (n == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("JSON object %u has no keys", *rowno + 1)));
    bool same = *writer && *natts == n && memcmp(*attnums, cols, sizeof(int16) * n) == 0;
    if (!same) {
        Relation rel = relation_open(t.reloid, AccessShareLock);
        check_insert_privilege(rel, cols, n);
        relation_close(rel, NoLock);
        *attnums = (int16 *)palloc(sizeof(int16) * n);
        memcpy(*attnums, cols, sizeof(int16) * n);
        *natts = n;
        SliceWriter *w = (SliceWriter *)palloc0(sizeof(SliceWriter));
        w->t = &t;
        w->attnums = *attnums;
        w->natts = n;
        w->ticket = ticket;
        w->rows = *rowno;
        *writer = w;
    }
    (*writer)->add_row(line);
    (*rowno)++;
}

// ingest_enqueue(target regclass, doc jsonb): one object, or an array of objects
PGI_FUNCTION(pg_ingest_enqueue_jsonb) {
    StableFormats formats;
    return pg_guard([&]() -> Datum {
        prepare_call();
        if (PG_ARGISNULL(1))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("document to enqueue must not be NULL")));
        Jsonb *doc = PG_GETARG_JSONB_P(1);
        // Privilege is checked per key set, as the objects' columns become known.
        Target t = open_target(fcinfo, nullptr, 0, false);
        uint64 ticket = new_ticket();
        uint32 rowno = 0;
        StringInfoData line;
        initStringInfo(&line);
        SliceWriter *writer = nullptr;
        int16 *attnums = nullptr;
        int natts = 0;
        JsonbContainer *root = &doc->root;
        if (JsonContainerIsObject(root))
            enqueue_json_object(t, root, ticket, &rowno, &line, &writer, &attnums, &natts);
        else if (JsonContainerIsArray(root) && !JsonContainerIsScalar(root)) {
            JsonbIterator *it = JsonbIteratorInit(root);
            JsonbValue v;
            JsonbIteratorToken tok;
            while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
                if (tok != WJB_ELEM)
                    continue;
                if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
                    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                    errmsg("element %u of the JSON array is not an object", rowno + 1)));
                enqueue_json_object(t, v.val.binary.data, ticket, &rowno, &line, &writer, &attnums, &natts);
            }
        } else
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("ingest_enqueue expects a JSON object or an array of objects")));
        PG_RETURN_INT64((int64)ticket);
    });
}

// ingest_enqueue_copy(target regclass, data bytea, columns text[], producer_id text, batch_seq bigint)
// The bulk form for clients: rows in COPY text format, each ending in a newline.
PGI_FUNCTION(pg_ingest_enqueue_copy) {
    return pg_guard([&]() -> Datum {
        prepare_call();
        if (PG_ARGISNULL(1))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("data to enqueue must not be NULL")));
        if (PG_ARGISNULL(3) != PG_ARGISNULL(4))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("producer_id and batch_seq must be given together")));
        int16 cols[MaxHeapAttributeNumber];
        int natts = 0;
        if (!PG_ARGISNULL(0) && !PG_ARGISNULL(2)) {
            Oid reloid = PG_GETARG_OID(0);
            char *relname = get_rel_name(reloid);
            if (!relname)
                ereport(ERROR,
                        (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", reloid)));
            Datum *names;
            bool *nulls;
            int n;
            deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
            if (n > MaxHeapAttributeNumber)
                ereport(ERROR, (errcode(ERRCODE_TOO_MANY_COLUMNS), errmsg("too many columns")));
            for (int i = 0; i < n; i++) {
                if (nulls[i])
                    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("column names must not be NULL")));
                int16 att = column_attnum(reloid, relname, TextDatumGetCString(names[i]));
                for (int j = 0; j < natts; j++)
                    if (cols[j] == att)
                        ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN),
                                        errmsg("column \"%s\" specified more than once", TextDatumGetCString(names[i]))));
                cols[natts++] = att;
            }
        }
        Target t = open_target(fcinfo, cols, natts);
        bytea *data = PG_GETARG_BYTEA_PP(1);
        const char *p = VARDATA_ANY(data);
        const char *end = p + VARSIZE_ANY_EXHDR(data);
        char *producer = PG_ARGISNULL(3) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(3));
        int64 batch_seq = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);
        if (producer && (strlen(producer) == 0 || strlen(producer) > PGI_PRODUCER_ID_MAX_BYTES))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("producer_id must be 1 to %d bytes", PGI_PRODUCER_ID_MAX_BYTES)));
        uint64 ticket = new_ticket();
        SliceWriter w{&t, cols, natts, ticket, producer, batch_seq};
        while (p < end) {
            const char *nl = (const char *)memchr(p, '\n', end - p);
            const char *stop = nl ? nl : end;
            if (stop - p == 2 && p[0] == '\\' && p[1] == '.')
                ereport(ERROR, (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                                errmsg("line %u of the data is the end-of-data marker \\.", w.rows + 1),
                                errhint("Send rows only; pg_ingest ends the data itself.")));
            w.add_row(p, (int)(stop - p), true);
            p = stop + 1;
        }
        PG_RETURN_INT64((int64)ticket);
    });
}

// ingest_flush(timeout interval) returns boolean: waits until everything handed over in this
// database before the call has been committed or dead-lettered.
PGI_FUNCTION(pg_ingest_flush) {
    return pg_guard([&]() -> Datum {
        shmem_require();
        int64 timeout_ms = 30000;
        if (!PG_ARGISNULL(0)) {
            Interval *iv = PG_GETARG_INTERVAL_P(0);
            timeout_ms = (int64)(iv->time / 1000 + (int64)iv->day * 86400000 + (int64)iv->month * 30 * 86400000);
        }
        uint64 target = shared->ring->head.load(std::memory_order_acquire);
        if (shared->ring->tail.load(std::memory_order_acquire) >= target)
            PG_RETURN_BOOL(true);
        ensure_worker(MyDatabaseId);
        WorkerSlot *w = find_worker(MyDatabaseId);
        if (!w)
            PG_RETURN_BOOL(false);
        TimestampTz start = GetCurrentTimestamp();
        ConditionVariablePrepareToSleep(&w->done_cv);
        bool ok = true;
        while (w->done_pos.load(std::memory_order_acquire) < target &&
               shared->ring->tail.load(std::memory_order_acquire) < target) {
            int64 waited = (GetCurrentTimestamp() - start) / 1000;
            if (waited >= timeout_ms) {
                ok = false;
                break;
            }
            if (w->latch)
                SetLatch(w->latch);
            ConditionVariableTimedSleep(&w->done_cv, Min(100, timeout_ms - waited), PG_WAIT_EXTENSION);
        }
        ConditionVariableCancelSleep();
        if (ok) {
            uint64 lsn = w->commit_lsn.load(std::memory_order_acquire);
            if (lsn != 0)
                XLogFlush((XLogRecPtr)lsn);
        }
        PG_RETURN_BOOL(ok);
    });
}
