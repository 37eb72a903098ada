/*
 * protocol.h — the contract between the pg_ingest extension and its clients (libpgingest, the
 * pgingest tools). Plain C, no PostgreSQL or C++ headers: the extension includes it from its
 * C++ sources, the client library from its own build (client/CMakeLists.txt adds this folder to
 * its include path). Change a value here and both sides change together.
 */
#ifndef PG_INGEST_PROTOCOL_H
#define PG_INGEST_PROTOCOL_H

/*
 * The bulk enqueue function the client library calls once per batch: rows in COPY text format,
 * each ending in a newline; an optional column list; an optional exactly-once identity
 * (producer id, batch sequence number) that the server remembers for ingest.ticket_retention.
 * Returns the batch's ticket (bigint).
 */
#define PGI_ENQUEUE_COPY_FUNCTION "ingest_enqueue_copy"
#define PGI_ENQUEUE_COPY_SQL \
    "SELECT ingest_enqueue_copy($1::regclass, $2::bytea, $3::text[], $4::text, $5::bigint)"
#define PGI_ENQUEUE_COPY_NARGS 5
#define PGI_PRODUCER_ID_MAX_BYTES 200

/*
 * Rows of a committing transaction were dead-lettered. Sent as a WARNING (SQLSTATE class 01)
 * when COMMIT returns. The count is machine-readable in the DETAIL field, which is exactly
 * PGI_REJECTED_DETAIL_KEY followed by a decimal number ("rejected_rows=3"); the human message
 * and hint are prose and may change.
 */
#define PGI_SQLSTATE_ROWS_REJECTED "01PI1"
#define PGI_REJECTED_DETAIL_KEY "rejected_rows="

#endif /* PG_INGEST_PROTOCOL_H */
