// pg_ingest.cpp — module entry: wires the parts up when the library is preloaded.
#include "pg_headers.hpp"

#include "drop_guard.hpp"
#include "settings.hpp"
#include "shmem.hpp"
#include "txn_buffer.hpp"
#include "wal_queue.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

using namespace pg_ingest;

void _PG_init(void) {
    if (IsBinaryUpgrade)
        return;
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pg_ingest must be loaded via shared_preload_libraries"),
                        errhint("Add pg_ingest to shared_preload_libraries in postgresql.conf and restart "
                                "the server, then run CREATE EXTENSION pg_ingest.")));

    define_settings();
    shmem_install_hooks();
    // Registered here, in the postmaster, so that backends inherit them as the first registered
    // callbacks: PostgreSQL calls the most recently registered first, so ours hand the rows over
    // after every other extension's pre-commit work (e.g. postgres_fdw's remote commit).
    enqueue_install_callbacks();
    install_drop_guard();
    // After every start (and a crash-restart, and promotion) it starts a worker per database, so
    // that envelopes logged in ingest_queue but lost from the ring land without a new enqueue.
    register_launcher();
}
