-- Attack 12 (a): dead letters keep the rejected line byte-exact.
-- A bulk-form line with bytes that are not valid in the database encoding (0xff), or with a NUL
-- byte, is rejected by the worker's COPY; ingest_dead_letter.raw_row is text, so such a line was
-- stored mangled (or cut at the NUL). Fixed behaviour: a bytea column raw_data holds the line
-- exactly as sent (without its newline). (12 b and c: test/t/023_dead_letter_store.pl.)
-- Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_frank;
CREATE TABLE dl_t (id int, v text);
ALTER TABLE dl_t OWNER TO atk_frank;
SET ROLE atk_frank;
SELECT ingest_enqueue_copy('dl_t', '\x310961ff620a'::bytea) AS t_ff \gset
SELECT ingest_enqueue_copy('dl_t', '\x320961006263640a'::bytea) AS t_nul \gset
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
-- Check: both lines were rejected, none landed.
SELECT count(*) = 0 AS ok FROM dl_t;
-- Check: the invalid-UTF-8 line is kept byte-exact.
SELECT coalesce((SELECT bool_and(raw_data = '\x310961ff62'::bytea) FROM ingest_dead_letter WHERE ticket = :t_ff), false) AS ok;
-- Check: the line with a NUL byte is kept byte-exact.
SELECT coalesce((SELECT bool_and(raw_data = '\x32096100626364'::bytea) FROM ingest_dead_letter WHERE ticket = :t_nul), false) AS ok;

DELETE FROM ingest_dead_letter WHERE role_name = 'atk_frank';
DROP TABLE dl_t;
DROP OWNED BY atk_frank;
DROP ROLE atk_frank;
RESET client_min_messages;
