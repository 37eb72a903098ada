// insert.cpp — the insert path: a group's rows go into its table through PostgreSQL's own COPY
// FROM machinery (BeginCopyFrom with a data-source callback + CopyFrom: multi-row heap inserts,
// indexes, defaults, constraints, triggers, partition routing, WAL), as the role that enqueued
// them; through a staging table and INSERT ... SELECT when row-level security applies to that
// role. Bad rows are isolated by bisecting the group in subtransactions.
#include "insert.hpp"

#include "copy_format.hpp"
#include "ledger.hpp"
#include "privilege.hpp"
#include "settings.hpp"
#include "shmem.hpp"

extern "C" {
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/copy.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "catalog/pg_attribute.h"
#include "utils/guc.h"
}

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// COPY data source: the rows of the group being inserted, as a list of byte ranges.

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
        return psprintf("permission denied for table %s (role %s)", relname,
                        GetUserNameFromId(g.roleid, true));
    // Columns are named by number at enqueue: one dropped since then (perhaps replaced by a new
    // one) must not receive another column's value.
    for (int16_t a : g.attnums) {
        HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(g.reloid), Int16GetDatum(a));
        bool dropped = !HeapTupleIsValid(tup) || ((Form_pg_attribute)GETSTRUCT(tup))->attisdropped;
        if (HeapTupleIsValid(tup))
            ReleaseSysCache(tup);
        if (dropped) {
            *sqlstate = ERRCODE_UNDEFINED_COLUMN;
            return psprintf("column %d of table %s was dropped after these rows were enqueued", a, relname);
        }
    }
    return nullptr;
}

// COPY the given byte ranges into rel (PostgreSQL errors propagate: call inside pg_guard).
// Binary groups: segs start with kBinaryCopyHeader.
static uint64 copy_rows(Relation rel, List *attnames, const std::vector<Segment> &segs, bool binary) {
    List *options = copy_input_options(binary);
    ParseState *pstate = make_parsestate(nullptr);
    // CopyFrom builds its executor state from the parse state's range table.
    ParseNamespaceItem *nsitem =
        addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, nullptr, false, false);
    nsitem->p_rte->requiredPerms = ACL_INSERT;
    src_segments = &segs;
    src_index = src_offset = 0;
    CopyFromState cstate =
        BeginCopyFrom(pstate, rel, nullptr, nullptr, false, copy_source, attnames, options);
    uint64 n = CopyFrom(cstate);
    EndCopyFrom(cstate);
    free_parsestate(pstate);
    return n;
}

// Rows per COPY. PostgreSQL 15's CopyFrom makes a slot per buffered row (up to 1000) and each pins
// the table's tuple descriptor in the transaction's resource owner; beyond 64 entries that owner
// keeps them in a hash table where identical pointers probe one chain, so pinning and releasing
// n slots costs O(n^2): 42% of the worker's CPU in batches of 4,000 rows (docs/PERFORMANCE.md).
// At most 64 rows per COPY keep the owner's plain array, where both are O(1).
constexpr int kRowsPerCopy = 60;

// The byte ranges cut into COPYs of at most kRowsPerCopy rows each (binary ones each starting
// with the header). Plain C++, called outside pg_guard: a PostgreSQL error in the COPYs must not
// longjmp over these vectors.
static std::vector<std::vector<Segment>> chunk_segments(const std::vector<Segment> &segs, bool binary) {
    std::vector<std::vector<Segment>> chunks;
    std::vector<Segment> chunk;
    int rows = 0;
    auto flush = [&] {
        if (rows > 0)
            chunks.push_back(std::move(chunk));
        chunk.clear();
        rows = 0;
        if (binary)
            chunk.push_back(Segment{kBinaryCopyHeader, kBinaryCopyHeaderLen});
    };
    flush();
    for (size_t i = binary ? 1 : 0; i < segs.size(); i++) {
        const char *p = segs[i].p, *end = p + segs[i].n, *start = p;
        while (p < end) {
            size_t n;
            if (binary) {
                n = binary_row_length(p, end);
                if (n == 0)
                    n = (size_t)(end - p); // malformed: COPY rejects it
            } else {
                const char *nl = static_cast<const char *>(memchr(p, '\n', end - p));
                n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
            }
            p += n;
            if (++rows == kRowsPerCopy) {
                chunk.push_back(Segment{start, (size_t)(p - start)});
                start = p;
                flush();
            }
        }
        if (p > start)
            chunk.push_back(Segment{start, (size_t)(p - start)});
    }
    flush();
    return chunks;
}

