// enqueue_sql.cpp — the SQL entry points of the producer side: ingest_enqueue(target, row | rows |
// jsonb), ingest_enqueue_copy(target, bytea, columns, producer_id, batch_seq) and ingest_flush().
// They check the target as the caller, serialize the rows (copy_format.cpp) and append them to the
// transaction buffer (txn_buffer.cpp), which hands them over at commit.
#include "copy_format.hpp"
#include "pg_guard.hpp"
#include "privilege.hpp"
#include "protocol.h"
#include "shmem.hpp"
#include "txn_buffer.hpp"
#include "worker_slots.hpp"

extern "C" {
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

namespace pg_ingest {

// ---------------------------------------------------------------------------------------------
// Target checks, done at enqueue time as the calling role.

// The worker inserts in a transaction of its own and cannot see rows this transaction has not
// committed: a row that references a parent row written earlier in this transaction would fail
// its foreign key there. Refuse it here, where the caller can still act, rather than dead-letter
// it later. Known from this backend's own statistics (track_counts); parents that are partitioned
// tables are not looked into.
static void check_fk_parents_unwritten(Relation rel) {
    // In the worker (a role's trigger enqueues) the rows are taken only after its batch commits,
    // so the parents it wrote will be visible.
    if (am_ingest_worker || !TransactionIdIsValid(GetTopTransactionIdIfAny()))
        return; // this transaction has written nothing
    ListCell *lc;
    foreach (lc, RelationGetFKeyList(rel)) {
        ForeignKeyCacheInfo *fk = (ForeignKeyCacheInfo *)lfirst(lc);
        PgStat_TableStatus *ts = find_tabstat_entry(fk->confrelid);
        bool written = false;
        for (PgStat_TableXactStatus *x = ts ? ts->trans : nullptr; x && !written; x = x->upper)
            written = x->tuples_inserted > 0 || x->tuples_updated > 0;
        if (written)
            ereport(ERROR,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("cannot enqueue rows into \"%s\" after writing to \"%s\" in the same transaction",
                            RelationGetRelationName(rel), get_rel_name(fk->confrelid)),
                     errdetail("\"%s\" references \"%s\"; the pg_ingest worker inserts in its own "
                               "transaction and cannot see rows this transaction has not committed.",
                               RelationGetRelationName(rel), get_rel_name(fk->confrelid)),
                     errhint("Commit the referenced rows first, or insert these rows directly.")));
    }
}

// Opens the target (kept locked AccessShare to the end of the transaction) and checks that it is
// something the worker can insert into on this role's behalf. Row-level security is applied by
// the worker, when it inserts as this role.
static Target open_target(FunctionCallInfo fcinfo, const int16 *attnums, int natts, bool check_priv = true) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("ingest target must not be NULL")));
    Oid reloid = PG_GETARG_OID(0);
    // Privileges first, from the catalog: only then the lock (an INSERT checks before it locks
    // too). check_priv = false: the columns are not known yet; some INSERT right is required now,
    // the exact one is checked per column list.
    check_insert_privilege(reloid, attnums, natts, !check_priv);
    Relation rel = try_relation_open(reloid, AccessShareLock);
    if (!rel)
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", reloid)));
    Target t;
    t.reloid = reloid;
    t.reltype = rel->rd_rel->reltype;
    t.relkind = rel->rd_rel->relkind;
    t.relname = pstrdup(RelationGetRelationName(rel));
    if (t.relkind != RELKIND_RELATION && t.relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR,
                (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("cannot enqueue rows into \"%s\"", t.relname),
                 errdetail("pg_ingest targets must be tables or partitioned tables.")));
    if (IsCatalogRelation(rel))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("cannot enqueue rows into system catalog \"%s\"", t.relname)));
    if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot enqueue rows into temporary table \"%s\"", t.relname),
                        errdetail("The ingest worker runs in its own session and cannot see it.")));
    check_fk_parents_unwritten(rel);
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

