// worker.cpp — one background worker per active database drains that database's envelopes from
// the ring into the target tables, in batches, through PostgreSQL's own COPY FROM machinery
// (BeginCopyFrom with a data-source callback + CopyFrom: multi-row heap inserts, indexes,
// defaults, constraints, triggers, partition routing, WAL), as the role that enqueued the rows.
//
// A batch is one transaction (group commit). Envelopes are marked done only after that
// transaction has committed, so a worker that errors or is killed loses nothing: its successor
// finds the same envelopes still ready. Bad rows are isolated by bisecting the failing group in
// subtransactions and stored in ingest_dead_letter.
#include "pg_guard.hpp"
#include "privilege.hpp"
#include "settings.hpp"
#include "shmem.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/relation.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "access/genam.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/copy.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "utils/fmgroids.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

extern "C" PGDLLEXPORT void pg_ingest_worker_main(Datum arg);

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// Starting workers (called by backends).

WorkerSlot *find_worker(Oid dboid) {
    for (int i = 0; i < shared->nworkers; i++) {
        WorkerSlot *w = &shared->workers[i];
        if (w->state != kSlotFree && w->dboid == dboid)
            return w;
    }
    return nullptr;
}

static bool register_worker(int idx, Oid dboid) {
    BackgroundWorker bgw;
    memset(&bgw, 0, sizeof(bgw));
    bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
    bgw.bgw_restart_time = 1; // restarted after an error exit (code 1); never for code 0
    strlcpy(bgw.bgw_library_name, "pg_ingest", BGW_MAXLEN);
    strlcpy(bgw.bgw_function_name, "pg_ingest_worker_main", BGW_MAXLEN);
    snprintf(bgw.bgw_name, BGW_MAXLEN, "pg_ingest worker for database %u", dboid);
    strlcpy(bgw.bgw_type, "pg_ingest worker", BGW_MAXLEN);
    bgw.bgw_main_arg = Int32GetDatum(idx);
    memcpy(bgw.bgw_extra, &dboid, sizeof(dboid));
    bgw.bgw_notify_pid = 0;
    return RegisterDynamicBackgroundWorker(&bgw, nullptr);
}

// Under shared->lock: claims a free slot for dboid and registers its worker. Returns nullptr, or
// the reason it could not (palloc'd).
static const char *start_worker_locked(Oid dboid) {
    int idx = -1;
    for (int i = 0; i < shared->nworkers && idx < 0; i++)
        if (shared->workers[i].state == kSlotFree)
            idx = i;
    if (idx < 0)
        return psprintf("all %d pg_ingest workers (ingest.max_workers) serve other databases", shared->nworkers);
    WorkerSlot *w = &shared->workers[idx];
    w->dboid = dboid;
    w->state = kSlotStarting;
    w->pid = 0;
    w->latch = nullptr;
    w->start_attempts = 0;
    w->exiting.store(0, std::memory_order_relaxed);
    uint64 tail = shared->ring->tail.load(std::memory_order_acquire);
    w->scan_low.store(tail, std::memory_order_release);
    w->done_pos.store(tail, std::memory_order_release);
    if (register_worker(idx, dboid))
        return nullptr;
    w->state = kSlotFree;
    w->dboid = InvalidOid;
    return "no background worker slot is free (max_worker_processes)";
}

// Before handing rows over: makes sure this database has a worker, or fails cleanly.
void ensure_worker(Oid dboid) {
    if (find_worker(dboid))
        return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    const char *why = find_worker(dboid) ? nullptr : start_worker_locked(dboid);
    LWLockRelease(shared->lock);
    if (why)
        ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                        errmsg("could not start a pg_ingest worker for database \"%s\": %s", get_database_name(dboid),
                               why),
                        errhint("Raise ingest.max_workers or max_worker_processes and restart the server.")));
}

// After publishing: wakes the database's worker. Cannot fail (the rows are in the ring already).
// A worker deciding to exit for idleness sets `exiting`, then scans the ring (try_idle_exit); we
// published, then read `exiting`. With a full fence on both sides, either its scan sees our
// record or we see `exiting` and take the lock, which orders us after its decision (then we
// start a new worker if it left).
void notify_worker(Oid dboid) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WorkerSlot *w = find_worker(dboid);
    if (w && w->state == kSlotRunning && w->latch && !w->exiting.load(std::memory_order_relaxed)) {
        SetLatch(w->latch);
        return;
    }
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    w = find_worker(dboid);
    const char *why = nullptr;
    if (!w)
        why = start_worker_locked(dboid);
    else if (w->state == kSlotRunning && w->latch)
        SetLatch(w->latch);
    LWLockRelease(shared->lock);
    if (why)
        ereport(WARNING, (errmsg("pg_ingest rows are queued but no worker could be started: %s", why)));
}

// Idle for ingest.worker_idle_timeout: give the slot up, unless something of ours was handed over
// meanwhile. Holding shared->lock keeps the tail still (safe to read the ring) and orders this
// decision with notify_worker().
static bool try_idle_exit(WorkerSlot *slot, Oid dboid) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    slot->exiting.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst); // pairs with notify_worker()'s
    Ring *r = shared->ring;
    RingCursor c(r, slot->scan_low.load(std::memory_order_acquire));
    while (c.valid() && !(c.state() == kReady && envelope_of(r, c.pos())->dboid == dboid))
        c.next();
    // Stopped at one of ours, or at a record someone is still writing (maybe ours).
    bool work = c.valid() || c.unpublished();
    if (work)
        slot->exiting.store(0, std::memory_order_relaxed);
    else {
        slot->state = kSlotFree;
        slot->dboid = InvalidOid;
        slot->pid = 0;
        slot->latch = nullptr;
    }
    LWLockRelease(shared->lock);
    return !work;
}

// ---------------------------------------------------------------------------------------------
// Worker state.

static volatile sig_atomic_t got_sigterm = false;
static WorkerSlot *my_slot = nullptr;
static Oid my_db = InvalidOid;

static void handle_sigterm(SIGNAL_ARGS) {
    int save_errno = errno;
    got_sigterm = true;
    SetLatch(MyLatch);
    errno = save_errno;
}

