// ledger.cpp — the worker's bookkeeping in the extension's own tables, always through plans kept
// per extension schema (see kept_plan): exactly-once records (ingest_producer_batch,
// ingest_resend), the batch log (ingest_batch_log, for ingest_ticket_status), dead letters
// (ingest_dead_letter), and pruning them after ingest.ticket_retention and
// ingest.dead_letter_retention. Every record carries the enqueuing role's OID (role_oid).
#include "ledger.hpp"

#include "settings.hpp"
#include "shmem.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
}

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace pg_ingest {

// The schema pg_ingest was created in (PostgreSQL 15 exports no helper for this).
Oid extension_schema() {
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

// The extension's schema, looked up once and again after any failed batch (it may have been
// dropped or recreated).
static Oid cached_nsp = InvalidOid;
// Bumped whenever the schema is looked up again (after a failed batch): kept plans are prepared
// anew then, so that statements written for an older layout of the tables (ALTER EXTENSION
// UPDATE) are not replanned forever from the old text.
static uint64_t nsp_epoch = 0;

static Oid ext_nsp() {
    if (!OidIsValid(cached_nsp)) {
        cached_nsp = extension_schema();
        nsp_epoch++;
    }
    if (!OidIsValid(cached_nsp))
        ereport(ERROR, (errmsg("pg_ingest: the extension is not installed in database %u", MyDatabaseId)));
    return cached_nsp;
}

void forget_extension_schema() {
    cached_nsp = InvalidOid;
}

static const char *ext_table(const char *name) {
    return quote_qualified_identifier(get_namespace_name(ext_nsp()), name);
}

// A plan for one of the worker's bookkeeping statements (sql_fmt with %s for the extension
// table), prepared once per extension schema (and again after each new schema lookup, see
// nsp_epoch) and kept across transactions. Call under SPI.
struct KeptPlan {
    Oid nsp = InvalidOid;
    uint64_t epoch = 0;
    SPIPlanPtr plan = nullptr;
};

static SPIPlanPtr kept_plan(KeptPlan &kp, const char *sql_fmt, const char *table, int nargs, Oid *types) {
    Oid nsp = ext_nsp();
    if (kp.plan && kp.nsp == nsp && kp.epoch == nsp_epoch)
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
    kp.epoch = nsp_epoch;
    return p;
}

// Exactly-once batches: a (role, producer_id, batch_seq) is committed at most once. Another slice
// of the same call (same ticket) is not a duplicate; a resend (new ticket) is. Keys are the
// enqueuing role's (a key of role 0 was recorded before 0.2.0 and matches every role). Runs
// inside the batch transaction, so the record commits or rolls back with the rows.
void mark_duplicates(WorkerBatch &b) {
    bool any = false;
    for (const EntryRef &er : b.entries)
        any |= (er.e->flags & kEntryHasProducer) != 0;
    if (!any)
        return;
    pg_guard([&] {
        static KeptPlan check_plan, insert_plan, resend_plan, dead_plan;
        Oid types[4] = {TEXTOID, INT8OID, INT8OID, OIDOID};
        Oid resend_types[3] = {INT8OID, INT8OID, OIDOID};
        Oid check_types[3] = {TEXTOID, INT8OID, OIDOID};
        SPI_connect();
        SPIPlanPtr resend =
            kept_plan(resend_plan,
                      "INSERT INTO %s (ticket, original_ticket, role_oid) VALUES ($1, $2, $3) "
                      "ON CONFLICT DO NOTHING",
                      "ingest_resend", 3, resend_types);
        SPIPlanPtr dead =
            kept_plan(dead_plan, "SELECT pg_catalog.count(*) FROM %s WHERE ticket OPERATOR(pg_catalog.=) $1",
                      "ingest_dead_letter", 1, resend_types);
        SPIPlanPtr check =
            kept_plan(check_plan,
                      "SELECT ticket FROM %s WHERE role_oid OPERATOR(pg_catalog.=) ANY "
                      "(ARRAY[$3, 0::pg_catalog.oid]) AND producer_id OPERATOR(pg_catalog.=) $1 "
                      "AND batch_seq OPERATOR(pg_catalog.=) $2 ORDER BY role_oid DESC",
                      "ingest_producer_batch", 3, check_types);
        SPIPlanPtr insert = kept_plan(
            insert_plan, "INSERT INTO %s (producer_id, batch_seq, ticket, role_oid) VALUES ($1, $2, $3, $4)",
            "ingest_producer_batch", 4, types);
        for (EntryRef &er : b.entries) {
            er.duplicate = false;
            if (!(er.e->flags & kEntryHasProducer))
                continue;
            Datum vals[4] = {
                PointerGetDatum(cstring_to_text_with_len(entry_producer(er.e), er.e->producer_len)),
                Int64GetDatum(er.e->batch_seq), Int64GetDatum((int64)er.e->ticket),
                ObjectIdGetDatum(er.e->roleid)};
            Datum check_vals[3] = {vals[0], vals[1], vals[3]};
            // Not read-only: each check must see what this batch inserted before it.
            SPI_execute_plan(check, check_vals, nullptr, false, 1);
            if (SPI_processed > 0) {
                bool isnull;
                int64 seen =
                    DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
                er.duplicate = (uint64_t)seen != er.e->ticket;
                if (er.duplicate) {
                    // Remember the resend, and tell its caller what the original lost.
                    Datum rv[3] = {Int64GetDatum((int64)er.e->ticket), Int64GetDatum(seen),
                                   ObjectIdGetDatum(er.e->roleid)};
                    SPI_execute_plan(resend, rv, nullptr, false, 0);
                    SPI_execute_plan(dead, &rv[1], nullptr, true, 1);
                    er.failed_before = (uint32_t)DatumGetInt64(
                        SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
                }
            } else
                SPI_execute_plan(insert, vals, nullptr, false, 0);
        }
        SPI_finish();
    });
}

// One row per (batch, enqueuing role) in ingest_batch_log: which of the role's tickets it
// committed (for ingest_ticket_status, which answers only for the ticket's role).
void log_batch(const WorkerBatch &b) {
    std::map<Oid, std::pair<std::vector<uint64_t>, uint64_t>> per_role; // tickets, rows
    for (const EntryRef &er : b.entries) {
        auto &r = per_role[(Oid)er.e->roleid];
        r.first.push_back(er.e->ticket);
        r.second += er.e->nrows;
    }
    for (auto &kv : per_role) {
        std::vector<uint64_t> &tickets = kv.second.first;
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
        Oid role = kv.first;
        uint64_t rows = kv.second.second;
        pg_guard([&] {
            static KeptPlan plan;
            Oid types[5] = {INT8OID, INT8OID, INT8OID, TEXTOID, OIDOID};
            Datum vals[5] = {Int64GetDatum((int64)rows), Int64GetDatum((int64)tickets.front()),
                             Int64GetDatum((int64)tickets.back()), CStringGetTextDatum(ranges.c_str()),
                             ObjectIdGetDatum(role)};
            SPI_connect();
            SPI_execute_plan(kept_plan(plan,
                                       "INSERT INTO %s (rows, first_ticket, last_ticket, tickets, role_oid) "
                                       "VALUES ($1, $2, $3, $4::pg_catalog.int8multirange, $5)",
                                       "ingest_batch_log", 5, types),
                             vals, nullptr, false, 0);
            SPI_finish();
        });
    }
}

static void prune_history_now();

// Drops batch-log and producer records older than ingest.ticket_retention and dead letters older
// than ingest.dead_letter_retention, and frees the statistics slots of dropped tables (every few
// minutes, and at once when this worker found the statistics slots all taken).
// Housekeeping only: a failure (e.g. an extension whose tables do not match this library) is
// logged and retried next time; it must not stop the worker from draining the ring.
void prune_history() {
    static TimestampTz last = 0;
    TimestampTz now = GetCurrentTimestamp();
    // Slots all taken: reclaim now, but at most every 10 s (they may all belong to live tables).
    bool full = now - last >= 10 * USECS_PER_SEC && take_table_stats_full();
    if (last != 0 && now - last < 5 * 60 * USECS_PER_SEC && !full)
        return;
    last = now;
    try {
        prune_history_now();
    } catch (const PgError &e) {
        abort_batch_transaction();
        ereport(WARNING, (errmsg("pg_ingest: pruning old ticket history failed: %s", e.what()),
                          errhint("If pg_ingest was upgraded, run ALTER EXTENSION pg_ingest UPDATE.")));
    }
}

// Under SPI: deletes the rows of an extension table whose time column is older than seconds.
// Schema-qualified throughout, like all of the worker's own SQL.
static void delete_older_than(const char *table, const char *column, int seconds) {
    Oid types[1] = {TEXTOID};
    Datum vals[1] = {CStringGetTextDatum(psprintf("%d seconds", seconds))};
    // OPERATOR() has no precedence of its own: parenthesize.
    SPI_execute_with_args(psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.<) (pg_catalog.now() "
                                   "OPERATOR(pg_catalog.-) $1::pg_catalog.interval)",
                                   ext_table(table), column),
                          1, types, vals, nullptr, false, 0);
}

static void prune_history_now() {
    pg_guard([&] {
        start_batch_transaction("pruning history");
        SPI_connect();
        delete_older_than("ingest_batch_log", "committed_at", guc_ticket_retention_s);
        delete_older_than("ingest_producer_batch", "committed_at", guc_ticket_retention_s);
        delete_older_than("ingest_resend", "committed_at", guc_ticket_retention_s);
        if (guc_dead_letter_retention_s > 0)
            delete_older_than("ingest_dead_letter", "failed_at", guc_dead_letter_retention_s);
        SPI_finish();
        reclaim_table_stats(MyDatabaseId);
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

void store_dead_letters(const Group &g, const std::vector<DeadRow> &rows) {
    if (rows.empty())
        return;
    pg_guard([&] {
        static KeptPlan plan;
        Oid types[10] = {INT8OID,  INT4OID, OIDOID,  TEXTOID,      TEXTOID,
                         BYTEAOID, TEXTOID, TEXTOID, TEXTARRAYOID, OIDOID};
        // The column list the raw row's fields belong to (NULL: all columns in table order).
        Datum columns = (Datum)0;
        if (!g.attnums.empty()) {
            Datum *names = (Datum *)palloc(sizeof(Datum) * g.attnums.size());
            for (size_t i = 0; i < g.attnums.size(); i++) {
                char *name = get_attname(g.reloid, g.attnums[i], true);
                names[i] = CStringGetTextDatum(name ? name : psprintf("#%d", g.attnums[i]));
            }
            columns = PointerGetDatum(
                construct_array(names, (int)g.attnums.size(), TEXTOID, -1, false, TYPALIGN_INT));
        }
        SPI_connect();
        SPIPlanPtr insert =
            kept_plan(plan,
                      "INSERT INTO %s (ticket, row_number, target, target_name, role_name, raw_data, "
                      "error, sqlstate, columns, role_oid) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                      "ingest_dead_letter", 10, types);
        char *relname = get_rel_name(g.reloid);
        char *rolname = GetUserNameFromId(g.roleid, true);
        for (const DeadRow &d : rows) {
            Datum vals[10];
            char nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
            vals[0] = Int64GetDatum((int64)d.e->ticket);
            vals[1] = Int32GetDatum((int32)d.rowno);
            vals[2] = ObjectIdGetDatum(g.reloid);
            vals[3] = relname ? CStringGetTextDatum(relname) : (Datum)0;
            nulls[3] = relname ? ' ' : 'n';
            vals[4] = rolname ? CStringGetTextDatum(rolname) : (Datum)0;
            nulls[4] = rolname ? ' ' : 'n';
            // The exact bytes, NULs and invalid encoding included (raw_row renders them).
            bytea *raw = (bytea *)palloc(VARHDRSZ + d.raw.size());
            SET_VARSIZE(raw, VARHDRSZ + d.raw.size());
            memcpy(VARDATA(raw), d.raw.data(), d.raw.size());
            vals[5] = PointerGetDatum(raw);
            vals[6] = CStringGetTextDatum(d.error.c_str());
            vals[7] = CStringGetTextDatum(d.sqlstate.c_str());
            vals[8] = columns;
            nulls[8] = columns ? ' ' : 'n';
            vals[9] = ObjectIdGetDatum(g.roleid);
            SPI_execute_plan(insert, vals, nulls, false, 0);
        }
        SPI_finish();
    });
}

bool extension_installed() {
    return pg_guard([] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        bool present = OidIsValid(extension_schema());
        CommitTransactionCommand();
        return present;
    });
}

} // namespace pg_ingest
