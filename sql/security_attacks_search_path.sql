-- Attack 1: privilege escalation through the worker's search_path.
-- ingest_mallory is an ordinary role that owns schema m and tables in it. She plants operators,
-- functions and an aggregate in m that shadow what the worker's own bookkeeping SQL uses (= on
-- text/int8/oid, count(*), now(), < and - on timestamptz), each of which, if it ever runs with
-- the worker's superuser rights, logs that fact and makes her a superuser. Then user code that
-- the worker runs for her (four variants: a trigger, a column DEFAULT, a domain CHECK, an RLS
-- policy function) calls set_config('search_path', 'm, pg_catalog', false) in the worker's
-- session, and she sends producer batches (and a resend) so that the bookkeeping runs.
-- Fixed behaviour: she never becomes superuser, and no planted function ever runs as one.
-- Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE ingest_mallory;
CREATE SCHEMA m AUTHORIZATION ingest_mallory;

-- Superuser helper (test harness only): forget the worker's session between variants, so each
-- variant starts from a fresh worker. Waits until the old worker process has gone.
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

SET ROLE ingest_mallory;
CREATE TABLE m.log (variant text, who text, super text, what text);
CREATE TABLE m.variant (name text);
INSERT INTO m.variant VALUES ('none');
-- What every planted object does when called: record who runs it, and try to escalate.
CREATE FUNCTION m.spy(what text) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO m.log SELECT v.name, current_user::text, pg_catalog.current_setting('is_superuser'), what
    FROM m.variant v;
    BEGIN
        EXECUTE 'ALTER ROLE ingest_mallory SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END $$;
CREATE FUNCTION m.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('=(text,text)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION m.int8eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('=(int8,int8)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION m.oideq(a oid, b oid) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('=(oid,oid)'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION m.tslt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('<(timestamptz)'); RETURN a OPERATOR(pg_catalog.<) b; END $$;
CREATE FUNCTION m.tsmi(a timestamptz, b interval) RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('-(timestamptz,interval)'); RETURN a OPERATOR(pg_catalog.-) b; END $$;
CREATE OPERATOR m.= (LEFTARG = text, RIGHTARG = text, FUNCTION = m.texteq);
CREATE OPERATOR m.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = m.int8eq);
CREATE OPERATOR m.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = m.oideq);
CREATE OPERATOR m.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = m.tslt);
CREATE OPERATOR m.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = m.tsmi);
CREATE FUNCTION m.now() RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION m.count_step(s bigint) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM m.spy('count(*)'); RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE m.count(*) (SFUNC = m.count_step, STYPE = bigint, INITCOND = '0');

