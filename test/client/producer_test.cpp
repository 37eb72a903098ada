// Full-queue policies, flush/close/destruction, futures, metrics, pool growth, bad input.
#include "fake_transport.hpp"
#include "metrics_internal.hpp"

#include <pgingest/producer.hpp>

#include <gtest/gtest.h>

#include <thread>

#include <condition_variable>
#include <ctime>
#include <mutex>

using namespace pgingest;
using pgingest::testing::Clock;
using pgingest::testing::FakeTransport;
using pgingest::testing::one_batch_config;
using pgingest::testing::test_config;
using namespace std::chrono_literals;

namespace {

// Holds every call until opened (or until the test ends).
struct Gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    void wait() {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, 20s, [this] { return open; });
    }
    void release() {
        std::lock_guard<std::mutex> lock(m);
        open = true;
        cv.notify_all();
    }
};

std::shared_ptr<FakeTransport> gated(Gate &gate) {
    auto t = std::make_shared<FakeTransport>();
    t->set_handler([&gate](const FakeTransport::Call &, int n) {
        gate.wait();
        return CallResult::success(n + 1);
    });
    return t;
}

struct Counts {
    std::atomic<int> ok{0}, failed{0}, shutdown{0};
    DeliveryCallback callback() {
        return [this](const DeliveryReport &r) {
            (r.status.ok() ? ok : failed)++;
            if (r.status.code() == ErrorCode::kShutdown)
                shutdown++;
        };
    }
};

} // namespace

TEST(FullQueue, FailPolicyReturnsQueueFullAtOnce) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 10;
    Producer p(cfg, transport);
    for (int i = 0; i < 10; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    auto start = Clock::now();
    Status s = p.enqueue("t", Row().add(10));
    EXPECT_LT(Clock::now() - start, 500ms); // no waiting (block_timeout would be 1 s)
    EXPECT_EQ(s.code(), ErrorCode::kQueueFull);
    EXPECT_NE(s.message().find("queue_max_rows = 10"), std::string::npos);
    EXPECT_EQ(p.metrics().queue_depth, 10u);
    EXPECT_EQ(p.metrics().enqueue_rejected, 1u);
    gate.release();
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_TRUE(p.enqueue("t", Row().add(11)).ok()); // room again once reported
}

TEST(FullQueue, ByteCapacityCountsToo) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = test_config();
    cfg.queue_max_bytes = 30;
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add("0123456789")).ok()); // 11 bytes
    ASSERT_TRUE(p.enqueue("t", Row().add("0123456789")).ok()); // 22
    EXPECT_EQ(p.enqueue("t", Row().add("0123456789")).code(), ErrorCode::kQueueFull);
    EXPECT_EQ(p.enqueue("t", Row().add(std::string(40, 'x'))).code(),
              ErrorCode::kInvalidArgument); // never fits
    gate.release();
    EXPECT_TRUE(p.flush(10s).ok());
}

TEST(FullQueue, BlockPolicyWaitsThenTimesOut) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 2;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 150ms;
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
    auto start = Clock::now();
    Status s = p.enqueue("t", Row().add(3));
    EXPECT_EQ(s.code(), ErrorCode::kTimedOut);
    EXPECT_GE(Clock::now() - start, 150ms);
    gate.release();
    EXPECT_TRUE(p.flush(10s).ok());
}

TEST(FullQueue, BlockPolicyGoesThroughWhenRoomAppears) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 1;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 10s;
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    std::thread opener([&] {
        std::this_thread::sleep_for(50ms);
        gate.release();
    });
    auto start = Clock::now();
    EXPECT_TRUE(p.enqueue("t", Row().add(2)).ok());
    EXPECT_GE(Clock::now() - start, 40ms);
    opener.join();
    EXPECT_TRUE(p.flush(10s).ok());
}

TEST(FullQueue, BlockedEnqueueReturnsClosedWhenTheProducerCloses) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 1;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 20s;
    Counts counts;
    cfg.on_delivery = counts.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    Status blocked;
    std::thread t([&] { blocked = p.enqueue("t", Row().add(2)); });
    std::this_thread::sleep_for(50ms);
    std::thread closer([&] { p.close(100ms); });
    std::this_thread::sleep_for(200ms);
    gate.release();
    closer.join();
    t.join();
    EXPECT_EQ(blocked.code(), ErrorCode::kClosed);
    EXPECT_EQ(counts.ok + counts.failed, 1);
}

