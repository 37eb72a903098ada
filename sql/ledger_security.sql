-- 0.2.0: the bookkeeping is scoped to the enqueuing role (by OID), dead letters keep the exact
-- bytes, and ordinary roles reach only their own part. Run as non-superuser roles; each check is
-- a boolean "ok".
CREATE ROLE ingest_l_alice;
CREATE ROLE ingest_l_bob;
CREATE ROLE ingest_l_team;          -- a member of alice: sees what she sees
GRANT ingest_l_alice TO ingest_l_team;
CREATE ROLE ingest_l_monitor;
GRANT pg_read_all_stats TO ingest_l_monitor;
CREATE TABLE ledger_t (id int PRIMARY KEY, v text);
GRANT INSERT ON ledger_t TO ingest_l_alice, ingest_l_bob;
INSERT INTO ledger_t VALUES (1, 'taken');

-- 1. Exactly-once keys belong to the role: Bob's (etl, 1) does not make Alice's a duplicate.
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT ingest_enqueue_copy('ledger_t', convert_to(E'10\tbob\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
SET SESSION AUTHORIZATION ingest_l_alice;
SELECT ingest_enqueue_copy('ledger_t', convert_to(E'11\talice\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
-- ... while her own resend still is one.
SELECT ingest_enqueue_copy('ledger_t', convert_to(E'12\talice again\n', 'UTF8'), NULL, 'etl', 1) > 0 AS ok;
RESET SESSION AUTHORIZATION;
SELECT array_agg(id ORDER BY id) = '{1,10,11}' AS ok FROM ledger_t;

-- 2. Dead letters keep the exact bytes of the line: a NUL and a byte invalid in UTF-8 included,
-- and raw_row shows them as COPY text escapes (\x00; \xff unless the encoding takes any byte).
SET SESSION AUTHORIZATION ingest_l_alice;
SELECT ingest_enqueue_copy('ledger_t', '\x3109780079ff0a'::bytea) AS t_raw \gset
SELECT ingest_enqueue_copy('ledger_t', convert_to(E'1\tduplicate key\n', 'UTF8')) AS t_dup \gset
SELECT raw_data = '\x3109780079ff'::bytea AS ok,
       position('\x00' IN raw_row) > 0 AS ok_nul,
       (position('\xff' IN raw_row) > 0) = (pg_catalog.getdatabaseencoding() <> 'SQL_ASCII') AS ok_ff
FROM ingest_dead_letters(:t_raw);
SELECT ingest_raw_text('\x61c3a9'::bytea) = convert_from('\x61c3a9'::bytea, 'UTF8')
       OR pg_catalog.getdatabaseencoding() <> 'UTF8' AS ok_valid_text_as_is;

-- 3. Who sees Alice's dead letters and tickets: she and her member; not Bob; superusers.
SELECT count(*) = 2 AS ok FROM ingest_my_dead_letters WHERE ticket IN (:t_raw, :t_dup);
SELECT ingest_ticket_status(:t_dup) = 'failed' AS ok;
SET SESSION AUTHORIZATION ingest_l_team;
SELECT count(*) = 2 AS ok FROM ingest_my_dead_letters WHERE ticket IN (:t_raw, :t_dup);
SELECT ingest_ticket_status(:t_dup) = 'failed' AS ok;
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT count(*) = 0 AS ok FROM ingest_my_dead_letters WHERE ticket IN (:t_raw, :t_dup);
SELECT count(*) = 0 AS ok FROM ingest_dead_letters(:t_dup);
SELECT ingest_ticket_status(:t_dup) = 'unknown' AS ok;
-- The monitoring role learns outcomes, not row data.
SET SESSION AUTHORIZATION ingest_l_monitor;
SELECT ingest_ticket_status(:t_dup) = 'failed' AS ok;
SELECT count(*) = 0 AS ok FROM ingest_dead_letters(:t_dup);
RESET SESSION AUTHORIZATION;
SELECT count(*) = 2 AS ok FROM ingest_my_dead_letters WHERE ticket IN (:t_raw, :t_dup);

-- 4. A queued ticket: "queued" for its role, "unknown" for another.
ALTER SYSTEM SET ingest.test_worker_delay = '3s';
SELECT pg_reload_conf();
SELECT pg_sleep(1.5);
SET SESSION AUTHORIZATION ingest_l_alice;
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('ledger_t', ROW(20, 'queued')::ledger_t) AS t_q \gset
SELECT ingest_ticket_status(:t_q) = 'queued' AS ok;
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT ingest_ticket_status(:t_q) = 'unknown' AS ok, NOT ingest_ticket_queued(:t_q) AS ok_queued;
SET SESSION AUTHORIZATION ingest_l_monitor;
SELECT ingest_ticket_status(:t_q) = 'queued' AS ok;
RESET SESSION AUTHORIZATION;
RESET ingest.wait_for_commit;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
SET SESSION AUTHORIZATION ingest_l_alice;
SELECT ingest_ticket_status(:t_q) = 'committed' AS ok;
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT ingest_ticket_status(:t_q) = 'unknown' AS ok;
RESET SESSION AUTHORIZATION;

-- 5. ingest_table_stats() redacts last_error as ingest_status does: Bob may not read ledger_t.
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT last_error = '<insufficient privilege>' AS ok FROM ingest_table_stats() WHERE relid = 'ledger_t'::regclass;
SELECT last_error = '<insufficient privilege>' AS ok FROM ingest_status WHERE relname = 'ledger_t';
SET SESSION AUTHORIZATION ingest_l_monitor;
SELECT last_error LIKE 'duplicate key%' AS ok FROM ingest_table_stats() WHERE relid = 'ledger_t'::regclass;
RESET SESSION AUTHORIZATION;
GRANT SELECT ON ledger_t TO ingest_l_bob;
SET SESSION AUTHORIZATION ingest_l_bob;
SELECT last_error LIKE 'duplicate key%' AS ok FROM ingest_table_stats() WHERE relid = 'ledger_t'::regclass;
-- No bookkeeping table is readable by ordinary roles.
SELECT NOT has_table_privilege('ingest_resend', 'SELECT') AND NOT has_table_privilege('ingest_batch_log', 'SELECT')
   AND NOT has_table_privilege('ingest_producer_batch', 'SELECT')
   AND NOT has_table_privilege('ingest_dead_letter', 'SELECT') AS ok;
RESET SESSION AUTHORIZATION;

-- 6. A role dropped and created again under the same name is another role: it sees nothing of
-- the old one's dead letters or tickets.
CREATE ROLE ingest_l_temp;
GRANT INSERT ON ledger_t TO ingest_l_temp;
SET SESSION AUTHORIZATION ingest_l_temp;
SELECT ingest_enqueue('ledger_t', ROW(1, 'temp dup')::ledger_t) AS t_temp \gset
SELECT count(*) = 1 AS ok FROM ingest_dead_letters(:t_temp);
RESET SESSION AUTHORIZATION;
REVOKE ALL ON ledger_t FROM ingest_l_temp;
DROP ROLE ingest_l_temp;
CREATE ROLE ingest_l_temp;
SET SESSION AUTHORIZATION ingest_l_temp;
SELECT count(*) = 0 AS ok FROM ingest_my_dead_letters;
SELECT ingest_ticket_status(:t_temp) = 'unknown' AS ok;
RESET SESSION AUTHORIZATION;
SELECT role_name = 'ingest_l_temp' AND role_oid <> 'ingest_l_temp'::regrole AS ok
FROM ingest_dead_letter WHERE ticket = :t_temp;

-- 7. pg_dump keeps the bookkeeping (and the dead letters' identity sequence); retention setting.
SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) AS config_dumped
FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'pg_ingest';
SELECT current_setting('ingest.dead_letter_retention') AS dead_letter_retention;

DROP TABLE ledger_t;
DELETE FROM ingest_producer_batch WHERE producer_id = 'etl';
DROP ROLE ingest_l_alice, ingest_l_bob, ingest_l_team, ingest_l_monitor, ingest_l_temp;