// COPY the rows into rel, chunk by chunk, or all in one COPY when the table has statement-level
// INSERT triggers (they fire once per COPY, as before). Call inside pg_guard; holds no C++ objects.
static void copy_rows_chunked(Relation rel, List *attnames, const std::vector<Segment> &segs,
                              const std::vector<std::vector<Segment>> &chunks, bool binary) {
    TriggerDesc *td = rel->trigdesc;
    if (td &&
        (td->trig_insert_before_statement || td->trig_insert_after_statement || td->trig_insert_new_table)) {
        copy_rows(rel, attnames, segs, binary);
        return;
    }
    for (const std::vector<Segment> &chunk : chunks)
        copy_rows(rel, attnames, chunk, binary);
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
                            errmsg("column %d of relation \"%s\" no longer exists", a,
                                   RelationGetRelationName(rel))));
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

// Runs the role's code (f: the COPY or INSERT that fires its triggers, defaults, domain checks,
// policies, index expressions) the way PostgreSQL runs a table owner's code in maintenance
// commands (CREATE INDEX, REFRESH MATERIALIZED VIEW):
//  * as the enqueuing role, in a security-restricted operation (no SET ROLE, no temporary
//    objects, no PREPARE, ... that could outlive the group in this long-lived session);
//  * at a GUC nest level of its own, under the settings the rows were enqueued with; whatever the
//    code sets (set_config(..., false) included) is undone when the group ends;
// PostgreSQL errors propagate (call inside pg_guard): the (sub)transaction's abort restores the
// user id and the settings.
template <typename F> static void run_as_role(const Group &g, F &&f) {
    Oid save_userid;
    int save_sec;
    GetUserIdAndSecContext(&save_userid, &save_sec);
    int nest = NewGUCNestLevel();
    apply_input_settings(g.settings.data(), (uint32_t)g.settings.size());
    // SET CONSTRAINTS is transaction state, not a setting: a role's code that deferred them must
    // not defer the next role's (its deferred triggers would then fire inside that role's
    // restricted operation and fail). Every group starts with all constraints immediate.
    ConstraintsSetStmt *all_immediate = makeNode(ConstraintsSetStmt);
    all_immediate->constraints = NIL;
    all_immediate->deferred = false;
    AfterTriggerSetState(all_immediate);
    SetUserIdAndSecContext(g.roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    running_user_code = 1;
    f();
    running_user_code = 0;
    SetUserIdAndSecContext(save_userid, save_sec);
    AtEOXact_GUC(false, nest);
}

volatile sig_atomic_t running_user_code = 0;
volatile sig_atomic_t group_overdue = 0;
static TimeoutId overdue_timeout = MAX_TIMEOUTS;

// Fires with the group's statement timeout. A role's code may catch that cancel and go on; a
// shutdown requested meanwhile (or later) then ends the worker instead of waiting for it.
static void group_overdue_handler() {
    group_overdue = 1;
    if (worker_shutdown_requested) {
        ProcDiePending = true;
        InterruptPending = true;
        SetLatch(MyLatch);
    }
}

// The group running now (set before its COPY), for the poison record below.
static WorkerSlot *poison_slot = nullptr;
static volatile uint64 current_ticket = 0;
static volatile Oid current_rel = InvalidOid, current_role = InvalidOid;
static TimeoutId poison_timeout = MAX_TIMEOUTS;
static bool poison_met = false;

// Fires a grace period after the group's statement timeout while the group still runs: its code
// caught the cancel (EXCEPTION WHEN query_canceled) and went on. Nothing inside the worker can
// stop it any more, so the worker ends itself (FATAL at the next interrupt check, which no
// handler catches) after recording the group in its slot: the restarted worker dead-letters that
// group with SQLSTATE 57014 instead of running it again, and the other rows go on.
static void group_poison_handler() {
    if (!running_user_code || !poison_slot)
        return;
    poison_slot->poison_rel = current_rel;
    poison_slot->poison_role = current_role;
    poison_slot->poison_ticket = current_ticket;
    ProcDiePending = true;
    InterruptPending = true;
    SetLatch(MyLatch);
}

void register_group_timeout(WorkerSlot *slot) {
    poison_slot = slot;
    overdue_timeout = RegisterTimeout(USER_TIMEOUT, group_overdue_handler);
    poison_timeout = RegisterTimeout(USER_TIMEOUT, group_poison_handler);
}

bool poison_group_met() {
    return poison_met;
}

void clear_poison_group() {
    poison_met = false;
    if (poison_slot)
        poison_slot->poison_ticket = 0;
}

// Whether g is the group recorded in the slot (see group_poison_handler).
static bool is_poison_group(const WorkerBatch &b, const Group &g) {
    if (!poison_slot || poison_slot->poison_ticket == 0 || poison_slot->poison_rel != g.reloid ||
        poison_slot->poison_role != g.roleid)
        return false;
    for (size_t ei : g.entries)
        if (b.entries[ei].e->ticket == poison_slot->poison_ticket)
            return true;
    return false;
}

void end_group_timeout() {
    running_user_code = 0;
    group_overdue = 0;
    if (overdue_timeout != MAX_TIMEOUTS && get_timeout_active(overdue_timeout))
        disable_timeout(overdue_timeout, false);
    if (poison_timeout != MAX_TIMEOUTS && get_timeout_active(poison_timeout))
        disable_timeout(poison_timeout, false);
    // A timeout that fired after the group's last interrupt check must not cancel whatever runs
    // next (another role's group): clear its pending cancel along with it.
    bool fired = get_timeout_indicator(STATEMENT_TIMEOUT, true);
    if (get_timeout_active(STATEMENT_TIMEOUT))
        disable_timeout(STATEMENT_TIMEOUT, false);
    if (fired)
        QueryCancelPending = false;
}

// Row-level security applies to the enqueuing role: COPY FROM would bypass its policies, so the
// rows go through a temporary staging table and an INSERT ... SELECT run as that role, which
// applies WITH CHECK policies exactly as the role's own INSERT would. The staging COPY runs as
// the role too: its columns have the target's types, so domain checks and type input functions
// run there, and must not run with the worker's superuser rights. OVERRIDING SYSTEM VALUE: COPY,
// the path without RLS, also takes values for GENERATED ALWAYS identity columns.
// Nothing here can be planted in advance: each call creates a new staging table under a random
// name (fails if the name exists), before any user code runs, and user code cannot create
// temporary objects in this session (security-restricted operation).
static void insert_with_rls(const Group &g, Relation rel, List *attnames, const std::vector<Segment> &segs,
                            bool binary) {
    char *cols = column_list_sql(attnames);
    uint64 nonce = 0;
    if (!pg_strong_random(&nonce, sizeof(nonce)))
        ereport(ERROR, (errmsg("pg_ingest: could not generate a random staging table name")));
    char *stage = psprintf("ingest_stage_%016llx", (unsigned long long)nonce);
    char *target = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                              RelationGetRelationName(rel));
    const char *role = quote_identifier(GetUserNameFromId(g.roleid, false));
    SPI_connect();
    SPI_execute(psprintf("CREATE TEMP TABLE %s ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA", stage, cols,
                         target),
                false, 0);
    SPI_execute(psprintf("GRANT SELECT, INSERT ON pg_temp.%s TO %s", stage, role), false, 0);
    Relation srel =
        table_open(get_relname_relid(stage, LookupExplicitNamespace("pg_temp", false)), RowExclusiveLock);
    run_as_role(g, [&] {
        copy_rows(srel, attnames, segs, binary);
        CommandCounterIncrement();
        SPI_execute(psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.%s", target,
                             cols, cols, stage),
                    false, 0);
    });
    table_close(srel, NoLock);
    SPI_finish();
}