TEST(FlushClose, FlushTimesOutWhileTheServerStalls) {
    Gate gate;
    auto transport = gated(gate);
    Producer p(test_config(), transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    auto start = Clock::now();
    Status s = p.flush(100ms);
    EXPECT_EQ(s.code(), ErrorCode::kTimedOut);
    EXPECT_GE(Clock::now() - start, 100ms);
    EXPECT_NE(s.message().find("1 rows not yet reported"), std::string::npos);
    gate.release();
    EXPECT_TRUE(p.flush(10s).ok());
}

TEST(FlushClose, WaitingFlushDoesNotBurnCpu) {
    Gate gate;
    auto transport = gated(gate);
    Producer p(test_config(), transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    std::clock_t cpu0 = std::clock();
    EXPECT_EQ(p.flush(300ms).code(), ErrorCode::kTimedOut);
    double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    EXPECT_LT(cpu_ms, 100) << "the process spun while flush() waited";
    gate.release();
}

TEST(FlushClose, CloseReportsWhatDidNotMakeItAndRefusesNewRows) {
    Gate gate;
    auto transport = gated(gate);
    ProducerConfig cfg = one_batch_config(); // full batches of 2 only
    cfg.batch_max_rows = 2;
    Counts counts;
    cfg.on_delivery = counts.callback();
    Producer p(cfg, transport);
    for (int i = 0; i < 6; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    // One batch is in flight (held by the gate); the others wait for the single sender.
    while (transport->calls().empty())
        std::this_thread::sleep_for(1ms);
    std::thread opener([&] {
        std::this_thread::sleep_for(300ms);
        gate.release();
    });
    auto start = Clock::now();
    Status s = p.close(100ms);
    EXPECT_LT(Clock::now() - start, 5s);
    opener.join();
    EXPECT_EQ(s.code(), ErrorCode::kTimedOut);
    EXPECT_EQ(counts.ok + counts.failed, 6); // every row reported exactly once
    EXPECT_EQ(counts.ok, 2);                 // the batch in flight was acknowledged
    EXPECT_EQ(counts.shutdown, 4);
    EXPECT_GE(transport->cancels(), 1); // the call in flight was asked to stop
    EXPECT_EQ(p.enqueue("t", Row().add(9)).code(), ErrorCode::kClosed);
    EXPECT_EQ(p.close(1s).code(), ErrorCode::kTimedOut); // idempotent: the same result
    EXPECT_EQ(p.metrics().queue_depth, 0u);
}

TEST(FlushClose, DestructorFlushes) {
    auto transport = std::make_shared<FakeTransport>();
    Counts counts;
    {
        ProducerConfig cfg = test_config();
        cfg.linger = 10s; // only the destructor's flush sends them
        cfg.on_delivery = counts.callback();
        Producer p(cfg, transport);
        for (int i = 0; i < 100; i++)
            ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    }
    EXPECT_EQ(counts.ok, 100);
    EXPECT_EQ(transport->calls().size(), 1u);
}

TEST(FlushClose, DestructorWaitIsBounded) {
    Gate gate;
    auto transport = gated(gate);
    Counts counts;
    std::mutex em;
    std::vector<std::string> errors;
    std::thread opener;
    auto start = Clock::now();
    {
        ProducerConfig cfg = test_config();
        cfg.close_timeout = 100ms;
        cfg.on_delivery = counts.callback();
        cfg.log_level = LogLevel::kError;
        cfg.on_log = [&](LogLevel, const std::string &m) {
            std::lock_guard<std::mutex> lock(em);
            errors.push_back(m);
        };
        Producer p(cfg, transport);
        ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
        while (transport->calls().empty()) // row 1 in flight, held by the gate
            std::this_thread::sleep_for(1ms);
        ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
        opener = std::thread([&] {
            std::this_thread::sleep_for(400ms);
            gate.release();
        });
    }
    opener.join();
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_EQ(counts.ok + counts.failed, 2);
    EXPECT_GE(counts.shutdown, 1);
    bool told = false;
    for (auto &e : errors)
        told |= e.find("destroyed without close") != std::string::npos;
    EXPECT_TRUE(told);
}

TEST(Delivery, FuturesAndPerRowCallbacks) {
    auto transport = std::make_shared<FakeTransport>();
    Producer p(test_config(), transport);
    Table t = p.table("t");
    std::future<DeliveryReport> f1 = p.enqueue_future(t, Row().add(1));
    std::future<DeliveryReport> bad = p.enqueue_future(t, Row());
    std::promise<std::uint32_t> row_number;
    ASSERT_TRUE(p.enqueue(t, Row().add(2), [&](const DeliveryReport &r) {
                     row_number.set_value(r.row_number);
                 }).ok());
    DeliveryReport r1 = f1.get();
    EXPECT_TRUE(r1.status.ok());
    EXPECT_EQ(r1.table.name(), "t");
    EXPECT_GE(r1.attempts, 1u);
    EXPECT_GT(r1.batch_seq, 0);
    EXPECT_EQ(bad.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(bad.get().status.code(), ErrorCode::kInvalidArgument);
    EXPECT_GE(row_number.get_future().get(), 1u);
}

TEST(Delivery, InvalidInputIsRefusedAtEnqueue) {
    auto transport = std::make_shared<FakeTransport>();
    Producer p(test_config(), transport);
    Producer other(test_config(), transport);
    EXPECT_EQ(p.enqueue("t", Row().add(Date{2023, 2, 30})).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.enqueue("", Row().add(1)).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.enqueue(other.table("t"), Row().add(1)).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.enqueue(Table(), Row().add(1)).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.metrics().enqueue_rejected, 4u);
    EXPECT_EQ(p.metrics().enqueued, 0u);
    ProducerConfig bad = test_config();
    bad.pool_max = 0;
    EXPECT_THROW((Producer{bad, transport}), std::invalid_argument);
}

TEST(Delivery, ACallbackThatThrowsDoesNotStopDelivery) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    std::atomic<int> seen{0};
    cfg.on_delivery = [&](const DeliveryReport &) {
        seen++;
        throw std::runtime_error("user bug");
    };
    Producer p(cfg, transport);
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_EQ(seen, 3);
    EXPECT_EQ(p.metrics().acknowledged, 3u);
}

TEST(Pool, GrowsOnDemandUpToPoolMax) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int n) {
        std::this_thread::sleep_for(50ms);
        return CallResult::success(n + 1);
    });
    ProducerConfig cfg = test_config();
    cfg.pool_min = 1;
    cfg.pool_max = 4;
    cfg.batch_max_rows = 1;
    Producer p(cfg, transport);
    for (int i = 0; i < 40; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    ASSERT_TRUE(p.flush(20s).ok());
    EXPECT_EQ(transport->connects(), 4);
    EXPECT_EQ(transport->max_concurrent_calls(), 4);
    EXPECT_EQ(p.metrics().connections, 4u);
    EXPECT_EQ(p.metrics().acknowledged, 40u);
}

TEST(Metrics, CountersAndLatency) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int n) {
        std::this_thread::sleep_for(20ms);
        return CallResult::success(n + 1);
    });
    ProducerConfig cfg = test_config();
    cfg.batch_max_rows = 10;
    cfg.linger = 5s; // only full batches
    Producer p(cfg, transport);
    auto start = Clock::now();
    for (int i = 0; i < 50; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    Metrics m = p.metrics();
    EXPECT_EQ(m.enqueued, 50u);
    EXPECT_EQ(m.bytes_enqueued, 10u * 2 + 40u * 3);
    EXPECT_EQ(m.rows_sent, 50u);
    EXPECT_EQ(m.batches_sent, 5u);
    EXPECT_EQ(m.acknowledged, 50u);
    EXPECT_EQ(m.failed, 0u);
    EXPECT_EQ(m.queue_depth, 0u);
    EXPECT_EQ(m.queue_bytes, 0u);
    EXPECT_EQ(m.connections, 1u);
    EXPECT_GE(m.latency_p50_us, 20000u);
    EXPECT_LE(m.latency_p50_us, m.latency_p90_us);
    EXPECT_LE(m.latency_p90_us, m.latency_p99_us);
    EXPECT_LE(m.latency_p999_us, m.latency_max_us);
    EXPECT_LE(m.latency_max_us, static_cast<std::uint64_t>(elapsed_us));
}

