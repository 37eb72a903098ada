-- An idle worker exits after ingest.worker_idle_timeout and frees its slot; the next hand-over
-- starts a new one and nothing is lost.
CREATE TABLE idle_t (id int);
SELECT ingest_enqueue('idle_t', ROW(1)::idle_t) > 0 AS ok;
SELECT count(*) >= 1 AS workers_before FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' AND datname = current_database();
ALTER SYSTEM SET ingest.worker_idle_timeout = '1s';
SELECT pg_reload_conf();
-- The worker wakes at least once a second; give it a few seconds to notice.
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
                              WHERE backend_type = 'pg_ingest worker' AND datname = current_database());
        PERFORM pg_sleep(0.1);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
END $$;
SELECT count(*) AS workers_after_idle FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' AND datname = current_database();
ALTER SYSTEM RESET ingest.worker_idle_timeout;
SELECT pg_reload_conf();
SELECT ingest_enqueue('idle_t', ROW(2)::idle_t) > 0 AS ok;
SELECT * FROM idle_t ORDER BY id;
SELECT count(*) AS workers_again FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' AND datname = current_database();