// Inserts the given byte ranges into the group's table as the enqueuing role, within
// ingest.group_timeout (the table's lock included), so a lock held elsewhere or a slow trigger
// cannot stall the database's worker for longer: the statement-timeout error makes the group
// retry, then fail. The caller's error path ends the timeout (end_group_timeout).
static void insert_group(const Group &g, const std::vector<Segment> &segs,
                         const std::vector<std::vector<Segment>> &chunks, bool binary) {
    if (guc_group_timeout_ms > 0) {
        enable_timeout_after(STATEMENT_TIMEOUT, guc_group_timeout_ms);
        if (overdue_timeout != MAX_TIMEOUTS)
            enable_timeout_after(overdue_timeout, guc_group_timeout_ms);
        // Grace after the cancel: as long again, at most 10 s more.
        if (poison_timeout != MAX_TIMEOUTS)
            enable_timeout_after(poison_timeout, guc_group_timeout_ms + Min(guc_group_timeout_ms, 10000));
    }
    Relation rel = table_open(g.reloid, RowExclusiveLock);
    List *attnames = group_attnames(g, rel);
    if (check_enable_rls(g.reloid, g.roleid, false) == RLS_ENABLED)
        insert_with_rls(g, rel, attnames, segs, binary);
    else
        run_as_role(g, [&] { copy_rows_chunked(rel, attnames, segs, chunks, binary); });
    table_close(rel, NoLock);
    end_group_timeout();
}

