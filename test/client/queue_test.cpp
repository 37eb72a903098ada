// The lock-free row queue and the producer under many threads: nothing lost, nothing doubled.
#include "fake_transport.hpp"
#include "row_queue.hpp"

#include <pgingest/producer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

using namespace pgingest;
using namespace pgingest::detail;
using pgingest::testing::FakeTransport;
using pgingest::testing::test_config;
using namespace std::chrono_literals;

namespace {
constexpr int kThreads = 8;
constexpr long long kPerThread = 20000;
constexpr long long kTotal = kThreads * kPerThread;
constexpr long long kSum = kTotal * (kTotal - 1) / 2; // the values 0 .. kTotal-1
} // namespace

TEST(RowQueue, ManyProducersExactCountAndSum) {
    RowQueue q(1000, 1 << 20); // small: producers keep hitting "full" and retry
    std::atomic<bool> done{false};
    long long count = 0, sum = 0;
    std::thread consumer([&] {
        for (;;) {
            bool finished = done.load();
            while (auto r = q.pop()) {
                count++;
                sum += std::stoll(r->line);
                q.release(1, r->bytes());
            }
            if (finished)
                return;
            q.wait_for_rows(Clock::now() + 5ms, [] { return false; });
        }
    });
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; t++)
        producers.emplace_back([&, t] {
            for (long long i = 0; i < kPerThread; i++) {
                auto row = std::make_unique<QueuedRow>();
                row->line = std::to_string(t * kPerThread + i);
                while (!q.try_reserve(row->bytes()))
                    std::this_thread::yield();
                q.push(std::move(row));
            }
        });
    for (auto &p : producers)
        p.join();
    done = true;
    consumer.join();
    EXPECT_EQ(count, kTotal);
    EXPECT_EQ(sum, kSum);
    EXPECT_EQ(q.outstanding_rows(), 0u);
    EXPECT_EQ(q.outstanding_bytes(), 0u);
}

TEST(RowQueue, CapacityInRowsAndBytes) {
    RowQueue rows(3, 1000);
    EXPECT_TRUE(rows.try_reserve(10));
    EXPECT_TRUE(rows.try_reserve(10));
    EXPECT_TRUE(rows.try_reserve(10));
    EXPECT_FALSE(rows.try_reserve(10));
    rows.release(1, 10);
    EXPECT_TRUE(rows.try_reserve(10));

    RowQueue bytes(100, 25);
    EXPECT_TRUE(bytes.try_reserve(20));
    EXPECT_FALSE(bytes.try_reserve(6));
    EXPECT_EQ(bytes.outstanding_rows(), 1u); // a failed byte reservation gives its row back
    EXPECT_TRUE(bytes.try_reserve(5));
}

TEST(RowQueue, BlockingReserveWakesOnReleaseAndTimesOut) {
    RowQueue q(1, 100);
    ASSERT_TRUE(q.try_reserve(10));
    auto start = Clock::now();
    EXPECT_FALSE(q.reserve_blocking(10, Clock::now() + 50ms, [] { return false; }));
    EXPECT_GE(Clock::now() - start, 50ms);

    std::thread releaser([&] {
        std::this_thread::sleep_for(30ms);
        q.release(1, 10);
    });
    EXPECT_TRUE(q.reserve_blocking(10, Clock::now() + 10s, [] { return false; }));
    releaser.join();
}

TEST(ProducerThreads, ManyThreadsEveryRowDeliveredOnce) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    cfg.pool_max = 4;
    cfg.queue_max_rows = 5000;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 30s;
    cfg.batch_max_rows = 1000;
    std::atomic<long long> reported{0}, reported_sum{0}, not_ok{0};
    {
        Producer p(cfg, transport);
        Table t = p.table("t", {"v"});
        std::vector<std::thread> threads;
        for (int th = 0; th < kThreads; th++)
            threads.emplace_back([&, th] {
                for (long long i = 0; i < kPerThread; i++) {
                    long long v = th * kPerThread + i;
                    Status s = p.enqueue(t, Row().add(v), [&, v](const DeliveryReport &r) {
                        reported++;
                        reported_sum += v;
                        if (!r.status.ok())
                            not_ok++;
                    });
                    ASSERT_TRUE(s.ok()) << s.to_string();
                }
            });
        for (auto &th : threads)
            th.join();
        ASSERT_TRUE(p.flush(60s).ok());
        Metrics m = p.metrics();
        EXPECT_EQ(m.enqueued, static_cast<std::uint64_t>(kTotal));
        EXPECT_EQ(m.acknowledged, static_cast<std::uint64_t>(kTotal));
        EXPECT_EQ(m.queue_depth, 0u);
        EXPECT_TRUE(p.close(10s).ok());
    }
    EXPECT_EQ(reported.load(), kTotal);
    EXPECT_EQ(reported_sum.load(), kSum);
    EXPECT_EQ(not_ok.load(), 0);
    // What reached the "server": every value once.
    long long rows = 0, sum = 0;
    std::set<std::int64_t> seqs;
    for (const auto &c : transport->calls()) {
        EXPECT_TRUE(seqs.insert(c.batch_seq).second) << "batch seq sent twice: " << c.batch_seq;
        std::istringstream in(c.data);
        std::string line;
        while (std::getline(in, line)) {
            rows++;
            sum += std::stoll(line);
        }
        EXPECT_LE(c.rows, 1000u);
    }
    EXPECT_EQ(rows, kTotal);
    EXPECT_EQ(sum, kSum);
}
