#include "tickets.hpp"

#include <pgingest/delivery.hpp>

#include <chrono>

namespace pgingest_serve {

void Ticket::on_complete(std::function<void()> f) {
    std::unique_lock<std::mutex> lk(mu_);
    on_complete_ = std::move(f);
    maybe_complete(lk);
}

void Ticket::report(std::uint32_t record, const pgingest::DeliveryReport &r) {
    std::unique_lock<std::mutex> lk(mu_);
    if (r.ticket)
        server_tickets_.insert(r.ticket);
    if (r.status.ok()) {
        ++committed_;
    } else {
        ++failed_;
        if (errors_.size() < kMaxErrors)
            errors_.push_back({{"record", record},
                               {"error", r.status.message()},
                               {"sqlstate", r.status.sqlstate()},
                               {"kind", pgingest::error_code_name(r.status.code())}});
    }
    maybe_complete(lk);
}

void Ticket::truncate(std::uint32_t rows) {
    std::unique_lock<std::mutex> lk(mu_);
    expected_ = rows;
    maybe_complete(lk);
}

void Ticket::maybe_complete(std::unique_lock<std::mutex> &lk) {
    if (completed_ || !on_complete_ || committed_ + failed_ < expected_)
        return;
    completed_ = true;
    auto f = std::move(on_complete_);
    lk.unlock();
    f();
}

std::string Ticket::status() const {
    std::lock_guard<std::mutex> g(mu_);
    if (committed_ + failed_ < expected_)
        return "queued";
    return failed_ ? "failed" : "committed";
}

nlohmann::ordered_json Ticket::to_json() const {
    std::string st = status();
    std::lock_guard<std::mutex> g(mu_);
    nlohmann::ordered_json j;
    j["ticket"] = id_;
    j["status"] = st;
    j["rows"] = expected_;
    j["rows_committed"] = committed_;
    j["rows_failed"] = failed_;
    j["server_tickets"] = server_tickets_;
    j["errors"] = errors_;
    return j;
}

TicketRegistry::TicketRegistry(std::size_t max_tickets)
    : max_(max_tickets),
      next_(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count())) {}

std::shared_ptr<Ticket> TicketRegistry::create(const std::string &role, std::uint32_t rows) {
    std::lock_guard<std::mutex> g(mu_);
    auto t = std::make_shared<Ticket>(next_++, role, rows);
    by_id_.emplace(t->id(), t);
    order_.push_back(t->id());
    while (order_.size() > max_) {
        by_id_.erase(order_.front());
        order_.pop_front();
    }
    return t;
}

std::shared_ptr<Ticket> TicketRegistry::find(std::uint64_t id, const std::string &role) const {
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second->role() != role)
        return nullptr;
    return it->second;
}

std::size_t TicketRegistry::size() const {
    std::lock_guard<std::mutex> g(mu_);
    return by_id_.size();
}

} // namespace pgingest_serve