TEST(Metrics, HistogramBucketsAreTight) {
    using pgingest::detail::LatencyHistogram;
    for (std::uint64_t v : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 1000ull, 123456789ull, 1ull << 62}) {
        std::size_t b = LatencyHistogram::bucket_of(v);
        EXPECT_LE(v, LatencyHistogram::bucket_upper(b));
        if (b > 0) {
            EXPECT_GT(v, LatencyHistogram::bucket_upper(b - 1));
        }
        EXPECT_LE(LatencyHistogram::bucket_upper(b), v + v / 8);
    }
    LatencyHistogram h;
    for (std::uint64_t v = 1; v <= 1000; v++)
        h.record(v);
    EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 500, 500 / 8.0);
    EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 990, 990 / 8.0);
    EXPECT_EQ(h.percentile(1.0), 1000u);
    EXPECT_EQ(h.max(), 1000u);
}

TEST(Config, StringSettings) {
    ProducerConfig c;
    EXPECT_EQ(c.pool_min, 5u);
    EXPECT_EQ(c.pool_max, 20u);
    EXPECT_TRUE(c.set("pool_max", "7").ok());
    EXPECT_TRUE(c.set("linger_ms", "25").ok());
    EXPECT_TRUE(c.set("full_queue_policy", "block").ok());
    EXPECT_TRUE(c.set("durable", "off").ok());
    EXPECT_TRUE(c.set("retry_backoff_factor", "1.5").ok());
    EXPECT_TRUE(c.set("log_level", "debug").ok());
    EXPECT_EQ(c.pool_max, 7u);
    EXPECT_EQ(c.linger, 25ms);
    EXPECT_EQ(c.full_queue_policy, FullQueuePolicy::kBlock);
    EXPECT_FALSE(c.durable);
    EXPECT_EQ(c.retry.backoff_factor, 1.5);
    EXPECT_EQ(c.set("pool_max", "seven").code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(c.set("linger_ms", "-1").code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(c.set("no_such_key", "1").code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(c.pool_max, 7u); // unchanged by a failed set
    EXPECT_TRUE(c.validate().ok());
    c.pool_min = 8;
    EXPECT_FALSE(c.validate().ok());
}
