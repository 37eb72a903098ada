#include "database.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace pgingest_serve {

using pgingest_cli::PgConn;

namespace {

struct Result {
    PGresult *r;
    explicit Result(PGresult *res) : r(res) {}
    ~Result() { PQclear(r); }
    bool tuples() const { return PQresultStatus(r) == PGRES_TUPLES_OK; }
    std::string sqlstate() const {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        return s ? s : "";
    }
    std::string message(PGconn *c) const {
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        return m ? m : pgingest_cli::trim(PQerrorMessage(c));
    }
    std::string get(int row, int col) const {
        return PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col);
    }
};

// One statement: the table, the role's INSERT privilege, the login role's membership, columns.
constexpr const char *kLookupSql =
    "WITH t AS (SELECT pg_catalog.to_regclass($1) AS oid), "
    "r AS (SELECT COALESCE(NULLIF($2, ''), current_user::text) AS role) "
    "SELECT t.oid IS NOT NULL, t.oid::pg_catalog.regclass::text, "
    "       t.oid IS NOT NULL AND pg_catalog.has_table_privilege(r.role, t.oid, 'INSERT'), "
    "       pg_catalog.pg_has_role(session_user, r.role, 'MEMBER'), "
    "       (SELECT pg_catalog.json_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a "
    "        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped) "
    "FROM t, r";

std::string label_escape(const std::string &s) {
    std::string out;
    for (char c : s) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

} // namespace

Database::Database(std::string dsn, std::chrono::milliseconds cache_for)
    : dsn_(std::move(dsn)), cache_for_(cache_for) {}

Database::~Database() {
    {
        std::lock_guard<std::mutex> g(poll_mu_);
        stop_ = true;
    }
    poll_cv_.notify_all();
    if (poller_.joinable())
        poller_.join();
}

std::unique_ptr<PgConn> Database::take() {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            if (PQstatus(c->c) == CONNECTION_OK)
                return c;
        }
    }
    auto c = std::make_unique<PgConn>();
    std::string err;
    c->connect(dsn_, err);
    return c;
}

void Database::give_back(std::unique_ptr<PgConn> c) {
    std::lock_guard<std::mutex> g(mu_);
    if (PQstatus(c->c) == CONNECTION_OK && idle_.size() < 4)
        idle_.push_back(std::move(c));
}

TableInfo Database::lookup(const std::string &role, const std::string &table) {
    auto key = std::make_pair(role, table);
    auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard<std::mutex> g(mu_);
        auto it = cache_.find(key);
        if (it != cache_.end() && now - it->second.at < cache_for_)
            return it->second.info;
    }
    TableInfo info;
    auto c = take();
    if (PQstatus(c->c) != CONNECTION_OK) {
        info.message = "database unavailable: " + pgingest_cli::trim(PQerrorMessage(c->c));
        return info; // not cached
    }
    const char *params[2] = {table.c_str(), role.c_str()};
    Result r(PQexecParams(c->c, kLookupSql, 2, nullptr, params, nullptr, nullptr, 0));
    if (!r.tuples()) {
        std::string st = r.sqlstate();
        info.message = r.message(c->c);
        if (st == "42602" || st == "42P01" || st == "3F000" || st == "3D000")
            info.kind = TableInfo::kNotFound; // bad name syntax, no such schema or database
        else if (st == "42704")
            info.kind = TableInfo::kForbidden; // the mapped role does not exist
    } else if (r.get(0, 0) != "t") {
        info.kind = TableInfo::kNotFound;
        info.message = "relation \"" + table + "\" does not exist";
    } else if (r.get(0, 3) != "t") {
        info.kind = TableInfo::kForbidden;
        info.message = "the gateway's login role is not a member of role \"" + role + "\" (GRANT it)";
    } else if (r.get(0, 2) != "t") {
        info.kind = TableInfo::kForbidden;
        info.message = "permission denied: INSERT on " + r.get(0, 1);
    } else {
        info.kind = TableInfo::kOk;
        info.name = r.get(0, 1);
        info.columns = nlohmann::json::parse(r.get(0, 4)).get<std::vector<std::string>>();
    }
    give_back(std::move(c));
    if (info.kind == TableInfo::kUnavailable)
        return info; // not cached: the next request asks again
    std::lock_guard<std::mutex> g(mu_);
    if (cache_.size() >= kMaxCached)
        cache_.clear();
    cache_[key] = {info, now};
    return info;
}

std::string Database::can_act_as(const std::string &role) {
    PgConn c;
    std::string err;
    if (!c.connect(dsn_, err))
        return "database unreachable: " + err;
    const char *params[1] = {role.c_str()};
    Result r(PQexecParams(
        c.c,
        "SELECT pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') FROM pg_catalog.pg_roles r "
        "WHERE r.rolname = $1",
        1, nullptr, params, nullptr, nullptr, 0));
    if (!r.tuples())
        return r.message(c.c);
    if (PQntuples(r.r) == 0)
        return "role \"" + role + "\" does not exist";
    return r.get(0, 0) == "t" ? "" : "the login role is not a member of role \"" + role + "\" (GRANT it)";
}

