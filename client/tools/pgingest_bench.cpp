// pgingest-bench: the libpgingest contender of bench/run.sh (contract in docs/PERFORMANCE.md,
// "The libpgingest hook").
//
//   pgingest-bench --conninfo C --table T --columns id,ts,n,msg --threads N --rows R
//       enqueues rows g = 1..R (split into contiguous ranges, one per thread) as fast as it can,
//       close()s the producer and exits 0 only if every row was acknowledged.
//   pgingest-bench ... --threads N --rate RPS --seconds S [--warmup W]
//       enqueues RPS rows/s in total for W + S seconds, paced per thread, and prints the
//       enqueue-to-acknowledgement latency percentiles (p50_ms=, p99_ms=, p999_ms=, max_ms=) of
//       the rows enqueued after the first W seconds (default 2: the pool connects meanwhile).
//   Both print rows_acked=, rows_failed=, elapsed_s=, rows_per_s=. --set key=value passes
//   ProducerConfig settings (repeatable), e.g. --set ack=queued.
//
// Row g: id g, ts 2024-01-01 00:00:00+00 + g ms, n g % 1000, msg "msg-" + g zero-padded to 12
// digits + 24 'x' -- the same rows as the suite's COPY files.
#include <pgingest/pgingest.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// Latencies in 0.1 ms buckets up to 60 s (the last bucket takes everything above).
class LatencyHistogram {
  public:
    static constexpr size_t kBuckets = 600000;
    LatencyHistogram() : counts_(new std::atomic<uint32_t>[kBuckets]) {
        for (size_t i = 0; i < kBuckets; i++)
            counts_[i].store(0, std::memory_order_relaxed);
    }
    void add(std::chrono::microseconds us) {
        size_t b =
            std::min<size_t>(static_cast<size_t>(std::max<long long>(us.count(), 0) / 100), kBuckets - 1);
        counts_[b].fetch_add(1, std::memory_order_relaxed);
        total_.fetch_add(1, std::memory_order_relaxed);
    }
    long long total() const { return total_.load(); }
    // Upper bound of the bucket holding the q-quantile, in ms.
    double quantile_ms(double q) const {
        const long long n = total_.load();
        if (n == 0)
            return 0;
        const long long rank = std::max<long long>(1, static_cast<long long>(q * n + 0.999999));
        long long seen = 0;
        for (size_t i = 0; i < kBuckets; i++) {
            seen += counts_[i].load(std::memory_order_relaxed);
            if (seen >= rank)
                return (i + 1) / 10.0;
        }
        return kBuckets / 10.0;
    }

  private:
    std::unique_ptr<std::atomic<uint32_t>[]> counts_;
    std::atomic<long long> total_{0};
};

