// Retry policy, backoff timing, permanent errors, reconnects, COPY fallback, dead letters.
#include "fake_transport.hpp"
#include "retry.hpp"

#include <pgingest/producer.hpp>

#include <gtest/gtest.h>

#include <thread>

#include <algorithm>
#include <mutex>
#include <set>

using namespace pgingest;
using namespace pgingest::detail;
using pgingest::testing::FakeTransport;
using pgingest::testing::one_batch_config;
using pgingest::testing::test_config;
using namespace std::chrono_literals;

namespace {

// Collects delivery reports (thread-safe).
struct Reports {
    std::mutex m;
    std::vector<DeliveryReport> all;
    DeliveryCallback callback() {
        return [this](const DeliveryReport &r) {
            std::lock_guard<std::mutex> lock(m);
            all.push_back(r);
        };
    }
    std::vector<DeliveryReport> get() {
        std::lock_guard<std::mutex> lock(m);
        return all;
    }
};

} // namespace

TEST(RetryPolicy, BackoffGrowsByTheFactorUpToTheCap) {
    RetryPolicy p; // defaults: 3 attempts, factor 2, at most 10 s
    EXPECT_EQ(p.max_attempts, 3);
    EXPECT_EQ(p.backoff_factor, 2.0);
    EXPECT_EQ(p.max_backoff, 10s);
    EXPECT_EQ(p.backoff(1), 500ms);
    EXPECT_EQ(p.backoff(2), 1000ms);
    EXPECT_EQ(p.backoff(3), 2000ms);
    EXPECT_EQ(p.backoff(6), 10s);
    EXPECT_EQ(p.backoff(60), 10s);
}

TEST(RetryPolicy, JitterStaysInItsBand) {
    RetryPolicy p;
    p.initial_backoff = 100ms;
    std::mt19937_64 rng(1);
    std::set<long long> seen;
    for (int i = 0; i < 1000; i++) {
        auto d = jittered_backoff(p, 2, rng);
        EXPECT_GE(d, 100ms);
        EXPECT_LE(d, 200ms);
        seen.insert(d.count());
    }
    EXPECT_GT(seen.size(), 50u); // actually random
    p.jitter = 0;
    EXPECT_EQ(jittered_backoff(p, 2, rng), 200ms);
}

TEST(RetryPolicy, ClassifiesServerErrors) {
    auto kind = [](const char *state, bool lost = false) {
        return classify(CallResult::failure(state, "x", lost));
    };
    EXPECT_EQ(kind("", true), FailureKind::kTransient);
    EXPECT_EQ(kind(""), FailureKind::kTransient);
    EXPECT_EQ(kind("53400"), FailureKind::kTransient); // pg_ingest ring is full
    EXPECT_EQ(kind("53200"), FailureKind::kTransient);
    EXPECT_EQ(kind("08006"), FailureKind::kTransient);
    EXPECT_EQ(kind("57P01"), FailureKind::kTransient);
    EXPECT_EQ(kind("55P03"), FailureKind::kTransient); // wait_timeout: rows withdrawn
    EXPECT_EQ(kind("40001"), FailureKind::kTransient);
    EXPECT_EQ(kind("42501"), FailureKind::kPermanent);
    EXPECT_EQ(kind("42P01"), FailureKind::kPermanent);
    EXPECT_EQ(kind("42703"), FailureKind::kPermanent);
    EXPECT_EQ(kind("22P04"), FailureKind::kPermanent);
    EXPECT_EQ(kind("XX000"), FailureKind::kPermanent);
    EXPECT_EQ(kind("42883"), FailureKind::kUndefinedFunction);
    EXPECT_EQ(kind("42883", true), FailureKind::kTransient);
}

