-- pg_ingest 0.1.0: asynchronous batched ingestion
\echo Use "CREATE EXTENSION pg_ingest" to load this file. \quit

-- Rows the worker could not insert, kept whole so a person can read and re-submit them.
CREATE TABLE ingest_dead_letter (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket      bigint NOT NULL,
    row_number  integer NOT NULL,
    target      oid NOT NULL,
    target_name text,
    role_name   text,
    columns     text[],
    raw_row     text NOT NULL,
    error       text NOT NULL,
    sqlstate    text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX ingest_dead_letter_ticket ON ingest_dead_letter (ticket);
COMMENT ON TABLE ingest_dead_letter IS 'Rows pg_ingest could not insert: the raw COPY text line and its columns (NULL: all), error and SQLSTATE';
REVOKE ALL ON ingest_dead_letter FROM PUBLIC;

-- One row per worker transaction: which tickets it committed. Kept for ingest.ticket_retention.
-- Written once per batch, so kept cheap: BRIN indexes only (tickets and times grow with
-- insertion order), the exact tickets checked on the few rows they select.
CREATE TABLE ingest_batch_log (
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rows         bigint NOT NULL,
    first_ticket bigint NOT NULL,
    last_ticket  bigint NOT NULL,
    tickets      int8multirange NOT NULL
);
CREATE INDEX ingest_batch_log_tickets ON ingest_batch_log USING brin (first_ticket, last_ticket);
CREATE INDEX ingest_batch_log_committed_at ON ingest_batch_log USING brin (committed_at);
REVOKE ALL ON ingest_batch_log FROM PUBLIC;

-- Exactly-once: every (producer_id, batch_seq) committed, with the ticket of the call that did it.
CREATE TABLE ingest_producer_batch (
    producer_id  text NOT NULL,
    batch_seq    bigint NOT NULL,
    ticket       bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (producer_id, batch_seq)
);
CREATE INDEX ingest_producer_batch_committed_at ON ingest_producer_batch (committed_at);
REVOKE ALL ON ingest_producer_batch FROM PUBLIC;

-- Resends of an exactly-once batch that was already committed: resend ticket -> original ticket,
-- so the resend's caller can find the original's dead letters. Pruned like the batch log.
CREATE TABLE ingest_resend (
    ticket          bigint PRIMARY KEY,
    original_ticket bigint NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON ingest_resend FROM PUBLIC;

GRANT SELECT ON ingest_resend TO PUBLIC;

-- Each role sees its own dead letters (superusers see all), without access to the table itself:
-- a view's WHERE sees the querying role as current_user.
CREATE VIEW ingest_my_dead_letters WITH (security_barrier) AS
SELECT d.id, d.ticket, d.row_number, d.target, d.target_name, d.role_name, d.columns, d.raw_row,
       d.error, d.sqlstate, d.failed_at
FROM ingest_dead_letter d
WHERE d.role_name = current_user
   OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
GRANT SELECT ON ingest_my_dead_letters TO PUBLIC;

CREATE FUNCTION ingest_dead_letters(ticket bigint)
RETURNS TABLE (row_number integer, error text, sqlstate text, raw_row text, columns text[])
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.row_number, d.error, d.sqlstate, d.raw_row, d.columns
    FROM @extschema@.ingest_my_dead_letters d
    WHERE d.ticket IN (SELECT $1 UNION ALL SELECT r.original_ticket FROM @extschema@.ingest_resend r WHERE r.ticket = $1)
    ORDER BY d.row_number
$$;
COMMENT ON FUNCTION ingest_dead_letters(bigint) IS
'Your rows of a ticket (or of the batch it resent) that were dead-lettered';

CREATE FUNCTION ingest_enqueue(target pg_catalog.regclass, rec anyelement)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_ingest_enqueue_row'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ingest_enqueue(pg_catalog.regclass, anyelement) IS
'Queue one row (of the target''s row type), or an array of them, for asynchronous insertion; returns a ticket';

CREATE FUNCTION ingest_enqueue(target pg_catalog.regclass, doc jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_ingest_enqueue_jsonb'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ingest_enqueue(pg_catalog.regclass, jsonb) IS
'Queue one JSON object, or an array of objects, mapped to columns by key (missing keys take defaults); returns a ticket';

CREATE FUNCTION ingest_enqueue_copy(target pg_catalog.regclass, data bytea,
                                    columns text[] DEFAULT NULL,
                                    producer_id text DEFAULT NULL,
                                    batch_seq bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'pg_ingest_enqueue_copy'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ingest_enqueue_copy(pg_catalog.regclass, bytea, text[], text, bigint) IS
'Bulk form: queue rows in COPY text format (one per line) for the named columns; returns a ticket';

CREATE FUNCTION ingest_flush(timeout interval DEFAULT '30s')
RETURNS boolean
AS 'MODULE_PATHNAME', 'pg_ingest_flush'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ingest_flush(interval) IS
'Wait until every row handed over in this database before the call is committed or dead-lettered; false on timeout';

CREATE FUNCTION ingest_ticket_queued(ticket bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'pg_ingest_ticket_queued'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

-- SECURITY DEFINER so any role can ask about its tickets without reading the bookkeeping tables.
CREATE FUNCTION ingest_ticket_status(ticket bigint)
RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM @extschema@.ingest_dead_letter d WHERE d.ticket = $1) THEN 'failed'
        WHEN EXISTS (SELECT 1 FROM @extschema@.ingest_batch_log b
                     WHERE b.first_ticket <= $1 AND b.last_ticket >= $1 AND b.tickets @> $1) THEN 'committed'
        WHEN @extschema@.ingest_ticket_queued($1) THEN 'queued'
        ELSE 'unknown'
    END
$$;
COMMENT ON FUNCTION ingest_ticket_status(bigint) IS
'queued | committed | failed (rows dead-lettered) | unknown (never handed over: rolled back, lost in a crash with wait_for_commit off, or older than ingest.ticket_retention)';

CREATE FUNCTION ingest_table_stats(
    OUT datid oid, OUT relid oid,
    OUT rows_enqueued bigint, OUT bytes_enqueued bigint, OUT rows_committed bigint,
    OUT rows_failed bigint, OUT rows_discarded bigint, OUT batches bigint, OUT retries bigint,
    OUT rows_queued bigint, OUT oldest_queued_time timestamptz,
    OUT last_error text, OUT last_error_time timestamptz, OUT last_commit_time timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'pg_ingest_table_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE FUNCTION ingest_ring_stats(
    OUT ring_bytes bigint, OUT ring_used_bytes bigint, OUT head bigint, OUT tail bigint,
    OUT workers integer, OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'pg_ingest_ring_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE VIEW ingest_status AS
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
       -- An error message may quote row data (e.g. a duplicate key): like pg_stat_activity's
       -- query, it is shown only to roles that may read the table, or pg_read_all_stats.
       CASE WHEN s.last_error IS NULL
                 OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER')
                 OR (s.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
                     AND pg_catalog.has_table_privilege(s.relid, 'SELECT'))
            THEN s.last_error ELSE '<insufficient privilege>' END AS last_error,
       s.last_error_time, s.last_commit_time,
       r.stats_reset
FROM ingest_table_stats() s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datid
CROSS JOIN ingest_ring_stats() r;
COMMENT ON VIEW ingest_status IS 'pg_ingest: one row per (database, target table): queued, committed, failed, speed';

CREATE VIEW ingest_ring AS SELECT * FROM ingest_ring_stats();
COMMENT ON VIEW ingest_ring IS 'pg_ingest: size and use of the shared-memory ring, running workers';

GRANT SELECT ON ingest_status, ingest_ring TO PUBLIC;

CREATE FUNCTION ingest_reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'pg_ingest_reset_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION ingest_reset_stats() IS 'Zero the counters shown by ingest_status';
REVOKE ALL ON FUNCTION ingest_reset_stats() FROM PUBLIC;
