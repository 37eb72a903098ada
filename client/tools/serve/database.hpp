// What the gateway asks the database itself (the rows go through libpgingest): the target
// table, its columns and the role's INSERT privilege (cached briefly), readiness, the ring's fill
// (polled), and the server's figures for /metrics. Calls block: run them off the HTTP threads.
#pragma once
#include "../cli/common.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgingest_serve {

struct TableInfo {
    enum Kind { kOk, kNotFound, kForbidden, kUnavailable } kind = kUnavailable;
    std::string name;                 // as the server spells it (quoted where needed)
    std::vector<std::string> columns; // in table order
    std::string message;              // why not kOk
};

class Database {
  public:
    Database(std::string dsn, std::chrono::milliseconds cache_for);
    ~Database();

    // Table `table` (as SQL would parse it) for `role` (empty: the login role): exists, the role
    // has INSERT on it and the login role may act as the role. From the cache when fresh.
    TableInfo lookup(const std::string &role, const std::string &table);
    // Empty when the login role may act as role (is a member of it); else why not.
    std::string can_act_as(const std::string &role);
    // Empty when the database answers and has pg_ingest; else the reason (short-lived connection).
    std::string ready();
    // Prometheus lines for ingest_status and ingest_ring (short-lived connection).
    std::string scrape();
    // ingest_ring fill (used/size) as last polled (every second); -1 before the first answer.
    double ring_fill() const { return ring_fill_.load(); }
    // Starts the ring poller.
    void start_polling();

    static constexpr std::size_t kMaxCached = 10000;

  private:
    std::unique_ptr<pgingest_cli::PgConn> take();
    void give_back(std::unique_ptr<pgingest_cli::PgConn> c);
    void poll();

    const std::string dsn_;
    const std::chrono::milliseconds cache_for_;
    std::mutex mu_;
    std::vector<std::unique_ptr<pgingest_cli::PgConn>> idle_;
    struct Cached {
        TableInfo info;
        std::chrono::steady_clock::time_point at;
    };
    std::map<std::pair<std::string, std::string>, Cached> cache_;

    std::atomic<double> ring_fill_{-1};
    std::mutex poll_mu_;
    std::condition_variable poll_cv_;
    bool stop_ = false;
    std::thread poller_;
};

} // namespace pgingest_serve