TEST(ProducerRetry, TransientFailuresAreResentWithBackoffSameSeqSameRows) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int n) {
        return n < 2 ? CallResult::failure("53400", "pg_ingest ring is full") : CallResult::success(77);
    });
    ProducerConfig cfg = one_batch_config();
    cfg.retry.initial_backoff = 100ms;
    cfg.retry.backoff_factor = 2;
    cfg.retry.jitter = 0.5;
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto calls = transport->calls();
    ASSERT_EQ(calls.size(), 3u);
    for (const auto &c : calls) { // immutable once numbered: the exactly-once key covers the same rows
        EXPECT_EQ(c.batch_seq, calls[0].batch_seq);
        EXPECT_EQ(c.data, "1\n2\n");
        EXPECT_EQ(c.producer_id, p.producer_id());
    }
    auto gap1 = calls[1].at - calls[0].at, gap2 = calls[2].at - calls[1].at;
    EXPECT_GE(gap1, 50ms); // 100 ms, jittered down by at most half
    EXPECT_LT(gap1, 1000ms);
    EXPECT_GE(gap2, 100ms); // 200 ms, jittered
    EXPECT_LT(gap2, 1500ms);
    auto r = reports.get();
    ASSERT_EQ(r.size(), 2u);
    for (const auto &rep : r) {
        EXPECT_TRUE(rep.status.ok());
        EXPECT_EQ(rep.attempts, 3u);
        EXPECT_EQ(rep.ticket, 77);
    }
    EXPECT_EQ(p.metrics().retried, 2u);
    EXPECT_EQ(p.metrics().batches_sent, 3u);
    EXPECT_EQ(p.metrics().rows_sent, 6u);
}

TEST(ProducerRetry, GivesUpAfterMaxAttemptsWithTheLastError) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int) {
        return CallResult::failure("08006", "server closed the connection unexpectedly", true);
    });
    ProducerConfig cfg = test_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_EQ(transport->calls().size(), 3u);
    EXPECT_EQ(transport->connects(), 3); // a lost connection is replaced
    auto r = reports.get();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status.code(), ErrorCode::kRetriesExhausted);
    EXPECT_NE(r[0].status.message().find("server closed the connection"), std::string::npos);
    EXPECT_NE(r[0].status.message().find("3 attempts"), std::string::npos);
    EXPECT_EQ(r[0].status.sqlstate(), "08006");
    EXPECT_EQ(p.metrics().failed, 1u);
}

TEST(ProducerRetry, PermanentErrorsFailAtOnce) {
    for (const char *state : {"42501", "42P01", "42703", "22P04"}) {
        auto transport = std::make_shared<FakeTransport>();
        transport->set_handler(
            [state](const FakeTransport::Call &, int) { return CallResult::failure(state, "nope"); });
        ProducerConfig cfg = one_batch_config();
        Reports reports;
        cfg.on_delivery = reports.callback();
        Producer p(cfg, transport);
        ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
        ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
        ASSERT_TRUE(p.flush(10s).ok());
        EXPECT_EQ(transport->calls().size(), 1u) << state;
        auto r = reports.get();
        ASSERT_EQ(r.size(), 2u);
        EXPECT_EQ(r[0].status.code(), ErrorCode::kPermanentError);
        EXPECT_EQ(r[0].status.sqlstate(), state);
        EXPECT_EQ(p.metrics().retried, 0u);
    }
}

TEST(ProducerRetry, ConnectFailuresCountAsAttemptsThenRecover) {
    auto transport = std::make_shared<FakeTransport>();
    transport->fail_connects(3); // the eager connect at start, then attempts 1 and 2
    ProducerConfig cfg = test_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto r = reports.get();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].status.ok()) << r[0].status.to_string();
    EXPECT_EQ(r[0].attempts, 3u);
    EXPECT_EQ(transport->calls().size(), 1u);
    EXPECT_EQ(p.metrics().connect_failures, 3u);
    EXPECT_EQ(p.metrics().connections, 1u);
}

TEST(ProducerRetry, ServerDownForGoodFailsRowsClearly) {
    auto transport = std::make_shared<FakeTransport>();
    transport->fail_connects(1000);
    ProducerConfig cfg = test_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto r = reports.get();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status.code(), ErrorCode::kRetriesExhausted);
    EXPECT_NE(r[0].status.message().find("connection refused"), std::string::npos);
}

