-- pg_ingest 0.2.0 -> 0.3.0: the WAL-backed queue (ingest.ack = logged | queued).
-- A fresh CREATE EXTENSION installs 0.2.0 and applies this script (there is no separate 0.3.0
-- install script), so updated and fresh installations are the same by construction.
\echo Use "ALTER EXTENSION pg_ingest UPDATE TO '0.3.0'" to load this file. \quit

-- One row per logged envelope: what one transaction handed over (or spilled), written in that
-- transaction and deleted by the worker's transaction that inserts its rows (wal_queue.cpp). A
-- heap table, so WAL, checkpoints, crash recovery and streaming replication keep it for us.
-- boot names the shared-memory ring the row was written under; rows of another boot are copied
-- back into the ring after a crash-restart or a promotion. Written and read only by pg_ingest's
-- C code (no index: the worker deletes by tuple id and checks id). Not dumped: its entries name
-- tables and roles by OID, which a restore does not keep.
-- sysid (the cluster's system identifier, shared by physical standbys) and datoid keep rows that
-- another cluster or database wrote (a logical subscription of all tables, pg_upgrade, CREATE
-- DATABASE ... TEMPLATE) from ever being recovered here.
CREATE TABLE ingest_queue (
    id          bigint      NOT NULL,
    boot        bigint      NOT NULL,
    sysid       bigint      NOT NULL,
    datoid      oid         NOT NULL,
    enqueued_at timestamptz NOT NULL,
    nentries    integer     NOT NULL,
    entries     bytea       NOT NULL
) USING heap WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);
-- Entries are already compact COPY text: no compression on the insert path.
ALTER TABLE ingest_queue ALTER COLUMN entries SET STORAGE EXTERNAL;
REVOKE ALL ON ingest_queue FROM PUBLIC;
COMMENT ON TABLE ingest_queue IS
'pg_ingest: envelopes in WAL not yet inserted by a worker (ingest.ack = logged/queued, and rows of transactions that also wrote themselves)';

-- What the WAL-backed queue holds in this database, for ingest_status.
CREATE FUNCTION ingest_logged_stats(OUT envelopes bigint, OUT bytes bigint, OUT oldest_enqueued_at timestamptz)
RETURNS record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*), coalesce(sum(pg_column_size(q.entries)), 0)::bigint, min(q.enqueued_at)
    FROM @extschema@.ingest_queue q
$$;
COMMENT ON FUNCTION ingest_logged_stats() IS
'pg_ingest: envelopes in ingest_queue (in WAL, not yet inserted), their bytes and the oldest one''s enqueue time';

-- ingest_status gains the WAL-backed queue of the current database (the same on each of its rows).
CREATE OR REPLACE VIEW ingest_status AS
SELECT s.datid,
       d.datname,
       s.relid,
       CASE WHEN s.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
            THEN s.relid::pg_catalog.regclass::text END AS relname,
       s.rows_enqueued, s.bytes_enqueued, s.rows_committed, s.rows_failed, s.rows_discarded,
       s.rows_queued, s.batches,
       CASE WHEN s.batches > 0 THEN round((s.rows_committed + s.rows_failed)::numeric / s.batches, 1) END
           AS avg_batch_rows,
       s.retries,
       pg_catalog.now() - s.oldest_queued_time AS oldest_queued_age,
       -- Redacted by ingest_table_stats() itself: an error message may quote row data.
       s.last_error,
       s.last_error_time, s.last_commit_time,
       r.stats_reset,
       CASE WHEN s.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
            THEN l.envelopes END AS logged_envelopes,
       CASE WHEN s.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
            THEN l.bytes END AS logged_bytes,
       CASE WHEN s.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
            THEN pg_catalog.now() - l.oldest_enqueued_at END AS oldest_logged_age
FROM ingest_table_stats() s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datid
CROSS JOIN ingest_ring_stats() r
CROSS JOIN ingest_logged_stats() l;