static void release_slot(int, Datum) {
    if (!my_slot)
        return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    // Keep the slot reserved for this database: the postmaster restarts us after an error exit,
    // and during shutdown nothing starts again anyway.
    my_slot->state = kSlotStarting;
    my_slot->pid = 0;
    my_slot->latch = nullptr;
    LWLockRelease(shared->lock);
    my_slot = nullptr;
}

static void claim_slot(int idx, Oid dboid) {
    if (idx < 0 || idx >= shared->nworkers)
        ereport(FATAL, (errmsg("pg_ingest worker slot %d out of range", idx)));
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    WorkerSlot *w = &shared->workers[idx];
    bool other = w->state == kSlotRunning && w->pid != 0 && w->pid != MyProcPid && w->dboid == dboid;
    // After a crash-restart every slot is free: a backend may have started a new worker for this
    // database in another slot before the postmaster restarted us. One worker per database.
    for (int i = 0; i < shared->nworkers && !other; i++)
        other = i != idx && shared->workers[i].state != kSlotFree && shared->workers[i].dboid == dboid;
    if (other) {
        LWLockRelease(shared->lock);
        ereport(LOG, (errmsg("pg_ingest worker for database %u already running", dboid)));
        proc_exit(0);
    }
    if (w->state == kSlotFree) { // shared memory was reinitialized after a crash
        uint64 tail = shared->ring->tail.load(std::memory_order_acquire);
        w->scan_low.store(tail, std::memory_order_release);
        w->done_pos.store(tail, std::memory_order_release);
    }
    w->dboid = dboid;
    w->state = kSlotRunning;
    w->pid = MyProcPid;
    w->latch = MyLatch;
    w->started_at = GetCurrentTimestamp();
    w->start_attempts = 0;
    w->exiting.store(0, std::memory_order_relaxed);
    my_slot = w;
    LWLockRelease(shared->lock);
    before_shmem_exit(release_slot, 0);
}

// ---------------------------------------------------------------------------------------------
// COPY data source: the rows of the group being inserted, as a list of byte ranges.

struct Segment {
    const char *p;
    size_t n;
};

static const std::vector<Segment> *src_segments = nullptr;
static size_t src_index = 0, src_offset = 0;

static int copy_source(void *outbuf, int, int maxread) {
    char *out = static_cast<char *>(outbuf);
    int got = 0;
    while (got < maxread && src_index < src_segments->size()) {
        const Segment &s = (*src_segments)[src_index];
        size_t take = std::min<size_t>(s.n - src_offset, (size_t)(maxread - got));
        memcpy(out + got, s.p + src_offset, take);
        got += (int)take;
        src_offset += take;
        if (src_offset == s.n) {
            src_index++;
            src_offset = 0;
        }
    }
    return got;
}

// ---------------------------------------------------------------------------------------------
// Batches.

struct Row {
    const char *p;
    size_t n;      // including the newline
    size_t entry;  // index into Batch::entries
    uint32_t rowno;
};

struct EntryRef {
    uint64_t env_pos;
    EntryHeader *e;
    uint32_t failed = 0;
    bool duplicate = false;    // an exactly-once batch that was already committed
    uint32_t failed_before = 0; // for a duplicate: rows the original call had dead-lettered
};

struct Group {
    Oid reloid, roleid;
    std::vector<int16_t> attnums;
    std::vector<size_t> entries;
};

struct Batch {
    std::vector<uint64_t> envelopes;
    std::vector<EntryRef> entries;
    std::vector<Group> groups;
    uint64_t rows = 0, bytes = 0;
    uint64_t scan_end = 0;
    uint64_t first_pending = UINT64_MAX;
};

// Thrown when a waiting backend withdrew its rows while we were inserting them.
struct WithdrawnEnvelope {
    uint64_t pos;
};

static Ring *ring() { return shared->ring; }

static void wake_waiter(EnvelopeHeader *env) {
    if (env->waiter >= 0 && env->waiter < (int)ProcGlobal->allProcCount)
        SetLatch(&ProcGlobal->allProcs[env->waiter].procLatch);
}

static void discard_envelope(uint64_t pos) {
    EnvelopeHeader *env = envelope_of(ring(), pos);
    EntryHeader *e = first_entry(ring(), pos);
    for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e)) {
        TableStats *ts = table_stats(my_db, e->reloid, true);
        if (ts)
            ts->rows_discarded.fetch_add(e->nrows, std::memory_order_relaxed);
    }
    ring()->mark(pos, kReady, kDone);
    wake_waiter(env);
}

// Whether the envelope's backend is waiting for it before its commit (pending, or already told
// that its rows are inserted).
static bool waiter_active(const EnvelopeHeader *env) {
    if (env->waiter < 0)
        return false;
    uint64_t word = shared->waits[env->waiter].word.load(std::memory_order_acquire);
    return word == (env->waiter_gen << 2 | kWaitPending) || word == (env->waiter_gen << 2 | kWaitCommitting);
}

// Scans the ring from scan_low and takes this database's ready envelopes, up to the batch limits.
// Envelopes of a (sub)transaction still in progress are left for later; those of one that
// rolled back are discarded.
static Batch collect() {
    Batch b;
    Ring *r = ring();
    uint64_t max_rows = (uint64_t)guc_batch_rows;
    uint64_t max_bytes = (uint64_t)guc_batch_bytes_kb * 1024;
    std::map<std::tuple<Oid, Oid, std::vector<int16_t>>, size_t> group_of;
    RingCursor c(r, my_slot->scan_low.load(std::memory_order_relaxed));
    for (; c.valid() && b.rows < max_rows && b.bytes < max_bytes; c.next()) {
        uint64_t pos = c.pos();
        if (c.state() != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(r, pos);
        if (env->dboid != my_db)
            continue;
        if (env->xid != InvalidTransactionId) {
            TransactionId xid = env->xid;
            // In progress: take it only if its backend waits before committing (it waits for us
            // to insert; we then wait for its commit before ours). Otherwise leave it for later.
            if (pg_guard([&] { return TransactionIdIsInProgress(xid); })) {
                if (!waiter_active(env)) {
                    b.first_pending = std::min(b.first_pending, pos);
                    continue;
                }
            } else if (!pg_guard([&] { return TransactionIdDidCommit(xid); })) {
                discard_envelope(pos);
                continue;
            }
        }
        b.envelopes.push_back(pos);
        b.bytes += c.length();
        EntryHeader *e = first_entry(r, pos);
        for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e)) {
            std::vector<int16_t> atts(entry_attnums(e), entry_attnums(e) + e->natts);
            auto key = std::make_tuple((Oid)e->reloid, (Oid)e->roleid, atts);
            auto it = group_of.find(key);
            if (it == group_of.end()) {
                it = group_of.emplace(key, b.groups.size()).first;
                b.groups.push_back(Group{e->reloid, e->roleid, atts, {}});
            }
            b.groups[it->second].entries.push_back(b.entries.size());
            b.entries.push_back(EntryRef{pos, e});
            b.rows += e->nrows;
        }
    }
    b.scan_end = c.pos(); // the first record not taken or skipped, or the head
    return b;
}