TEST(ProducerRetry, CopyFallbackWhenTheServerHasNoPgIngest) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &c, int) {
        return c.copy ? CallResult::success(0)
                      : CallResult::failure("42883", "function ingest_enqueue_copy(...) does not exist");
    });
    ProducerConfig cfg = test_config();
    cfg.copy_fallback = true;
    std::vector<std::string> warnings;
    std::mutex wm;
    cfg.log_level = LogLevel::kWarning;
    cfg.on_log = [&](LogLevel, const std::string &m) {
        std::lock_guard<std::mutex> lock(wm);
        warnings.push_back(m);
    };
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto calls = transport->calls();
    ASSERT_EQ(calls.size(), 3u); // enqueue_copy (missing), COPY, then COPY straight away
    EXPECT_FALSE(calls[0].copy);
    EXPECT_TRUE(calls[1].copy);
    EXPECT_EQ(calls[1].data, calls[0].data);
    EXPECT_TRUE(calls[2].copy);
    for (const auto &r : reports.get())
        EXPECT_TRUE(r.status.ok());
    EXPECT_EQ(p.metrics().fallback_batches, 2u);
    std::lock_guard<std::mutex> lock(wm);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("COPY FROM STDIN"), std::string::npos);
}

TEST(ProducerRetry, NoFallbackMeansAPermanentErrorNamingTheExtension) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int) {
        return CallResult::failure("42883", "function does not exist");
    });
    ProducerConfig cfg = test_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto r = reports.get();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].status.code(), ErrorCode::kPermanentError);
    EXPECT_NE(r[0].status.message().find("CREATE EXTENSION pg_ingest"), std::string::npos);
    EXPECT_EQ(transport->calls().size(), 1u);
}

TEST(ProducerRetry, DeadLetteredRowsAreReportedWithTheServerError) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int) { return CallResult::success(900, 2); });
    transport->set_dead_letter_handler([](std::int64_t ticket, std::vector<DeadLetter> &out) {
        EXPECT_EQ(ticket, 900);
        out.push_back({2, "duplicate key value violates unique constraint \"t_pkey\"", "23505"});
        out.push_back({4, "invalid input syntax for type integer: \"x\"", "22P02"});
        return Status();
    });
    ProducerConfig cfg = one_batch_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    for (int i = 1; i <= 4; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    auto r = reports.get();
    ASSERT_EQ(r.size(), 4u);
    std::sort(r.begin(), r.end(), [](auto &a, auto &b) { return a.row_number < b.row_number; });
    EXPECT_TRUE(r[0].status.ok());
    EXPECT_EQ(r[1].status.code(), ErrorCode::kRejected);
    EXPECT_EQ(r[1].status.sqlstate(), "23505");
    EXPECT_NE(r[1].status.message().find("t_pkey"), std::string::npos);
    EXPECT_TRUE(r[2].status.ok());
    EXPECT_EQ(r[3].status.code(), ErrorCode::kRejected);
    EXPECT_EQ(r[3].status.sqlstate(), "22P02");
    Metrics m = p.metrics();
    EXPECT_EQ(m.acknowledged, 2u);
    EXPECT_EQ(m.failed, 2u);
    EXPECT_EQ(m.dead_lettered, 2u);
}

TEST(ProducerRetry, UnreadableDeadLettersMakeTheOutcomeUnknownNotOk) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int) { return CallResult::success(5, 1); });
    transport->set_dead_letter_handler([](std::int64_t, std::vector<DeadLetter> &) {
        return Status(ErrorCode::kUnknownRowOutcome, "permission denied for table ingest_dead_letter",
                      "42501");
    });
    ProducerConfig cfg = one_batch_config();
    Reports reports;
    cfg.on_delivery = reports.callback();
    Producer p(cfg, transport);
    ASSERT_TRUE(p.enqueue("t", Row().add(1)).ok());
    ASSERT_TRUE(p.enqueue("t", Row().add(2)).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    for (const auto &r : reports.get()) {
        EXPECT_EQ(r.status.code(), ErrorCode::kUnknownRowOutcome);
        EXPECT_NE(r.status.message().find("permission denied"), std::string::npos);
    }
    EXPECT_EQ(transport->calls().size(), 1u); // never resent: the server has the batch
}
