// settings.hpp — pg_ingest's settings (ingest.*), defined in settings.cpp. Sizes in kB, times in
// milliseconds unless the name says otherwise.
#pragma once

namespace pg_ingest {

extern int guc_ring_size_kb;
extern int guc_max_record_size_kb;
extern int guc_max_workers;
extern int guc_batch_rows;
extern int guc_batch_bytes_kb;
extern int guc_flush_interval_ms;
extern int guc_enqueue_timeout_ms;
extern int guc_wait_timeout_ms;
extern bool guc_wait_for_commit;
extern int guc_test_worker_delay_ms;
extern int guc_max_tables;
extern int guc_ticket_retention_s;
extern int guc_dead_letter_retention_s; // 0 keeps dead letters forever
extern int guc_worker_idle_timeout_s;
extern int guc_group_timeout_ms;

// Defines every ingest.* setting; called once from _PG_init.
void define_settings();

} // namespace pg_ingest
