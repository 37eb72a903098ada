#include "gateway.hpp"

#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdio>

namespace pgingest_serve {

using ojson = nlohmann::ordered_json;

namespace {

std::string percent_decode(const std::string &s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit((unsigned char)s[i + 1]) &&
            std::isxdigit((unsigned char)s[i + 2])) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

// The value of key in a query string ("" when absent).
std::string query_param(const std::string &query, const std::string &key) {
    std::size_t pos = 0;
    while (pos <= query.size()) {
        std::size_t end = query.find('&', pos);
        if (end == std::string::npos)
            end = query.size();
        std::string kv = query.substr(pos, end - pos);
        std::size_t eq = kv.find('=');
        if (percent_decode(kv.substr(0, eq)) == key)
            return eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1));
        pos = end + 1;
    }
    return "";
}

} // namespace

// One request on its way to its response, whichever thread produces it.
struct Gateway::Call {
    Gateway &gw;
    unsigned version;
    bool keep_alive;
    std::string route = "other";
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    Respond respond;
    std::atomic<bool> done{false};

    Call(Gateway &g, unsigned v, bool ka, Respond r)
        : gw(g), version(v), keep_alive(ka), respond(std::move(r)) {}

    // Sends the response once (later calls are ignored) and records it in the metrics.
    void send(Response res) {
        if (done.exchange(true))
            return;
        res.keep_alive(keep_alive && !gw.draining);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        gw.metrics_.request(route, static_cast<int>(res.result_int()), secs);
        if (res.result_int() >= 500 && res.result_int() != 503) // 503s (overload) are counted in /metrics
            std::fprintf(stderr, "pgingest serve: %s -> %u %s\n", route.c_str(), res.result_int(),
                         res.body().c_str());
        respond(std::move(res));
        gw.in_progress--;
    }
    void json(int code, const ojson &body) {
        Response res{static_cast<http::status>(code), version};
        res.set(http::field::content_type, "application/json");
        res.body() = body.dump() + "\n";
        send(std::move(res));
    }
    void error(int code, const std::string &message) { json(code, {{"error", message}}); }
    void unavailable(const std::string &message) {
        Response res{http::status::service_unavailable, version};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::retry_after, "1");
        res.body() = ojson{{"error", message}}.dump() + "\n";
        send(std::move(res));
    }
};

Response Gateway::protocol_error(int code, const std::string &message, unsigned version) {
    metrics_.request("other", code, 0);
    Response res{static_cast<http::status>(code), version};
    res.set(http::field::content_type, "application/json");
    res.body() = ojson{{"error", message}}.dump() + "\n";
    return res;
}

std::optional<std::string> Gateway::authenticate(Call &call, const Request &req) {
    if (!tokens_)
        return std::string(); // no --tokens: everything as the login role
    auto it = req.find(http::field::authorization);
    std::optional<std::string> role;
    if (it != req.end())
        role = tokens_->role_for(std::string_view(it->value().data(), it->value().size()));
    if (!role) {
        Response res{http::status::unauthorized, call.version};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::www_authenticate, "Bearer");
        res.body() =
            ojson{{"error", it == req.end() ? "missing bearer token" : "unknown bearer token"}}.dump() + "\n";
        call.send(std::move(res));
    }
    return role;
}

