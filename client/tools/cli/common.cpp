#include "common.hpp"

#include <pgingest/row.hpp>

#include <cstdio>
#include <cstring>

namespace pgingest_cli {

volatile std::sig_atomic_t g_interrupted = 0;

namespace {
extern "C" void on_sigint(int) {
    if (g_interrupted < 2)
        g_interrupted = g_interrupted + 1;
}
} // namespace

void install_sigint_handler() {
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: a blocked read returns
    sigaction(SIGINT, &sa, nullptr);
}

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::string trim(const std::string &s) {
    std::size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string one_line(std::string s) {
    for (char &c : s)
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
    return s;
}

std::string copy_escape(std::string_view v) {
    std::string out;
    pgingest::append_copy_escaped(out, v);
    return out;
}

std::string fmt_rate(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f", v);
    return b;
}

bool PgConn::connect(const std::string &conninfo, std::string &err) {
    c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) == CONNECTION_OK)
        return true;
    err = trim(PQerrorMessage(c));
    return false;
}

bool table_columns(PGconn *c, const std::string &table, std::vector<std::string> &out, std::string &err) {
    const char *params[1] = {table.c_str()};
    PGresult *r =
        PQexecParams(c,
                     "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                     "AND NOT attisdropped ORDER BY attnum",
                     1, nullptr, params, nullptr, nullptr, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok) {
        for (int i = 0; i < PQntuples(r); ++i)
            out.emplace_back(PQgetvalue(r, i, 0));
    } else {
        const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        err = primary ? primary : trim(PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

} // namespace pgingest_cli