std::string Database::ready() {
    PgConn c;
    std::string err;
    if (!c.connect(dsn_, err))
        return "database unreachable: " + err;
    Result r(PQexec(c.c, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_ingest'"));
    if (!r.tuples())
        return "query failed: " + r.message(c.c);
    if (PQntuples(r.r) == 0)
        return "extension pg_ingest is not installed in this database";
    return "";
}

std::string Database::scrape() {
    PgConn c;
    std::string err;
    if (!c.connect(dsn_, err))
        return "# database unreachable: " + pgingest_cli::one_line(err) + "\npgingest_database_up 0\n";
    Result st(PQexec(c.c, "SELECT relname, rows_enqueued, rows_committed, rows_failed, rows_queued, "
                          "COALESCE(EXTRACT(epoch FROM oldest_queued_age), 0) "
                          "FROM ingest_status WHERE datname = current_database() AND relname IS NOT NULL"));
    Result ring(PQexec(c.c, "SELECT ring_bytes, ring_used_bytes, workers FROM ingest_ring"));
    if (!st.tuples() || !ring.tuples() || PQntuples(ring.r) != 1)
        return "# " + pgingest_cli::one_line(st.tuples() ? ring.message(c.c) : st.message(c.c)) +
               "\npgingest_database_up 0\n";
    std::string out = "# HELP pgingest_database_up 1 when ingest_status and ingest_ring could be read.\n"
                      "# TYPE pgingest_database_up gauge\npgingest_database_up 1\n";
    struct Col {
        int index;
        const char *name, *type, *help;
    };
    const Col cols[] = {
        {1, "pgingest_server_rows_enqueued_total", "counter", "ingest_status.rows_enqueued per table."},
        {2, "pgingest_server_rows_committed_total", "counter", "ingest_status.rows_committed per table."},
        {3, "pgingest_server_rows_failed_total", "counter",
         "ingest_status.rows_failed (dead-lettered) per table."},
        {4, "pgingest_server_rows_queued", "gauge",
         "ingest_status.rows_queued: rows in the ring, per table."},
        {5, "pgingest_server_lag_seconds", "gauge",
         "ingest_status.oldest_queued_age per table (0: none queued)."},
    };
    for (const Col &col : cols) {
        out += std::string("# HELP ") + col.name + " " + col.help + "\n# TYPE " + col.name + " " + col.type +
               "\n";
        for (int i = 0; i < PQntuples(st.r); ++i)
            out += std::string(col.name) + "{table=\"" + label_escape(st.get(i, 0)) + "\"} " +
                   st.get(i, col.index) + "\n";
    }
    double size = std::atof(ring.get(0, 0).c_str()), used = std::atof(ring.get(0, 1).c_str());
    char fill[64];
    std::snprintf(fill, sizeof fill, "%.6f", size > 0 ? used / size : 0.0);
    out +=
        "# HELP pgingest_server_ring_bytes ingest_ring.ring_bytes.\n# TYPE pgingest_server_ring_bytes gauge\n"
        "pgingest_server_ring_bytes " +
        ring.get(0, 0) + "\n";
    out += "# HELP pgingest_server_ring_used_bytes ingest_ring.ring_used_bytes.\n"
           "# TYPE pgingest_server_ring_used_bytes gauge\npgingest_server_ring_used_bytes " +
           ring.get(0, 1) + "\n";
    out += "# HELP pgingest_server_ring_fill Used fraction of the ring.\n# TYPE pgingest_server_ring_fill "
           "gauge\n"
           "pgingest_server_ring_fill " +
           std::string(fill) + "\n";
    out += "# HELP pgingest_server_workers Running pg_ingest workers.\n# TYPE pgingest_server_workers gauge\n"
           "pgingest_server_workers " +
           ring.get(0, 2) + "\n";
    return out;
}

void Database::start_polling() {
    poller_ = std::thread([this] { poll(); });
}

void Database::poll() {
    PgConn c;
    std::unique_lock<std::mutex> lk(poll_mu_);
    while (!stop_) {
        lk.unlock();
        std::string err;
        if (!c.c || PQstatus(c.c) != CONNECTION_OK) {
            if (c.c)
                PQfinish(c.c);
            c.c = nullptr;
            c.connect(dsn_, err);
        }
        if (PQstatus(c.c) == CONNECTION_OK) {
            Result r(PQexec(c.c, "SELECT ring_used_bytes::float8 / NULLIF(ring_bytes, 0) FROM ingest_ring"));
            if (r.tuples() && PQntuples(r.r) == 1)
                ring_fill_ = std::atof(r.get(0, 0).c_str());
        }
        lk.lock();
        poll_cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stop_; });
    }
}

} // namespace pgingest_serve
