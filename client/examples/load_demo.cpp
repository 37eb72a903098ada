// load_demo: pushes N rows into a table through pg_ingest and prints what happened.
//
//   load_demo CONNINFO [ROWS] [TABLE]        e.g. load_demo "dbname=app" 1000000 demo_events
//
// The table is created if missing: (id bigint, at timestamptz, kind text, payload jsonb).
#include <pgingest/pgingest.hpp>

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

bool create_table(const std::string &conninfo, const std::string &table) {
    PGconn *c = PQconnectdb(conninfo.c_str());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        std::string sql =
            "CREATE TABLE IF NOT EXISTS " + table + " (id bigint, at timestamptz, kind text, payload jsonb)";
        PGresult *r = PQexec(c, sql.c_str());
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            std::fprintf(stderr, "%s", PQresultErrorMessage(r));
        PQclear(r);
    } else {
        std::fprintf(stderr, "%s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CONNINFO [ROWS] [TABLE]\n", argv[0]);
        return 2;
    }
    const std::string conninfo = argv[1];
    const long long rows = argc > 2 ? std::atoll(argv[2]) : 100000;
    const std::string table_name = argc > 3 ? argv[3] : "demo_events";
    if (!create_table(conninfo, table_name))
        return 1;

    std::atomic<long long> ok{0}, failed{0};
    pgingest::ProducerConfig config;
    config.conninfo = conninfo;
    config.full_queue_policy = pgingest::FullQueuePolicy::kBlock; // back-pressure instead of errors
    config.block_timeout = std::chrono::seconds(30);
    config.on_delivery = [&](const pgingest::DeliveryReport &r) {
        if (r.status.ok())
            ok.fetch_add(1, std::memory_order_relaxed);
        else if (failed.fetch_add(1, std::memory_order_relaxed) < 5)
            std::fprintf(stderr, "row %u of batch %lld failed: %s\n", r.row_number, (long long)r.batch_seq,
                         r.status.to_string().c_str());
    };

    auto start = std::chrono::steady_clock::now();
    pgingest::Producer producer(config);
    pgingest::Table events = producer.table(table_name, {"id", "at", "kind", "payload"});
    const char *kinds[] = {"click", "view", "buy"};
    for (long long i = 0; i < rows; i++) {
        pgingest::Row row;
        row.add(i)
            .add(pgingest::TimestampTz{std::chrono::system_clock::now()})
            .add(kinds[i % 3])
            .add(pgingest::Jsonb{"{\"n\": " + std::to_string(i) + "}"});
        pgingest::Status s = producer.enqueue(events, std::move(row));
        if (!s.ok()) {
            std::fprintf(stderr, "enqueue: %s\n", s.to_string().c_str());
            break;
        }
    }
    pgingest::Status closed = producer.close(std::chrono::seconds(60));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    pgingest::Metrics m = producer.metrics();
    std::printf("%lld rows acknowledged, %lld failed in %.2f s (%.0f rows/s); %llu batches, %llu retries, "
                "latency p50 %llu us, p99 %llu us\n",
                ok.load(), failed.load(), secs, static_cast<double>(ok.load()) / secs,
                (unsigned long long)m.batches_sent, (unsigned long long)m.retried,
                (unsigned long long)m.latency_p50_us, (unsigned long long)m.latency_p99_us);
    if (!closed.ok())
        std::fprintf(stderr, "close: %s\n", closed.to_string().c_str());
    return failed.load() == 0 && closed.ok() ? 0 : 1;
}
