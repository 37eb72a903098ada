-- ingest_ticket_status, and exactly-once batches for clients (producer_id + batch_seq).
CREATE TABLE tk (id int PRIMARY KEY, v text);

SELECT ingest_enqueue('tk', ROW(1, 'ok')::tk) AS t_ok \gset
SELECT ingest_ticket_status(:t_ok);

SELECT ingest_enqueue('tk', ROW(1, 'duplicate key')::tk) AS t_bad \gset
SELECT ingest_ticket_status(:t_bad);

BEGIN;
SELECT ingest_enqueue('tk', ROW(2, 'rolled back')::tk) AS t_rb \gset
ROLLBACK;
SELECT ingest_ticket_status(:t_rb);
SELECT ingest_ticket_status(0);

-- Pause the worker (test-only setting) to see a ticket queued.
ALTER SYSTEM SET ingest.test_worker_delay = '3s';
SELECT pg_reload_conf();
SELECT pg_sleep(1.5);
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('tk', ROW(3, 'queued for a while')::tk) AS t_q \gset
SELECT ingest_ticket_status(:t_q);
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
SELECT ingest_ticket_status(:t_q);
RESET ingest.wait_for_commit;

-- Exactly once: the same (producer_id, batch_seq) sent twice lands once; a new seq lands.
SELECT ingest_enqueue_copy('tk', convert_to(E'10\tfirst send\n11\tfirst send\n', 'UTF8'), NULL, 'producer-a', 1) AS s1 \gset
SELECT ingest_enqueue_copy('tk', convert_to(E'10\tfirst send\n11\tfirst send\n', 'UTF8'), NULL, 'producer-a', 1) AS s2 \gset
SELECT ingest_enqueue_copy('tk', convert_to(E'12\tsecond batch\n', 'UTF8'), NULL, 'producer-a', 2) > 0 AS ok;
-- Another producer may use the same sequence numbers.
SELECT ingest_enqueue_copy('tk', convert_to(E'20\tother producer\n', 'UTF8'), NULL, 'producer-b', 1) > 0 AS ok;
SELECT id, v FROM tk WHERE id >= 10 ORDER BY id;
SELECT count(*) FROM ingest_dead_letter WHERE ticket IN (:s1, :s2);
SELECT ingest_ticket_status(:s1), ingest_ticket_status(:s2);
SELECT producer_id, batch_seq FROM ingest_producer_batch ORDER BY 1, 2;
SELECT rows_discarded FROM ingest_status WHERE relname = 'tk';

-- A big exactly-once call split into several slices (over ingest.max_record_size) lands whole.
SET ingest.max_record_size = '1kB';
SELECT ingest_enqueue_copy('tk', convert_to(string_agg(g || E'\t' || repeat('z', 100), E'\n'), 'UTF8'),
                           NULL, 'producer-c', 1) > 0 AS ok
FROM generate_series(100, 199) g;
RESET ingest.max_record_size;
SELECT count(*), sum(id) FROM tk WHERE id BETWEEN 100 AND 199;

-- A resent exactly-once batch whose original lost rows to the dead-letter table: the resend is
-- told so (same warning), and ingest_dead_letters() finds the original's rows from either ticket.
SELECT ingest_enqueue_copy('tk', convert_to(E'30\tgood\n1\tduplicate key\n', 'UTF8'), NULL, 'producer-d', 1) AS d1 \gset
SELECT ingest_enqueue_copy('tk', convert_to(E'30\tgood\n1\tduplicate key\n', 'UTF8'), NULL, 'producer-d', 1) AS d2 \gset
SELECT row_number, sqlstate, raw_row FROM ingest_dead_letters(:d1);
SELECT row_number, sqlstate, raw_row FROM ingest_dead_letters(:d2);
SELECT count(*) FROM tk WHERE id = 30;
-- Other roles see only their own dead letters.
CREATE ROLE ingest_carol;
GRANT INSERT ON tk TO ingest_carol;
SET ROLE ingest_carol;
SELECT count(*) AS carol_sees FROM ingest_dead_letters(:d1);
SELECT ingest_enqueue('tk', ROW(30, 'carol dup')::tk) AS c1 \gset
SELECT row_number, sqlstate FROM ingest_dead_letters(:c1);
RESET ROLE;
DROP OWNED BY ingest_carol;
DROP ROLE ingest_carol;
