-- Attack 5: the COPY end-of-data marker in the bulk form loses other transactions' rows.
-- ingest_enqueue_copy() refused only a line that is exactly \. ; COPY text also ends the data at
-- \. followed by \r (\.\r\n, or \.\r at the very end), at \. after data on the same line, and
-- after a bare \r line ending. The worker feeds all rows of one (table, role, columns) group to
-- one COPY, so such a line silently ended the COPY: the rows behind it, from other transactions
-- whose tickets were acknowledged, were lost (and reported committed).
-- Fixed behaviour: every line-ending variant (a, b, d) is refused at enqueue with an error, and rows of the other
-- transactions queued behind it land (or are dead-lettered): none is silently lost.
-- Every check prints ok = t (or 'ok: refused').
SET client_min_messages = error;
CREATE ROLE atk_dave;
CREATE TABLE em_a (id int, v text);
CREATE TABLE em_b (id int, v text);
CREATE TABLE em_c (id int, v text);
CREATE TABLE em_d (id int, v text);
CREATE TABLE em_e (id int, v text);
CREATE TABLE em_acks (variant text, ticket bigint);
GRANT INSERT, SELECT ON em_a, em_b, em_c, em_d, em_e, em_acks TO atk_dave;
-- Tries an enqueue; 'ok: refused' if it raises an error, else 'FAIL: accepted' (and the rows stay
-- queued in this transaction).
CREATE FUNCTION attack_try_copy(target regclass, data bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ingest_enqueue_copy(target, data);
    RETURN 'FAIL: accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN 'ok: refused';
END $$;

-- Hold the worker so that each attack line and the honest rows behind it share one batch.
ALTER SYSTEM SET ingest.test_worker_delay = '60s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);

SET ROLE atk_dave;
SET ingest.wait_for_commit = off;
-- Variant a: \. followed by \r\n (the line is '\.\r').
SELECT attack_try_copy('em_a', '\x5c2e0d0a'::bytea) AS a;
-- Variant b: \. followed by \r at the very end of the data.
SELECT attack_try_copy('em_b', '\x5c2e0d'::bytea) AS b;
-- Variant c: \. after data on the same line ('1<TAB>x\.'): COPY ends the line there and drops
-- the marker. Refusing it or storing the escape's meaning ('x.') are both fine; silently storing
-- 'x' is not (checked below).
SELECT attack_try_copy('em_c', convert_to(E'1\tx\\.\n', 'UTF8')) IS NOT NULL AS c_tried;
-- Variant d: a bare \r line ending, then \. and \r ('1<TAB>x\r\.\r').
SELECT attack_try_copy('em_d', '\x310978 0d 5c2e 0d 0a'::bytea) AS d;
-- Variant e (already refused before the fix; control): a line that is exactly \.
SELECT attack_try_copy('em_e', convert_to(E'\\.\n', 'UTF8')) AS e;
-- Honest rows of other transactions, acknowledged with tickets, queued behind each attack.
INSERT INTO em_acks SELECT 'a', ingest_enqueue_copy('em_a', convert_to(E'101\tok\n102\tok\n103\tok\n', 'UTF8'));
INSERT INTO em_acks SELECT 'b', ingest_enqueue_copy('em_b', convert_to(E'101\tok\n102\tok\n103\tok\n', 'UTF8'));
INSERT INTO em_acks SELECT 'c', ingest_enqueue_copy('em_c', convert_to(E'101\tok\n102\tok\n103\tok\n', 'UTF8'));
INSERT INTO em_acks SELECT 'd', ingest_enqueue_copy('em_d', convert_to(E'101\tok\n102\tok\n103\tok\n', 'UTF8'));
INSERT INTO em_acks SELECT 'e', ingest_enqueue_copy('em_e', convert_to(E'101\tok\n102\tok\n103\tok\n', 'UTF8'));
RESET ingest.wait_for_commit;
RESET ROLE;

ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s') AS flushed;

-- Check (per variant): the three acknowledged honest rows are in the table or dead-lettered.
SELECT a.variant,
       (SELECT count(*) FROM em_a WHERE a.variant = 'a' AND id > 100)
     + (SELECT count(*) FROM em_b WHERE a.variant = 'b' AND id > 100)
     + (SELECT count(*) FROM em_c WHERE a.variant = 'c' AND id > 100)
     + (SELECT count(*) FROM em_d WHERE a.variant = 'd' AND id > 100)
     + (SELECT count(*) FROM em_e WHERE a.variant = 'e' AND id > 100)
     + (SELECT count(*) FROM ingest_dead_letter d WHERE d.ticket = a.ticket) = 3 AS ok
FROM em_acks a ORDER BY a.variant;
-- Check: variant c was not silently stored truncated as 'x'.
SELECT count(*) = 0 AS ok FROM em_c WHERE id = 1 AND v = 'x';
-- Check: a ticket whose rows were lost is never reported committed.
SELECT a.variant, ingest_ticket_status(a.ticket) <> 'committed'
       OR (SELECT count(*) FROM em_a WHERE a.variant = 'a' AND id > 100)
        + (SELECT count(*) FROM em_b WHERE a.variant = 'b' AND id > 100)
        + (SELECT count(*) FROM em_c WHERE a.variant = 'c' AND id > 100)
        + (SELECT count(*) FROM em_d WHERE a.variant = 'd' AND id > 100)
        + (SELECT count(*) FROM em_e WHERE a.variant = 'e' AND id > 100) = 3 AS ok
FROM em_acks a ORDER BY a.variant;

DELETE FROM ingest_dead_letter WHERE role_name = 'atk_dave';
DROP TABLE em_a, em_b, em_c, em_d, em_e, em_acks;
DROP FUNCTION attack_try_copy(regclass, bytea);
DROP OWNED BY atk_dave;
DROP ROLE atk_dave;
RESET client_min_messages;
