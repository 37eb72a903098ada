-- pg_ingest 0.2.0: asynchronous batched ingestion
\echo Use "CREATE EXTENSION pg_ingest" to load this file. \quit

-- Who sees what. The bookkeeping tables below are readable by their owner only. Every role reads
-- its own part through the security-barrier views ingest_my_dead_letters and ingest_my_tickets,
-- which decide by role OID (never by name: a role dropped and created again under the same name
-- is a different role): a role sees the rows of roles whose privileges it has (itself, and roles
-- it inherits from, pg_has_role ... 'USAGE'); superusers see everything. Ticket outcomes (not
-- row data) are also shown to members of pg_read_all_stats. Rows recorded before 0.2.0 carry
-- role_oid 0 when their role could not be told: only superusers (and, for ticket outcomes,
-- pg_read_all_stats) see them.
--
-- Column order in the tables below is the order an update from 0.1.0 produces, so that a fresh
-- install and an updated one are the same to pg_dump.

-- A readable rendering of a dead letter's raw bytes: valid text unchanged; a NUL byte or a byte
-- invalid in the database encoding shown as \xHH, which COPY text reads back as that same byte.
CREATE FUNCTION ingest_raw_text(raw_data bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'pg_ingest_raw_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ingest_raw_text(bytea) IS
'Readable text of a raw queued row: valid text as is, NUL and invalid bytes as \xHH (COPY text escapes)';

-- Rows the worker could not insert, kept byte for byte so a person can read and re-submit them.
CREATE TABLE ingest_dead_letter (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket      bigint NOT NULL,
    row_number  integer NOT NULL,
    target      oid NOT NULL,
    target_name text,
    role_name   text,
    columns     text[],
    error       text NOT NULL,
    sqlstate    text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_oid    oid NOT NULL,
    raw_data    bytea NOT NULL,
    raw_row     text GENERATED ALWAYS AS (ingest_raw_text(raw_data)) STORED
);
CREATE INDEX ingest_dead_letter_ticket ON ingest_dead_letter (ticket);
CREATE INDEX ingest_dead_letter_failed_at ON ingest_dead_letter USING brin (failed_at);
COMMENT ON TABLE ingest_dead_letter IS 'Rows pg_ingest could not insert: the exact bytes of the COPY text line (raw_data; raw_row is readable text of it), its columns (NULL: all), the enqueuing role, error and SQLSTATE. Kept for ingest.dead_letter_retention';
REVOKE ALL ON ingest_dead_letter FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ingest_dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('ingest_dead_letter_id_seq', '');

-- One row per worker transaction and enqueuing role: which of that role's tickets it committed.
-- Kept for ingest.ticket_retention. Written once per batch, so kept cheap: BRIN indexes only
-- (tickets and times grow with insertion order), the exact tickets checked on the few rows they
-- select.
CREATE TABLE ingest_batch_log (
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rows         bigint NOT NULL,
    first_ticket bigint NOT NULL,
    last_ticket  bigint NOT NULL,
    tickets      int8multirange NOT NULL,
    role_oid     oid NOT NULL
);
CREATE INDEX ingest_batch_log_tickets ON ingest_batch_log USING brin (first_ticket, last_ticket);
CREATE INDEX ingest_batch_log_committed_at ON ingest_batch_log USING brin (committed_at);
REVOKE ALL ON ingest_batch_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ingest_batch_log', '');

-- Exactly-once: every (role, producer_id, batch_seq) committed, with the ticket of the call that
-- did it. Keys are the enqueuing role's: one role's batches never make another's duplicates.
-- role_oid 0: recorded before 0.2.0 (role unknown); such a key still matches every role until
-- ingest.ticket_retention prunes it, so no batch committed before the update lands twice.
CREATE TABLE ingest_producer_batch (
    producer_id  text NOT NULL,
    batch_seq    bigint NOT NULL,
    ticket       bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_oid     oid NOT NULL,
    PRIMARY KEY (role_oid, producer_id, batch_seq)
);
CREATE INDEX ingest_producer_batch_committed_at ON ingest_producer_batch (committed_at);
REVOKE ALL ON ingest_producer_batch FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ingest_producer_batch', '');

-- Resends of an exactly-once batch that was already committed: resend ticket -> original ticket,
-- so the resend's caller can find the original's dead letters. Pruned like the batch log.
CREATE TABLE ingest_resend (
    ticket          bigint PRIMARY KEY,
    original_ticket bigint NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    role_oid        oid NOT NULL
);
REVOKE ALL ON ingest_resend FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ingest_resend', '');

-- Each role sees the dead letters of the roles whose privileges it has (superusers see all),
-- without access to the table itself: a view's WHERE sees the querying role as current_user.
CREATE VIEW ingest_my_dead_letters WITH (security_barrier) AS
SELECT d.id, d.ticket, d.row_number, d.target, d.target_name, d.role_name, d.role_oid, d.columns,
       d.raw_row, d.raw_data, d.error, d.sqlstate, d.failed_at
FROM ingest_dead_letter d
WHERE pg_catalog.pg_has_role(d.role_oid, 'USAGE')
   OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user);
