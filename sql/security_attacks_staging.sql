-- Attack 2: planting the row-level-security staging table.
-- For RLS targets the worker copied rows into a temporary staging table named
-- ingest_stage_<reloid>_<hash>, created with CREATE TEMP TABLE IF NOT EXISTS (an existing table of
-- that name is reused) and emptied with TRUNCATE, both as the superuser worker. atk_mallory's own
-- trigger, run by the worker in its session, (1) learns the staging table's name from pg_class,
-- then (2) creates a temporary table of that name (and one of another name) in the worker's
-- session with a BEFORE TRUNCATE trigger, so that the worker's next TRUNCATE runs her function
-- as superuser.
-- Fixed behaviour: user code runs as a security-restricted operation, so CREATE TEMP TABLE from
-- her trigger is refused (that row is dead-lettered), and her TRUNCATE trigger never runs as a
-- superuser. Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_mallory;
CREATE SCHEMA m2 AUTHORIZATION atk_mallory;

-- Superuser helper (test harness only): start the next step with a fresh worker session.
CREATE FUNCTION attack_restart_worker() RETURNS void LANGUAGE plpgsql AS $$
DECLARE old int[];
BEGIN
    SELECT array_agg(pid) INTO old FROM pg_stat_activity
    WHERE backend_type = 'pg_ingest worker' AND datname = current_database();
    IF old IS NULL THEN RETURN; END IF;
    PERFORM pg_terminate_backend(p) FROM unnest(old) p;
    FOR i IN 1..200 LOOP
        PERFORM pg_stat_clear_snapshot();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = ANY (old));
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT attack_restart_worker();

SET ROLE atk_mallory;
CREATE TABLE m2.log (who text, super text, what text);
CREATE TABLE m2.names (relname text);
-- The trap: a statement trigger that records who runs it and tries to escalate.
CREATE FUNCTION m2.trap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO m2.log VALUES (current_user, current_setting('is_superuser'), 'truncate trigger on ' || TG_TABLE_NAME);
    BEGIN
        EXECUTE 'ALTER ROLE atk_mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN NULL;
END $$;
-- Her RLS target (FORCE: the policies apply to her, the owner, so the staging path is taken).
-- Its trigger records the temporary tables visible in the worker's session.
CREATE TABLE m2.target (id int, note text);
ALTER TABLE m2.target ENABLE ROW LEVEL SECURITY;
ALTER TABLE m2.target FORCE ROW LEVEL SECURITY;
CREATE POLICY anything ON m2.target FOR ALL USING (true) WITH CHECK (true);
CREATE FUNCTION m2.observe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO m2.names SELECT c.relname FROM pg_catalog.pg_class c
    WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relkind = 'r';
    RETURN NEW;
END $$;
CREATE TRIGGER observe BEFORE INSERT ON m2.target FOR EACH ROW EXECUTE FUNCTION m2.observe();
-- A plain table whose trigger plants temporary tables in the worker's session: the names seen
-- above, and an arbitrary one.
CREATE TABLE m2.planter (id int);
CREATE FUNCTION m2.plant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n text;
BEGIN
    FOR n IN SELECT DISTINCT relname FROM m2.names UNION SELECT 'ingest_stage_probe' LOOP
        EXECUTE format('CREATE TEMP TABLE %I (id int, note text)', n);
        EXECUTE format('CREATE TRIGGER trap BEFORE TRUNCATE ON pg_temp.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION m2.trap()', n);
        INSERT INTO m2.log VALUES (current_user, current_setting('is_superuser'), 'planted ' || n);
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER plant BEFORE INSERT ON m2.planter FOR EACH ROW EXECUTE FUNCTION m2.plant();

-- Step 1: a row into the RLS target; the worker's staging table is visible to her trigger.
SELECT ingest_enqueue('m2.target', ROW(1, 'observe')::m2.target) > 0 AS ok;
-- Step 2: her planter row: creates the tables in the worker's session (they outlive the batch).
SELECT ingest_enqueue('m2.planter', ROW(1)::m2.planter) > 0 AS ok;
-- Step 3: another row into the RLS target: the worker finds "its" staging table and TRUNCATEs it.
SELECT ingest_enqueue('m2.target', ROW(2, 'trap')::m2.target) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;

-- Check: creating a temporary table from user code in the worker's session was refused.
SELECT count(*) = 0 AS ok FROM m2.log WHERE what LIKE 'planted%';
-- Check: her TRUNCATE trigger never ran as a superuser (or as anyone but her).
SELECT count(*) = 0 AS ok FROM m2.log WHERE super <> 'off' OR who <> 'atk_mallory';
-- Check: she is not a superuser.
SELECT NOT rolsuper AS ok FROM pg_roles WHERE rolname = 'atk_mallory';
-- Check: her ordinary rows were not lost (they are in the table or dead-lettered).
SELECT (SELECT count(*) FROM m2.target)
       + (SELECT count(*) FROM ingest_dead_letter WHERE role_name = 'atk_mallory' AND target_name = 'target') = 2 AS ok;

-- Clean up: the worker's temporary tables go with its session.
ALTER ROLE atk_mallory NOSUPERUSER;
SELECT attack_restart_worker();
DELETE FROM ingest_dead_letter WHERE role_name = 'atk_mallory';
DROP SCHEMA m2 CASCADE;
DROP FUNCTION attack_restart_worker();
DROP OWNED BY atk_mallory;
DROP ROLE atk_mallory;
RESET client_min_messages;
