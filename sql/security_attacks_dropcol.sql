-- Attack 10: the row form mapped values by position at insert time.
-- A row enqueued as ROW(1, 'secret')::dc_t for columns (a, b) is serialized for "all columns";
-- if b is dropped and b2 (same type) added before the worker inserts it, the worker's column list
-- is (a, b2) and 'secret' lands in b2, a column the enqueuer never named.
-- Fixed behaviour: the value never lands in b2 (dead-lettered with a reason, or inserted with b2
-- NULL/default); the row is not silently lost either. Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_erin;
CREATE TABLE dc_t (a int, b text);
ALTER TABLE dc_t OWNER TO atk_erin;
CREATE TABLE dc_acks (ticket bigint);
GRANT INSERT ON dc_acks TO atk_erin;

ALTER SYSTEM SET ingest.test_worker_delay = '60s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SET ROLE atk_erin;
SET ingest.wait_for_commit = off;
INSERT INTO dc_acks SELECT ingest_enqueue('dc_t', ROW(1, 'secret')::dc_t);
INSERT INTO dc_acks SELECT ingest_enqueue('dc_t', ARRAY[ROW(2, 'secret2')::dc_t]);
RESET ingest.wait_for_commit;
-- The owner reshapes the table while the rows are queued.
ALTER TABLE dc_t DROP COLUMN b;
ALTER TABLE dc_t ADD COLUMN b2 text;
RESET ROLE;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s') AS flushed;

-- Check: the values never landed in b2.
SELECT count(*) = 0 AS ok FROM dc_t WHERE b2 LIKE 'secret%';
-- Check: each row is in the table or dead-lettered (not silently lost).
SELECT (SELECT count(*) FROM dc_t) + (SELECT count(*) FROM ingest_dead_letter d JOIN dc_acks a USING (ticket)) = 2 AS ok;

DELETE FROM ingest_dead_letter WHERE role_name = 'atk_erin';
DROP TABLE dc_t, dc_acks;
DROP OWNED BY atk_erin;
DROP ROLE atk_erin;
RESET client_min_messages;
