// pg_ingest.cpp — module entry: settings, hooks, and the C++ → PostgreSQL error boundary.
#include "pgi.hpp"

extern "C" {
#include "utils/guc.h"
}

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace pg_ingest {

int guc_ring_size_kb = 64 * 1024;
int guc_max_record_size_kb = 1024;
int guc_max_workers = 8;
int guc_batch_rows = 10000;
int guc_batch_bytes_kb = 8 * 1024;
int guc_flush_interval_ms = 10;
int guc_enqueue_timeout_ms = 10000;
int guc_wait_timeout_ms = 30000;
bool guc_wait_for_commit = true;
int guc_test_worker_delay_ms = 0;
int guc_max_tables = 1024;
int guc_ticket_retention_s = 24 * 3600;
int guc_worker_idle_timeout_s = 300;

void rethrow_pg_error(std::optional<PgError> &keep) {
    const ErrorData *src = keep->data();
    ErrorData *copy = (ErrorData *)palloc(sizeof(ErrorData));
    memcpy(copy, src, sizeof(ErrorData));
    char **fields[] = {&copy->message,    &copy->detail,        &copy->detail_log,  &copy->hint,
                       &copy->context,    &copy->backtrace,     &copy->schema_name, &copy->table_name,
                       &copy->column_name, &copy->datatype_name, &copy->constraint_name, &copy->internalquery};
    for (char **f : fields)
        if (*f)
            *f = pstrdup(*f);
    keep.reset();
    ReThrowError(copy);
}

Datum call_guarded(const char *name, Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) {
    std::optional<PgError> pg_error;
    const char *message = nullptr;
    const char *hint = nullptr;
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    try {
        return body(fcinfo);
    } catch (const PgError &e) {
        pg_error = e;
    } catch (const UserError &e) {
        sqlstate = e.sqlstate();
        message = pstrdup(e.what());
        hint = e.hint().empty() ? nullptr : pstrdup(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        sqlstate = ERRCODE_OUT_OF_MEMORY;
        message = "out of memory";
    } catch (const std::exception &e) {
        message = psprintf("pg_ingest internal error in %s: %s", name, e.what());
    } catch (...) {
        message = psprintf("pg_ingest internal error in %s: unknown exception", name);
    }
    // Outside every catch block now: PostgreSQL may longjmp.
    if (pg_error)
        rethrow_pg_error(pg_error);
    ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message), hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

} // namespace pg_ingest

using namespace pg_ingest;

void _PG_init(void) {
    if (IsBinaryUpgrade)
        return;
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_ingest must be loaded via shared_preload_libraries"),
                        errhint("Add pg_ingest to shared_preload_libraries in postgresql.conf and restart "
                                "the server, then run CREATE EXTENSION pg_ingest.")));

    DefineCustomIntVariable("ingest.ring_size", "Size of the shared-memory ring that holds queued rows.", nullptr,
                            &guc_ring_size_kb, 64 * 1024, 1024, INT_MAX / 2, PGC_POSTMASTER, GUC_UNIT_KB, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("ingest.max_record_size",
                            "Largest single row (COPY text) that ingest_enqueue accepts; larger rows are refused.",
                            nullptr, &guc_max_record_size_kb, 1024, 1, 1024 * 1024, PGC_SUSET, GUC_UNIT_KB, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("ingest.max_workers", "Most pg_ingest background workers (one per active database).",
                            nullptr, &guc_max_workers, 8, 1, 64, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.batch_rows", "Most rows a worker inserts in one transaction.", nullptr,
                            &guc_batch_rows, 10000, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.batch_bytes", "Most queued bytes a worker inserts in one transaction.", nullptr,
                            &guc_batch_bytes_kb, 8 * 1024, 64, 1024 * 1024, PGC_SIGHUP, GUC_UNIT_KB, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("ingest.flush_interval",
                            "Longest a worker lets a partial batch wait for more rows while the ring is quiet.",
                            nullptr, &guc_flush_interval_ms, 10, 0, 60000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("ingest.enqueue_timeout",
                            "Longest ingest_enqueue waits for room in a full ring before it fails.", nullptr,
                            &guc_enqueue_timeout_ms, 10000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("ingest.wait_timeout",
                            "Longest a committing transaction waits for the worker to commit its rows.", nullptr,
                            &guc_wait_timeout_ms, 30000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomBoolVariable("ingest.wait_for_commit",
                             "Whether COMMIT waits until the worker has committed the transaction's rows.", nullptr,
                             &guc_wait_for_commit, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.max_tables", "Target tables tracked in ingest_status.", nullptr, &guc_max_tables,
                            1024, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.ticket_retention",
                            "How long ingest_ticket_status and exactly-once deduplication remember committed batches.",
                            nullptr, &guc_ticket_retention_s, 24 * 3600, 60, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("ingest.worker_idle_timeout",
                            "A worker with nothing to do for this long exits and frees its slot (0: never).", nullptr,
                            &guc_worker_idle_timeout_s, 300, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("ingest.test_worker_delay",
                            "Testing only: the worker sleeps this long before each batch.", nullptr,
                            &guc_test_worker_delay_ms, 0, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS | GUC_NOT_IN_SAMPLE,
                            nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("ingest");

    shmem_install_hooks();
    // Registered here, in the postmaster, so that backends inherit them as the first registered
    // callbacks: PostgreSQL calls the most recently registered first, so ours hand the rows over
    // after every other extension's pre-commit work (e.g. postgres_fdw's remote commit).
    enqueue_install_callbacks();
}
