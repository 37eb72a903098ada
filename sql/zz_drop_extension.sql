-- DROP EXTENSION with rows still queued is refused (their dead letters and tickets would go with
-- it); after ingest_flush() it succeeds, the worker keeps running, and the extension can be
-- created again.
CREATE TABLE orphan (id int);
ALTER SYSTEM SET ingest.test_worker_delay = '2s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('orphan', ROW(1)::orphan) > 0 AS ok;
DROP EXTENSION pg_ingest;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush();
SELECT count(*) FROM orphan;
-- An envelope logged before a crash and not yet inserted again (here: a row of an earlier boot
-- written by hand) also stops the drop, although the ring is empty.
INSERT INTO ingest_queue VALUES (1, 1, 0, 0, now(), 1, '\x00');
DROP EXTENSION pg_ingest;
DELETE FROM ingest_queue;
DROP EXTENSION pg_ingest;
CREATE EXTENSION pg_ingest;
RESET ingest.wait_for_commit;
SELECT ingest_enqueue('orphan', ROW(2)::orphan) > 0 AS ok;
SELECT * FROM orphan ORDER BY id;
