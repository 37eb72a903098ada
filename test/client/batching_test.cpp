// Batching by rows, bytes and linger; batch numbering; one batch per target.
#include "batch.hpp"
#include "fake_transport.hpp"
#include "table_registry.hpp"

#include <pgingest/producer.hpp>

#include <gtest/gtest.h>

#include <thread>

using namespace pgingest;
using namespace pgingest::detail;
using pgingest::testing::FakeTransport;
using pgingest::testing::test_config;
using namespace std::chrono_literals;

namespace {

struct BuilderFixture : ::testing::Test {
    TableRegistry tables;
    Table a = tables.get("a", {});
    Table b = tables.get("b", {"x", "y"});
    Clock::time_point t0 = Clock::now();

    std::unique_ptr<QueuedRow> row(const Table &t, std::string line, Clock::time_point at) {
        auto r = std::make_unique<QueuedRow>();
        r->table = t.spec();
        r->line = std::move(line);
        r->enqueued = at;
        return r;
    }
    BatchBuilder builder(std::size_t rows, std::size_t bytes, std::chrono::milliseconds linger) {
        return BatchBuilder(rows, bytes, linger, [this](const TableSpec *s) { return tables.handle(s); });
    }
};

} // namespace

TEST_F(BuilderFixture, SealsAtMaxRows) {
    BatchBuilder bb = builder(3, 1 << 20, 1000ms);
    std::vector<BatchPtr> out;
    for (int i = 0; i < 7; i++)
        bb.add(row(a, std::to_string(i), t0), out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0]->data, "0\n1\n2\n");
    EXPECT_EQ(out[1]->data, "3\n4\n5\n");
    EXPECT_EQ(out[0]->seq, 1);
    EXPECT_EQ(out[1]->seq, 2);
    EXPECT_EQ(out[0]->table.name(), "a");
    EXPECT_FALSE(bb.empty());
    bb.seal_due(t0, true, out);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[2]->data, "6\n");
    EXPECT_EQ(out[2]->seq, 3);
    EXPECT_TRUE(bb.empty());
}

TEST_F(BuilderFixture, SealsByBytesWithoutExceedingThem) {
    BatchBuilder bb = builder(1000, 10, 1000ms);
    std::vector<BatchPtr> out;
    bb.add(row(a, "aaaa", t0), out); // 5 bytes
    bb.add(row(a, "bbb", t0), out);  // 9
    EXPECT_TRUE(out.empty());
    bb.add(row(a, "cc", t0), out); // would be 12: seals the first two, starts a new batch
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]->data, "aaaa\nbbb\n");
    bb.add(row(a, "0123456789abcdef", t0), out); // larger than max: seals "cc", then alone (and full)
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[1]->data, "cc\n");
    EXPECT_EQ(out[2]->data, "0123456789abcdef\n");
    EXPECT_EQ(out[2]->rows, 1u);
}

TEST_F(BuilderFixture, LingerAndTargets) {
    BatchBuilder bb = builder(1000, 1 << 20, 50ms);
    std::vector<BatchPtr> out;
    bb.add(row(a, "1", t0), out);
    bb.add(row(b, "2\t3", t0 + 20ms), out);
    bb.add(row(a, "4", t0 + 30ms), out);
    EXPECT_EQ(*bb.next_deadline(), t0 + 50ms);
    bb.seal_due(t0 + 49ms, false, out);
    EXPECT_TRUE(out.empty());
    bb.seal_due(t0 + 50ms, false, out); // a's first row waited 50 ms; b's only 30
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]->table.name(), "a");
    EXPECT_EQ(out[0]->data, "1\n4\n");
    EXPECT_EQ(*bb.next_deadline(), t0 + 70ms);
    bb.seal_due(t0 + 70ms, false, out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1]->table.columns(), (std::vector<std::string>{"x", "y"}));
    EXPECT_FALSE(bb.next_deadline());
}

TEST(TableRegistry, SameNameAndColumnsIsOneEntry) {
    TableRegistry r;
    Table t1 = r.get("events", {"a"});
    Table t2 = r.get("events", {"a"});
    Table t3 = r.get("events", {"b"});
    EXPECT_EQ(t1.spec(), t2.spec());
    EXPECT_NE(t1.spec(), t3.spec());
    EXPECT_EQ(r.by_name("events"), t1.spec()); // the first registered for the name
    const TableSpec *other = r.by_name("other");
    EXPECT_TRUE(other->columns.empty());
    EXPECT_EQ(r.by_name("other"), other);
    EXPECT_FALSE(r.handle(nullptr).valid());
}

TEST(ProducerBatching, LingerSendsAPartialBatch) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    cfg.linger = 300ms;
    cfg.batch_max_rows = 1000;
    Producer p(cfg, transport);
    auto start = Clock::now();
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(transport->calls().empty()); // still lingering
    while (transport->calls().empty() && Clock::now() - start < 5s)
        std::this_thread::sleep_for(1ms);
    auto calls = transport->calls();
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].rows, 3u);
    EXPECT_EQ(calls[0].data, "0\n1\n2\n");
    EXPECT_GE(calls[0].at - start, 300ms);
    EXPECT_LT(calls[0].at - start, 2s);
}

TEST(ProducerBatching, FullBatchesGoWithoutWaitingForLinger) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    cfg.linger = 10s;
    cfg.batch_max_rows = 10;
    cfg.batch_max_bytes = 1 << 20;
    Producer p(cfg, transport);
    auto start = Clock::now();
    for (int i = 0; i < 25; i++)
        ASSERT_TRUE(p.enqueue("t", Row().add(i)).ok());
    while (transport->calls().size() < 2 && Clock::now() - start < 5s)
        std::this_thread::sleep_for(1ms);
    auto calls = transport->calls();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].rows, 10u);
    EXPECT_EQ(calls[1].rows, 10u);
    EXPECT_LT(calls[1].at - start, 5s);
    ASSERT_TRUE(p.flush(5s).ok()); // flush does not wait for the linger either
    EXPECT_EQ(transport->calls().size(), 3u);
    EXPECT_EQ(transport->calls()[2].rows, 5u);
}

TEST(ProducerBatching, ByBytesAndPerTableColumns) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    cfg.batch_max_bytes = 100;
    Producer p(cfg, transport);
    Table t = p.table("public.t", {"id", "name"});
    for (int i = 0; i < 20; i++)
        ASSERT_TRUE(p.enqueue(t, Row().add(i).add("0123456789")).ok()); // 13-14 bytes each
    ASSERT_TRUE(p.flush(5s).ok());
    std::size_t rows = 0;
    for (const auto &c : transport->calls()) {
        EXPECT_LE(c.data.size(), 100u);
        EXPECT_EQ(c.table, "public.t");
        EXPECT_EQ(c.columns, (std::vector<std::string>{"id", "name"}));
        EXPECT_EQ(c.producer_id, p.producer_id());
        rows += c.rows;
    }
    EXPECT_EQ(rows, 20u);
    EXPECT_GE(transport->calls().size(), 3u);
}
