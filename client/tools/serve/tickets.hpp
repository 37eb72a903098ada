// Gateway tickets. libpgingest batches the rows of many requests into server calls, each with
// its own server ticket, so one request's rows may travel under several server tickets (and
// one server ticket may carry rows of several requests). The gateway ticket is the request's:
// it collects the delivery reports of exactly that request's rows. The registry remembers the
// last max_tickets tickets; past that the oldest is forgotten (and answers "unknown").
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace pgingest {
struct DeliveryReport;
}

namespace pgingest_serve {

class Ticket {
  public:
    Ticket(std::uint64_t id, std::string role, std::uint32_t rows)
        : id_(id), role_(std::move(role)), expected_(rows) {}

    std::uint64_t id() const { return id_; }
    const std::string &role() const { return role_; }

    // Called once when every expected row has been reported (on the reporting thread).
    void on_complete(std::function<void()> f);
    // The delivery report of the request's record number `record` (1-based).
    void report(std::uint32_t record, const pgingest::DeliveryReport &r);
    // Only `rows` of the rows announced were queued (enqueue failed part-way).
    void truncate(std::uint32_t rows);

    // {"ticket", "status": queued|committed|failed, "rows", "rows_committed", "rows_failed",
    //  "server_tickets", "errors": [{"record", "error", "sqlstate", "kind"}]}
    nlohmann::ordered_json to_json() const;
    std::string status() const;

    static constexpr std::size_t kMaxErrors = 100; // per ticket; rows_failed counts them all

  private:
    void maybe_complete(std::unique_lock<std::mutex> &lk);

    const std::uint64_t id_;
    const std::string role_;
    mutable std::mutex mu_;
    std::uint32_t expected_, committed_ = 0, failed_ = 0;
    std::set<std::int64_t> server_tickets_;
    std::vector<nlohmann::ordered_json> errors_;
    std::function<void()> on_complete_;
    bool completed_ = false;
};

class TicketRegistry {
  public:
    // Ids start at the current time in microseconds, so a restarted gateway does not hand out
    // the ids of the previous one again (they stay below 2^53, exact in JSON).
    explicit TicketRegistry(std::size_t max_tickets);
    std::shared_ptr<Ticket> create(const std::string &role, std::uint32_t rows);
    // nullptr when unknown, forgotten, or another role's.
    std::shared_ptr<Ticket> find(std::uint64_t id, const std::string &role) const;
    std::size_t size() const;

  private:
    const std::size_t max_;
    mutable std::mutex mu_;
    std::uint64_t next_;
    std::unordered_map<std::uint64_t, std::shared_ptr<Ticket>> by_id_;
    std::deque<std::uint64_t> order_;
};

} // namespace pgingest_serve