COMMENT ON VIEW ingest_my_dead_letters IS 'Your dead letters (those of roles whose privileges you have; superusers: all)';
GRANT SELECT ON ingest_my_dead_letters TO PUBLIC;

-- What became of the tickets of the roles whose privileges the querying role has (members of
-- pg_read_all_stats and superusers: every ticket), without row data: committed batches, tickets
-- with dead letters, resends of exactly-once batches. ingest_ticket_status and
-- ingest_dead_letters read it.
CREATE VIEW ingest_my_tickets WITH (security_barrier) AS
SELECT 'committed'::text AS outcome, b.first_ticket, b.last_ticket, b.tickets,
       NULL::bigint AS original_ticket, b.role_oid, b.committed_at AS recorded_at
FROM ingest_batch_log b
WHERE pg_catalog.pg_has_role(b.role_oid, 'USAGE') OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
UNION ALL
SELECT 'failed'::text, d.ticket, d.ticket, pg_catalog.int8multirange(pg_catalog.int8range(d.ticket, d.ticket, '[]')),
       NULL::bigint, d.role_oid, d.failed_at
FROM ingest_dead_letter d
WHERE pg_catalog.pg_has_role(d.role_oid, 'USAGE') OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
UNION ALL
SELECT 'resent'::text, r.ticket, r.ticket, pg_catalog.int8multirange(pg_catalog.int8range(r.ticket, r.ticket, '[]')),
       r.original_ticket, r.role_oid, r.committed_at
FROM ingest_resend r
WHERE pg_catalog.pg_has_role(r.role_oid, 'USAGE') OR pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE');
COMMENT ON VIEW ingest_my_tickets IS 'Outcomes (committed, failed, resent) of the tickets you may see, without row data';
GRANT SELECT ON ingest_my_tickets TO PUBLIC;

CREATE FUNCTION ingest_dead_letters(ticket bigint)
RETURNS TABLE (row_number integer, error text, sqlstate text, raw_row text, columns text[], raw_data bytea)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.row_number, d.error, d.sqlstate, d.raw_row, d.columns, d.raw_data
    FROM @extschema@.ingest_my_dead_letters d
    WHERE d.ticket IN (SELECT $1 UNION ALL
                       SELECT t.original_ticket FROM @extschema@.ingest_my_tickets t
                       WHERE t.outcome = 'resent' AND t.first_ticket = $1)
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
COMMENT ON FUNCTION ingest_ticket_queued(bigint) IS
'Whether the ticket is still queued in the ring (answered only for your roles'' tickets, or to pg_read_all_stats)';

-- SECURITY INVOKER: reads ingest_my_tickets, so a role learns only about the tickets of roles
-- whose privileges it has (or every ticket, for pg_read_all_stats); any other ticket is 'unknown'.
CREATE FUNCTION ingest_ticket_status(ticket bigint)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM @extschema@.ingest_my_tickets t
                     WHERE t.outcome = 'failed' AND t.first_ticket = $1) THEN 'failed'
        WHEN EXISTS (SELECT 1 FROM @extschema@.ingest_my_tickets t
                     WHERE t.outcome = 'committed' AND t.first_ticket <= $1 AND t.last_ticket >= $1
                       AND t.tickets @> $1) THEN 'committed'
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
COMMENT ON FUNCTION ingest_table_stats() IS
'Counters per (database, target table); last_error (it may quote row data) only for tables you may SELECT in this database, or to pg_read_all_stats, else <insufficient privilege>';

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
       -- Redacted by ingest_table_stats() itself: an error message may quote row data.
       s.last_error,
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