pgingest::Row make_row(long long g) {
    static const std::chrono::system_clock::time_point base =
        std::chrono::system_clock::from_time_t(1704067200); // 2024-01-01 00:00:00 UTC
    char msg[64];
    std::snprintf(msg, sizeof msg, "msg-%012lldxxxxxxxxxxxxxxxxxxxxxxxx", g);
    pgingest::Row row;
    row.add(static_cast<int64_t>(g))
        .add(pgingest::TimestampTz{base + std::chrono::milliseconds(g)})
        .add(static_cast<int32_t>(g % 1000))
        .add(std::string_view(msg));
    return row;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"libpgingest benchmark driver for bench/run.sh"};
    std::string conninfo, table_name, columns = "id,ts,n,msg";
    int threads = 16;
    long long rows = 0, rate = 0, seconds = 0, warmup = 2;
    std::vector<std::string> settings;
    app.add_option("--conninfo", conninfo, "libpq connection string")->required();
    app.add_option("--table", table_name, "target table")->required();
    app.add_option("--columns", columns, "comma-separated column list");
    app.add_option("--threads", threads, "producer threads")->check(CLI::Range(1, 1024));
    app.add_option("--rows", rows, "rows to load as fast as possible")->check(CLI::PositiveNumber);
    app.add_option("--rate", rate, "rows per second in total (latency mode)")->check(CLI::PositiveNumber);
    app.add_option("--seconds", seconds, "duration of the latency mode")->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup, "seconds of the latency mode not measured")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--set", settings, "ProducerConfig key=value");
    CLI11_PARSE(app, argc, argv);
    const bool latency_mode = rate > 0;
    if (latency_mode == (rows > 0) || (latency_mode && seconds <= 0)) {
        std::fprintf(stderr, "pgingest-bench: give either --rows, or --rate and --seconds\n");
        return 2;
    }

    pgingest::ProducerConfig config;
    config.conninfo = conninfo;
    config.full_queue_policy = pgingest::FullQueuePolicy::kBlock;
    config.block_timeout = std::chrono::seconds(120);
    config.close_timeout = std::chrono::seconds(600);
    for (const std::string &kv : settings) {
        const size_t eq = kv.find('=');
        pgingest::Status s = eq == std::string::npos
                                 ? pgingest::Status(pgingest::ErrorCode::kInvalidArgument, kv)
                                 : config.set(kv.substr(0, eq), kv.substr(eq + 1));
        if (!s.ok()) {
            std::fprintf(stderr, "pgingest-bench: bad --set %s: %s\n", kv.c_str(), s.to_string().c_str());
            return 2;
        }
    }
    std::atomic<long long> acked{0}, failed{0};
    LatencyHistogram latency;
    const Clock::time_point start = Clock::now();
    const Clock::time_point measure_from = start + std::chrono::seconds(latency_mode ? warmup : 0);
    config.on_delivery = [&](const pgingest::DeliveryReport &r) {
        if (r.status.ok()) {
            acked.fetch_add(1, std::memory_order_relaxed);
            if (Clock::now() - r.latency >= measure_from)
                latency.add(r.latency);
        } else if (failed.fetch_add(1, std::memory_order_relaxed) < 5)
            std::fprintf(stderr, "pgingest-bench: row failed: %s\n", r.status.to_string().c_str());
    };

    std::vector<std::string> cols;
    for (size_t pos = 0; pos <= columns.size();) {
        size_t comma = columns.find(',', pos);
        if (comma == std::string::npos)
            comma = columns.size();
        cols.push_back(columns.substr(pos, comma - pos));
        pos = comma + 1;
    }

    pgingest::Producer producer(config);
    pgingest::Table table = producer.table(table_name, cols);
    std::atomic<long long> enqueued{0}, refused{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; t++)
        workers.emplace_back([&, t] {
            auto push = [&](long long g) {
                pgingest::Status s = producer.enqueue(table, make_row(g));
                if (s.ok()) {
                    enqueued.fetch_add(1, std::memory_order_relaxed);
                } else if (refused.fetch_add(1, std::memory_order_relaxed) < 5) {
                    std::fprintf(stderr, "pgingest-bench: enqueue: %s\n", s.to_string().c_str());
                }
            };
            if (!latency_mode) {
                const long long first = rows * t / threads + 1, last = rows * (t + 1) / threads;
                for (long long g = first; g <= last; g++)
                    push(g);
                return;
            }
            // Paced: this thread's share of the rate, in 1 ms slices, ids t + k * threads.
            const double per_ms = static_cast<double>(rate) / threads / 1000.0;
            const long long total_ms = (warmup + seconds) * 1000;
            long long g = t + 1;
            double owed = 0;
            for (long long ms = 0; ms < total_ms; ms++) {
                std::this_thread::sleep_until(start + std::chrono::milliseconds(ms));
                owed += per_ms;
                for (; owed >= 1.0; owed -= 1.0, g += threads)
                    push(g);
            }
        });
    for (auto &w : workers)
        w.join();
    const pgingest::Status closed = producer.close(std::chrono::seconds(600));
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const pgingest::Metrics m = producer.metrics();

    std::printf("rows_enqueued=%lld\nrows_refused=%lld\nrows_acked=%lld\nrows_failed=%lld\n", enqueued.load(),
                refused.load(), acked.load(), failed.load());
    std::printf("elapsed_s=%.3f\nrows_per_s=%.0f\nretried=%llu\n", elapsed, acked.load() / elapsed,
                static_cast<unsigned long long>(m.retried));
    if (latency_mode)
        std::printf("measured_rows=%lld\np50_ms=%.1f\np90_ms=%.1f\np99_ms=%.1f\np999_ms=%.1f\nmax_ms=%.1f\n",
                    latency.total(), latency.quantile_ms(0.50), latency.quantile_ms(0.90),
                    latency.quantile_ms(0.99), latency.quantile_ms(0.999), latency.quantile_ms(1.0));
    if (!closed.ok())
        std::fprintf(stderr, "pgingest-bench: close: %s\n", closed.to_string().c_str());
    const bool all = refused.load() == 0 && failed.load() == 0 && acked.load() == enqueued.load();
    return closed.ok() && all ? 0 : 1;
}