// Each line of the bulk form must be exactly one row of COPY text, whatever rows of other calls
// the worker's COPY reads before or after it. COPY text ends the data at an unescaped \. anywhere
// in a line (keeping what came before it, dropping the rest of the group), takes a raw carriage
// return as a line end, and lets a backslash at the end of a line escape the newline (joining the
// next row to this one). Such lines are refused here.
static void check_copy_line(const char *p, const char *stop, uint32 lineno) {
    size_t n = (size_t)(stop - p);
    if (n == 2 && p[0] == '\\' && p[1] == '.')
        ereport(ERROR, (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                        errmsg("line %u of the data is the end-of-data marker \\.", lineno),
                        errhint("Send rows only; pg_ingest ends the data itself.")));
    for (const char *q = p; q < stop; q++) {
        const char *bs = (const char *)memchr(q, '\\', (size_t)(stop - q));
        const char *cr = (const char *)memchr(q, '\r', (size_t)((bs ? bs : stop) - q));
        if (cr)
            ereport(ERROR,
                    (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                     errmsg("line %u of the data contains a carriage return", lineno),
                     errhint("Write a carriage return in a value as \\r, and end lines with \\n only.")));
        if (!bs)
            break;
        if (bs + 1 == stop)
            ereport(ERROR, (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                            errmsg("line %u of the data ends in an unescaped backslash", lineno),
                            errhint("Escape a backslash in a value as \\\\.")));
        if (bs[1] == '.')
            ereport(ERROR, (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                            errmsg("line %u of the data contains the end-of-data marker \\.", lineno),
                            errhint("Escape a backslash in a value as \\\\.")));
        if (bs[1] == '\r')
            ereport(ERROR,
                    (errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
                     errmsg("line %u of the data contains a carriage return", lineno),
                     errhint("Write a carriage return in a value as \\r, and end lines with \\n only.")));
        q = bs + 1; // the escaped character; the loop steps past it
    }
}

