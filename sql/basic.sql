-- The main data flow: enqueue in every form, rows land exactly once.
CREATE EXTENSION pg_ingest;
CREATE TABLE events (id bigint PRIMARY KEY, ts timestamptz DEFAULT '2026-01-01 00:00:00+00', n int, msg text);

-- One row of the table's type; the ticket is a positive bigint.
SELECT ingest_enqueue('events', ROW(1, '2026-02-02 10:00:00+00', 5, 'hello')::events) > 0 AS ticket_ok;
-- Committed before the statement returned (ingest.wait_for_commit defaults to on).
SELECT id, ts, n, msg FROM events;

-- Tickets grow.
SELECT ingest_enqueue('events', ROW(2, now(), 6, 'b')::events) < ingest_enqueue('events', ROW(3, now(), 7, 'c')::events) AS monotonic;

-- An array of rows in one call; special characters survive the COPY text encoding.
SELECT ingest_enqueue('events', ARRAY[ROW(10, NULL, 1, E'tab\there'), ROW(11, NULL, 2, E'new\nline'),
                                      ROW(12, NULL, 3, E'back\\slash'), ROW(13, NULL, NULL, NULL)]::events[]) > 0 AS ok;
SELECT id, ts, n, msg, msg IS NULL AS msg_null FROM events WHERE id >= 10 ORDER BY id;

-- The bulk form: COPY text lines for named columns; omitted columns take defaults.
SELECT ingest_enqueue_copy('events', convert_to(E'20\t1\tbulk one\n21\t\\N\tbulk two\n', 'UTF8'),
                           ARRAY['id', 'n', 'msg']) > 0 AS ok;
SELECT id, ts, n, msg FROM events WHERE id >= 20 ORDER BY id;
-- A missing final newline is fine.
SELECT ingest_enqueue_copy('events', convert_to(E'22\t\\N\t9\tno newline', 'UTF8')) > 0 AS ok;
SELECT id, n, msg FROM events WHERE id = 22;

-- ingest_flush with nothing pending returns true at once.
SELECT ingest_flush('5s');

-- Fire-and-forget: the call returns at once; ingest_flush waits for the worker.
SET ingest.wait_for_commit = off;
SELECT count(*) FROM (SELECT ingest_enqueue('events', ROW(g, now(), g, 'ff')::events) FROM generate_series(100, 1099) g) s;
SELECT ingest_flush('30s');
SELECT count(*), sum(id) FROM events WHERE msg = 'ff';
RESET ingest.wait_for_commit;

-- Status: one row for the table, counters agree with the table.
SELECT relname, rows_enqueued, rows_committed, rows_failed, rows_queued, batches > 0 AS batched,
       last_error, last_commit_time IS NOT NULL AS committed_recently
FROM ingest_status WHERE relname = 'events';
SELECT ring_bytes, ring_used_bytes, workers FROM ingest_ring;
SELECT backend_type FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker';

-- Reset zeroes the counters.
SELECT ingest_reset_stats();
SELECT rows_enqueued, rows_committed, batches FROM ingest_status WHERE relname = 'events';
