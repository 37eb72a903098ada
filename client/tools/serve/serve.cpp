// pgingest serve: set up (tokens, database, producers, HTTP), run until SIGTERM/SIGINT, then
// drain: stop accepting, answer the requests under way, flush every producer, exit 0.
// SIGHUP re-reads the tokens file.
#include "serve.hpp"

#include "gateway.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <thread>

namespace pgingest_serve {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

bool parse_listen(const std::string &s, tcp::endpoint &ep, std::string &err) {
    std::size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon + 1 == s.size()) {
        err = "--listen must be HOST:PORT";
        return false;
    }
    std::string host = s.substr(0, colon), port = s.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    auto addr = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) {
        err = "--listen: " + host + " is not an IP address";
        return false;
    }
    if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
        std::stoi(port) > 65535) {
        err = "--listen: bad port " + port;
        return false;
    }
    ep = tcp::endpoint(addr, static_cast<unsigned short>(std::stoi(port)));
    return true;
}

void log(const std::string &m) {
    std::fprintf(stderr, "pgingest serve: %s\n", m.c_str());
}

// The drain after SIGTERM, on its own thread (the HTTP threads keep writing responses meanwhile).
// Returns the exit code.
int drain(Gateway &gw, HttpServer &server, Producers &producers, const ServeOptions &o) {
    gw.draining = true;
    server.stop_accepting();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.shutdown_timeout_s);
    log("shutting down: no new connections; flushing accepted rows (up to " +
        std::to_string(o.shutdown_timeout_s) + " s)");
    while (gw.queueing > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::uint64_t left = producers.close_all(std::chrono::seconds(o.shutdown_timeout_s));
    // Requests under way get their answers (ack=committed ones as their rows were reported).
    while (gw.in_progress > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(200)); // let the last responses go out
    if (left) {
        log("ERROR: " + std::to_string(left) +
            " accepted rows were not reported committed within --shutdown-timeout;"
            " their tickets say failed (kShutdown); rows already sent may still commit");
        return 1;
    }
    log("stopped; every accepted row was reported");
    return 0;
}

} // namespace

int run_serve(const ServeOptions &o) {
    tcp::endpoint ep;
    std::string err;
    if (!parse_listen(o.listen, ep, err)) {
        log(err);
        return 2;
    }
    std::unique_ptr<TokenTable> tokens;
    if (!o.tokens.empty()) {
        tokens = std::make_unique<TokenTable>();
        if (!tokens->load(o.tokens, err)) {
            log(err);
            return 2;
        }
        log("tokens: " + std::to_string(tokens->size()) + " from " + o.tokens);
    } else {
        log("WARNING: no --tokens: no authentication, every request runs as the login role");
    }
    std::signal(SIGPIPE, SIG_IGN);

    Database db(o.dsn, std::chrono::milliseconds(o.privilege_cache_ms));
    std::string why = db.ready();
    if (!why.empty())
        log("WARNING: not ready yet: " + why + " (/readyz says so until it is)");
    db.start_polling();

    GatewayMetrics metrics;
    Producers producers(o, metrics);
    // Producers are made up front for the roles the login role may act as (making one allocates
    // its queue, which takes a moment); others are made on first use.
    for (const std::string &role : tokens ? tokens->roles() : std::vector<std::string>{""}) {
        std::string e = role.empty() ? "" : db.can_act_as(role);
        if (e.empty() && !producers.for_role(role, e))
            log("cannot start a producer for " + (role.empty() ? std::string("the login role") : role) +
                ": " + e);
        else if (!e.empty())
            log("WARNING: role " + role + ": " + e + "; its requests get 403");
    }
    TicketRegistry tickets(o.max_tickets);
    net::thread_pool pool(4);
    Gateway gw(o, tokens.get(), db, producers, tickets, metrics, pool);
    net::io_context ioc(static_cast<int>(o.threads));
    std::unique_ptr<HttpServer> server;
    try {
        server = std::make_unique<HttpServer>(ioc, ep, o.max_body, gw);
    } catch (const std::exception &e) {
        log("cannot listen on " + o.listen + ": " + e.what());
        return 3;
    }
    server->start();
    log("listening on " + o.listen + " (http://" + server->local_endpoint().address().to_string() + ":" +
        std::to_string(server->local_endpoint().port()) + ")");

    int rc = 0;
    std::thread drainer;
    net::signal_set signals(ioc, SIGTERM, SIGINT, SIGHUP);
    std::function<void(const boost::system::error_code &, int)> on_signal =
        [&](const boost::system::error_code &ec, int sig) {
            if (ec)
                return;
            if (sig == SIGHUP) {
                std::string e;
                if (tokens && tokens->load(o.tokens, e))
                    log("SIGHUP: tokens reloaded (" + std::to_string(tokens->size()) + ")");
                else if (tokens)
                    log("SIGHUP: tokens not reloaded, keeping the old ones: " + e);
                signals.async_wait(on_signal);
                return;
            }
            if (drainer.joinable())
                return;
            drainer = std::thread([&] {
                rc = drain(gw, *server, producers, o);
                ioc.stop();
            });
        };
    signals.async_wait(on_signal);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < o.threads; ++i)
        threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto &t : threads)
        t.join();
    if (drainer.joinable())
        drainer.join();
    pool.join();
    return rc;
}

} // namespace pgingest_serve