void Gateway::handle(Request &&req, Respond respond) {
    in_progress++;
    auto call = std::make_shared<Call>(*this, req.version(), req.keep_alive(), std::move(respond));
    std::string target(req.target().data(), req.target().size());
    std::size_t q = target.find('?');
    std::string path = target.substr(0, q), query = q == std::string::npos ? "" : target.substr(q + 1);
    const bool get = req.method() == http::verb::get;
    auto method_not_allowed = [&](const char *allow) {
        Response res{http::status::method_not_allowed, call->version};
        res.set(http::field::allow, allow);
        res.set(http::field::content_type, "application/json");
        res.body() = ojson{{"error", std::string("use ") + allow}}.dump() + "\n";
        call->send(std::move(res));
    };

    const std::string rows_prefix = "/v1/tables/", rows_suffix = "/rows", ticket_prefix = "/v1/tickets/";
    if (path.size() > rows_prefix.size() + rows_suffix.size() && path.rfind(rows_prefix, 0) == 0 &&
        path.compare(path.size() - rows_suffix.size(), rows_suffix.size(), rows_suffix) == 0) {
        call->route = "rows";
        if (req.method() != http::verb::post)
            return method_not_allowed("POST");
        std::string table = percent_decode(
            path.substr(rows_prefix.size(), path.size() - rows_prefix.size() - rows_suffix.size()));
        return post_rows(call, std::move(req), table, query);
    }
    if (path.rfind(ticket_prefix, 0) == 0 && path.size() > ticket_prefix.size()) {
        call->route = "ticket";
        if (!get)
            return method_not_allowed("GET");
        return get_ticket(call, req, path.substr(ticket_prefix.size()));
    }
    if (path == "/metrics" || path == "/healthz" || path == "/readyz") {
        call->route = path.substr(1);
        if (!get)
            return method_not_allowed("GET");
        if (path == "/healthz")
            return call->json(200, {{"status", "ok"}});
        return path == "/metrics" ? get_metrics(call) : get_ready(call);
    }
    call->error(404, "no such endpoint: " + path);
}

void Gateway::post_rows(std::shared_ptr<Call> call, Request &&req, const std::string &table,
                        const std::string &query) {
    std::optional<std::string> role = authenticate(*call, req);
    if (!role)
        return;
    std::string ack = query_param(query, "ack");
    if (!ack.empty() && ack != "queued" && ack != "committed")
        return call->error(400, "ack must be queued or committed");
    auto ct = req.find(http::field::content_type);
    auto format = body_format(ct == req.end() ? std::string_view()
                                              : std::string_view(ct->value().data(), ct->value().size()));
    if (!format)
        return call->error(415, "Content-Type must be application/json, application/x-ndjson or text/csv");
    if (draining)
        return call->unavailable("shutting down");
    auto body = std::make_shared<std::string>(std::move(req.body()));
    boost::asio::post(pool_, [this, call, role = *role, table, committed = ack != "queued", f = *format,
                              body] { queue_rows(call, role, table, committed, f, *body); });
}

void Gateway::queue_rows(std::shared_ptr<Call> call, const std::string &role, const std::string &table,
                         bool ack_committed, BodyFormat format, const std::string &body) {
    queueing++;
    struct Done {
        std::atomic<std::int64_t> &n;
        ~Done() { n--; }
    } done{queueing};
    TableInfo info = db_.lookup(role, table);
    if (info.kind == TableInfo::kNotFound)
        return call->error(404, info.message);
    if (info.kind == TableInfo::kForbidden)
        return call->error(403, info.message);
    if (info.kind != TableInfo::kOk)
        return call->unavailable(info.message);

    ParsedBody parsed;
    std::string err;
    if (!parse_body(format, body, info.columns, parsed, err))
        return call->error(400, err);
    const std::size_t n = parsed.records.size();
    if (n == 0)
        return call->error(400, "the body holds no records");
    if (n > o_.queue_rows || parsed.bytes > o_.queue_bytes)
        return call->error(413,
                           "the request has more rows or bytes than the gateway queue holds (--queue-rows " +
                               std::to_string(o_.queue_rows) + ", --queue-bytes " +
                               std::to_string(o_.queue_bytes) + "): split it");
    double fill = db_.ring_fill();
    if (fill >= o_.ring_full) {
        metrics_.rows_refused += n;
        return call->unavailable("the server's ingest ring is full (" +
                                 std::to_string(static_cast<int>(fill * 100)) + "%)");
    }
    pgingest::Producer *producer = producers_.for_role(role, err);
    if (!producer)
        return call->unavailable("cannot start a producer: " + err);
    std::vector<pgingest::Table> targets;
    for (const auto &cols : parsed.column_sets) {
        targets.push_back(producers_.table(*producer, info.name, cols));
        if (!targets.back().valid())
            return call->error(400, "too many different column lists for this role (" +
                                        std::to_string(Producers::kMaxTargets) + "): send the same keys");
    }
    if (draining)
        return call->unavailable("shutting down");
    if (!producers_.reserve(n, parsed.bytes)) {
        metrics_.rows_refused += n;
        return call->unavailable("the gateway queue is full (--queue-rows " + std::to_string(o_.queue_rows) +
                                 ")");
    }

    auto ticket = tickets_.create(role, static_cast<std::uint32_t>(n));
    if (ack_committed)
        ticket->on_complete([call, ticket] { call->json(200, ticket->to_json()); });
    GatewayMetrics *m = &metrics_;
    Producers *ps = &producers_;
    std::size_t queued = 0;
    pgingest::Status s;
    for (auto &rec : parsed.records) {
        const std::size_t bytes = rec.line.size() + 1;
        const auto record = static_cast<std::uint32_t>(queued + 1);
        s = producer->enqueue(targets[rec.column_set], pgingest::Row::from_copy_line(std::move(rec.line)),
                              [ticket, record, bytes, m, ps](const pgingest::DeliveryReport &r) {
                                  (r.status.ok() ? m->rows_committed : m->rows_failed)++;
                                  ps->release(bytes);
                                  ticket->report(record, r);
                              });
        if (!s.ok())
            break;
        ++queued;
    }
    m->rows_accepted += queued;
    if (queued < n) { // should not happen (room was reserved): give back the rest, say what was queued
        for (std::size_t i = queued; i < n; ++i)
            producers_.release(parsed.records[i].line.size() + 1);
        metrics_.rows_refused += n - queued;
        ticket->truncate(static_cast<std::uint32_t>(queued));
        ojson j = {{"error", "queueing failed after " + std::to_string(queued) + " of " + std::to_string(n) +
                                 " rows: " + s.to_string()},
                   {"ticket", ticket->id()},
                   {"rows_queued", queued}};
        Response res{http::status::service_unavailable, call->version};
        res.set(http::field::content_type, "application/json");
        res.set(http::field::retry_after, "1");
        res.body() = j.dump() + "\n";
        return call->send(std::move(res));
    }
    if (!ack_committed)
        call->json(200, {{"ticket", ticket->id()}, {"rows", n}, {"status", ticket->status()}});
}

