// The C API: thin wrappers over the C++ Producer, ProducerConfig and Row.
#include <pgingest/pgingest.h>
#include <pgingest/producer.hpp>

#include <cstring>
#include <new>

using namespace pgingest;

struct pgi_config {
    ProducerConfig config;
    pgi_delivery_cb delivery_cb = nullptr;
    void *delivery_ctx = nullptr;
};

struct pgi_row {
    Row row;
};

struct pgi_producer {
    struct Sink {
        pgi_delivery_cb cb;
        void *ctx;
    } sink;
    std::unique_ptr<Producer> producer;
};

namespace {

static_assert(static_cast<int>(ErrorCode::kUnknownRowOutcome) == PGI_ERR_UNKNOWN_ROW_OUTCOME);

pgi_error to_c(const Status &s) {
    return static_cast<pgi_error>(s.code());
}

void write_error(char *buf, std::size_t len, const std::string &msg) {
    if (!buf || len == 0)
        return;
    std::size_t n = std::min(len - 1, msg.size());
    std::memcpy(buf, msg.data(), n);
    buf[n] = '\0';
}

void deliver(const pgi_producer::Sink *sink, void *opaque, const DeliveryReport &r) {
    pgi_delivery_report c;
    c.table = r.table.valid() ? r.table.name().c_str() : "";
    c.error = to_c(r.status);
    c.sqlstate = r.status.sqlstate().c_str();
    c.message = r.status.message().c_str();
    c.ticket = r.ticket;
    c.batch_seq = r.batch_seq;
    c.row_number = r.row_number;
    c.attempts = r.attempts;
    c.latency_us = r.latency.count();
    c.row_opaque = opaque;
    sink->cb(&c, sink->ctx);
}

} // namespace

