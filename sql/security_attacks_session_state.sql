-- Session state one role's code could leave in the worker for another role's rows, beyond
-- settings (see security_attacks_settings_leak):
--  * temporary objects: atk_tmp tries to plant pg_temp.text, a domain whose CHECK records who evaluates it.
--    atk_victim's trigger declares a variable of type text: it must get pg_catalog.text (pg_temp
--    is searched last in the worker), and the planted domain must not outlive the batch;
--  * SET CONSTRAINTS ALL DEFERRED by atk_tmp's trigger must not defer atk_victim's constraints
--    (their deferred triggers would then fail inside the victim's restricted operation).
-- Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_tmp;
CREATE ROLE atk_victim;
CREATE SCHEMA tmpatk AUTHORIZATION atk_tmp;
CREATE TABLE tmpatk.seen (who text);
ALTER TABLE tmpatk.seen OWNER TO atk_tmp;
GRANT USAGE ON SCHEMA tmpatk TO PUBLIC;
GRANT INSERT ON tmpatk.seen TO PUBLIC;
CREATE TABLE tmp_t (id int);
ALTER TABLE tmp_t OWNER TO atk_tmp;
-- An RLS table of hers: its staging table gives the worker's session a temporary schema, in
-- which her trigger can then create a temporary type.
CREATE TABLE tmp_rls (id int);
ALTER TABLE tmp_rls OWNER TO atk_tmp;
ALTER TABLE tmp_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE tmp_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY everything ON tmp_rls USING (true) WITH CHECK (true);
CREATE SCHEMA victim_s AUTHORIZATION atk_victim;
CREATE TABLE victim_parent (id int PRIMARY KEY);
INSERT INTO victim_parent VALUES (1);
CREATE TABLE victim_t (id int, note text,
    parent int REFERENCES victim_parent DEFERRABLE INITIALLY IMMEDIATE);
ALTER TABLE victim_parent OWNER TO atk_victim;
ALTER TABLE victim_t OWNER TO atk_victim;

SET ROLE atk_tmp;
CREATE FUNCTION tmpatk.grab(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tmpatk.seen VALUES (current_user);
    RETURN true;
END $$;
GRANT EXECUTE ON FUNCTION tmpatk.grab(text) TO PUBLIC;
CREATE FUNCTION tmpatk.plant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (tmpatk.grab(VALUE))';
    SET CONSTRAINTS ALL DEFERRED;
    RETURN NEW;
EXCEPTION WHEN duplicate_object OR insufficient_privilege THEN
    -- PostgreSQL 15 refuses a temporary type inside a security-restricted operation (42501);
    -- the worker also searches pg_temp last and empties it after every batch.
    SET CONSTRAINTS ALL DEFERRED;
    RETURN NEW;
END $$;
CREATE TRIGGER plant BEFORE INSERT ON tmp_t FOR EACH ROW EXECUTE FUNCTION tmpatk.plant();
RESET ROLE;

SET ROLE atk_victim;
CREATE FUNCTION victim_s.victim_note() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t text := 'note ' || NEW.id;   -- "text" resolved when the function is first run
BEGIN
    NEW.note := t;
    RETURN NEW;
END $$;
CREATE TRIGGER note BEFORE INSERT ON victim_t FOR EACH ROW EXECUTE FUNCTION victim_s.victim_note();
RESET ROLE;

-- Hold the worker so both roles' rows share one batch, tmp_t's first.
ALTER SYSTEM SET ingest.test_worker_delay = '60s';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ingest.wait_for_commit = off;
SET ROLE atk_tmp;
SELECT ingest_enqueue('tmp_rls', ROW(1)::tmp_rls) > 0 AS queued;
SELECT ingest_enqueue('tmp_t', ROW(1)::tmp_t) > 0 AS queued;
RESET ROLE;
SET ROLE atk_victim;
SELECT ingest_enqueue('victim_t', ROW(1, NULL, 1)::victim_t) > 0 AS queued;
RESET ROLE;
ALTER SYSTEM RESET ingest.test_worker_delay;
SELECT pg_reload_conf();
SELECT ingest_flush('30s');
-- A later batch of the victim's alone.
SET ROLE atk_victim;
SELECT ingest_enqueue('victim_t', ROW(2, NULL, 1)::victim_t) > 0 AS queued;
RESET ROLE;
SELECT ingest_flush('30s');
RESET ingest.wait_for_commit;

-- The victim's rows landed, with their notes, and none was dead-lettered.
SELECT (SELECT count(*) FROM victim_t WHERE note = 'note ' || id) = 2 AS ok;
SELECT NOT EXISTS (SELECT 1 FROM ingest_dead_letter d JOIN pg_roles r ON r.oid = d.role_oid
                   WHERE r.rolname = 'atk_victim') AS ok;
-- The planted domain never checked a value as the victim.
SELECT NOT EXISTS (SELECT 1 FROM tmpatk.seen WHERE who = 'atk_victim') AS ok;
-- Her rows landed too (her trigger went on after the refused CREATE DOMAIN).
SELECT (SELECT count(*) FROM tmp_t) = 1 AND (SELECT count(*) FROM tmp_rls) = 1 AS ok;

DROP TABLE victim_t, victim_parent, tmp_t, tmp_rls;
DROP SCHEMA victim_s CASCADE;
DROP SCHEMA tmpatk CASCADE;
DROP ROLE atk_tmp;
DROP ROLE atk_victim;
