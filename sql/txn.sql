-- The enqueue is part of the caller's transaction: rolled back rows never land.
CREATE TABLE tx (id int, note text);
CREATE TABLE side (id int);

-- Explicit rollback.
BEGIN;
SELECT ingest_enqueue('tx', ROW(1, 'rolled back')::tx) > 0 AS ok;
ROLLBACK;

-- Error later in the transaction.
BEGIN;
SELECT ingest_enqueue('tx', ROW(2, 'error later')::tx) > 0 AS ok;
SELECT 1 / 0;
COMMIT;

-- Savepoints: the rolled back subtransaction's rows go, the rest stay.
BEGIN;
SELECT ingest_enqueue('tx', ROW(3, 'outer')::tx) > 0 AS ok;
SAVEPOINT a;
SELECT ingest_enqueue('tx', ROW(4, 'inner, rolled back')::tx) > 0 AS ok;
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
SELECT ingest_enqueue('tx', ROW(5, 'inner, released')::tx) > 0 AS ok;
RELEASE SAVEPOINT b;
COMMIT;
SELECT * FROM tx ORDER BY id;

-- A transaction that also writes (it has an xid): rows land after its commit, atomically with it.
BEGIN;
INSERT INTO side VALUES (6);
SELECT ingest_enqueue('tx', ROW(6, 'with xid')::tx) > 0 AS ok;
COMMIT;
SELECT * FROM tx WHERE id = 6;
BEGIN;
INSERT INTO side VALUES (7);
SELECT ingest_enqueue('tx', ROW(7, 'with xid, rolled back')::tx) > 0 AS ok;
ROLLBACK;

-- Fire-and-forget obeys rollback too.
SET ingest.wait_for_commit = off;
BEGIN;
SELECT ingest_enqueue('tx', ROW(8, 'ff rolled back')::tx) > 0 AS ok;
ROLLBACK;
RESET ingest.wait_for_commit;

-- A large transaction spills to the ring before commit (tagged with its xid); on rollback the
-- worker discards what spilled, on commit it lands whole. The test ring is 16MB, spills at 4MB.
BEGIN;
SELECT count(ingest_enqueue('tx', ROW(g, repeat('x', 1000))::tx)) FROM generate_series(1000, 10999) g;
ROLLBACK;
BEGIN;
SELECT count(ingest_enqueue('tx', ROW(g, repeat('y', 1000))::tx)) FROM generate_series(20000, 29999) g;
COMMIT;
SELECT ingest_flush('30s');
SELECT count(*), min(id), max(id), sum(id) FROM tx WHERE id >= 1000;
SELECT rows_discarded >= 4000 AS spilled_and_discarded, rows_queued FROM ingest_status WHERE relname = 'tx';

-- Nothing from the rolled back work.
SELECT * FROM tx WHERE id < 1000 ORDER BY id;

-- A transaction larger than the ring can hold until its commit fails at once, clearly, and
-- leaves nothing behind (the test ring is 16MB: at most 12MB per transaction).
\set VERBOSITY default
BEGIN;
SELECT count(ingest_enqueue('tx', ROW(g, repeat('z', 1000))::tx)) FROM generate_series(100000, 119999) g;
ROLLBACK;
\set VERBOSITY terse
SELECT ingest_flush('30s');
SELECT count(*) FROM tx WHERE id >= 100000;