-- The poison: user code that moves schema m in front of the worker's search_path.
CREATE FUNCTION m.poison() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN PERFORM pg_catalog.set_config('search_path', 'm, pg_catalog', false); RETURN true; END $$;
CREATE FUNCTION m.poison_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM m.poison(); RETURN NEW; END $$;
-- Variant targets.
CREATE TABLE m.v_trigger (id int, note text);
CREATE TRIGGER poison BEFORE INSERT ON m.v_trigger FOR EACH ROW EXECUTE FUNCTION m.poison_trigger();
CREATE TABLE m.v_default (id int, note text, poisoned boolean DEFAULT m.poison());
CREATE DOMAIN m.poisoned_int AS int CHECK (m.poison());
CREATE TABLE m.v_domain (id m.poisoned_int, note text);
CREATE TABLE m.v_policy (id int, note text);
ALTER TABLE m.v_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE m.v_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY poison ON m.v_policy FOR ALL USING (true) WITH CHECK (m.poison());
-- Where the follow-up producer batches go.
CREATE TABLE m.sink (id int, note text);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Variant 1: a BEFORE INSERT trigger poisons the search_path.
SELECT attack_restart_worker();
SET ROLE ingest_mallory;
UPDATE m.variant SET name = 'trigger';
-- A producer batch first, so the exactly-once table has rows to compare against.
SELECT ingest_enqueue_copy('m.sink', convert_to(E'1\tseed\n', 'UTF8'), NULL, 'mallory-seed-trigger', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_trigger', ROW(1, 'poison')::m.v_trigger) > 0 AS ok;
-- The worker's bookkeeping now runs: exactly-once check (= on text and int8), and a resend
-- (count(*) of the original's dead letters, = on int8).
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-trigger', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-trigger', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_trigger', ROW(2, 'again')::m.v_trigger) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
-- Check: mallory is not a superuser.
SELECT NOT rolsuper AS ok FROM pg_roles WHERE rolname = 'ingest_mallory';
-- Check: no planted function ran with superuser rights.
SELECT count(*) = 0 AS ok FROM m.log WHERE variant = 'trigger' AND (super <> 'off' OR who <> 'ingest_mallory');
ALTER ROLE ingest_mallory NOSUPERUSER;

-- ---------------------------------------------------------------------------------------------
-- Variant 2: a column DEFAULT poisons the search_path (the JSON form omits the column).
SELECT attack_restart_worker();
SET ROLE ingest_mallory;
UPDATE m.variant SET name = 'default';
SELECT ingest_enqueue_copy('m.sink', convert_to(E'1\tseed\n', 'UTF8'), NULL, 'mallory-seed-default', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_default', '{"id": 1, "note": "poison"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-default', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-default', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_default', '{"id": 2, "note": "again"}'::jsonb) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
SELECT NOT rolsuper AS ok FROM pg_roles WHERE rolname = 'ingest_mallory';
SELECT count(*) = 0 AS ok FROM m.log WHERE variant = 'default' AND (super <> 'off' OR who <> 'ingest_mallory');
ALTER ROLE ingest_mallory NOSUPERUSER;

-- ---------------------------------------------------------------------------------------------
-- Variant 3: a domain CHECK poisons the search_path (runs while the COPY reads the value).
SELECT attack_restart_worker();
SET ROLE ingest_mallory;
UPDATE m.variant SET name = 'domain';
SELECT ingest_enqueue_copy('m.sink', convert_to(E'1\tseed\n', 'UTF8'), NULL, 'mallory-seed-domain', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.v_domain', convert_to(E'1\tpoison\n', 'UTF8')) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-domain', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-domain', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.v_domain', convert_to(E'2\tagain\n', 'UTF8')) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
SELECT NOT rolsuper AS ok FROM pg_roles WHERE rolname = 'ingest_mallory';
SELECT count(*) = 0 AS ok FROM m.log WHERE variant = 'domain' AND (super <> 'off' OR who <> 'ingest_mallory');
ALTER ROLE ingest_mallory NOSUPERUSER;

-- ---------------------------------------------------------------------------------------------
-- Variant 4: a row-level security policy function poisons the search_path (FORCE ROW LEVEL
-- SECURITY on her own table, so the policy applies to her rows).
SELECT attack_restart_worker();
SET ROLE ingest_mallory;
UPDATE m.variant SET name = 'policy';
SELECT ingest_enqueue_copy('m.sink', convert_to(E'1\tseed\n', 'UTF8'), NULL, 'mallory-seed-policy', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_policy', '{"id": 1, "note": "poison"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-policy', 1) > 0 AS ok;
SELECT ingest_enqueue_copy('m.sink', convert_to(E'2\tafter\n', 'UTF8'), NULL, 'mallory-policy', 1) > 0 AS ok;
SELECT ingest_enqueue('m.v_policy', '{"id": 2, "note": "again"}'::jsonb) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
SELECT NOT rolsuper AS ok FROM pg_roles WHERE rolname = 'ingest_mallory';
SELECT count(*) = 0 AS ok FROM m.log WHERE variant = 'policy' AND (super <> 'off' OR who <> 'ingest_mallory');
ALTER ROLE ingest_mallory NOSUPERUSER;

-- Over all variants: nothing planted ever ran as anyone but mallory herself.
SELECT count(*) = 0 AS ok FROM m.log WHERE super <> 'off' OR who <> 'ingest_mallory';

-- Clean up (and start the next test with a fresh worker session).
DELETE FROM ingest_resend WHERE original_ticket IN
    (SELECT ticket FROM ingest_producer_batch WHERE producer_id LIKE 'mallory-%');
DELETE FROM ingest_producer_batch WHERE producer_id LIKE 'mallory-%';
DELETE FROM ingest_dead_letter WHERE role_name = 'ingest_mallory';
SELECT attack_restart_worker();
DROP SCHEMA m CASCADE;
DROP FUNCTION attack_restart_worker();
DROP OWNED BY ingest_mallory;
DROP ROLE ingest_mallory;
RESET client_min_messages;
