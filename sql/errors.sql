-- Bad input gets a clear error and nothing is enqueued.
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE TABLE other (x int);
CREATE VIEW v AS SELECT * FROM t;
CREATE SEQUENCE s;
\set VERBOSITY terse

SELECT ingest_enqueue(NULL, ROW(1, 'a')::t);
SELECT ingest_enqueue('t', NULL::t);
SELECT ingest_enqueue('t', ROW(1, 'a'));
SELECT ingest_enqueue('t', ROW(1)::other);
SELECT ingest_enqueue('t', 42);
SELECT ingest_enqueue('t', ARRAY[ROW(1)::other]);
SELECT ingest_enqueue('t', ARRAY[ROW(1, 'a')::t, NULL]);
SELECT ingest_enqueue('v', ROW(1, 'a')::t);
SELECT ingest_enqueue('s', ROW(1, 'a')::t);
SELECT ingest_enqueue('pg_class', ROW(1, 'a')::t);
SELECT ingest_enqueue(999999::oid::regclass, ROW(1, 'a')::t);

-- A dropped table: its OID no longer resolves.
CREATE TABLE gone (id int);
SELECT 'gone'::regclass::oid AS gone_oid \gset
DROP TABLE gone;
\set VERBOSITY sqlstate
SELECT ingest_enqueue(:gone_oid::oid::regclass, '{"id": 1}'::jsonb);
\set VERBOSITY terse

-- Temporary tables live in this session only.
CREATE TEMP TABLE tmp (id int);
SELECT ingest_enqueue('tmp', ROW(1)::tmp);

-- JSON: unknown key, scalar document, array of non-objects, empty object, system column.
SELECT ingest_enqueue('t', '{"id": 1, "nope": 2}'::jsonb);
SELECT ingest_enqueue('t', '5'::jsonb);
SELECT ingest_enqueue('t', '[1, 2]'::jsonb);
SELECT ingest_enqueue('t', '{}'::jsonb);
SELECT ingest_enqueue('t', '{"ctid": "(0,1)"}'::jsonb);
SELECT ingest_enqueue('t', NULL::jsonb);

-- Bulk form: unknown or repeated column, end-of-data marker, half of producer id/seq.
SELECT ingest_enqueue_copy('t', convert_to(E'1\ta\n', 'UTF8'), ARRAY['id', 'zzz']);
SELECT ingest_enqueue_copy('t', convert_to(E'1\ta\n', 'UTF8'), ARRAY['id', 'id']);
SELECT ingest_enqueue_copy('t', convert_to(E'1\ta\n\\.\n2\tb\n', 'UTF8'));
SELECT ingest_enqueue_copy('t', convert_to(E'1\ta\n', 'UTF8'), NULL, 'producer-1', NULL);
SELECT ingest_enqueue_copy('t', NULL);

-- A row over ingest.max_record_size is refused, naming the setting.
SET ingest.max_record_size = '1kB';
\set VERBOSITY default
SELECT ingest_enqueue('t', ROW(1, repeat('x', 2000))::t);
\set VERBOSITY terse
RESET ingest.max_record_size;

-- No INSERT privilege: the same message as INSERT gives.
CREATE ROLE ingest_reader;
GRANT SELECT ON t TO ingest_reader;
SET ROLE ingest_reader;
INSERT INTO t VALUES (1, 'a');
SELECT ingest_enqueue('t', ROW(1, 'a')::t);
SELECT ingest_enqueue('t', '{"id": 1}'::jsonb);
RESET ROLE;
-- Column privilege on the named columns is enough.
GRANT INSERT (id) ON t TO ingest_reader;
SET ROLE ingest_reader;
SELECT ingest_enqueue('t', '{"id": 7}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue('t', '{"id": 8, "v": "x"}'::jsonb);
RESET ROLE;

-- Parameters that are never valid: PREPARE TRANSACTION with queued rows.
BEGIN;
SELECT ingest_enqueue('t', ROW(50, 'p')::t) > 0 AS ok;
PREPARE TRANSACTION 'p1';

-- Nothing from the failed calls landed; only the permitted row did.
SELECT * FROM t ORDER BY id;
SELECT ingest_flush('10s');
SELECT * FROM t ORDER BY id;
DROP OWNED BY ingest_reader;
DROP ROLE ingest_reader;
-- ingest_reset_stats is not for PUBLIC.
SELECT has_function_privilege('public', 'ingest_reset_stats()', 'execute') AS public_can_reset;
