-- A second database gets its own worker; both databases' rows land in their own tables.
SELECT current_database() AS orig_db \gset
CREATE DATABASE ingest_second;
\c ingest_second
CREATE EXTENSION pg_ingest;
CREATE TABLE events (id int, src text);
SELECT ingest_enqueue('events', ROW(1, 'second db')::events) > 0 AS ok;
SELECT * FROM events;
SELECT count(*) AS workers FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker';
SELECT datname, relname, rows_committed FROM ingest_status WHERE datname = current_database();
\c :orig_db
SELECT datname, relname IS NULL AS other_db_name_hidden, rows_committed FROM ingest_status WHERE datname = 'ingest_second';
