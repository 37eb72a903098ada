-- Exactly once also for a batch sent inside a savepoint of a transaction whose earlier rows are
-- just under the spill threshold: each of its rows (longer than the gap) is handed over early
-- as its own slice, and every slice carries the batch's identity. (A file of its own, after
-- waits.sql, whose error details depend on the ring's position.)
CREATE TABLE filler (t text);
CREATE TABLE tk_e (id int, note text);
SELECT least(pg_size_bytes(current_setting('ingest.ring_size')) / 4, 8388608) AS spill \gset
BEGIN;
SELECT ingest_enqueue_copy('filler', convert_to(repeat(repeat('x', 1000) || E'\n', ((:spill - 150) / 1001)::int), 'UTF8')) > 0 AS ok;
SAVEPOINT s;
SELECT ingest_enqueue_copy('tk_e', convert_to(string_agg(i || E'\t' || repeat('y', 1300), E'\n') || E'\n', 'UTF8'),
                           NULL, 'producer-e', 1) > 0 AS ok FROM generate_series(40, 44) i;
RELEASE s;
COMMIT;
SELECT ingest_enqueue_copy('tk_e', convert_to(string_agg(i || E'\t' || repeat('y', 1300), E'\n') || E'\n', 'UTF8'),
                           NULL, 'producer-e', 1) > 0 AS ok FROM generate_series(40, 44) i;
SELECT ingest_flush('30s');
SELECT id, count(*) FROM tk_e GROUP BY id ORDER BY id;
SELECT count(*) = (:spill - 150) / 1001 AS filler_landed FROM filler;
DROP TABLE filler, tk_e;
