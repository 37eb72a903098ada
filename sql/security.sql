-- A role can never land rows its own INSERT would be refused: privileges are checked at enqueue
-- and again at insert, and row-level security and SECURITY INVOKER triggers see the enqueuing role.
CREATE ROLE ingest_alice;
CREATE ROLE ingest_bob;
CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text, seen_by text);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON notes FOR ALL USING (owner = current_user) WITH CHECK (owner = current_user);
GRANT SELECT, INSERT ON notes TO ingest_alice, ingest_bob;
CREATE FUNCTION notes_seen_by() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN NEW.seen_by := current_user; RETURN NEW; END $$;
CREATE TRIGGER notes_seen_by BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_seen_by();

SET ROLE ingest_alice;
-- Her own INSERT of someone else's row is refused by the policy ...
INSERT INTO notes VALUES (1, 'ingest_bob', 'forged');
-- ... so is the enqueued one: it lands in the dead-letter table, her own row lands.
SELECT ingest_enqueue('notes', '[{"id": 2, "owner": "ingest_alice", "body": "mine"},
                                 {"id": 3, "owner": "ingest_bob", "body": "forged"}]'::jsonb) > 0 AS ok;
SELECT id, owner, body, seen_by FROM notes ORDER BY id;
RESET ROLE;
SELECT id, owner, body, seen_by FROM notes ORDER BY id;
SELECT row_number, role_name, sqlstate, error FROM ingest_dead_letter WHERE target_name = 'notes';

-- Privilege revoked between enqueue and insert: the rows are dead-lettered with the reason.
CREATE TABLE plain (id int);
GRANT INSERT ON plain TO ingest_bob;
ALTER SYSTEM SET ingest.test_worker_delay = '2s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SET ROLE ingest_bob;
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('plain', ROW(1)::plain) > 0 AS ok;
RESET ingest.wait_for_commit;
RESET ROLE;
REVOKE INSERT ON plain FROM ingest_bob;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
SELECT count(*) FROM plain;
SELECT role_name, sqlstate, error FROM ingest_dead_letter WHERE target_name = 'plain';

-- A target dropped while its rows are queued: they are dead-lettered with the reason, and the
-- worker goes on serving other tables.
CREATE TABLE doomed (id int);
CREATE TABLE survivor (id int);
ALTER SYSTEM SET ingest.test_worker_delay = '2s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SET ingest.wait_for_commit = off;
SELECT ingest_enqueue('doomed', ROW(1)::doomed) > 0 AS ok;
SELECT ingest_enqueue('survivor', ROW(2)::survivor) > 0 AS ok;
RESET ingest.wait_for_commit;
DROP TABLE doomed;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
SELECT * FROM survivor;
SELECT target_name IS NULL AS name_gone, raw_row, sqlstate, regexp_replace(error, 'OID [0-9]+', 'OID n') AS error
FROM ingest_dead_letter WHERE error LIKE '%no longer exists%';

-- The target is the OID resolved at enqueue: a table renamed afterwards still gets the rows, a
-- new table with the old name does not.
CREATE TABLE moving (id int);
SET ingest.wait_for_commit = off;
ALTER SYSTEM SET ingest.test_worker_delay = '2s';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SELECT ingest_enqueue('moving', ROW(1)::moving) > 0 AS ok;
ALTER TABLE moving RENAME TO moved;
CREATE TABLE moving (id int);
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
RESET ingest.wait_for_commit;
SELECT (SELECT count(*) FROM moved) AS in_renamed, (SELECT count(*) FROM moving) AS in_new;

-- The bookkeeping tables are not readable by ordinary roles; the status view is.
SET ROLE ingest_bob;
SELECT count(*) >= 0 AS can_read_status FROM ingest_status;
-- ... but an error message (it may quote row data) only for tables the role may read.
SELECT relname, last_error FROM ingest_status WHERE relname IN ('notes', 'plain') ORDER BY relname;
SELECT count(*) FROM ingest_dead_letter;
RESET ROLE;
-- A superuser sees every error: here the privilege revoked before insert.
SELECT relname, last_error FROM ingest_status WHERE relname = 'plain';
DROP OWNED BY ingest_alice, ingest_bob;
DROP ROLE ingest_alice, ingest_bob;
