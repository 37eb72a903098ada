// settings.cpp — pg_ingest's settings: the variables behind ingest.* and their definitions.
#include "settings.hpp"

#include "pg_headers.hpp"

extern "C" {
#include "utils/guc.h"
#include "utils/guc_tables.h"
}

namespace pg_ingest {

int guc_ring_size_kb = 64 * 1024;
int guc_max_record_size_kb = 1024;
int guc_max_workers = 8;
int guc_workers_per_database = 1;
int guc_batch_rows = 10000;
int guc_batch_bytes_kb = 8 * 1024;
int guc_flush_interval_ms = 10;
int guc_enqueue_timeout_ms = 10000;
int guc_wait_timeout_ms = 30000;
bool guc_wait_for_commit = true;
int guc_ack = (int)AckMode::kCommitted;
int guc_test_worker_delay_ms = 0;
int guc_max_tables = 1024;
int guc_ticket_retention_s = 24 * 3600;
int guc_worker_idle_timeout_s = 300;
int guc_group_timeout_ms = 60000;
int guc_dead_letter_retention_s = 7 * 24 * 3600;
bool guc_binary_rows = true;

// The two settings' current sources: the one set at the more specific level (SET / SET LOCAL over a
// role or database default over postgresql.conf) decides; ingest.ack wins a tie. The config
// records are allocated once and never move, so their addresses are looked up once.
static struct config_generic *find_setting(const char *name) {
    struct config_generic **vars = get_guc_variables();
    int n = GetNumConfigOptions();
    for (int i = 0; i < n; i++)
        if (strcmp(vars[i]->name, name) == 0)
            return vars[i];
    return nullptr;
}

AckMode effective_ack() {
    static struct config_generic *ack = nullptr, *alias = nullptr;
    if (!ack) {
        ack = find_setting("ingest.ack");
        alias = find_setting("ingest.wait_for_commit");
    }
    if (ack && alias && alias->source > ack->source)
        return guc_wait_for_commit ? AckMode::kCommitted : AckMode::kQueued;
    return (AckMode)guc_ack;
}

void define_settings() {
    DefineCustomIntVariable("ingest.ring_size", "Size of the shared-memory ring that holds queued rows.",
                            nullptr, &guc_ring_size_kb, 64 * 1024, 1024, INT_MAX / 2, PGC_POSTMASTER,
                            GUC_UNIT_KB, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.max_record_size",
        "Largest single row (COPY text) that ingest_enqueue accepts; larger rows are refused.", nullptr,
        &guc_max_record_size_kb, 1024, 1, 1024 * 1024, PGC_SUSET, GUC_UNIT_KB, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.max_workers", "Most pg_ingest background workers in all (see ingest.workers_per_database).",
        nullptr, &guc_max_workers, 8, 1, 64, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.workers_per_database",
        "Most pg_ingest workers that drain one database at once, when its queue backs up.",
        "Each session's (each exactly-once producer's) rows are inserted in the order they were "
        "handed over; rows of different sessions may be inserted in parallel.",
        &guc_workers_per_database, 1, 1, 32, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.batch_rows", "Most rows a worker inserts in one transaction.", nullptr,
                            &guc_batch_rows, 10000, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.batch_bytes", "Most queued bytes a worker inserts in one transaction.",
                            nullptr, &guc_batch_bytes_kb, 8 * 1024, 64, 1024 * 1024, PGC_SIGHUP, GUC_UNIT_KB,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.flush_interval",
        "Longest a worker lets a partial batch wait for more rows while the ring is quiet.", nullptr,
        &guc_flush_interval_ms, 10, 0, 60000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.enqueue_timeout",
                            "Longest ingest_enqueue waits for room in a full ring before it fails.", nullptr,
                            &guc_enqueue_timeout_ms, 10000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomIntVariable("ingest.wait_timeout",
                            "Longest a committing transaction waits for the worker to commit its rows.",
                            nullptr, &guc_wait_timeout_ms, 30000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    static const struct config_enum_entry ack_options[] = {
        {"committed", (int)AckMode::kCommitted, false},
        {"logged", (int)AckMode::kLogged, false},
        {"queued", (int)AckMode::kQueued, false},
        {"memory", (int)AckMode::kMemory, false},
        {nullptr, 0, false},
    };
    DefineCustomEnumVariable(
        "ingest.ack",
        "When COMMIT returns for enqueued rows: committed (the worker committed them), logged "
        "(they are in flushed WAL and land exactly once), queued (at once; in WAL, not flushed), "
        "memory (at once; only in shared memory until inserted, lost in a crash).",
        nullptr, &guc_ack, (int)AckMode::kCommitted, ack_options, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("ingest.wait_for_commit",
                             "Deprecated alias of ingest.ack: on = committed, off = queued.", nullptr,
                             &guc_wait_for_commit, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "ingest.binary_rows",
        "Queue rows of ingest_enqueue(target, row | rows) whose columns all have built-in types in "
        "binary form (the worker parses no text); off: as COPY text.",
        nullptr, &guc_binary_rows, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("ingest.max_tables", "Target tables tracked in ingest_status.", nullptr,
                            &guc_max_tables, 1024, 16, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.ticket_retention",
        "How long ingest_ticket_status and exactly-once deduplication remember committed batches.", nullptr,
        &guc_ticket_retention_s, 24 * 3600, 60, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.dead_letter_retention",
        "How long ingest_dead_letter keeps rows before the worker deletes them (0: forever).", nullptr,
        &guc_dead_letter_retention_s, 7 * 24 * 3600, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable("ingest.worker_idle_timeout",
                            "A worker with nothing to do for this long exits and frees its slot (0: never).",
                            nullptr, &guc_worker_idle_timeout_s, 300, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_S,
                            nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "ingest.group_timeout",
        "Longest the worker spends inserting one table's rows of one role (lock waits and the "
        "role's triggers included) before it retries them, then dead-letters them (0: no limit).",
        nullptr, &guc_group_timeout_ms, 60000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable("ingest.test_worker_delay",
                            "Testing only: the worker sleeps this long before each batch.", nullptr,
                            &guc_test_worker_delay_ms, 0, 0, 3600 * 1000, PGC_SIGHUP,
                            GUC_UNIT_MS | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("ingest");
}

} // namespace pg_ingest