// The group's rows one by one: COPY text lines, or binary tuples (a malformed rest is one row,
// which COPY then rejects).
static std::vector<QueuedRow> rows_of(const WorkerBatch &b, const Group &g) {
    std::vector<QueuedRow> rows;
    bool binary = !g.types.empty();
    for (size_t ei : g.entries) {
        if (b.entries[ei].duplicate)
            continue;
        const EntryHeader *e = b.entries[ei].e;
        const char *p = entry_data(e);
        const char *end = p + e->data_len;
        uint32_t rowno = e->first_row;
        while (p < end) {
            size_t n;
            if (binary) {
                n = binary_row_length(p, end);
                if (n == 0)
                    n = (size_t)(end - p);
            } else {
                const char *nl = static_cast<const char *>(memchr(p, '\n', end - p));
                n = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);
            }
            rows.push_back(QueuedRow{p, n, ei, rowno++});
            p += n;
        }
    }
    return rows;
}

// A binary row as the COPY text line the row form writes (pinned formats), without a newline.
// PostgreSQL errors come back as PgError.
static std::string binary_row_text(const Group &g, const char *p, size_t n) {
    StableFormats formats; // outside the guard: restored however it ends
    char *data = nullptr;
    int len = 0;
    pg_guard([&] {
        StringInfoData buf;
        initStringInfo(&buf);
        // Written under the group's own settings (TimeZone, lc_monetary, search_path for reg*
        // types), which are also those the text is parsed with when the rows are inserted as text.
        int nest = NewGUCNestLevel();
        PG_TRY();
        {
            apply_input_settings(g.settings.data(), (uint32_t)g.settings.size());
            binary_row_to_text(&buf, p, n, g.types.data(), (int)g.types.size());
        }
        PG_FINALLY();
        { AtEOXact_GUC(false, nest); }
        PG_END_TRY();
        data = buf.data;
        len = buf.len;
    });
    std::string out(data, (size_t)len);
    pg_guard([&] { pfree(data); });
    return out;
}

// What a dead letter keeps of a row: the COPY text line (without its newline). A binary row is
// rendered as text; if even that fails, its bytes are kept as they are.
static std::string dead_raw(const Group &g, bool binary, const QueuedRow &r) {
    if (binary) {
        try {
            return binary_row_text(g, r.p, r.n);
        } catch (const PgError &) {
            return std::string(r.p, r.n);
        }
    }
    return std::string(r.p, r.n && r.p[r.n - 1] == '\n' ? r.n - 1 : r.n);
}

// Whether the group's columns still have the types its binary rows were sent as (a column's type
// may have been changed after they were enqueued: those rows are then read back as text).
static bool types_current(const Group &g) {
    for (size_t i = 0; i < g.attnums.size() && i < g.types.size(); i++) {
        HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(g.reloid), Int16GetDatum(g.attnums[i]));
        if (!HeapTupleIsValid(tup))
            return false;
        bool same = ((Form_pg_attribute)GETSTRUCT(tup))->atttypid == g.types[i];
        ReleaseSysCache(tup);
        if (!same)
            return false;
    }
    return g.attnums.size() == g.types.size();
}

static std::string sqlstate_text(int code) {
    return std::string(unpack_sql_state(code));
}