// ---------------------------------------------------------------------------------------------
// Inserting.

// Checks that would fail every row of a group alike. Returns nullptr when the group may proceed,
// else the reason (palloc'd) and its SQLSTATE.
static const char *group_precheck(const Group &g, int *sqlstate) {
    *sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
    if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(g.roleid)))
        return psprintf("the enqueuing role (OID %u) no longer exists", g.roleid);
    char *relname = get_rel_name(g.reloid);
    if (!relname) {
        *sqlstate = ERRCODE_UNDEFINED_TABLE;
        return psprintf("the target table (OID %u) no longer exists", g.reloid);
    }
    if (!has_insert_privilege(g.reloid, g.roleid, g.attnums.data(), (int)g.attnums.size()))
        return psprintf("permission denied for table %s (role %s)", relname, GetUserNameFromId(g.roleid, true));
    return nullptr;
}

// COPY the given byte ranges into rel (PostgreSQL errors propagate: call inside pg_guard).
static uint64 copy_rows(Relation rel, List *attnames, const std::vector<Segment> &segs) {
    List *options =
        list_make1(makeDefElem(pstrdup("encoding"), (Node *)makeString(pstrdup(GetDatabaseEncodingName())), -1));
    ParseState *pstate = make_parsestate(nullptr);
    // CopyFrom builds its executor state from the parse state's range table.
    ParseNamespaceItem *nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, nullptr, false, false);
    nsitem->p_rte->requiredPerms = ACL_INSERT;
    src_segments = &segs;
    src_index = src_offset = 0;
    CopyFromState cstate = BeginCopyFrom(pstate, rel, nullptr, nullptr, false, copy_source, attnames, options);
    uint64 n = CopyFrom(cstate);
    EndCopyFrom(cstate);
    free_parsestate(pstate);
    return n;
}

// The column names the rows' fields belong to: the group's list, or every column COPY takes by
// default (not dropped, not generated).
static List *group_attnames(const Group &g, Relation rel) {
    List *names = NIL;
    if (g.attnums.empty()) {
        TupleDesc desc = RelationGetDescr(rel);
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute a = TupleDescAttr(desc, i);
            if (!a->attisdropped && !a->attgenerated)
                names = lappend(names, makeString(pstrdup(NameStr(a->attname))));
        }
        return names;
    }
    for (int16_t a : g.attnums) {
        char *name = get_attname(g.reloid, a, true);
        if (!name)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column %d of relation \"%s\" no longer exists", a, RelationGetRelationName(rel))));
        names = lappend(names, makeString(name));
    }
    return names;
}

static char *column_list_sql(List *names) {
    StringInfoData buf;
    initStringInfo(&buf);
    ListCell *lc;
    foreach (lc, names) {
        if (buf.len)
            appendStringInfoString(&buf, ", ");
        appendStringInfoString(&buf, quote_identifier(strVal(lfirst(lc))));
    }
    return buf.data;
}

// Runs f as the given role (PostgreSQL errors propagate: call inside pg_guard; on error the
// transaction's abort restores the user id).
template <typename F> static void as_role(Oid roleid, F &&f) {
    Oid save_userid;
    int save_sec;
    GetUserIdAndSecContext(&save_userid, &save_sec);
    SetUserIdAndSecContext(roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE);
    f();
    SetUserIdAndSecContext(save_userid, save_sec);
}

// Row-level security applies to the enqueuing role: COPY FROM would bypass its policies, so the
// rows go through a temporary staging table and an INSERT ... SELECT run as that role, which
// applies WITH CHECK policies exactly as the role's own INSERT would. The staging COPY runs as
// the role too: its columns have the target's types, so domain checks and type input functions
// run there, and must not run with the worker's superuser rights. One staging table per column
// list (groups of one table may name different columns). OVERRIDING SYSTEM VALUE: COPY, the
// path without RLS, also takes values for GENERATED ALWAYS identity columns.
static void insert_with_rls(const Group &g, Relation rel, List *attnames, const std::vector<Segment> &segs) {
    char *cols = column_list_sql(attnames);
    char *stage = psprintf("ingest_stage_%u_%zx", g.reloid, std::hash<std::string_view>{}(cols));
    char *target = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                              RelationGetRelationName(rel));
    const char *role = quote_identifier(GetUserNameFromId(g.roleid, false));
    SPI_connect();
    SPI_execute(psprintf("CREATE TEMP TABLE IF NOT EXISTS %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA",
                         stage, cols, target), false, 0);
    SPI_execute(psprintf("TRUNCATE pg_temp.%s", stage), false, 0);
    SPI_execute(psprintf("GRANT SELECT, INSERT ON pg_temp.%s TO %s", stage, role), false, 0);
    Relation srel = table_open(get_relname_relid(stage, LookupExplicitNamespace("pg_temp", false)), RowExclusiveLock);
    as_role(g.roleid, [&] { copy_rows(srel, attnames, segs); });
    table_close(srel, NoLock);
    CommandCounterIncrement();
    as_role(g.roleid, [&] {
        SPI_execute(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%s", target, cols,
                             cols, stage), false, 0);
    });
    SPI_finish();
}

// Inserts the given byte ranges into the group's table as the enqueuing role.
static void insert_group(const Group &g, const std::vector<Segment> &segs) {
    Relation rel = table_open(g.reloid, RowExclusiveLock);
    List *attnames = group_attnames(g, rel);
    if (check_enable_rls(g.reloid, g.roleid, false) == RLS_ENABLED)
        insert_with_rls(g, rel, attnames, segs);
    else
        as_role(g.roleid, [&] { copy_rows(rel, attnames, segs); });
    table_close(rel, NoLock);
}