void Gateway::get_ticket(std::shared_ptr<Call> call, const Request &req, const std::string &id_text) {
    std::optional<std::string> role = authenticate(*call, req);
    if (!role)
        return;
    if (id_text.empty() || id_text.size() > 18 ||
        id_text.find_first_not_of("0123456789") != std::string::npos)
        return call->error(400, "a ticket is a number");
    std::uint64_t id = std::stoull(id_text);
    auto t = tickets_.find(id, *role);
    if (!t)
        return call->json(200,
                          {{"ticket", id},
                           {"status", "unknown"},
                           {"rows_failed", 0},
                           {"errors", ojson::array()},
                           {"note", "not known to this gateway: never issued, another role's, issued before "
                                    "a restart, or forgotten (the last --max-tickets are kept)"}});
    call->json(200, t->to_json());
}

void Gateway::get_metrics(std::shared_ptr<Call> call) {
    boost::asio::post(pool_, [this, call] {
        std::string text = metrics_.render();
        text += "# HELP pgingest_producer_queue_depth Rows in libpgingest's queues (enqueued, not yet "
                "reported).\n"
                "# TYPE pgingest_producer_queue_depth gauge\npgingest_producer_queue_depth " +
                std::to_string(producers_.queue_depth()) + "\n";
        text +=
            "# HELP pgingest_tickets Tickets remembered.\n# TYPE pgingest_tickets gauge\npgingest_tickets " +
            std::to_string(tickets_.size()) + "\n";
        text += db_.scrape();
        Response res{http::status::ok, call->version};
        res.set(http::field::content_type, "text/plain; version=0.0.4");
        res.body() = std::move(text);
        call->send(std::move(res));
    });
}

void Gateway::get_ready(std::shared_ptr<Call> call) {
    if (draining)
        return call->json(503, {{"status", "unavailable"}, {"reason", "shutting down"}});
    boost::asio::post(pool_, [this, call] {
        std::string why = db_.ready();
        if (why.empty())
            call->json(200, {{"status", "ready"}});
        else
            call->json(503, {{"status", "unavailable"}, {"reason", why}});
    });
}

} // namespace pgingest_serve
