-- Attack 11: leaks and bypasses around enqueue and the status functions.
-- (a) ingest_table_stats() called directly showed last_error (which may quote row data) to any
--     role; only the ingest_status view redacted it.
-- (b) a table's OID passed as regclass reached a table in a schema the role has no USAGE on.
-- (c) (the privilege check before the lock: test/isolation/specs/security_attacks_lock_first.spec)
-- (d) ingest_enqueue() in a READ ONLY transaction was accepted and the rows landed.
-- (e) ingest_ticket_status() answered 'committed'/'failed' for any role's ticket.
-- (f) dead letters were matched by role name: a new role with a dropped role's name saw them.
-- Every check prints ok = t (or 'ok: refused').
SET client_min_messages = error;
CREATE ROLE atk_eve;
CREATE ROLE atk_alice;
-- Runs sql; 'ok: refused' if it raises an error, else 'FAIL: accepted'.
CREATE FUNCTION attack_refused(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'FAIL: accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN 'ok: refused';
END $$;

-- (a) A superuser's row with a secret value fails; atk_eve has no privilege on the table.
CREATE TABLE leak_t (id int);
SELECT ingest_enqueue_copy('leak_t', convert_to(E'topsecret-4711\n', 'UTF8')) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
SET ROLE atk_eve;
-- Check: the view redacts it (already so before the fix).
SELECT count(*) = 0 AS ok FROM ingest_status WHERE last_error LIKE '%topsecret%';
-- Check: calling the function behind the view directly does not reveal it either.
SELECT count(*) = 0 AS ok FROM ingest_table_stats() WHERE last_error LIKE '%topsecret%';
RESET ROLE;

-- (b) INSERT on a table, but no USAGE on its schema: her own INSERT is refused, so is the enqueue
-- by OID.
CREATE SCHEMA hidden11;
CREATE TABLE hidden11.t (id int);
GRANT INSERT ON hidden11.t TO atk_eve;
SELECT 'hidden11.t'::regclass::oid AS hidden_oid \gset
SET ROLE atk_eve;
-- Check (sanity): her direct INSERT is refused.
SELECT attack_refused('INSERT INTO hidden11.t VALUES (0)');
-- Check: JSON form by OID is refused.
SELECT attack_refused(format('SELECT ingest_enqueue(%s::regclass, %L::jsonb)', :'hidden_oid', '{"id": 1}'));
-- Check: COPY form by OID is refused.
SELECT attack_refused(format('SELECT ingest_enqueue_copy(%s::regclass, %L::bytea)', :'hidden_oid', '\x320a'));
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
-- Check: nothing landed.
SELECT count(*) = 0 AS ok FROM hidden11.t;

-- (d) READ ONLY transactions do not write, not even through the worker.
CREATE TABLE ro_t (id int);
ALTER TABLE ro_t OWNER TO atk_eve;
SET ROLE atk_eve;
BEGIN READ ONLY;
-- Check: row form refused in a read-only transaction.
SELECT attack_refused($$SELECT ingest_enqueue('ro_t', ROW(1)::ro_t)$$);
-- Check: JSON form refused.
SELECT attack_refused($$SELECT ingest_enqueue('ro_t', '{"id": 2}'::jsonb)$$);
-- Check: COPY form refused.
SELECT attack_refused($$SELECT ingest_enqueue_copy('ro_t', '\x330a'::bytea)$$);
COMMIT;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
-- Check: nothing landed.
SELECT count(*) = 0 AS ok FROM ro_t;

-- (e) Tickets of another role.
CREATE TABLE alice_t (id int);
ALTER TABLE alice_t OWNER TO atk_alice;
SET ROLE atk_alice;
SELECT ingest_enqueue('alice_t', ROW(1)::alice_t) AS t_ok \gset
SELECT ingest_enqueue_copy('alice_t', convert_to(E'not-a-number\n', 'UTF8')) AS t_bad \gset
-- Check (sanity): she sees her own tickets' fate.
SELECT ingest_ticket_status(:t_ok) = 'committed' AS ok;
SELECT ingest_ticket_status(:t_bad) = 'failed' AS ok;
RESET ROLE;
SET ROLE atk_eve;
-- Check: another role learns nothing about her committed ticket.
SELECT ingest_ticket_status(:t_ok) = 'unknown' AS ok;
-- Check: ... nor about her failed ticket.
SELECT ingest_ticket_status(:t_bad) = 'unknown' AS ok;
RESET ROLE;

-- (f) Drop atk_alice (she has a dead letter) and create a new role of the same name.
DROP OWNED BY atk_alice;
DROP ROLE atk_alice;
CREATE ROLE atk_alice;
SET ROLE atk_alice;
-- Check: the new atk_alice sees none of the old one's dead letters.
SELECT count(*) = 0 AS ok FROM ingest_my_dead_letters;
-- Check: ... not through ingest_dead_letters(ticket) either.
SELECT count(*) = 0 AS ok FROM ingest_dead_letters(:t_bad);
-- Check: ... and the old ticket's status is not hers.
SELECT ingest_ticket_status(:t_bad) = 'unknown' AS ok;
RESET ROLE;

DELETE FROM ingest_dead_letter WHERE target_name IN ('leak_t', 'alice_t') OR role_name IN ('atk_eve', 'atk_alice');
DROP TABLE leak_t, ro_t;
DROP SCHEMA hidden11 CASCADE;
DROP FUNCTION attack_refused(text);
DROP OWNED BY atk_eve, atk_alice;
DROP ROLE atk_eve, atk_alice;
RESET client_min_messages;
