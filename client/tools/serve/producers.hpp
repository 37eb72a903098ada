// One libpgingest Producer per database role. Its connections log in as the gateway's role and
// take the mapped role at connection start (libpq `options=-c role=NAME`): the role is the
// session's default for the connection's whole life, so RESET ROLE returns to it and no
// connection ever serves two roles. The login role must be granted every mapped role.
// Admission is counted here for all roles together: a request is queued whole or not at all.
#pragma once
#include "metrics.hpp"
#include "serve.hpp"

#include <pgingest/pgingest.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pgingest_serve {

// libpq conninfo dsn with `-c role=ROLE` added to its options (URI or key=value; empty: PG*).
std::string conninfo_with_role(const std::string &dsn, const std::string &role, std::string &err);

class Producers {
  public:
    Producers(const ServeOptions &o, GatewayMetrics &m) : o_(o), m_(m) {}

    // The producer of role (empty: the login role), created on first use; nullptr and err on failure.
    pgingest::Producer *for_role(const std::string &role, std::string &err);
    // The table handle for (name, columns) of that producer; invalid past kMaxTargets per role.
    pgingest::Table table(pgingest::Producer &p, const std::string &name,
                          const std::vector<std::string> &columns);
    static constexpr std::size_t kMaxTargets = 4096;

    // Reserves room for rows/bytes in the gateway queue; false (nothing reserved) when it is full.
    bool reserve(std::size_t rows, std::size_t bytes);
    // Gives back the room of one reported (or never queued) row.
    void release(std::size_t bytes);

    // Closes every producer (flush up to timeout, then fail the rest); returns the rows that
    // were still unreported when the time ran out.
    std::uint64_t close_all(std::chrono::milliseconds timeout);
    std::uint64_t queue_depth() const;

  private:
    const ServeOptions &o_;
    GatewayMetrics &m_;
    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<pgingest::Producer>> by_role_;
    std::map<pgingest::Producer *,
             std::map<std::pair<std::string, std::vector<std::string>>, pgingest::Table>>
        targets_;
};

} // namespace pgingest_serve
