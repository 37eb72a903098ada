// The only way libpgingest talks to PostgreSQL. The libpq implementation is make_libpq_transport();
// tests (and unusual deployments) can provide their own.
#pragma once
#include <pgingest/config.hpp>
#include <pgingest/export.h>
#include <pgingest/status.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgingest {

// One batch as sent: COPY text rows (each ending in '\n') for table(columns).
struct BatchRequest {
    const TableSpec *table = nullptr;
    std::string_view data;
    std::uint32_t rows = 0;
    std::string_view producer_id;
    std::int64_t batch_seq = 0;
};

struct CallResult {
    bool ok = false;
    std::int64_t ticket = 0;         // ingest_enqueue_copy's return value
    std::uint64_t rejected_rows = 0; // from the server's rows-rejected warning (extension/protocol.h)
    std::string sqlstate;            // of a failure; empty when the server sent none
    std::string message;
    bool connection_lost = false; // the connection is unusable after this call

    static CallResult success(std::int64_t ticket, std::uint64_t rejected = 0) {
        CallResult r;
        r.ok = true;
        r.ticket = ticket;
        r.rejected_rows = rejected;
        return r;
    }
    static CallResult failure(std::string sqlstate, std::string message, bool connection_lost = false) {
        CallResult r;
        r.sqlstate = std::move(sqlstate);
        r.message = std::move(message);
        r.connection_lost = connection_lost;
        return r;
    }
};

struct DeadLetter {
    std::uint32_t row_number = 0; // 1-based within the call's data
    std::string error;
    std::string sqlstate;
};

// Used by one sender thread at a time, except cancel(), which any thread may call.
class PGINGEST_API Connection {
  public:
    virtual ~Connection() = default;
    // SELECT ingest_enqueue_copy(table, data, columns, producer_id, batch_seq)
    virtual CallResult enqueue_copy(const BatchRequest &batch) = 0;
    // COPY table (columns) FROM STDIN with the same data (fallback without pg_ingest)
    virtual CallResult copy_from_stdin(const BatchRequest &batch) = 0;
    // SELECT row_number, error, sqlstate FROM ingest_dead_letter WHERE ticket = $1
    virtual Status dead_letters(std::int64_t ticket, std::vector<DeadLetter> &out) = 0;
    // Asks the server to cancel the call in progress, if any.
    virtual void cancel() = 0;
};

class PGINGEST_API Transport {
  public:
    virtual ~Transport() = default;
    // A new connection whose calls are acknowledged as the producer's AckMode says (the libpq
    // transport sets ingest.ack); nullptr and error on failure.
    virtual std::unique_ptr<Connection> connect(Status &error) = 0;
};

// Connections run SET ingest.ack = <ack> once opened. A server older than pg_ingest 0.3.0 has no
// ingest.ack: there kCommitted and kMemory fall back to its ingest.wait_for_commit = on / off
// (which meant the same), and kLogged and kQueued fail to connect with kPermanentError.
PGINGEST_API std::shared_ptr<Transport> make_libpq_transport(std::string conninfo, AckMode ack);
// Deprecated: durable = true is AckMode::kCommitted, false AckMode::kQueued.
PGINGEST_API std::shared_ptr<Transport> make_libpq_transport(std::string conninfo, bool durable);

} // namespace pgingest
