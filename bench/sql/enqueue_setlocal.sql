-- pgbouncer phase: the acknowledgement mode chosen per transaction with SET LOCAL (no session
-- state left behind for the next client of the pooled connection); @TABLE@ from bench/run.sh
\set n random(0, 999999)
BEGIN;
SET LOCAL ingest.ack = memory;
SELECT ingest_enqueue('@TABLE@'::regclass, ROW(nextval('bench_id'), now(), :n, 'pgbench single-row message, 40 bytes ok.')::@TABLE@);
COMMIT;
