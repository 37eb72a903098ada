-- Attack 4: values are read with the caller's settings, not the worker's.
-- The JSON and COPY-text forms pass values as text; the worker parses them. A caller with
-- TimeZone 'Asia/Tokyo' and DateStyle 'SQL, DMY' who enqueues "2024-01-01 10:00" and "01/02/2024"
-- means 2024-01-01 01:00 UTC and 1 February 2024, as his own INSERT would store. Likewise a
-- regclass value given as an unqualified name means the table his search_path finds (in every
-- form, including the row form, whose output function leaves a name visible on his path
-- unqualified). Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_carol;
CREATE TABLE times_t (id int PRIMARY KEY, ts timestamptz, d date);
ALTER TABLE times_t OWNER TO atk_carol;
CREATE SCHEMA s4;
CREATE TABLE s4.only_here (x int);
CREATE TABLE s4.dup (x int);
CREATE TABLE public.dup (x int);
GRANT USAGE ON SCHEMA s4 TO atk_carol;
CREATE TABLE public.reg_t (id int PRIMARY KEY, r regclass);
ALTER TABLE public.reg_t OWNER TO atk_carol;

SET ROLE atk_carol;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'SQL, DMY';
SELECT ingest_enqueue('times_t', '{"id": 1, "ts": "2024-01-01 10:00", "d": "01/02/2024"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue_copy('times_t', convert_to(E'2\t2024-01-01 10:00\t01/02/2024\n', 'UTF8')) > 0 AS ok;
-- What her own INSERT stores.
INSERT INTO times_t VALUES (100, '2024-01-01 10:00', '01/02/2024');
SELECT ingest_flush('30s') AS flushed;
RESET TimeZone;
RESET DateStyle;

-- An unqualified regclass resolved with her search_path: only_here exists only in s4; dup exists
-- in s4 (first on her path) and in public (on the worker's default path).
SET search_path = s4, public;
SELECT ingest_enqueue('public.reg_t', '{"id": 1, "r": "only_here"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue_copy('public.reg_t', convert_to(E'2\tonly_here\n', 'UTF8')) > 0 AS ok;
SELECT ingest_enqueue('public.reg_t', ROW(3, 's4.only_here'::regclass)::public.reg_t) > 0 AS ok;
SELECT ingest_enqueue('public.reg_t', '{"id": 4, "r": "dup"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue('public.reg_t', ROW(5, 's4.dup'::regclass)::public.reg_t) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET search_path;
RESET ROLE;

-- Check: JSON form, timestamptz read in Asia/Tokyo.
SELECT coalesce((SELECT ts = '2024-01-01 01:00:00+00' FROM times_t WHERE id = 1), false) AS ok;
-- Check: JSON form, date read with DMY.
SELECT coalesce((SELECT d = '2024-02-01' FROM times_t WHERE id = 1), false) AS ok;
-- Check: COPY form, timestamptz read in Asia/Tokyo.
SELECT coalesce((SELECT ts = '2024-01-01 01:00:00+00' FROM times_t WHERE id = 2), false) AS ok;
-- Check: COPY form, date read with DMY.
SELECT coalesce((SELECT d = '2024-02-01' FROM times_t WHERE id = 2), false) AS ok;
-- Check: her direct INSERT agrees (sanity of the expectation itself).
SELECT coalesce((SELECT ts = '2024-01-01 01:00:00+00' AND d = '2024-02-01' FROM times_t WHERE id = 100), false) AS ok;
-- Check: regclass, JSON form, name only on her path.
SELECT coalesce((SELECT r = 's4.only_here'::regclass FROM public.reg_t WHERE id = 1), false) AS ok;
-- Check: regclass, COPY form, name only on her path.
SELECT coalesce((SELECT r = 's4.only_here'::regclass FROM public.reg_t WHERE id = 2), false) AS ok;
-- Check: regclass, row form.
SELECT coalesce((SELECT r = 's4.only_here'::regclass FROM public.reg_t WHERE id = 3), false) AS ok;
-- Check: regclass, JSON form, a name that means another table on the worker's path.
SELECT coalesce((SELECT r = 's4.dup'::regclass FROM public.reg_t WHERE id = 4), false) AS ok;
-- Check: regclass, row form, same.
SELECT coalesce((SELECT r = 's4.dup'::regclass FROM public.reg_t WHERE id = 5), false) AS ok;

DELETE FROM ingest_dead_letter WHERE role_name = 'atk_carol';
DROP TABLE times_t, public.reg_t, public.dup;
DROP SCHEMA s4 CASCADE;
DROP OWNED BY atk_carol;
DROP ROLE atk_carol;
RESET client_min_messages;
