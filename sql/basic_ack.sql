-- ingest.ack: committed (default) waits for the worker; logged and queued return without
-- waiting, with the envelope in ingest_queue (WAL) until the worker inserts it. The deprecated
-- ingest.wait_for_commit counts when set at a more specific level than ingest.ack.
SHOW ingest.ack;
SET ingest.ack = 'sometimes';
CREATE TABLE acked (id int, mode text);
CREATE ROLE ingest_ack_alice;
GRANT INSERT ON acked TO ingest_ack_alice;

-- Pause the worker: what each mode left in ingest_queue shows whether it was logged.
ALTER SYSTEM SET ingest.test_worker_delay = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(1.5);
SET ROLE ingest_ack_alice;
SET ingest.ack = logged;
SELECT ingest_enqueue('acked', ROW(1, 'logged')::acked) > 0 AS ok;
SET ingest.ack = queued;
SELECT ingest_enqueue('acked', ROW(2, 'queued')::acked) > 0 AS ok;
-- SET LOCAL, as through pgbouncer in transaction pooling mode.
BEGIN;
SET LOCAL ingest.ack = queued;
SELECT ingest_enqueue('acked', ROW(3, 'queued, in a transaction')::acked) > 0 AS ok;
COMMIT;
-- alice cannot read the queue, but sees its size in ingest_status.
SELECT count(*) FROM ingest_queue;
SELECT logged_envelopes, logged_bytes > 0 AS has_bytes, oldest_logged_age > '0'::interval AS has_age
FROM ingest_status WHERE relname = 'acked';
RESET ROLE;
SELECT nentries, boot <> 0 AS boot_set, length(entries) > 0 AS has_entries FROM ingest_queue ORDER BY id;
SELECT count(*) AS inserted_yet FROM acked;

-- The alias: ingest.wait_for_commit = off set at the session level beats ingest.ack set for the
-- role (queued: returns at once, logged); set at the same level ingest.ack wins.
ALTER ROLE ingest_ack_alice SET ingest.ack = committed;
SET ROLE ingest_ack_alice;
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('acked', ROW(4, 'alias off')::acked) > 0 AS ok;
RESET ROLE;
SELECT count(*) AS logged FROM ingest_queue;
SET ingest.wait_for_commit = off;
SET ingest.ack = logged;
SELECT ingest_enqueue('acked', ROW(5, 'tie: ack wins')::acked) > 0 AS ok;
RESET ingest.wait_for_commit;
RESET ingest.ack;
SELECT count(*) AS logged FROM ingest_queue;

-- memory: returns at once, only in the ring (nothing in ingest_queue): lost in a crash.
SET ingest.ack = memory;
SELECT ingest_enqueue('acked', ROW(7, 'memory')::acked) > 0 AS ok;
RESET ingest.ack;
SELECT count(*) AS logged FROM ingest_queue;
-- ... unless the transaction wrote itself: then it is all-or-nothing with that write.
CREATE TABLE own_write (id int);
BEGIN;
SET LOCAL ingest.ack = memory;
INSERT INTO own_write VALUES (1);
SELECT ingest_enqueue('acked', ROW(8, 'memory, with a write')::acked) > 0 AS ok;
COMMIT;
SELECT count(*) AS logged FROM ingest_queue;

-- A rolled-back transaction leaves nothing in the queue.
BEGIN;
SET LOCAL ingest.ack = logged;
SELECT ingest_enqueue('acked', ROW(6, 'rolled back')::acked) > 0 AS ok;
ROLLBACK;
SELECT count(*) AS logged FROM ingest_queue;

-- Release the worker: every logged row lands once, and the queue empties in the same
-- transactions.
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
SELECT * FROM acked ORDER BY id;
SELECT count(*) AS logged FROM ingest_queue;
SELECT logged_envelopes FROM ingest_status WHERE relname = 'acked';

ALTER ROLE ingest_ack_alice RESET ALL;
REVOKE ALL ON acked FROM ingest_ack_alice;
DROP ROLE ingest_ack_alice;
DROP TABLE own_write;
