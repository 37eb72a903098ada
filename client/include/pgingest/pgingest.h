/* libpgingest C API: the same producer as the C++ API (pgingest/producer.hpp).
 *
 *   pgi_config *conf = pgi_config_new();
 *   pgi_config_set(conf, "conninfo", "dbname=app", errbuf, sizeof errbuf);
 *   pgi_config_set_delivery_cb(conf, on_delivery, my_context);
 *   pgi_producer *p = pgi_producer_new(conf, errbuf, sizeof errbuf);   (conf may be freed after)
 *   pgi_row *row = pgi_row_new();
 *   pgi_row_add_int64(row, 42); pgi_row_add_text(row, "hello");
 *   pgi_produce(p, "events", row, my_row_opaque);                      (row may be reused after
 * pgi_row_clear) pgi_flush(p, 10000); pgi_producer_free(p);
 */
#ifndef PGINGEST_H
#define PGINGEST_H
#include <pgingest/export.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pgi_error {
    PGI_OK = 0,
    PGI_ERR_QUEUE_FULL = 1,
    PGI_ERR_TIMED_OUT = 2,
    PGI_ERR_CLOSED = 3,
    PGI_ERR_INVALID_ARGUMENT = 4,
    PGI_ERR_REJECTED = 5,
    PGI_ERR_PERMANENT = 6,
    PGI_ERR_RETRIES_EXHAUSTED = 7,
    PGI_ERR_SHUTDOWN = 8,
    PGI_ERR_UNKNOWN_ROW_OUTCOME = 9
} pgi_error;

typedef enum pgi_log_level {
    PGI_LOG_DEBUG = 0,
    PGI_LOG_INFO = 1,
    PGI_LOG_WARNING = 2,
    PGI_LOG_ERROR = 3
} pgi_log_level;

typedef struct pgi_config pgi_config;
typedef struct pgi_producer pgi_producer;
typedef struct pgi_row pgi_row;

/* Valid during the callback only. */
typedef struct pgi_delivery_report {
    const char *table;
    pgi_error error;
    const char *sqlstate; /* "" unless the server sent one */
    const char *message;  /* "" on success */
    int64_t ticket;
    int64_t batch_seq;
    uint32_t row_number;
    uint32_t attempts;
    int64_t latency_us;
    void *row_opaque; /* as given to pgi_produce */
} pgi_delivery_report;

typedef void (*pgi_delivery_cb)(const pgi_delivery_report *report, void *ctx);
typedef void (*pgi_log_cb)(pgi_log_level level, const char *message, void *ctx);

typedef struct pgi_metrics {
    uint64_t enqueued, enqueue_rejected, bytes_enqueued, rows_sent, batches_sent, acknowledged, failed,
        dead_lettered, retried, fallback_batches, connect_failures, connections, queue_depth, queue_bytes;
    uint64_t latency_p50_us, latency_p90_us, latency_p99_us, latency_p999_us, latency_max_us;
} pgi_metrics;

PGINGEST_API const char *pgi_error_name(pgi_error err);

PGINGEST_API pgi_config *pgi_config_new(void);
PGINGEST_API void pgi_config_free(pgi_config *conf);
/* Keys as ProducerConfig::set (conninfo, pool_max, linger_ms, full_queue_policy, ack, ...). */
PGINGEST_API pgi_error pgi_config_set(pgi_config *conf, const char *key, const char *value, char *errbuf,
                                      size_t errlen);
PGINGEST_API void pgi_config_set_delivery_cb(pgi_config *conf, pgi_delivery_cb cb, void *ctx);
PGINGEST_API void pgi_config_set_log_cb(pgi_config *conf, pgi_log_cb cb, void *ctx);

/* NULL on an invalid configuration (reason in errbuf). */
PGINGEST_API pgi_producer *pgi_producer_new(const pgi_config *conf, char *errbuf, size_t errlen);
/* Closes with the configured close_timeout if pgi_close was not called, then frees. */
PGINGEST_API void pgi_producer_free(pgi_producer *p);
/* Registers the column list rows of `table` map to (NULL/0: all columns). */
PGINGEST_API pgi_error pgi_define_table(pgi_producer *p, const char *table, const char *const *columns,
                                        size_t ncolumns);
/* Copies the row; its outcome comes to the delivery callback with row_opaque. */
PGINGEST_API pgi_error pgi_produce(pgi_producer *p, const char *table, const pgi_row *row, void *row_opaque);
PGINGEST_API pgi_error pgi_flush(pgi_producer *p, int64_t timeout_ms);
PGINGEST_API pgi_error pgi_close(pgi_producer *p, int64_t timeout_ms);
PGINGEST_API void pgi_get_metrics(const pgi_producer *p, pgi_metrics *out);
PGINGEST_API const char *pgi_producer_id(const pgi_producer *p);

PGINGEST_API pgi_row *pgi_row_new(void);
PGINGEST_API void pgi_row_free(pgi_row *row);
PGINGEST_API void pgi_row_clear(pgi_row *row);
/* The first error of the row so far (PGI_OK if none). */
PGINGEST_API pgi_error pgi_row_error(const pgi_row *row);
PGINGEST_API void pgi_row_add_null(pgi_row *row);
PGINGEST_API void pgi_row_add_bool(pgi_row *row, int v);
PGINGEST_API void pgi_row_add_int16(pgi_row *row, int16_t v);
PGINGEST_API void pgi_row_add_int32(pgi_row *row, int32_t v);
PGINGEST_API void pgi_row_add_int64(pgi_row *row, int64_t v);
PGINGEST_API void pgi_row_add_float4(pgi_row *row, float v);
PGINGEST_API void pgi_row_add_float8(pgi_row *row, double v);
PGINGEST_API void pgi_row_add_numeric(pgi_row *row, const char *text);
PGINGEST_API void pgi_row_add_text(pgi_row *row, const char *text); /* NULL: SQL NULL */
PGINGEST_API void pgi_row_add_text_len(pgi_row *row, const char *text, size_t len);
PGINGEST_API void pgi_row_add_bytea(pgi_row *row, const void *data, size_t len);
PGINGEST_API void pgi_row_add_date(pgi_row *row, int year, unsigned month, unsigned day);
PGINGEST_API void pgi_row_add_timestamp(pgi_row *row, int year, unsigned month, unsigned day, unsigned hour,
                                        unsigned minute, unsigned second, unsigned microsecond);
PGINGEST_API void pgi_row_add_timestamptz_unix_us(pgi_row *row, int64_t microseconds_since_epoch);
PGINGEST_API void pgi_row_add_uuid(pgi_row *row, const uint8_t bytes[16]);
PGINGEST_API void pgi_row_add_json(pgi_row *row, const char *text);
PGINGEST_API void pgi_row_add_jsonb(pgi_row *row, const char *text);
/* Any other type in PostgreSQL's text input form (escaped here). */
PGINGEST_API void pgi_row_add_raw(pgi_row *row, const char *text);
/* Replaces the row with a complete COPY text line (already escaped, no newline). */
PGINGEST_API void pgi_row_set_copy_line(pgi_row *row, const char *line);

#ifdef __cplusplus
}
#endif
#endif
