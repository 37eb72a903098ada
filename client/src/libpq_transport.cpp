// The libpq transport: one PGconn per Connection, blocking calls on the sender thread that owns it.
#include <pgingest/transport.hpp>

#include "ack_setting.hpp"

#include <libpq-fe.h>

#include "protocol.h" // extension/protocol.h: the server's side of this contract

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace pgingest {
namespace {

constexpr const char *kEnqueueStatement = "pgingest_enqueue_copy";
constexpr const char *kEnqueueSql = PGI_ENQUEUE_COPY_SQL;
constexpr const char *kDeadLetterSql =
    "SELECT row_number, error, sqlstate FROM ingest_dead_letters($1::bigint)";

struct ResultDeleter {
    void operator()(PGresult *r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string trimmed(const char *s) {
    std::string m = s ? s : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
        m.pop_back();
    return m;
}

// The server's message of a failed result ("primary (detail)"), else libpq's own message.
std::string error_text(const PGresult *r, const PGconn *conn) {
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    if (!primary)
        return trimmed(PQerrorMessage(conn));
    std::string m = primary;
    if (const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
        m += std::string(" (") + detail + ")";
    return m;
}

// {"a","b"}: a text[] literal with every element quoted.
std::string text_array(const std::vector<std::string> &items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); i++) {
        if (i)
            out += ',';
        out += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\')
                out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

class PqConnection final : public Connection {
  public:
    explicit PqConnection(PGconn *conn) : conn_(conn), cancel_(PQgetCancel(conn)) {
        PQsetNoticeReceiver(conn_, &PqConnection::on_notice, this);
    }
    ~PqConnection() override {
        {
            std::lock_guard<std::mutex> lock(cancel_mutex_);
            if (cancel_)
                PQfreeCancel(cancel_);
            cancel_ = nullptr;
        }
        PQfinish(conn_);
    }

    // SET ingest.ack, or on a server without it (older than 0.3.0) the equivalent
    // ingest.wait_for_commit where there is one.
    Status configure(AckMode ack) {
        std::string sql = detail::ack_statement(ack);
        if (sql.empty())
            return Status(ErrorCode::kInvalidArgument,
                          "unknown ack mode " + std::to_string(static_cast<int>(ack)));
        Result r(PQexec(conn_, sql.c_str()));
        if (PQresultStatus(r.get()) == PGRES_COMMAND_OK)
            return Status();
        std::string state = sqlstate(r.get());
        std::string message = sql + " failed: " + error_text(r.get(), conn_);
        if (detail::unknown_setting(state)) {
            if (const char *legacy = detail::legacy_ack_statement(ack)) {
                Result l(PQexec(conn_, legacy));
                if (PQresultStatus(l.get()) == PGRES_COMMAND_OK)
                    return Status();
            }
            message += std::string(" (ack = ") + ack_mode_name(ack) +
                       " needs pg_ingest 0.3.0 or later on the server)";
        }
        return Status(ErrorCode::kPermanentError, message, state);
    }

    CallResult enqueue_copy(const BatchRequest &b) override {
        if (!prepared_) {
            Result p(PQprepare(conn_, kEnqueueStatement, kEnqueueSql, 5, nullptr));
            if (PQresultStatus(p.get()) != PGRES_COMMAND_OK)
                return failure(p.get());
            prepared_ = true;
        }
        std::string columns = b.table->columns.empty() ? std::string() : text_array(b.table->columns);
        std::string producer(b.producer_id);
        std::string seq = std::to_string(b.batch_seq);
        const bool exactly_once = !b.producer_id.empty();
        const char *values[5] = {
            b.table->name.c_str(), b.data.data(), b.table->columns.empty() ? nullptr : columns.c_str(),
            exactly_once ? producer.c_str() : nullptr, exactly_once ? seq.c_str() : nullptr};
        int lengths[5] = {0, static_cast<int>(b.data.size()), 0, 0, 0};
        int formats[5] = {0, 1, 0, 0, 0}; // the data as binary bytea: its bytes as they are
        rejected_ = 0;
        Result r(PQexecPrepared(conn_, kEnqueueStatement, 5, values, lengths, formats, 0));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
            return failure(r.get());
        return CallResult::success(std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10), rejected_);
    }

    CallResult copy_from_stdin(const BatchRequest &b) override {
        std::string sql = "COPY ";
        CallResult q = quoted_table(b.table->name, sql);
        if (!q.ok)
            return q;
        if (!b.table->columns.empty()) {
            sql += " (";
            for (std::size_t i = 0; i < b.table->columns.size(); i++) {
                char *id = PQescapeIdentifier(conn_, b.table->columns[i].data(), b.table->columns[i].size());
                if (!id)
                    return CallResult::failure("", trimmed(PQerrorMessage(conn_)), lost());
                sql += (i ? ", " : "");
                sql += id;
                PQfreemem(id);
            }
            sql += ")";
        }
        sql += " FROM STDIN";
        Result start(PQexec(conn_, sql.c_str()));
        if (PQresultStatus(start.get()) != PGRES_COPY_IN)
            return failure(start.get());
        constexpr std::size_t kChunk = 1 << 20;
        bool sent = true;
        for (std::size_t off = 0; sent && off < b.data.size(); off += kChunk) {
            std::size_t n = std::min(kChunk, b.data.size() - off);
            sent = PQputCopyData(conn_, b.data.data() + off, static_cast<int>(n)) == 1;
        }
        if (PQputCopyEnd(conn_, sent ? nullptr : "pgingest: sending the data failed") != 1)
            sent = false;
        CallResult out = CallResult::success(0);
        while (PGresult *raw = PQgetResult(conn_)) {
            Result r(raw);
            if (out.ok && PQresultStatus(r.get()) != PGRES_COMMAND_OK)
                out = failure(r.get());
        }
        if (out.ok && !sent)
            out = CallResult::failure("", trimmed(PQerrorMessage(conn_)), true);
        return out;
    }

    Status dead_letters(std::int64_t ticket, std::vector<DeadLetter> &out) override {
        std::string t = std::to_string(ticket);
        const char *values[1] = {t.c_str()};
        Result r(PQexecParams(conn_, kDeadLetterSql, 1, nullptr, values, nullptr, nullptr, 0));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
            return Status(ErrorCode::kUnknownRowOutcome, error_text(r.get(), conn_), sqlstate(r.get()));
        for (int i = 0; i < PQntuples(r.get()); i++)
            out.push_back(
                DeadLetter{static_cast<std::uint32_t>(std::strtoul(PQgetvalue(r.get(), i, 0), nullptr, 10)),
                           PQgetvalue(r.get(), i, 1), PQgetvalue(r.get(), i, 2)});
        return Status();
    }

    void cancel() override {
        std::lock_guard<std::mutex> lock(cancel_mutex_);
        char err[256];
        if (cancel_)
            PQcancel(cancel_, err, sizeof err);
    }

  private:
    static void on_notice(void *arg, const PGresult *res) {
        // The server marks the warning with its own SQLSTATE; the DETAIL carries the count in a
        // fixed machine-readable form (protocol.h).
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        constexpr size_t key_len = sizeof(PGI_REJECTED_DETAIL_KEY) - 1;
        if (detail && state && std::strcmp(state, PGI_SQLSTATE_ROWS_REJECTED) == 0 &&
            std::strncmp(detail, PGI_REJECTED_DETAIL_KEY, key_len) == 0)
            static_cast<PqConnection *>(arg)->rejected_ += std::strtoull(detail + key_len, nullptr, 10);
    }

    static std::string sqlstate(const PGresult *r) {
        const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
        return s ? s : "";
    }

    bool lost() const { return PQstatus(conn_) == CONNECTION_BAD; }

    CallResult failure(const PGresult *r) {
        return CallResult::failure(sqlstate(r), error_text(r, conn_), lost());
    }

    // Appends the table's name as this session resolves it, quoted where needed (cached).
    CallResult quoted_table(const std::string &name, std::string &sql) {
        auto it = quoted_.find(name);
        if (it == quoted_.end()) {
            const char *values[1] = {name.c_str()};
            Result r(
                PQexecParams(conn_, "SELECT $1::regclass::text", 1, nullptr, values, nullptr, nullptr, 0));
            if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
                return failure(r.get());
            it = quoted_.emplace(name, PQgetvalue(r.get(), 0, 0)).first;
        }
        sql += it->second;
        return CallResult::success(0);
    }

    PGconn *conn_;
    std::mutex cancel_mutex_;
    PGcancel *cancel_;
    bool prepared_ = false;
    std::uint64_t rejected_ = 0;
    std::unordered_map<std::string, std::string> quoted_;
};

class PqTransport final : public Transport {
  public:
    PqTransport(std::string conninfo, AckMode ack) : conninfo_(std::move(conninfo)), ack_(ack) {}

    std::unique_ptr<Connection> connect(Status &error) override {
        // Values before dbname are defaults the conninfo may override; client_encoding after it
        // is forced: rows are encoded as UTF-8.
        const char *keys[] = {"fallback_application_name", "connect_timeout", "dbname", "client_encoding",
                              nullptr};
        const char *values[] = {"pgingest", "10", conninfo_.c_str(), "UTF8", nullptr};
        PGconn *conn = PQconnectdbParams(keys, values, 1);
        if (!conn) {
            error = Status(ErrorCode::kRetriesExhausted, "out of memory creating a libpq connection");
            return nullptr;
        }
        if (PQstatus(conn) != CONNECTION_OK) {
            error = Status(ErrorCode::kRetriesExhausted, trimmed(PQerrorMessage(conn)));
            PQfinish(conn);
            return nullptr;
        }
        auto c = std::make_unique<PqConnection>(conn);
        Status s = c->configure(ack_);
        if (!s.ok()) {
            error = s;
            return nullptr;
        }
        return c;
    }

  private:
    std::string conninfo_;
    AckMode ack_;
};

} // namespace

namespace detail {

std::string ack_statement(AckMode mode) {
    const char *name = ack_mode_name(mode);
    return name ? std::string("SET ingest.ack = ") + name : std::string();
}

bool unknown_setting(std::string_view sqlstate) {
    return sqlstate == "42704" || sqlstate == "42602";
}

const char *legacy_ack_statement(AckMode mode) {
    switch (mode) {
    case AckMode::kCommitted:
        return "SET ingest.wait_for_commit = on";
    case AckMode::kMemory:
        return "SET ingest.wait_for_commit = off";
    case AckMode::kLogged:
    case AckMode::kQueued:
        break;
    }
    return nullptr;
}

} // namespace detail

std::shared_ptr<Transport> make_libpq_transport(std::string conninfo, AckMode ack) {
    return std::make_shared<PqTransport>(std::move(conninfo), ack);
}

std::shared_ptr<Transport> make_libpq_transport(std::string conninfo, bool durable) {
    return make_libpq_transport(std::move(conninfo), durable ? AckMode::kCommitted : AckMode::kQueued);
}

} // namespace pgingest
