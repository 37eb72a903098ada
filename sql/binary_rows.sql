-- Binary rows (ingest.binary_rows, on by default): ingest_enqueue(target, row | rows) writes
-- columns of built-in types as COPY BINARY tuples, which the worker reads without parsing text.
-- They must land exactly as the text path lands them (and as a direct INSERT would), whatever the
-- caller's settings; other types keep the text path; a bad row's dead letter is readable text.
CREATE ROLE ingest_bin_bob;
CREATE TABLE bin_all (
    id int, i2 smallint, i8 bigint, f4 real, f8 double precision, nm numeric(12,3), b bool,
    t text, vc varchar(8), bp char(4), by bytea, d date, tm time, tt timetz, ts timestamp,
    tz timestamptz, iv interval, m money, u uuid, j jsonb, js json, ia int[], ta text[],
    ip inet, bits bit varying(8), r int4range, o oid);
CREATE TABLE bin_text (LIKE bin_all);
CREATE TABLE bin_direct (LIKE bin_all);
GRANT INSERT ON bin_all, bin_text, bin_direct TO ingest_bin_bob;
GRANT SELECT ON bin_direct TO ingest_bin_bob;
SET ROLE ingest_bin_bob;
-- Settings that change how values are written and read as text: neither path may depend on them.
SET datestyle = 'SQL, DMY';
SET intervalstyle = 'sql_standard';
SET timezone = 'Pacific/Chatham';
SET extra_float_digits = -3;
SET bytea_output = 'escape';
INSERT INTO bin_direct VALUES
 (1, -32768, 9223372036854775807, 3.4e38, 1.5e-300, -123456789.125, true,
  E'tab\there, newline\nbackslash \\ end', 'abc', 'ab', '\x00ff5c0a', '2024-02-29', '23:59:59.999999',
  '12:00+05:30', '2000-01-01 00:00:00.000001', '2024-06-30 23:30:00+00', '1 year 2 mons -3 days 04:05:06.789',
  '-12.34', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, "ü€😀", null]}', '{"a" : 1}', '{1,NULL,3}',
  '{"with space","quote\"",NULL}', '192.168.0.1/24', B'1011', '[1,10)', 4294967295),
 (2, NULL, NULL, 'NaN', '-Infinity', 'NaN', false, '', '', '', '\x', '-infinity', '00:00', '00:00-12', 'infinity',
  '-infinity', '-178000000 years', 0, NULL, 'null', '[]', '{}', '{}', '::1', B'', 'empty', 0),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT ingest_enqueue('bin_all', ARRAY(SELECT ROW(d.*)::bin_all FROM bin_direct d ORDER BY id)) > 0 AS queued;
SELECT ingest_enqueue('bin_all', ROW(d.*)::bin_all) > 0 AS queued FROM bin_direct d WHERE id = 1;
SET ingest.binary_rows = off;
SELECT ingest_enqueue('bin_text', ARRAY(SELECT ROW(d.*)::bin_text FROM bin_direct d ORDER BY id)) > 0 AS queued;
SELECT ingest_enqueue('bin_text', ROW(d.*)::bin_text) > 0 AS queued FROM bin_direct d WHERE id = 1;
RESET ingest.binary_rows;
RESET ROLE;
SELECT ingest_flush();
-- Every row once per call, equal column by column (json compared as text: it keeps its spelling).
SELECT count(*) AS binary_rows FROM bin_all;
SELECT count(*) AS text_rows FROM bin_text;
\set cols 'id, i2, i8, f4, f8, nm, b, t, vc, bp, by, d, tm, tt, ts, tz, iv, m, u, j, js::text, ia, ta, ip, bits, r, o'
SELECT count(*) AS binary_vs_direct_mismatches FROM (
    SELECT :cols FROM bin_all EXCEPT ALL
    (SELECT :cols FROM bin_direct UNION ALL SELECT :cols FROM bin_direct WHERE id = 1)) x;
SELECT count(*) AS text_vs_binary_mismatches FROM (
    SELECT :cols FROM bin_all EXCEPT ALL SELECT :cols FROM bin_text) x;
-- The two paths really differ: binary tuples take other bytes than COPY text.
SELECT (SELECT bytes_enqueued FROM ingest_status WHERE relname = 'bin_all') <>
       (SELECT bytes_enqueued FROM ingest_status WHERE relname = 'bin_text') AS formats_differ;
SELECT t, tz = '2024-06-30 23:30:00+00' AS same_instant, iv = '1 year 2 mons -3 days 04:05:06.789' AS same_interval
FROM bin_all WHERE id = 1 LIMIT 1;

-- Which format a call used shows in bytes_enqueued: one int as text is "7\n" (2 bytes), as a
-- binary tuple 10 (field count, length, 4 bytes). A domain, an enum or a user-defined composite
-- column keeps the whole row on the text path.
CREATE DOMAIN bin_posint AS int CHECK (VALUE > 0);
CREATE TYPE bin_mood AS ENUM ('ok', 'meh');
CREATE TABLE bin_one (a int);
CREATE TABLE bin_dom (a bin_posint);
CREATE TABLE bin_enum (a bin_mood);
GRANT INSERT ON bin_one, bin_dom, bin_enum TO ingest_bin_bob;
SET ROLE ingest_bin_bob;
SELECT ingest_enqueue('bin_one', ROW(7)::bin_one) > 0 AS queued;
SET ingest.binary_rows = off;
SELECT ingest_enqueue('bin_one', ROW(7)::bin_one) > 0 AS queued;
RESET ingest.binary_rows;
SELECT ingest_enqueue('bin_dom', ROW(7)::bin_dom) > 0 AS queued;
SELECT ingest_enqueue('bin_enum', ROW('meh')::bin_enum) > 0 AS queued;
RESET ROLE;
SELECT ingest_flush();
SELECT relname, rows_committed, bytes_enqueued FROM ingest_status
WHERE relname IN ('bin_one', 'bin_dom', 'bin_enum') ORDER BY relname;
SELECT (SELECT sum(a) FROM bin_one) AS one, (SELECT a FROM bin_dom) AS dom, (SELECT a FROM bin_enum) AS enum;

-- A row the table refuses is dead-lettered alone, its raw row readable COPY text written with
-- the caller's settings (here its TimeZone), as the text path would have written it.
CREATE TABLE bin_check (a int CHECK (a > 0), at timestamptz, note text);
GRANT INSERT ON bin_check TO ingest_bin_bob;
SET ROLE ingest_bin_bob;
SET timezone = 'Asia/Kathmandu';
\set VERBOSITY terse
SELECT ingest_enqueue('bin_check', ARRAY[ROW(1, '2024-01-01 12:00', 'ok')::bin_check,
                                         ROW(-1, '2024-01-01 12:00', E'bad\trow')::bin_check,
                                         ROW(2, NULL, NULL)::bin_check]) > 0 AS queued;
\set VERBOSITY default
RESET timezone;
RESET ROLE;
SELECT a, at = '2024-01-01 06:15:00+00' AS same_instant, note FROM bin_check ORDER BY a;
SELECT row_number, sqlstate, raw_row FROM ingest_dead_letter WHERE target_name = 'bin_check';

DROP TABLE bin_all, bin_text, bin_direct, bin_one, bin_dom, bin_enum, bin_check;
DROP DOMAIN bin_posint;
DROP TYPE bin_mood;
DELETE FROM ingest_dead_letter WHERE target_name = 'bin_check';
DROP ROLE ingest_bin_bob;
