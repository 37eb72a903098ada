-- The row-level security path (staging table, then INSERT ... SELECT as the role) runs all user
-- code as the enqueuing role: a domain check calling the role's own function sees that role,
-- never the worker's superuser.
CREATE ROLE ingest_carol;
CREATE TABLE seen_as (who text, super boolean);
GRANT INSERT ON seen_as TO ingest_carol;
CREATE FUNCTION record_caller(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO seen_as SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
    RETURN v > 0;
END $$;
CREATE DOMAIN checked_int AS int CHECK (record_caller(VALUE));
CREATE TABLE guarded (id int GENERATED ALWAYS AS IDENTITY, n checked_int, owner text DEFAULT current_user,
                      note text);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON guarded FOR ALL USING (owner = current_user) WITH CHECK (owner = current_user);
GRANT SELECT, INSERT ON guarded TO ingest_carol;

SET ROLE ingest_carol;
-- Two column lists for the same table in one transaction (two staging tables), an explicit
-- value for the GENERATED ALWAYS identity column (taken, as COPY does), and a row the domain
-- check refuses (dead-lettered).
BEGIN;
SELECT ingest_enqueue('guarded', '{"n": 1, "note": "a"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue('guarded', '{"n": 2}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue('guarded', '{"id": 100, "n": 3}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue('guarded', '{"n": -1}'::jsonb) > 0 AS ok;
COMMIT;
SELECT id = 100 AS explicit_id, n, owner, note FROM guarded ORDER BY n;
RESET ROLE;
SELECT DISTINCT who, super FROM seen_as;
SELECT role_name, sqlstate, error FROM ingest_dead_letter WHERE target_name = 'guarded';

-- A deferred foreign key fails at the worker's commit, not at its insert: the worker checks
-- constraints at once, so the bad row is dead-lettered and the others commit.
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent VALUES (1);
CREATE TABLE child (id int, parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
SELECT ingest_enqueue('child', ARRAY[ROW(1, 1), ROW(2, 99), ROW(3, 1)]::child[]) > 0 AS ok;
SELECT * FROM child ORDER BY id;
SELECT raw_row, sqlstate FROM ingest_dead_letter WHERE target_name = 'child';
-- The worker keeps serving.
SELECT ingest_enqueue('child', ROW(4, 1)::child) > 0 AS ok;
SELECT count(*) FROM child;

DROP TABLE guarded, seen_as, child, parent;
DROP DOMAIN checked_int;
DROP FUNCTION record_caller(int);
DROP OWNED BY ingest_carol;
DROP ROLE ingest_carol;
