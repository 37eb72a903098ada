// settings.hpp — pg_ingest's settings (ingest.*), defined in settings.cpp. Sizes in kB, times in
// milliseconds unless the name says otherwise.
#pragma once

namespace pg_ingest {

extern int guc_ring_size_kb;
extern int guc_max_record_size_kb;
extern int guc_max_workers;
extern int guc_workers_per_database;
extern int guc_batch_rows;
extern int guc_batch_bytes_kb;
extern int guc_flush_interval_ms;
extern int guc_enqueue_timeout_ms;
extern int guc_wait_timeout_ms;
extern bool guc_wait_for_commit; // deprecated alias of ingest.ack (effective_ack)
extern int guc_ack;

// ingest.ack: when COMMIT returns for the rows a transaction enqueued.
enum class AckMode : int {
    kCommitted = 0, // once the worker has committed them (and its commit is flushed)
    kLogged = 1,    // once their envelope is in flushed WAL (ingest_queue); not inserted yet
    kQueued = 2,    // at once; the envelope is in WAL, flushed within ~3 x wal_writer_delay
    kMemory = 3,    // at once; the envelope is only in the ring (lost in a crash): the fastest
};
// The mode in force: ingest.ack, or the deprecated ingest.wait_for_commit when that one was set
// at a more specific level (see settings.cpp).
AckMode effective_ack();
extern int guc_test_worker_delay_ms;
extern int guc_max_tables;
extern int guc_ticket_retention_s;
extern int guc_dead_letter_retention_s; // 0 keeps dead letters forever
extern int guc_worker_idle_timeout_s;
extern int guc_group_timeout_ms;
extern bool guc_binary_rows; // ingest.binary_rows: the row form queues built-in types in binary

// Defines every ingest.* setting; called once from _PG_init.
void define_settings();

} // namespace pg_ingest
