// multi_producer: THREADS application threads each enqueue ROWS rows (ids thread*ROWS+i, so the
// sum of ids is known) through one Producer, then close it. Prints the acknowledged and failed
// counts; exits 0 only if every row was acknowledged. Used by test/t/010_client.pl.
//   multi_producer CONNINFO TABLE THREADS ROWS [key=value ...]   (ProducerConfig::set keys)
#include <pgingest/pgingest.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char **argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s CONNINFO TABLE THREADS ROWS [key=value ...]\n", argv[0]);
        return 2;
    }
    const std::string table_name = argv[2];
    const int threads = std::atoi(argv[3]);
    const long long rows = std::atoll(argv[4]);

    std::atomic<long long> ok{0}, failed{0};
    pgingest::ProducerConfig config;
    config.conninfo = argv[1];
    config.full_queue_policy = pgingest::FullQueuePolicy::kBlock;
    config.block_timeout = std::chrono::seconds(60);
    for (int i = 5; i < argc; i++) {
        std::string kv = argv[i];
        size_t eq = kv.find('=');
        pgingest::Status s =
            eq == std::string::npos ? pgingest::Status() : config.set(kv.substr(0, eq), kv.substr(eq + 1));
        if (eq == std::string::npos || !s.ok()) {
            std::fprintf(stderr, "bad setting %s\n", argv[i]);
            return 2;
        }
    }
    config.on_delivery = [&](const pgingest::DeliveryReport &r) {
        if (r.status.ok())
            ok.fetch_add(1, std::memory_order_relaxed);
        else if (failed.fetch_add(1, std::memory_order_relaxed) < 5)
            std::fprintf(stderr, "failed: %s\n", r.status.to_string().c_str());
    };

    pgingest::Producer producer(config);
    pgingest::Table table = producer.table(table_name, {"id", "thread"});
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; t++)
        workers.emplace_back([&, t] {
            for (long long i = 0; i < rows; i++) {
                pgingest::Row row;
                row.add(static_cast<int64_t>(t * rows + i)).add(static_cast<int32_t>(t));
                pgingest::Status s = producer.enqueue(table, std::move(row));
                if (!s.ok()) {
                    std::fprintf(stderr, "enqueue: %s\n", s.to_string().c_str());
                    failed.fetch_add(1);
                }
            }
        });
    for (auto &w : workers)
        w.join();
    pgingest::Status closed = producer.close(std::chrono::seconds(120));
    pgingest::Metrics m = producer.metrics();
    std::printf("acknowledged %lld failed %lld retried %llu fallback %llu\n", ok.load(), failed.load(),
                (unsigned long long)m.retried, (unsigned long long)m.fallback_batches);
    return failed.load() == 0 && closed.ok() && ok.load() == threads * rows ? 0 : 1;
}
