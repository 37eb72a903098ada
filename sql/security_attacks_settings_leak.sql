-- Attack 3: session settings leak from one role's user code to another role's rows.
-- atk_alice's trigger, run by the worker, sets TimeZone and DateStyle for the rest of the worker's
-- session (set_config(..., false)). atk_bob's rows enqueued afterwards (JSON form and COPY text,
-- a timestamptz without an offset and a date like 01/02/2024) must be read with bob's own session
-- settings, exactly as his direct INSERT stores them, never with what alice left behind.
-- Bob uses the server's configured TimeZone and DateStyle 'ISO, MDY', so only the leak can make
-- his values differ. Every check prints ok = t.
SET client_min_messages = error;
CREATE ROLE atk_alice;
CREATE ROLE atk_bob;
-- Superuser helper (test harness only): start from a fresh worker session.
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
-- The server's configured time zone (what a fresh session gets without PGTZ).
SELECT coalesce((SELECT setting FROM pg_file_settings WHERE name = 'timezone' AND error IS NULL
                 ORDER BY seqno DESC LIMIT 1), 'GMT') AS server_tz \gset

CREATE TABLE alice_t (id int);
ALTER TABLE alice_t OWNER TO atk_alice;
CREATE TABLE bob_t (id int PRIMARY KEY, ts timestamptz, d date);
ALTER TABLE bob_t OWNER TO atk_bob;

-- Alice's trigger function (SECURITY INVOKER, owned by her).
CREATE FUNCTION alice_leak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('TimeZone', 'Pacific/Kiritimati', false);
    PERFORM set_config('DateStyle', 'SQL, DMY', false);
    RETURN NEW;
END $$;
ALTER FUNCTION alice_leak() OWNER TO atk_alice;
SET ROLE atk_alice;
CREATE TRIGGER leak BEFORE INSERT ON alice_t FOR EACH ROW EXECUTE FUNCTION alice_leak();
SELECT ingest_enqueue('alice_t', ROW(1)::alice_t) > 0 AS ok;
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;

SET ROLE atk_bob;
SET TimeZone = :'server_tz';
SET DateStyle = 'ISO, MDY';
SELECT ingest_enqueue('bob_t', '{"id": 1, "ts": "2024-01-01 10:00", "d": "01/02/2024"}'::jsonb) > 0 AS ok;
SELECT ingest_enqueue_copy('bob_t', convert_to(E'2\t2024-01-01 10:00\t01/02/2024\n', 'UTF8')) > 0 AS ok;
-- What bob's own INSERT stores.
INSERT INTO bob_t VALUES (100, '2024-01-01 10:00', '01/02/2024');
SELECT ingest_flush('30s') AS flushed;
RESET ROLE;
RESET TimeZone;
RESET DateStyle;

-- Check: the JSON form's timestamptz is what bob's INSERT stores.
SELECT coalesce((SELECT a.ts = b.ts FROM bob_t a, bob_t b WHERE a.id = 1 AND b.id = 100), false) AS ok;
-- Check: the JSON form's date is what bob's INSERT stores.
SELECT coalesce((SELECT a.d = b.d FROM bob_t a, bob_t b WHERE a.id = 1 AND b.id = 100), false) AS ok;
-- Check: the COPY form's timestamptz is what bob's INSERT stores.
SELECT coalesce((SELECT a.ts = b.ts FROM bob_t a, bob_t b WHERE a.id = 2 AND b.id = 100), false) AS ok;
-- Check: the COPY form's date is what bob's INSERT stores.
SELECT coalesce((SELECT a.d = b.d FROM bob_t a, bob_t b WHERE a.id = 2 AND b.id = 100), false) AS ok;

SELECT attack_restart_worker();
DROP TABLE alice_t, bob_t;
DROP FUNCTION attack_restart_worker(), alice_leak();
DROP OWNED BY atk_alice, atk_bob;
DROP ROLE atk_alice, atk_bob;
RESET client_min_messages;
