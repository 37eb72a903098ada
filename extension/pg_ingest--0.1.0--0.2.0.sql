-- pg_ingest 0.1.0 -> 0.2.0: role-scoped bookkeeping, byte-exact dead letters, pg_dump support.
\echo Use "ALTER EXTENSION pg_ingest UPDATE TO '0.2.0'" to load this file. \quit

-- Rows are migrated in place. What cannot be known any more is marked role_oid 0 (see the
-- comments in pg_ingest--0.2.0.sql): the role of old exactly-once keys, batch-log rows and
-- resends, and that of a dead letter whose role_name no longer names a role.

CREATE FUNCTION ingest_raw_text(raw_data bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'pg_ingest_raw_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ingest_raw_text(bytea) IS
'Readable text of a raw queued row: valid text as is, NUL and invalid bytes as \xHH (COPY text escapes)';

-- Dead letters: role OID, exact bytes, readable rendering derived from them.
DROP VIEW ingest_my_dead_letters;
ALTER TABLE ingest_dead_letter ADD COLUMN role_oid oid, ADD COLUMN raw_data bytea;
-- raw_row held the line as stored by 0.1.0 (its bytes, possibly not valid in the encoding):
-- textsend() returns them unchecked when the client encoding is the database's.
DO $$
DECLARE
    saved text := pg_catalog.current_setting('client_encoding');
BEGIN
    PERFORM pg_catalog.set_config('client_encoding', pg_catalog.getdatabaseencoding(), true);
    UPDATE @extschema@.ingest_dead_letter d
    SET role_oid = coalesce((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = d.role_name), 0),
        raw_data = pg_catalog.textsend(d.raw_row);
    PERFORM pg_catalog.set_config('client_encoding', saved, true);
END
$$;
ALTER TABLE ingest_dead_letter
    ALTER COLUMN role_oid SET NOT NULL,
    ALTER COLUMN raw_data SET NOT NULL,
    DROP COLUMN raw_row;
ALTER TABLE ingest_dead_letter ADD COLUMN raw_row text GENERATED ALWAYS AS (ingest_raw_text(raw_data)) STORED;
CREATE INDEX ingest_dead_letter_failed_at ON ingest_dead_letter USING brin (failed_at);
COMMENT ON TABLE ingest_dead_letter IS 'Rows pg_ingest could not insert: the exact bytes of the COPY text line (raw_data; raw_row is readable text of it), its columns (NULL: all), the enqueuing role, error and SQLSTATE. Kept for ingest.dead_letter_retention';
SELECT pg_catalog.pg_extension_config_dump('ingest_dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('ingest_dead_letter_id_seq', '');

-- Batch log: one row per (batch, role).
ALTER TABLE ingest_batch_log ADD COLUMN role_oid oid;
UPDATE ingest_batch_log SET role_oid = 0;
ALTER TABLE ingest_batch_log ALTER COLUMN role_oid SET NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('ingest_batch_log', '');

-- Exactly-once keys scoped to the role.
ALTER TABLE ingest_producer_batch ADD COLUMN role_oid oid;
UPDATE ingest_producer_batch SET role_oid = 0;
ALTER TABLE ingest_producer_batch
    ALTER COLUMN role_oid SET NOT NULL,
    DROP CONSTRAINT ingest_producer_batch_pkey,
    ADD PRIMARY KEY (role_oid, producer_id, batch_seq);
SELECT pg_catalog.pg_extension_config_dump('ingest_producer_batch', '');

ALTER TABLE ingest_resend ADD COLUMN role_oid oid;
UPDATE ingest_resend SET role_oid = 0;
ALTER TABLE ingest_resend ALTER COLUMN role_oid SET NOT NULL;
-- No longer readable by every role: ingest_dead_letters() reads it through ingest_my_tickets.
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

DROP FUNCTION ingest_dead_letters(bigint);
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

COMMENT ON FUNCTION ingest_ticket_queued(bigint) IS
'Whether the ticket is still queued in the ring (answered only for your roles'' tickets, or to pg_read_all_stats)';

-- Was SECURITY DEFINER and answered for every ticket.
CREATE OR REPLACE FUNCTION ingest_ticket_status(ticket bigint)
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

COMMENT ON FUNCTION ingest_table_stats() IS
'Counters per (database, target table); last_error (it may quote row data) only for tables you may SELECT in this database, or to pg_read_all_stats, else <insufficient privilege>';

-- ingest_table_stats() redacts last_error itself now.
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
       r.stats_reset
FROM ingest_table_stats() s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.datid
CROSS JOIN ingest_ring_stats() r;
