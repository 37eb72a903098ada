// Shared by every pgingest subcommand: exit codes, the SIGINT flag, small string helpers and
// the few libpq helpers the commands use directly (the rows themselves go through libpgingest).
#pragma once
#include <libpq-fe.h>

#include <chrono>
#include <csignal>
#include <string>
#include <string_view>
#include <vector>

namespace pgingest_cli {

constexpr int kExitOk = 0, kExitRejected = 1, kExitUsage = 2, kExitConnection = 3, kExitInput = 4,
              kExitInterrupted = 130;

// SIGINT count: the first stops reading and flushes what was read, the second stops waiting.
extern volatile std::sig_atomic_t g_interrupted;
// Installs the SIGINT handler that counts into g_interrupted (without SA_RESTART, so a blocked
// read returns) and ignores SIGPIPE.
void install_sigint_handler();

using Clock = std::chrono::steady_clock;

std::vector<std::string> split(const std::string &s, char sep);
std::string trim(const std::string &s);
// A reason for a rejects file or a log line: one line, no TABs.
std::string one_line(std::string s);
// v escaped as a COPY text field.
std::string copy_escape(std::string_view v);
std::string fmt_rate(double v);

// An owned libpq connection.
struct PgConn {
    PGconn *c = nullptr;
    PgConn() = default;
    PgConn(const PgConn &) = delete;
    PgConn &operator=(const PgConn &) = delete;
    ~PgConn() {
        if (c)
            PQfinish(c);
    }
    // Connects with conninfo (empty: the PG* environment); false with err set on failure.
    bool connect(const std::string &conninfo, std::string &err);
};

// The table's columns, in order; false with err set on failure.
bool table_columns(PGconn *c, const std::string &table, std::vector<std::string> &out, std::string &err);

} // namespace pgingest_cli
