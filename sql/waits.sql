-- Waiting that cannot hang: a caller holding a lock the worker needs gets a clear error after
-- ingest.wait_timeout and its rows never land; a full ring fails after ingest.enqueue_timeout
-- naming the setting, and loses nothing that was accepted.
CREATE TABLE locked (id int);
SET ingest.wait_timeout = '1s';
BEGIN;
LOCK TABLE locked IN ACCESS EXCLUSIVE MODE;
SELECT ingest_enqueue('locked', ROW(1)::locked) > 0 AS ok;
COMMIT;
RESET ingest.wait_timeout;
SELECT ingest_flush('30s');
SELECT count(*) AS landed FROM locked;
SELECT ingest_enqueue('locked', ROW(2)::locked) > 0 AS ok;
SELECT * FROM locked;

-- The same key inserted by the caller itself: the worker's unique check waits for the caller,
-- the caller for the worker; the caller gives up after wait_timeout, and neither row lands.
CREATE TABLE uniq (id int PRIMARY KEY, src text);
SET ingest.wait_timeout = '1s';
BEGIN;
INSERT INTO uniq VALUES (1, 'direct');
SELECT ingest_enqueue('uniq', ROW(1, 'enqueued')::uniq) > 0 AS ok;
COMMIT;
RESET ingest.wait_timeout;
SELECT ingest_flush('30s');
SELECT * FROM uniq;
SELECT count(*) AS dead_letters FROM ingest_dead_letter WHERE target_name = 'uniq';
-- Without the conflict, a transaction that also writes commits its rows with the rest.
BEGIN;
INSERT INTO uniq VALUES (2, 'direct');
SELECT ingest_enqueue('uniq', ROW(3, 'enqueued')::uniq) > 0 AS ok;
COMMIT;
SELECT * FROM uniq ORDER BY id;

-- Fill the 16MB test ring while the worker is paused: 3MB transactions until one does not fit.
CREATE TABLE filler (id int, pad text);
ALTER SYSTEM SET ingest.test_worker_delay = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(2.5);
SET ingest.wait_for_commit = off;
SET ingest.enqueue_timeout = '1s';
CREATE FUNCTION fill(first int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ingest_enqueue('filler', ROW(g, repeat('f', 1000))::filler) FROM generate_series(first, first + 2999) g;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN 'refused: ' || SQLERRM;
END $$;
-- Each call is its own transaction (autocommit); the hand-over happens at its commit, so the
-- refusal surfaces as the COMMIT's error.
\set VERBOSITY default
SELECT fill(0);
SELECT fill(3000);
SELECT fill(6000);
SELECT fill(9000);
SELECT fill(12000);
SELECT fill(15000);
\set VERBOSITY terse
SELECT ring_used_bytes > 12000000 AS ring_nearly_full FROM ingest_ring;
RESET ingest.enqueue_timeout;
RESET ingest.wait_for_commit;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('60s');
-- Exactly the accepted transactions landed.
SELECT count(*), count(DISTINCT id), min(id), max(id) FROM filler;