extern "C" {

const char *pgi_error_name(pgi_error err) {
    return error_code_name(static_cast<ErrorCode>(err));
}

pgi_config *pgi_config_new(void) {
    return new (std::nothrow) pgi_config();
}
void pgi_config_free(pgi_config *conf) {
    delete conf;
}

pgi_error pgi_config_set(pgi_config *conf, const char *key, const char *value, char *errbuf, size_t errlen) {
    if (!conf || !key || !value) {
        write_error(errbuf, errlen, "NULL argument");
        return PGI_ERR_INVALID_ARGUMENT;
    }
    Status s = conf->config.set(key, value);
    if (!s.ok())
        write_error(errbuf, errlen, s.message());
    return to_c(s);
}

void pgi_config_set_delivery_cb(pgi_config *conf, pgi_delivery_cb cb, void *ctx) {
    conf->delivery_cb = cb;
    conf->delivery_ctx = ctx;
}

void pgi_config_set_log_cb(pgi_config *conf, pgi_log_cb cb, void *ctx) {
    if (!cb) {
        conf->config.on_log = nullptr;
        return;
    }
    conf->config.on_log = [cb, ctx](LogLevel level, const std::string &msg) {
        cb(static_cast<pgi_log_level>(level), msg.c_str(), ctx);
    };
}

pgi_producer *pgi_producer_new(const pgi_config *conf, char *errbuf, size_t errlen) {
    try {
        auto p = std::make_unique<pgi_producer>();
        ProducerConfig config = conf ? conf->config : ProducerConfig();
        p->sink = {conf ? conf->delivery_cb : nullptr, conf ? conf->delivery_ctx : nullptr};
        p->producer = std::make_unique<Producer>(std::move(config));
        return p.release();
    } catch (const std::exception &e) {
        write_error(errbuf, errlen, e.what());
        return nullptr;
    }
}

void pgi_producer_free(pgi_producer *p) {
    delete p;
}

pgi_error pgi_define_table(pgi_producer *p, const char *table, const char *const *columns, size_t ncolumns) {
    if (!p || !table || (ncolumns && !columns))
        return PGI_ERR_INVALID_ARGUMENT;
    std::vector<std::string> cols(columns, columns + ncolumns);
    p->producer->table(table, std::move(cols));
    return PGI_OK;
}

pgi_error pgi_produce(pgi_producer *p, const char *table, const pgi_row *row, void *row_opaque) {
    if (!p || !table || !row)
        return PGI_ERR_INVALID_ARGUMENT;
    DeliveryCallback done;
    if (p->sink.cb) {
        const pgi_producer::Sink *sink = &p->sink;
        done = [sink, row_opaque](const DeliveryReport &r) { deliver(sink, row_opaque, r); };
    }
    return to_c(p->producer->enqueue(table, row->row, std::move(done)));
}

pgi_error pgi_flush(pgi_producer *p, int64_t timeout_ms) {
    return to_c(p->producer->flush(std::chrono::milliseconds(timeout_ms)));
}

pgi_error pgi_close(pgi_producer *p, int64_t timeout_ms) {
    return to_c(p->producer->close(std::chrono::milliseconds(timeout_ms)));
}

void pgi_get_metrics(const pgi_producer *p, pgi_metrics *out) {
    Metrics m = p->producer->metrics();
    *out = pgi_metrics{m.enqueued,       m.enqueue_rejected, m.bytes_enqueued,   m.rows_sent,
                       m.batches_sent,   m.acknowledged,     m.failed,           m.dead_lettered,
                       m.retried,        m.fallback_batches, m.connect_failures, m.connections,
                       m.queue_depth,    m.queue_bytes,      m.latency_p50_us,   m.latency_p90_us,
                       m.latency_p99_us, m.latency_p999_us,  m.latency_max_us};
}

const char *pgi_producer_id(const pgi_producer *p) {
    return p->producer->producer_id().c_str();
}

pgi_row *pgi_row_new(void) {
    return new (std::nothrow) pgi_row();
}
void pgi_row_free(pgi_row *row) {
    delete row;
}
void pgi_row_clear(pgi_row *row) {
    row->row = Row();
}
pgi_error pgi_row_error(const pgi_row *row) {
    return to_c(row->row.status());
}
void pgi_row_add_null(pgi_row *row) {
    row->row.null();
}
void pgi_row_add_bool(pgi_row *row, int v) {
    row->row.add(v != 0);
}
void pgi_row_add_int16(pgi_row *row, int16_t v) {
    row->row.add(v);
}
void pgi_row_add_int32(pgi_row *row, int32_t v) {
    row->row.add(v);
}
void pgi_row_add_int64(pgi_row *row, int64_t v) {
    row->row.add(v);
}
void pgi_row_add_float4(pgi_row *row, float v) {
    row->row.add(v);
}
void pgi_row_add_float8(pgi_row *row, double v) {
    row->row.add(v);
}
void pgi_row_add_numeric(pgi_row *row, const char *text) {
    if (text)
        row->row.add(Numeric{text});
    else
        row->row.null();
}
void pgi_row_add_text(pgi_row *row, const char *text) {
    row->row.add(text);
}
void pgi_row_add_text_len(pgi_row *row, const char *text, size_t len) {
    row->row.add(std::string_view(text, len));
}
void pgi_row_add_bytea(pgi_row *row, const void *data, size_t len) {
    row->row.add(Bytea(std::string_view(static_cast<const char *>(data), len)));
}
void pgi_row_add_date(pgi_row *row, int year, unsigned month, unsigned day) {
    row->row.add(Date{year, month, day});
}
void pgi_row_add_timestamp(pgi_row *row, int year, unsigned month, unsigned day, unsigned hour,
                           unsigned minute, unsigned second, unsigned microsecond) {
    row->row.add(Timestamp{Date{year, month, day}, hour, minute, second, microsecond});
}
void pgi_row_add_timestamptz_unix_us(pgi_row *row, int64_t us) {
    row->row.add(TimestampTz{std::chrono::system_clock::time_point(std::chrono::microseconds(us))});
}
void pgi_row_add_uuid(pgi_row *row, const uint8_t bytes[16]) {
    Uuid u;
    std::memcpy(u.bytes.data(), bytes, 16);
    row->row.add(u);
}
void pgi_row_add_json(pgi_row *row, const char *text) {
    if (text)
        row->row.add(Json{text});
    else
        row->row.null();
}
void pgi_row_add_jsonb(pgi_row *row, const char *text) {
    if (text)
        row->row.add(Jsonb{text});
    else
        row->row.null();
}
void pgi_row_add_raw(pgi_row *row, const char *text) {
    if (text)
        row->row.add_raw(text);
    else
        row->row.null();
}
void pgi_row_set_copy_line(pgi_row *row, const char *line) {
    row->row = Row::from_copy_line(line ? line : "");
}

} // extern "C"
