// pgingest serve: an HTTP ingest endpoint on libpgingest (Boost.Beast over Asio).
// See docs/SERVE.md for the reference; this header is the command's options and entry point.
#pragma once
#include <cstddef>
#include <string>

namespace pgingest_serve {

struct ServeOptions {
    std::string dsn;                       // libpq conninfo of the login role (empty: PG* environment)
    std::string listen = "127.0.0.1:8080"; // HOST:PORT
    std::string tokens;                    // tokens file; empty: no authentication, all as the login role
    std::size_t max_body = 16u << 20;      // bytes; larger bodies: 413
    std::size_t queue_rows = 100000;       // rows accepted and not yet reported, all roles together
    std::size_t queue_bytes = 64u << 20;   // their COPY text bytes
    std::size_t max_tickets = 100000;      // tickets remembered (oldest forgotten first)
    std::size_t threads = 2;               // HTTP threads
    std::size_t pool_max = 8;              // connections per role
    std::size_t batch_rows = 10000;        // rows per batch
    double ring_full = 0.95;               // ingest_ring fill at which new rows get 503
    int shutdown_timeout_s = 30;           // SIGTERM: bound on flushing accepted rows
    int privilege_cache_ms = 5000;         // how long a table/privilege lookup is reused
};

// Runs in the foreground until SIGTERM/SIGINT; returns the exit code (0 after a clean drain).
int run_serve(const ServeOptions &o);

} // namespace pgingest_serve
