#include "producers.hpp"

#include "../cli/common.hpp"

#include <libpq-fe.h>

#include <cstdio>

namespace pgingest_serve {

namespace {
// A conninfo value in single quotes.
std::string quoted(const std::string &v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "'";
}
} // namespace

std::string conninfo_with_role(const std::string &dsn, const std::string &role, std::string &err) {
    char *perr = nullptr;
    PQconninfoOption *opts = PQconninfoParse(dsn.c_str(), &perr);
    if (!opts) {
        err = perr ? pgingest_cli::trim(perr) : "cannot parse the connection string";
        PQfreemem(perr);
        return "";
    }
    std::string out, options;
    for (PQconninfoOption *o = opts; o->keyword; ++o) {
        if (!o->val)
            continue;
        if (std::string(o->keyword) == "options")
            options = o->val;
        else
            out += std::string(o->keyword) + "=" + quoted(o->val) + " ";
    }
    PQconninfoFree(opts);
    // In options, a backslash escapes a space or a backslash of the value.
    std::string r;
    for (char c : role) {
        if (c == ' ' || c == '\\')
            r += '\\';
        r += c;
    }
    options += (options.empty() ? "" : " ") + std::string("-c role=") + r;
    return out + "options=" + quoted(options);
}

pgingest::Producer *Producers::for_role(const std::string &role, std::string &err) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = by_role_.find(role);
    if (it != by_role_.end())
        return it->second.get();
    pgingest::ProducerConfig cfg;
    cfg.conninfo = role.empty() ? o_.dsn : conninfo_with_role(o_.dsn, role, err);
    if (!role.empty() && cfg.conninfo.empty())
        return nullptr;
    cfg.pool_min = 1;
    cfg.pool_max = o_.pool_max;
    cfg.batch_max_rows = o_.batch_rows;
    // The gateway admits at most queue_rows/queue_bytes (reserve()); a row's room is given back
    // in its delivery callback, which may run a moment before the producer counts it out, so the
    // producer's own bound is twice that and never refuses an admitted row.
    cfg.queue_max_rows = 2 * o_.queue_rows;
    cfg.queue_max_bytes = 2 * o_.queue_bytes;
    cfg.ack = pgingest::AckMode::kCommitted;
    cfg.full_queue_policy = pgingest::FullQueuePolicy::kFail;
    cfg.log_level = pgingest::LogLevel::kWarning;
    std::string who = role.empty() ? "login role" : "role " + role;
    cfg.on_log = [who](pgingest::LogLevel, const std::string &msg) {
        std::fprintf(stderr, "pgingest serve: producer (%s): %s\n", who.c_str(), msg.c_str());
    };
    try {
        auto p = std::make_unique<pgingest::Producer>(cfg);
        return by_role_.emplace(role, std::move(p)).first->second.get();
    } catch (const std::exception &e) {
        err = e.what();
        return nullptr;
    }
}

pgingest::Table Producers::table(pgingest::Producer &p, const std::string &name,
                                 const std::vector<std::string> &columns) {
    std::lock_guard<std::mutex> g(mu_);
    auto &targets = targets_[&p];
    auto key = std::make_pair(name, columns);
    auto it = targets.find(key);
    if (it != targets.end())
        return it->second;
    if (targets.size() >= kMaxTargets)
        return pgingest::Table();
    return targets.emplace(key, p.table(name, columns)).first->second;
}

bool Producers::reserve(std::size_t rows, std::size_t bytes) {
    auto r = static_cast<std::int64_t>(rows), b = static_cast<std::int64_t>(bytes);
    if (m_.queue_rows.fetch_add(r) + r > static_cast<std::int64_t>(o_.queue_rows) ||
        m_.queue_bytes.fetch_add(b) + b > static_cast<std::int64_t>(o_.queue_bytes)) {
        m_.queue_rows -= r;
        m_.queue_bytes -= b;
        return false;
    }
    return true;
}

void Producers::release(std::size_t bytes) {
    m_.queue_rows -= 1;
    m_.queue_bytes -= static_cast<std::int64_t>(bytes);
}

std::uint64_t Producers::close_all(std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> g(mu_);
    std::uint64_t left = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto &kv : by_role_) {
        auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (!kv.second->flush(std::max(rest, std::chrono::milliseconds(0))).ok())
            left += kv.second->metrics().queue_depth;
    }
    for (auto &kv : by_role_)
        kv.second->close(std::chrono::milliseconds(100));
    return left;
}

std::uint64_t Producers::queue_depth() const {
    std::lock_guard<std::mutex> g(mu_);
    std::uint64_t d = 0;
    for (const auto &kv : by_role_)
        d += kv.second->metrics().queue_depth;
    return d;
}

} // namespace pgingest_serve
