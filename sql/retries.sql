-- Transient errors are retried with backoff (and counted) before a row is dead-lettered.
CREATE SEQUENCE flaky_attempts;
CREATE TABLE flaky (id int, mode text);
CREATE FUNCTION flaky_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- 'twice': fails the first two attempts (the sequence does not roll back), then succeeds.
    IF NEW.mode = 'twice' AND nextval('flaky_attempts') <= 2 THEN
        RAISE EXCEPTION 'simulated serialization failure' USING ERRCODE = 'serialization_failure';
    END IF;
    IF NEW.mode = 'always' THEN
        RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER flaky_check BEFORE INSERT ON flaky FOR EACH ROW EXECUTE FUNCTION flaky_check();

SELECT ingest_enqueue('flaky', ROW(1, 'twice')::flaky) > 0 AS ok;
SELECT * FROM flaky;
SELECT retries, rows_committed, rows_failed FROM ingest_status WHERE relname = 'flaky';

-- Still failing after 3 attempts (2 retries): dead-lettered with the transient error; the good row commits.
SELECT ingest_reset_stats();
SELECT ingest_enqueue('flaky', ARRAY[ROW(2, 'always'), ROW(3, 'fine')]::flaky[]) > 0 AS ok;
SELECT * FROM flaky ORDER BY id;
SELECT retries, rows_committed, rows_failed FROM ingest_status WHERE relname = 'flaky';
SELECT raw_row, sqlstate, error FROM ingest_dead_letter WHERE target_name = 'flaky';