static void prepare_call() {
    shmem_require();
    if (IsInParallelMode())
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_TRANSACTION_STATE), errmsg("cannot enqueue rows in parallel mode")));
    if (RecoveryInProgress())
        ereport(ERROR,
                (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("cannot enqueue rows during recovery")));
    // The rows are a write of this transaction, even though a worker performs it.
    if (XactReadOnly)
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot enqueue rows in a read-only transaction")));
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
            ereport(ERROR,
                    (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("row to enqueue must not be NULL")));
        // The row form names every column it writes (by number), so that a column dropped and
        // another added before the worker inserts can never shift values into the wrong column.
        Target t = open_target(fcinfo, nullptr, 0);
        int16 *cols = (int16 *)palloc(sizeof(int16) * MaxHeapAttributeNumber);
        int natts = row_attnums(t.reltype, cols);
        Oid argtype = get_fn_expr_argtype(fcinfo->flinfo, 1);
        uint64 ticket = new_ticket();
        SliceWriter w{&t, cols, natts, ticket};
        w.pinned_formats = true;
        // Built-in column types go as binary tuples: no text to format here or to parse in the
        // worker, and the values are exactly the caller's, whatever the settings.
        if (const uint32 *types = row_binary_types(t.reltype)) {
            uint32 *copy = (uint32 *)palloc(sizeof(uint32) * Max(natts, 1));
            memcpy(copy, types, sizeof(uint32) * natts);
            w.types = copy;
        }
        auto append_row = w.types ? append_composite_row_binary : append_composite_row;
        StringInfoData line;
        initStringInfo(&line);
        Oid elemtype = get_element_type(argtype);
        if (OidIsValid(elemtype)) {
            ArrayType *arr = PG_GETARG_ARRAYTYPE_P(1);
            if (elemtype != t.reltype)
                ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                errmsg("array of %s does not match target table \"%s\"",
                                       format_type_be(elemtype), t.relname),
                                errhint("Pass an array of the table's row type, e.g. ARRAY[...]::%s[].",
                                        t.relname)));
            ArrayIterator it = array_create_iterator(arr, 0, nullptr);
            Datum d;
            bool isnull;
            while (array_iterate(it, &d, &isnull)) {
                if (isnull)
                    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                    errmsg("array element %u is NULL", w.rows + 1)));
                append_row(&line, t.reltype, t.relname, DatumGetHeapTupleHeader(d));
                w.add_row(&line);
            }
            array_free_iterator(it);
        } else {
            if (!type_is_rowtype(argtype))
                ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                errmsg("cannot enqueue a value of type %s into \"%s\"",
                                       format_type_be(argtype), t.relname),
                                errhint("Pass a row of the table's type, e.g. ROW(...)::%s.", t.relname)));
            append_row(&line, t.reltype, t.relname, PG_GETARG_HEAPTUPLEHEADER(1));
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
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("JSON object %u has no keys", *rowno + 1)));
    bool same = *writer && *natts == n && memcmp(*attnums, cols, sizeof(int16) * n) == 0;
    if (!same) {
        check_insert_privilege(t.reloid, cols, n);
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
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("document to enqueue must not be NULL")));
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
            ereport(ERROR,
                    (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("data to enqueue must not be NULL")));
        if (PG_ARGISNULL(3) != PG_ARGISNULL(4))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("producer_id and batch_seq must be given together")));
        int16 cols[MaxHeapAttributeNumber];
        int natts = 0;
        if (!PG_ARGISNULL(0) && !PG_ARGISNULL(2)) {
            Oid reloid = PG_GETARG_OID(0);
            char *relname = get_rel_name(reloid);
            if (!relname)
                ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                                errmsg("relation with OID %u does not exist", reloid)));
            Datum *names;
            bool *nulls;
            int n;
            deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
            if (n > MaxHeapAttributeNumber)
                ereport(ERROR, (errcode(ERRCODE_TOO_MANY_COLUMNS), errmsg("too many columns")));
            for (int i = 0; i < n; i++) {
                if (nulls[i])
                    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                    errmsg("column names must not be NULL")));
                int16 att = column_attnum(reloid, relname, TextDatumGetCString(names[i]));
                for (int j = 0; j < natts; j++)
                    if (cols[j] == att)
                        ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN),
                                        errmsg("column \"%s\" specified more than once",
                                               TextDatumGetCString(names[i]))));
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
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("producer_id must be 1 to %d bytes", PGI_PRODUCER_ID_MAX_BYTES)));
        uint64 ticket = new_ticket();
        SliceWriter w{&t, cols, natts, ticket, producer, batch_seq};
        while (p < end) {
            const char *nl = (const char *)memchr(p, '\n', end - p);
            const char *stop = nl ? nl : end;
            check_copy_line(p, stop, w.rows + 1);
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
        if (am_ingest_worker)
            PG_RETURN_BOOL(false); // called by a role's code in the worker: it would wait for itself
        int64 timeout_ms = 30000;
        if (!PG_ARGISNULL(0)) {
            Interval *iv = PG_GETARG_INTERVAL_P(0);
            timeout_ms =
                (int64)(iv->time / 1000 + (int64)iv->day * 86400000 + (int64)iv->month * 30 * 86400000);
        }
        uint64 target = shared->ring->head.load(std::memory_order_acquire);
        if (shared->ring->tail.load(std::memory_order_acquire) >= target)
            PG_RETURN_BOOL(true);
        ensure_worker(MyDatabaseId);
        TimestampTz start = GetCurrentTimestamp();
        bool ok = true;
        // Every worker of the database (each drains some lanes) must have got past the target.
        for (;;) {
            WorkerSlot *w = nullptr;
            uint64 done = db_done_pos(MyDatabaseId, &w);
            if (!w || done >= target || shared->ring->tail.load(std::memory_order_acquire) >= target)
                break;
            int64 waited = (GetCurrentTimestamp() - start) / 1000;
            if (waited >= timeout_ms) {
                ok = false;
                break;
            }
            wake_workers(MyDatabaseId);
            ConditionVariableTimedSleep(&w->done_cv, Min(100, timeout_ms - waited), PG_WAIT_EXTENSION);
        }
        ConditionVariableCancelSleep();
        if (ok) {
            uint64 lsn = db_commit_lsn(MyDatabaseId);
            if (lsn != 0)
                XLogFlush((XLogRecPtr)lsn);
        }
        PG_RETURN_BOOL(ok);
    });
}