// The schema pg_ingest was created in (PostgreSQL 15 exports no helper for this).
static Oid extension_schema() {
    Oid ext = get_extension_oid("pg_ingest", true);
    if (!OidIsValid(ext))
        return InvalidOid;
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tup = systable_getnext(scan);
    Oid nsp = HeapTupleIsValid(tup) ? ((Form_pg_extension)GETSTRUCT(tup))->extnamespace : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return nsp;
}

static void run_in_transaction(const char *activity);

// The extension's schema, looked up once and again after any failed batch (it may have been
// dropped or recreated).
static Oid cached_nsp = InvalidOid;

static Oid ext_nsp() {
    if (!OidIsValid(cached_nsp))
        cached_nsp = extension_schema();
    if (!OidIsValid(cached_nsp))
        ereport(ERROR, (errmsg("pg_ingest: the extension is not installed in database %u", my_db)));
    return cached_nsp;
}

static const char *ext_table(const char *name) {
    return quote_qualified_identifier(get_namespace_name(ext_nsp()), name);
}

// A plan for one of the worker's bookkeeping statements (sql_fmt with %s for the extension
// table), prepared once per extension schema and kept across transactions. Call under SPI.
static void prune_history_now();
static void abort_attempt();

struct KeptPlan {
    Oid nsp = InvalidOid;
    SPIPlanPtr plan = nullptr;
};

static SPIPlanPtr kept_plan(KeptPlan &kp, const char *sql_fmt, const char *table, int nargs, Oid *types) {
    Oid nsp = ext_nsp();
    if (kp.plan && kp.nsp == nsp)
        return kp.plan;
    if (kp.plan)
        SPI_freeplan(kp.plan);
    kp.plan = nullptr;
    SPIPlanPtr p = SPI_prepare(psprintf(sql_fmt, ext_table(table)), nargs, types);
    if (!p)
        elog(ERROR, "pg_ingest: could not prepare \"%s\": %s", sql_fmt, SPI_result_code_string(SPI_result));
    SPI_keepplan(p);
    kp.plan = p;
    kp.nsp = nsp;
    return p;
}