// Inserts rows[lo, hi) in a subtransaction; on failure splits the range in halves, down to
// single rows, which go to the dead-letter list. Cost: O(bad rows × log(rows)) subtransactions.
static void insert_bisect(WorkerBatch &b, const Group &g, bool binary, const std::vector<QueuedRow> &rows,
                          size_t lo, size_t hi, std::vector<DeadRow> &dead) {
    if (lo >= hi)
        return;
    std::vector<Segment> segs;
    segs.reserve(hi - lo + 1);
    if (binary)
        segs.push_back(Segment{kBinaryCopyHeader, kBinaryCopyHeaderLen});
    for (size_t i = lo; i < hi; i++)
        segs.push_back(Segment{rows[i].p, rows[i].n});
    std::vector<std::vector<Segment>> chunks = chunk_segments(segs, binary);
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    pg_guard([&] { BeginInternalSubTransaction(nullptr); });
    try {
        pg_guard([&] { insert_group(g, segs, chunks, binary); });
        pg_guard([&] {
            ReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        });
    } catch (const PgError &err) {
        end_group_timeout();
        pg_guard([&] {
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        });
        // A single row, or a group that ran out of ingest.group_timeout (each half would wait as
        // long again): the rows go to the dead-letter table with the error.
        if (hi - lo == 1 || err.sqlerrcode() == ERRCODE_QUERY_CANCELED) {
            std::string msg = err.data()->message ? err.data()->message : "error";
            if (err.data()->detail)
                msg += std::string(" (") + err.data()->detail + ")";
            for (size_t i = lo; i < hi; i++) {
                const QueuedRow &r = rows[i];
                dead.push_back(DeadRow{b.entries[r.entry].e, r.rowno, dead_raw(g, binary, r), msg,
                                       sqlstate_text(err.sqlerrcode())});
                b.entries[r.entry].failed++;
            }
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        insert_bisect(b, g, binary, rows, lo, mid, dead);
        insert_bisect(b, g, binary, rows, mid, hi, dead);
    }
}

void insert_group_rows(WorkerBatch &b, const Group &g, bool isolate_bad_rows) {
    int sqlstate = 0;
    const char *why = nullptr;
    if (is_poison_group(b, g)) {
        poison_met = true;
        sqlstate = ERRCODE_QUERY_CANCELED;
        why = "its code went on past ingest.group_timeout after the cancel (it caught query_canceled); the "
              "worker "
              "ended itself and did not run it again";
    } else
        why = pg_guard([&] { return group_precheck(g, &sqlstate); });
    current_rel = g.reloid;
    current_role = g.roleid;
    current_ticket = b.entries[g.entries.front()].e->ticket;
    bool binary = !g.types.empty();
    std::vector<DeadRow> dead;
    // Binary rows whose columns changed type since they were enqueued: read back as the text the
    // row form would have written, then inserted as text (parsed as the new types).
    std::string converted;
    std::vector<QueuedRow> converted_rows;
    bool was_converted = false;
    if (binary && !why && !pg_guard([&] { return types_current(g); })) {
        was_converted = true;
        std::vector<std::pair<size_t, size_t>> spans; // offsets into converted
        std::vector<QueuedRow> bin = rows_of(b, g);
        for (const QueuedRow &r : bin) {
            try {
                std::string line = binary_row_text(g, r.p, r.n);
                spans.emplace_back(converted.size(), line.size() + 1);
                converted += line;
                converted += '\n';
                converted_rows.push_back(r);
            } catch (const PgError &err) {
                dead.push_back(DeadRow{b.entries[r.entry].e, r.rowno, std::string(r.p, r.n),
                                       err.data()->message ? err.data()->message : "error",
                                       sqlstate_text(err.sqlerrcode())});
                b.entries[r.entry].failed++;
            }
        }
        for (size_t i = 0; i < converted_rows.size(); i++) {
            converted_rows[i].p = converted.data() + spans[i].first;
            converted_rows[i].n = spans[i].second;
        }
        binary = false;
        isolate_bad_rows = true; // row by row from here: the text path below
    }
    if (why || isolate_bad_rows) {
        std::vector<QueuedRow> rows = was_converted ? converted_rows : rows_of(b, g);
        if (why) {
            pg_guard([&] { record_table_error(table_stats(MyDatabaseId, g.reloid, true), why); });
            for (const QueuedRow &r : rows) {
                dead.push_back(DeadRow{b.entries[r.entry].e, r.rowno, dead_raw(g, binary, r), why,
                                       sqlstate_text(sqlstate)});
                b.entries[r.entry].failed++;
            }
        } else
            insert_bisect(b, g, binary, rows, 0, rows.size(), dead);
        store_dead_letters(g, dead);
        return;
    }
    std::vector<Segment> segs;
    if (binary)
        segs.push_back(Segment{kBinaryCopyHeader, kBinaryCopyHeaderLen});
    for (size_t ei : g.entries)
        if (!b.entries[ei].duplicate)
            segs.push_back(Segment{entry_data(b.entries[ei].e), b.entries[ei].e->data_len});
    if (segs.size() > (binary ? 1u : 0u)) {
        std::vector<std::vector<Segment>> chunks = chunk_segments(segs, binary);
        pg_guard([&] { insert_group(g, segs, chunks, binary); });
    }
}

} // namespace pg_ingest
