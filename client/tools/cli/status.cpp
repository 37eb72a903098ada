// pgingest status: SELECT * FROM ingest_status, printed like psql's expanded mode or as JSON
// (numbers and booleans typed by the column's type).
#include "commands.hpp"
#include "common.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pgingest_cli {

namespace {

nlohmann::ordered_json json_value(PGresult *r, int i, int j) {
    if (PQgetisnull(r, i, j))
        return nullptr;
    std::string v = PQgetvalue(r, i, j);
    Oid t = PQftype(r, j);
    if (t == 16) // bool
        return v == "t";
    if (t == 20 || t == 21 || t == 23 || t == 26) // int8, int2, int4, oid
        return std::stoll(v);
    if (t == 700 || t == 701 || t == 1700) { // float4/8, numeric
        try {
            return std::stod(v);
        } catch (...) {
            return v;
        }
    }
    return v;
}

void print_json(PGresult *r) {
    int nf = PQnfields(r), nt = PQntuples(r);
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (int i = 0; i < nt; ++i) {
        nlohmann::ordered_json row = nlohmann::ordered_json::object();
        for (int j = 0; j < nf; ++j)
            row[PQfname(r, j)] = json_value(r, i, j);
        arr.push_back(std::move(row));
    }
    std::printf("%s\n", (nt == 1 ? arr[0] : arr).dump(2).c_str());
}

void print_expanded(PGresult *r) {
    int nf = PQnfields(r), nt = PQntuples(r);
    std::size_t w = 0;
    for (int j = 0; j < nf; ++j)
        w = std::max(w, std::strlen(PQfname(r, j)));
    for (int i = 0; i < nt; ++i) {
        if (nt > 1)
            std::printf("-[ row %d ]\n", i + 1);
        for (int j = 0; j < nf; ++j)
            std::printf("%-*s : %s\n", static_cast<int>(w), PQfname(r, j),
                        PQgetisnull(r, i, j) ? "(null)" : PQgetvalue(r, i, j));
    }
}

} // namespace

int run_status(const std::string &dsn, bool as_json) {
    PgConn pg;
    std::string err;
    if (!pg.connect(dsn, err)) {
        std::fprintf(stderr, "pgingest: cannot connect: %s\n", err.c_str());
        return kExitConnection;
    }
    PGresult *r = PQexec(pg.c, "SELECT * FROM ingest_status");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::fprintf(stderr, "pgingest: %s\n", trim(PQerrorMessage(pg.c)).c_str());
        PQclear(r);
        return kExitConnection;
    }
    if (as_json)
        print_json(r);
    else
        print_expanded(r);
    PQclear(r);
    return kExitOk;
}

} // namespace pgingest_cli