// Exactly-once batches: a (producer_id, batch_seq) is committed at most once. Another slice of
// the same call (same ticket) is not a duplicate; a resend (new ticket) is. Runs inside the
// batch transaction, so the record commits or rolls back with the rows.
static void mark_duplicates(Batch &b) {
    bool any = false;
    for (const EntryRef &er : b.entries)
        any |= (er.e->flags & kEntryHasProducer) != 0;
    if (!any)
        return;
    pg_guard([&] {
        static KeptPlan check_plan, insert_plan, resend_plan, dead_plan;
        Oid types[3] = {TEXTOID, INT8OID, INT8OID};
        Oid resend_types[2] = {INT8OID, INT8OID};
        SPI_connect();
        SPIPlanPtr resend = kept_plan(resend_plan,
                                      "INSERT INTO %s (ticket, original_ticket) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                      "ingest_resend", 2, resend_types);
        SPIPlanPtr dead = kept_plan(dead_plan, "SELECT count(*) FROM %s WHERE ticket = $1", "ingest_dead_letter", 1,
                                    resend_types);
        SPIPlanPtr check = kept_plan(check_plan, "SELECT ticket FROM %s WHERE producer_id = $1 AND batch_seq = $2",
                                     "ingest_producer_batch", 2, types);
        SPIPlanPtr insert = kept_plan(insert_plan, "INSERT INTO %s (producer_id, batch_seq, ticket) VALUES ($1, $2, $3)",
                                      "ingest_producer_batch", 3, types);
        for (EntryRef &er : b.entries) {
            er.duplicate = false;
            if (!(er.e->flags & kEntryHasProducer))
                continue;
            Datum vals[3] = {PointerGetDatum(cstring_to_text_with_len(entry_producer(er.e), er.e->producer_len)),
                             Int64GetDatum(er.e->batch_seq), Int64GetDatum((int64)er.e->ticket)};
            // Not read-only: each check must see what this batch inserted before it.
            SPI_execute_plan(check, vals, nullptr, false, 1);
            if (SPI_processed > 0) {
                bool isnull;
                int64 seen = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
                er.duplicate = (uint64_t)seen != er.e->ticket;
                if (er.duplicate) {
                    // Remember the resend, and tell its caller what the original lost.
                    Datum rv[2] = {Int64GetDatum((int64)er.e->ticket), Int64GetDatum(seen)};
                    SPI_execute_plan(resend, rv, nullptr, false, 0);
                    SPI_execute_plan(dead, &rv[1], nullptr, true, 1);
                    er.failed_before =
                        (uint32_t)DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
                }
            } else
                SPI_execute_plan(insert, vals, nullptr, false, 0);
        }
        SPI_finish();
    });
}

// One row per batch in ingest_batch_log: which tickets it committed (for ingest_ticket_status).
static void log_batch(const Batch &b) {
    std::vector<uint64_t> tickets;
    for (const EntryRef &er : b.entries)
        tickets.push_back(er.e->ticket);
    std::sort(tickets.begin(), tickets.end());
    std::string ranges = "{";
    for (size_t i = 0; i < tickets.size();) {
        size_t j = i;
        while (j + 1 < tickets.size() && tickets[j + 1] <= tickets[j] + 1)
            j++;
        if (ranges.size() > 1)
            ranges += ",";
        ranges += "[" + std::to_string(tickets[i]) + "," + std::to_string(tickets[j]) + "]";
        i = j + 1;
    }
    ranges += "}";
    pg_guard([&] {
        static KeptPlan plan;
        Oid types[4] = {INT8OID, INT8OID, INT8OID, TEXTOID};
        Datum vals[4] = {Int64GetDatum((int64)b.rows), Int64GetDatum((int64)tickets.front()),
                         Int64GetDatum((int64)tickets.back()), CStringGetTextDatum(ranges.c_str())};
        SPI_connect();
        SPI_execute_plan(kept_plan(plan,
                                   "INSERT INTO %s (rows, first_ticket, last_ticket, tickets) "
                                   "VALUES ($1, $2, $3, $4::pg_catalog.int8multirange)",
                                   "ingest_batch_log", 4, types),
                         vals, nullptr, false, 0);
        SPI_finish();
    });
}

// Drops batch-log and producer records older than ingest.ticket_retention (every few minutes).
// Housekeeping only: a failure (e.g. an extension whose tables do not match this library) is
// logged and retried next time; it must not stop the worker from draining the ring.
static void prune_history() {
    static TimestampTz last = 0;
    TimestampTz now = GetCurrentTimestamp();
    if (last != 0 && now - last < 5 * 60 * USECS_PER_SEC)
        return;
    last = now;
    try {
        prune_history_now();
    } catch (const PgError &e) {
        abort_attempt();
        ereport(WARNING, (errmsg("pg_ingest: pruning old ticket history failed: %s", e.what()),
                          errhint("If pg_ingest was upgraded, run ALTER EXTENSION pg_ingest UPDATE.")));
    }
}

static void prune_history_now() {
    pg_guard([&] {
        run_in_transaction("pruning history");
        char *interval = psprintf("%d seconds", guc_ticket_retention_s);
        Oid types[1] = {TEXTOID};
        Datum vals[1] = {CStringGetTextDatum(interval)};
        SPI_connect();
        SPI_execute_with_args(psprintf("DELETE FROM %s WHERE committed_at < now() - $1::interval",
                                       ext_table("ingest_batch_log")), 1, types, vals, nullptr, false, 0);
        SPI_execute_with_args(psprintf("DELETE FROM %s WHERE committed_at < now() - $1::interval",
                                       ext_table("ingest_producer_batch")), 1, types, vals, nullptr, false, 0);
        SPI_execute_with_args(psprintf("DELETE FROM %s WHERE committed_at < now() - $1::interval",
                                       ext_table("ingest_resend")), 1, types, vals, nullptr, false, 0);
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

struct DeadRow {
    const EntryHeader *e;
    uint32_t rowno;
    std::string raw;
    std::string error;
    std::string sqlstate;
};

static void store_dead_letters(const Group &g, const std::vector<DeadRow> &rows) {
    if (rows.empty())
        return;
    pg_guard([&] {
        static KeptPlan plan;
        Oid types[9] = {INT8OID, INT4OID, OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID};
        // The column list the raw row's fields belong to (NULL: all columns in table order).
        Datum columns = (Datum)0;
        if (!g.attnums.empty()) {
            Datum *names = (Datum *)palloc(sizeof(Datum) * g.attnums.size());
            for (size_t i = 0; i < g.attnums.size(); i++) {
                char *name = get_attname(g.reloid, g.attnums[i], true);
                names[i] = CStringGetTextDatum(name ? name : psprintf("#%d", g.attnums[i]));
            }
            columns = PointerGetDatum(construct_array(names, (int)g.attnums.size(), TEXTOID, -1, false, TYPALIGN_INT));
        }
        SPI_connect();
        SPIPlanPtr insert = kept_plan(plan,
                                      "INSERT INTO %s (ticket, row_number, target, target_name, role_name, raw_row, "
                                      "error, sqlstate, columns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                                      "ingest_dead_letter", 9, types);
        char *relname = get_rel_name(g.reloid);
        char *rolname = GetUserNameFromId(g.roleid, true);
        for (const DeadRow &d : rows) {
            Datum vals[9];
            char nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
            vals[0] = Int64GetDatum((int64)d.e->ticket);
            vals[1] = Int32GetDatum((int32)d.rowno);
            vals[2] = ObjectIdGetDatum(g.reloid);
            vals[3] = relname ? CStringGetTextDatum(relname) : (Datum)0;
            nulls[3] = relname ? ' ' : 'n';
            vals[4] = rolname ? CStringGetTextDatum(rolname) : (Datum)0;
            nulls[4] = rolname ? ' ' : 'n';
            vals[5] = CStringGetTextDatum(d.raw.c_str());
            vals[6] = CStringGetTextDatum(d.error.c_str());
            vals[7] = CStringGetTextDatum(d.sqlstate.c_str());
            vals[8] = columns;
            nulls[8] = columns ? ' ' : 'n';
            SPI_execute_plan(insert, vals, nulls, false, 0);
        }
        SPI_finish();
    });
}

static std::vector<Row> rows_of(const Batch &b, const Group &g) {
    std::vector<Row> rows;
    for (size_t ei : g.entries) {
        if (b.entries[ei].duplicate)
            continue;
        const EntryHeader *e = b.entries[ei].e;
        const char *p = entry_data(e);
        const char *end = p + e->data_len;
        uint32_t rowno = e->first_row;
        while (p < end) {
            const char *nl = static_cast<const char *>(memchr(p, '\n', end - p));
            size_t n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
            rows.push_back(Row{p, n, ei, rowno++});
            p += n;
        }
    }
    return rows;
}

static std::string sqlstate_text(int code) { return std::string(unpack_sql_state(code)); }

// Inserts rows[lo, hi) in a subtransaction; on failure splits the range in halves, down to
// single rows, which go to the dead-letter list. Cost: O(bad rows × log(rows)) subtransactions.
static void insert_bisect(Batch &b, const Group &g, const std::vector<Row> &rows, size_t lo, size_t hi,
                          std::vector<DeadRow> &dead) {
    if (lo >= hi)
        return;
    std::vector<Segment> segs;
    segs.reserve(hi - lo);
    for (size_t i = lo; i < hi; i++)
        segs.push_back(Segment{rows[i].p, rows[i].n});
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    pg_guard([&] { BeginInternalSubTransaction(nullptr); });
    try {
        pg_guard([&] { insert_group(g, segs); });
        pg_guard([&] {
            ReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        });
    } catch (const PgError &err) {
        pg_guard([&] {
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        });
        if (hi - lo == 1) {
            const Row &r = rows[lo];
            std::string raw(r.p, r.n && r.p[r.n - 1] == '\n' ? r.n - 1 : r.n);
            std::string msg = err.data()->message ? err.data()->message : "error";
            if (err.data()->detail)
                msg += std::string(" (") + err.data()->detail + ")";
            dead.push_back(DeadRow{b.entries[r.entry].e, r.rowno, raw, msg, sqlstate_text(err.sqlerrcode())});
            b.entries[r.entry].failed++;
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        insert_bisect(b, g, rows, lo, mid, dead);
        insert_bisect(b, g, rows, mid, hi, dead);
    }
}

static bool is_transient(int code) {
    return code == ERRCODE_T_R_SERIALIZATION_FAILURE || code == ERRCODE_T_R_DEADLOCK_DETECTED ||
           code == ERRCODE_LOCK_NOT_AVAILABLE || code == ERRCODE_QUERY_CANCELED ||
           ERRCODE_TO_CATEGORY(code) == ERRCODE_INSUFFICIENT_RESOURCES ||
           code == ERRCODE_CANNOT_CONNECT_NOW || code == ERRCODE_ADMIN_SHUTDOWN;
}

// Before committing: every backend waiting (cancellably) for rows in this batch must still want
// them. Moves their wait slots from pending to committing; a withdrawn envelope is thrown out.
static void confirm_waiters(const Batch &b) {
    std::vector<std::pair<TransactionId, uint64_t>> must_commit; // xid, envelope
    for (uint64_t pos : b.envelopes) {
        EnvelopeHeader *env = envelope_of(ring(), pos);
        if (env->xid != InvalidTransactionId) {
            TransactionId xid = env->xid;
            if (!pg_guard([&] { return TransactionIdIsInProgress(xid); })) {
                if (!pg_guard([&] { return TransactionIdDidCommit(xid); }))
                    throw WithdrawnEnvelope{pos};
                continue; // committed: nothing to confirm
            }
            must_commit.emplace_back(xid, pos);
        }
        if (env->waiter < 0)
            continue;
        WaitSlot *ws = &shared->waits[env->waiter];
        uint64_t pending = env->waiter_gen << 2 | kWaitPending;
        uint64_t committing = env->waiter_gen << 2 | kWaitCommitting;
        uint64_t cur = pending;
        if (!ws->word.compare_exchange_strong(cur, committing) && cur != committing)
            throw WithdrawnEnvelope{pos};
        if (env->xid != InvalidTransactionId)
            SetLatch(&ProcGlobal->allProcs[env->waiter].procLatch); // "inserted": it may commit now
    }
    // Our commit must follow theirs: wait (on our latch; they set it when they end) until each of
    // those transactions has ended, and leave out the rows of any that rolled back.
    for (auto &mc : must_commit) {
        TransactionId xid = mc.first;
        while (pg_guard([&] { return TransactionIdIsInProgress(xid); }))
            pg_guard([] {
                (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
                ResetLatch(MyLatch);
                CHECK_FOR_INTERRUPTS();
            });
        if (!pg_guard([&] { return TransactionIdDidCommit(xid); }))
            throw WithdrawnEnvelope{mc.second};
    }
}

static void run_in_transaction(const char *activity) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
}

// One attempt at the whole batch. careful = false: each group in one COPY, no subtransactions
// (the fast path). careful = true: bisect failing groups, dead-letter bad rows.
static void attempt_batch(Batch &b, bool careful) {
    pg_guard([&] {
        run_in_transaction(careful ? "isolating bad rows" : "inserting batch");
        // SET CONSTRAINTS ALL IMMEDIATE: a deferred constraint must fail at the insert, where
        // bisection can isolate the row, not at our commit, where the whole batch would fail
        // again on every attempt.
        ConstraintsSetStmt *all_immediate = makeNode(ConstraintsSetStmt);
        all_immediate->constraints = NIL;
        all_immediate->deferred = false;
        AfterTriggerSetState(all_immediate);
    });
    for (auto &er : b.entries)
        er.failed = 0;
    mark_duplicates(b);
    for (const Group &g : b.groups) {
        int sqlstate = 0;
        const char *why = pg_guard([&] { return group_precheck(g, &sqlstate); });
        if (why || careful) {
            std::vector<Row> rows = rows_of(b, g);
            std::vector<DeadRow> dead;
            if (why) {
                pg_guard([&] { record_table_error(table_stats(my_db, g.reloid, true), why); });
                for (const Row &r : rows) {
                    dead.push_back(DeadRow{b.entries[r.entry].e, r.rowno,
                                           std::string(r.p, r.n ? r.n - 1 : 0), why, sqlstate_text(sqlstate)});
                    b.entries[r.entry].failed++;
                }
            } else
                insert_bisect(b, g, rows, 0, rows.size(), dead);
            store_dead_letters(g, dead);
            continue;
        }
        std::vector<Segment> segs;
        for (size_t ei : g.entries)
            if (!b.entries[ei].duplicate)
                segs.push_back(Segment{entry_data(b.entries[ei].e), b.entries[ei].e->data_len});
        if (!segs.empty())
            pg_guard([&] { insert_group(g, segs); });
    }
    log_batch(b);
    confirm_waiters(b);
    pg_guard([&] {
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

static void abort_attempt() {
    pg_guard([] {
        AbortCurrentTransaction();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

// Marks everything done after the commit and tells waiters and the statistics.
static void finish_batch(const Batch &b) {
    TimestampTz now = GetCurrentTimestamp();
    std::map<Oid, std::pair<uint64_t, uint64_t>> per_table; // committed, failed
    std::map<uint64_t, uint64_t> failed_per_env;
    for (const EntryRef &er : b.entries) {
        if (er.duplicate) {
            TableStats *ts = table_stats(my_db, er.e->reloid, true);
            if (ts)
                ts->rows_discarded.fetch_add(er.e->nrows, std::memory_order_relaxed);
            failed_per_env[er.env_pos] += er.failed_before;
            continue;
        }
        auto &t = per_table[er.e->reloid];
        t.first += er.e->nrows - er.failed;
        t.second += er.failed;
        failed_per_env[er.env_pos] += er.failed;
    }
    for (auto &kv : per_table) {
        TableStats *ts = table_stats(my_db, kv.first, true);
        if (!ts)
            continue;
        ts->rows_committed.fetch_add(kv.second.first, std::memory_order_relaxed);
        ts->rows_failed.fetch_add(kv.second.second, std::memory_order_relaxed);
        ts->batches.fetch_add(1, std::memory_order_relaxed);
        ts->last_commit_time.store(now, std::memory_order_relaxed);
    }
    // The worker commits asynchronously: a waiter flushes WAL up to this LSN itself before it
    // returns (concurrent flushes are grouped by PostgreSQL), so the worker never waits for fsync.
    uint64_t lsn = XactLastCommitEnd;
    my_slot->commit_lsn.store(lsn, std::memory_order_release);
    for (uint64_t pos : b.envelopes) {
        EnvelopeHeader *env = envelope_of(ring(), pos);
        uint64_t failed = failed_per_env[pos];
        if (env->waiter >= 0) {
            WaitSlot *ws = &shared->waits[env->waiter];
            if ((ws->word.load(std::memory_order_acquire) >> 2) == env->waiter_gen) {
                if (failed)
                    ws->failed_rows.fetch_add(failed, std::memory_order_release);
                ws->commit_lsn.store(lsn, std::memory_order_release);
            }
        }
        ring()->mark(pos, kReady, kDone);
        wake_waiter(env);
    }
}

static void note_error(const Batch &b, const PgError &e) {
    std::string msg = e.what();
    std::map<Oid, bool> seen;
    for (const Group &g : b.groups) {
        if (seen[g.reloid])
            continue;
        seen[g.reloid] = true;
        record_table_error(table_stats(my_db, g.reloid, true), msg.c_str());
    }
}

static void sleep_ms(long ms) {
    pg_guard([&] {
        (void)WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
        CHECK_FOR_INTERRUPTS();
    });
}

static bool extension_installed() {
    return pg_guard([] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        bool present = OidIsValid(extension_schema());
        CommitTransactionCommand();
        return present;
    });
}

// DROP EXTENSION while rows were queued: there is nowhere to put them any more. They are
// written to the server log (not silently dropped) and marked done.
static void drop_orphaned(Batch &b) {
    ereport(WARNING, (errmsg("pg_ingest is no longer installed in database %u: %llu queued rows are logged "
                             "below and discarded", my_db, (unsigned long long)b.rows)));
    for (EntryRef &er : b.entries) {
        std::string data(entry_data(er.e), er.e->data_len);
        ereport(LOG, (errmsg("pg_ingest discarded rows of ticket %llu for table %u: %s",
                             (unsigned long long)er.e->ticket, er.e->reloid, data.c_str())));
        er.failed = er.e->nrows;
    }
    finish_batch(b);
}

// Retry policy for transient errors: 3 attempts in all (the first and 2 retries), 100 ms before
// the first retry, doubling each time, at most 10 s apart.
constexpr int kMaxRetries = 2;
constexpr long kFirstBackoffMs = 100;
constexpr long kMaxBackoffMs = 10000;

static void process_batch(Batch &b) {
    int attempts = 0;
    bool careful = false;
    long backoff_ms = kFirstBackoffMs;
    for (;;) {
        try {
            attempt_batch(b, careful);
            finish_batch(b);
            return;
        } catch (const WithdrawnEnvelope &w) {
            abort_attempt();
            b.envelopes.erase(std::find(b.envelopes.begin(), b.envelopes.end(), w.pos));
            discard_envelope(w.pos);
            // Rebuild the groups without the withdrawn envelope.
            Batch rebuilt;
            rebuilt.envelopes = b.envelopes;
            for (const Group &g : b.groups) {
                Group ng{g.reloid, g.roleid, g.attnums, {}};
                for (size_t ei : g.entries)
                    if (b.entries[ei].env_pos != w.pos) {
                        ng.entries.push_back(rebuilt.entries.size());
                        rebuilt.entries.push_back(b.entries[ei]);
                    }
                if (!ng.entries.empty())
                    rebuilt.groups.push_back(std::move(ng));
            }
            rebuilt.scan_end = b.scan_end;
            rebuilt.first_pending = b.first_pending;
            b = std::move(rebuilt);
            if (b.envelopes.empty())
                return;
        } catch (const PgError &e) {
            abort_attempt();
            note_error(b, e);
            cached_nsp = InvalidOid;
            if (!extension_installed()) {
                drop_orphaned(b);
                return;
            }
            if (is_transient(e.sqlerrcode()) && attempts < kMaxRetries) {
                attempts++;
                for (const Group &g : b.groups) {
                    TableStats *ts = table_stats(my_db, g.reloid, true);
                    if (ts)
                        ts->retries.fetch_add(1, std::memory_order_relaxed);
                }
                ereport(LOG, (errmsg("pg_ingest: batch failed (%s), retry %d in %ld ms", e.what(), attempts,
                                     backoff_ms)));
                sleep_ms(backoff_ms);
                backoff_ms = std::min(backoff_ms * 2, kMaxBackoffMs);
                continue;
            }
            if (!careful) {
                careful = true;
                continue;
            }
            // Even isolating failed (e.g. the dead-letter table is gone): keep the rows and retry
            // later rather than lose them.
            ereport(LOG, (errmsg("pg_ingest: could not store batch of %llu rows: %s; retrying in 10 s",
                                 (unsigned long long)b.rows, e.what())));
            sleep_ms(kMaxBackoffMs);
            attempts = 0;
            backoff_ms = kFirstBackoffMs;
            careful = false;
        }
    }
}

static void publish_progress(const Batch &b) {
    uint64_t low = std::min(b.first_pending, b.scan_end);
    my_slot->scan_low.store(low, std::memory_order_release);
    my_slot->done_pos.store(low, std::memory_order_release);
    advance_tail();
    ConditionVariableBroadcast(&my_slot->done_cv);
}

static void update_oldest() {
    // Oldest queued age per table: from the first ready envelope of each table past scan_low.
    // At most ten times a second: it walks every table slot.
    static TimestampTz last = 0;
    TimestampTz now = GetCurrentTimestamp();
    if (now - last < 100 * 1000)
        return;
    last = now;
    Ring *r = ring();
    std::map<Oid, int64_t> oldest;
    int budget = 1000;
    for (RingCursor c(r, my_slot->scan_low.load(std::memory_order_relaxed)); c.valid() && budget-- > 0; c.next()) {
        if (c.state() != kReady)
            continue;
        EnvelopeHeader *env = envelope_of(r, c.pos());
        if (env->dboid == my_db) {
            EntryHeader *e = first_entry(r, c.pos());
            for (uint32_t i = 0; i < env->nentries; i++, e = next_entry(e))
                oldest.emplace(e->reloid, env->enqueued_at);
        }
    }
    for (int i = 0; i < shared->ntables; i++) {
        TableStats *ts = &shared->tables[i];
        uint64_t key = ts->key.load(std::memory_order_acquire);
        if (key == 0 || (Oid)(key >> 32) != my_db)
            continue;
        auto it = oldest.find((Oid)(key & 0xffffffff));
        ts->oldest_queued_at.store(it == oldest.end() ? 0 : it->second, std::memory_order_relaxed);
    }
}

// Load-driven batching. Whatever arrived while the previous batch committed forms the next one,
// so under load batches grow by themselves and a lone row is inserted at once. Only when nobody
// waits for the batch (fire-and-forget), it is small, and the measured arrival rate says that
// waiting up to ingest.flush_interval would at least double it, the worker lingers that long.
constexpr long kWaiterLingerUs = 500;

struct LoadMeter {
    double rows_per_ms = 0;
    TimestampTz last = 0;

    void observe(uint64_t rows) {
        TimestampTz now = GetCurrentTimestamp();
        if (last != 0) {
            double ms = std::max(0.05, (now - last) / 1000.0);
            rows_per_ms = 0.8 * rows_per_ms + 0.2 * (rows / ms);
        }
        last = now;
    }

    // How long to let the batch grow before inserting it, in microseconds.
    long linger_us(const Batch &b) const {
        if (b.envelopes.empty() || guc_flush_interval_ms <= 0 || b.rows * 2 >= (uint64_t)guc_batch_rows)
            return 0;
        bool waiters = false;
        for (uint64_t pos : b.envelopes)
            waiters |= envelope_of(ring(), pos)->waiter >= 0;
        // Someone waits: linger only briefly (each waiter pays it in latency), and only when the
        // measured rate says it would at least double the batch.
        long us = waiters ? std::min(kWaiterLingerUs, guc_flush_interval_ms * 1000L) : guc_flush_interval_ms * 1000L;
        double expected = rows_per_ms * us / 1000.0;
        return expected >= (double)b.rows ? us : 0;
    }
};

// ingest.test_worker_delay: pause before the batch, but end the pause as soon as a reload
// changes the setting (tests pause the worker, fill the ring, then release it) or on SIGTERM.
static void test_delay() {
    TimestampTz start = GetCurrentTimestamp();
    for (;;) {
        long left = guc_test_worker_delay_ms - (long)((GetCurrentTimestamp() - start) / 1000);
        if (left <= 0 || got_sigterm)
            return;
        pg_guard([&] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
            if (ConfigReloadPending) {
                ConfigReloadPending = false;
                ProcessConfigFile(PGC_SIGHUP);
            }
        });
    }
}

static void worker_loop() {
    LoadMeter meter;
    TimestampTz last_work = GetCurrentTimestamp();
    uint64_t drain_target = 0;
    bool draining = false;
    for (;;) {
        pg_guard([] {
            CHECK_FOR_INTERRUPTS();
            if (ConfigReloadPending) {
                ConfigReloadPending = false;
                ProcessConfigFile(PGC_SIGHUP);
            }
        });
        if (got_sigterm && !draining) {
            draining = true;
            drain_target = ring()->head.load(std::memory_order_acquire);
            ereport(LOG, (errmsg("pg_ingest worker draining the ring before exit")));
        }
        if (guc_test_worker_delay_ms > 0 && !draining)
            test_delay();
        Batch b = collect();
        meter.observe(b.rows);
        long linger = draining ? 0 : meter.linger_us(b);
        if (linger > 0) {
            pg_usleep(linger);
            b = collect();
        }
        prune_history();
        if (!b.envelopes.empty()) {
            last_work = GetCurrentTimestamp();
            process_batch(b);
            publish_progress(b);
            update_oldest();
            continue;
        }
        publish_progress(b);
        update_oldest();
        if (draining && my_slot->scan_low.load() >= drain_target)
            return;
        if (!draining && guc_worker_idle_timeout_s > 0 && b.first_pending == UINT64_MAX &&
            GetCurrentTimestamp() - last_work > (int64)guc_worker_idle_timeout_s * USECS_PER_SEC &&
            try_idle_exit(my_slot, my_db)) {
            my_slot = nullptr; // given up: nothing to release at exit
            ereport(LOG, (errmsg("pg_ingest worker for database %u exits after %d s idle", my_db,
                                 guc_worker_idle_timeout_s)));
            proc_exit(0); // code 0: not restarted; the next hand-over starts a new worker
        }
        pg_guard([] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        });
    }
}

} // namespace pg_ingest

using namespace pg_ingest;

void pg_ingest_worker_main(Datum arg) {
    int idx = DatumGetInt32(arg);
    Oid dboid;
    memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(dboid));
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, handle_sigterm);
    BackgroundWorkerUnblockSignals();
    // A worker whose database was dropped would fail to connect and be restarted every second
    // forever: after repeated failed starts give the slot up and exit for good (code 0).
    if (idx >= 0 && idx < shared->nworkers) {
        WorkerSlot *w = &shared->workers[idx];
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        bool give_up = (w->state != kSlotFree && w->dboid != dboid) || ++w->start_attempts > 10;
        if (give_up && w->dboid == dboid) {
            w->state = kSlotFree;
            w->dboid = InvalidOid;
            w->start_attempts = 0;
        }
        LWLockRelease(shared->lock);
        if (give_up) {
            ereport(LOG, (errmsg("pg_ingest worker for database %u gives up: it could not connect", dboid)));
            proc_exit(0);
        }
    }
    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    my_db = dboid;
    claim_slot(idx, dboid);
    pgstat_report_appname("pg_ingest worker");
    // Queued rows are COPY text written with these formats (see StableFormats in enqueue.cpp);
    // read them back the same way whatever ALTER DATABASE/ROLE ... SET says.
    SetConfigOption("datestyle", "ISO, MDY", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("intervalstyle", "postgres", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("extra_float_digits", "1", PGC_SUSET, PGC_S_OVERRIDE);
    // Durability comes from the waiters' XLogFlush (see finish_batch), not from this process.
    SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
    ereport(LOG, (errmsg("pg_ingest worker started for database %u", dboid)));

    const char *msg = nullptr;
    std::optional<PgError> pg_error;
    try {
        worker_loop();
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const std::exception &e) {
        msg = pstrdup(e.what());
    } catch (...) {
        msg = "unknown exception";
    }
    if (pg_error)
        rethrow_pg_error(pg_error); // exits with code 1: the postmaster restarts us
    if (msg)
        ereport(ERROR, (errmsg("pg_ingest worker failed: %s", msg)));
    // Drained after SIGTERM. Exit code 1 so that pg_terminate_backend() leads to a restart; during
    // shutdown nothing is restarted anyway.
    proc_exit(1);
}
