// The endpoints: routing, authentication, and the handlers of
//   POST /v1/tables/{table}/rows[?ack=queued|committed]   GET /v1/tickets/{ticket}
//   GET /metrics   GET /healthz   GET /readyz
// Database lookups, body parsing and queueing run on the blocking pool, never on HTTP threads.
#pragma once
#include "auth.hpp"
#include "body_parser.hpp"
#include "database.hpp"
#include "http_server.hpp"
#include "metrics.hpp"
#include "producers.hpp"
#include "serve.hpp"
#include "tickets.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <memory>

namespace pgingest_serve {

class Gateway : public RequestHandler {
  public:
    Gateway(const ServeOptions &o, const TokenTable *tokens, Database &db, Producers &producers,
            TicketRegistry &tickets, GatewayMetrics &metrics, boost::asio::thread_pool &pool)
        : o_(o), tokens_(tokens), db_(db), producers_(producers), tickets_(tickets), metrics_(metrics),
          pool_(pool) {}

    void handle(Request &&req, Respond respond) override;
    Response protocol_error(int code, const std::string &message, unsigned version) override;

    // Set at SIGTERM: new requests get 503 (and the connection closes).
    std::atomic<bool> draining{false};
    // Requests whose response has not been produced yet.
    std::atomic<std::int64_t> in_progress{0};
    // Requests between their draining check and the end of their enqueue loop: the drain waits
    // for none before it closes the producers, so a request is queued whole or refused.
    std::atomic<std::int64_t> queueing{0};

  private:
    struct Call; // one request on its way: version, route, start time, the respond-once callback
    void post_rows(std::shared_ptr<Call> call, Request &&req, const std::string &table,
                   const std::string &query);
    void queue_rows(std::shared_ptr<Call> call, const std::string &role, const std::string &table,
                    bool ack_committed, BodyFormat format, const std::string &body);
    void get_ticket(std::shared_ptr<Call> call, const Request &req, const std::string &id);
    void get_metrics(std::shared_ptr<Call> call);
    void get_ready(std::shared_ptr<Call> call);
    // The caller's role, or nothing after a 401 was sent.
    std::optional<std::string> authenticate(Call &call, const Request &req);

    const ServeOptions &o_;
    const TokenTable *tokens_;
    Database &db_;
    Producers &producers_;
    TicketRegistry &tickets_;
    GatewayMetrics &metrics_;
    boost::asio::thread_pool &pool_;
};

} // namespace pgingest_serve
