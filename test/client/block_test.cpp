// Producer::enqueue_block and RowBlock: a block's rows are batched, numbered and reported as the
// same rows enqueued one by one would be; the queue's limits count its rows and bytes; a refused
// block is left as it was; blocks from many threads at once are each reported exactly once.
#include "batch.hpp"
#include "fake_transport.hpp"
#include "table_registry.hpp"

#include <pgingest/producer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

using namespace pgingest;
using namespace pgingest::detail;
using pgingest::testing::FakeTransport;
using pgingest::testing::one_batch_config;
using pgingest::testing::test_config;
using namespace std::chrono_literals;

namespace {

RowBlock block_of(int from, int to) { // rows "from" .. "to - 1", one field each
    RowBlock b;
    for (int i = from; i < to; i++)
        EXPECT_TRUE(b.add_copy_line(std::to_string(i)).ok());
    return b;
}

// Every BlockReport of one block, for checks after flush().
struct Reports {
    std::mutex m;
    std::vector<BlockReport> all;
    BlockCallback callback() {
        return [this](const BlockReport &r) {
            std::lock_guard<std::mutex> lock(m);
            all.push_back(r);
        };
    }
    // Each row of a block of n rows is in exactly one report's run.
    bool cover_each_row_once(std::size_t n) {
        std::lock_guard<std::mutex> lock(m);
        std::vector<int> seen(n, 0);
        for (const BlockReport &r : all)
            for (std::size_t i = r.first; i < r.first + r.count; i++)
                if (i >= n || seen[i]++)
                    return false;
        return std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; });
    }
};

// Byte-at-a-time references for the word-at-a-time scans of row.cpp.
std::string reference_escape(const std::string &s) {
    std::string out;
    for (char c : s) {
        const char *esc = c == '\\'   ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\v' ? "\\v"
                                      : nullptr;
        if (esc)
            out += esc;
        else
            out += c;
    }
    return out;
}

// What is wrong with a COPY line (the first problem from the left), "" if nothing; its fields.
std::string reference_check(const std::string &line, std::size_t &fields) {
    std::string error;
    fields = 1;
    for (std::size_t i = 0; i < line.size(); i++) {
        char c = line[i];
        if (c == '\t')
            fields++;
        else if ((c == '\n' || c == '\r' || c == '\0') && error.empty())
            error = "raw";
        else if (c == '\\' && ++i == line.size() && error.empty()) // skips the escaped character
            error = "backslash";
    }
    if (error.empty() && line == "\\.")
        error = "marker";
    return error;
}

std::string random_bytes(std::mt19937 &rng, std::size_t n) {
    static const std::string alphabet =
        std::string("abcXYZ019 ,.\\\t\n\r\b\f\v\x7f\x80\xc3\xa9\x01\x07\x0e") + '\0';
    std::string s;
    for (std::size_t i = 0; i < n; i++)
        s += rng() % 16 ? alphabet[rng() % 6] : alphabet[rng() % alphabet.size()]; // mostly plain
    return s;
}

} // namespace

TEST(CopyText, WordAtATimeScansMatchByteAtATime) {
    std::mt19937 rng(7);
    for (int n = 0; n < 20000; n++) {
        const std::string s = random_bytes(rng, rng() % 70);
        std::string enc = "prefix";
        append_copy_escaped(enc, s);
        ASSERT_EQ(enc, "prefix" + reference_escape(s)) << n;

        std::size_t want_fields;
        const std::string want = reference_check(s, want_fields);
        Row r = Row::from_copy_line(s);
        RowBlock b;
        Status bs = b.add_copy_line(s);
        ASSERT_EQ(r.status().ok(), want.empty()) << n << ": " << r.status().to_string();
        ASSERT_EQ(bs.ok(), want.empty()) << n;
        EXPECT_EQ(bs.message(), r.status().message());
        const char *why = want == "raw"         ? "raw newline"
                          : want == "backslash" ? "lone backslash"
                          : want == "marker"    ? "end-of-data marker"
                                                : "";
        EXPECT_NE(r.status().message().find(why), std::string::npos) << n << ": " << r.status().message();
        EXPECT_EQ(r.field_count(), want_fields) << n;
        EXPECT_EQ(b.rows(), want.empty() ? 1u : 0u);
    }
}

TEST(BufferPool, KeepsAFewBuffersOfTheRightSize) {
    BufferPool pool(2, 1 << 20);
    EXPECT_EQ(pool.take().capacity(), std::string().capacity()); // none kept yet
    std::string a(100000, 'a'), b(200000, 'b'), c(300000, 'c'), huge(2 << 20, 'h'), tiny(10, 't');
    const std::size_t cap_a = a.capacity();
    pool.give(std::move(huge)); // larger than max_capacity: freed
    pool.give(std::move(tiny)); // too small to bother
    pool.give(std::move(a));
    pool.give(std::move(b));
    pool.give(std::move(c)); // two kept already: freed
    std::string t1 = pool.take(), t2 = pool.take(), t3 = pool.take();
    EXPECT_TRUE(t1.empty());
    EXPECT_GE(t1.capacity(), 200000u);
    EXPECT_EQ(t2.capacity(), cap_a);
    EXPECT_EQ(t3.capacity(), std::string().capacity());
}

TEST(RowBlock, ChecksLinesAsFromCopyLineDoes) {
    RowBlock b;
    EXPECT_TRUE(b.empty());
    EXPECT_TRUE(b.add_copy_line("1\tx").ok());
    EXPECT_TRUE(b.add(Row().add(2).add("a\tb")).ok());
    EXPECT_EQ(b.rows(), 2u);
    EXPECT_EQ(b.data(), "1\tx\n2\ta\\tb\n");
    EXPECT_EQ(b.bytes(), b.data().size());
    for (const char *bad : {"a\nb", "a\rb", "ends in \\", "\\."}) {
        Status s = b.add_copy_line(bad);
        EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
        EXPECT_EQ(s.message(), Row::from_copy_line(bad).status().message()) << bad;
    }
    EXPECT_EQ(b.add(Row()).code(), ErrorCode::kInvalidArgument);                        // no field
    EXPECT_EQ(b.add(Row().add(Date{2023, 2, 30})).code(), ErrorCode::kInvalidArgument); // bad value
    EXPECT_EQ(b.rows(), 2u); // nothing refused was appended
    std::string taken = b.take_data();
    EXPECT_EQ(taken, "1\tx\n2\ta\\tb\n");
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.bytes(), 0u);
}

TEST(BlockBuilder, SplitsABlockWhereRowsOneByOneWouldBeSplit) {
    // The same rows as single rows and as blocks (cut anywhere) give the same batches.
    TableRegistry tables;
    Table a = tables.get("a", {});
    auto resolve = [&tables](const TableSpec *s) { return tables.handle(s); };
    std::vector<std::string> lines;
    for (int i = 0; i < 40; i++)
        lines.push_back(std::string(static_cast<std::size_t>(i % 7 + 1), 'x') + std::to_string(i));
    for (std::size_t max_rows : {1u, 3u, 5u, 1000u})
        for (std::size_t max_bytes : {4u, 16u, 40u, 1u << 20})
            for (std::size_t cut : {1u, 2u, 7u, 40u}) {
                BatchBuilder one(max_rows, max_bytes, 1000ms, resolve),
                    blocks(max_rows, max_bytes, 1000ms, resolve);
                std::vector<BatchPtr> want, got;
                for (const std::string &l : lines) {
                    auto q = std::make_unique<QueuedRow>();
                    q->table = a.spec();
                    q->line = l;
                    one.add(std::move(q), want);
                }
                one.seal_due(Clock::now(), true, want);
                for (std::size_t from = 0; from < lines.size(); from += cut) {
                    RowBlock rb;
                    for (std::size_t i = from; i < std::min(lines.size(), from + cut); i++)
                        ASSERT_TRUE(rb.add_copy_line(lines[i]).ok());
                    auto q = std::make_unique<QueuedRow>();
                    q->table = a.spec();
                    q->block_rows = rb.rows();
                    q->line = rb.take_data();
                    blocks.add(std::move(q), got);
                }
                blocks.seal_due(Clock::now(), true, got);
                ASSERT_EQ(got.size(), want.size()) << max_rows << " " << max_bytes << " " << cut;
                std::size_t next_first = 0; // over all batches, in order
                for (std::size_t i = 0; i < got.size(); i++) {
                    EXPECT_EQ(got[i]->data, want[i]->data);
                    EXPECT_EQ(got[i]->rows, want[i]->rows);
                    EXPECT_EQ(got[i]->seq, want[i]->seq);
                    std::size_t rows = 0, bytes = 0;
                    for (const BatchPart &p : got[i]->parts) {
                        rows += p.rows;
                        bytes += p.bytes;
                        EXPECT_TRUE(p.block);
                        // a run continues its block where the last one stopped, or a block starts
                        EXPECT_TRUE(p.first == (next_first == cut ? 0 : next_first)) << p.first;
                        next_first = p.first + p.rows;
                    }
                    EXPECT_EQ(rows, got[i]->rows);
                    EXPECT_EQ(bytes, got[i]->data.size());
                }
            }
}

TEST(EnqueueBlock, SentAsTheSameRowsOneByOneWouldBe) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = one_batch_config();
    cfg.batch_max_rows = 4;
    std::atomic<int> per_row{0};
    std::vector<std::uint32_t> row_numbers;
    std::mutex m;
    cfg.on_delivery = [&](const DeliveryReport &r) { // still called for every row
        per_row++;
        std::lock_guard<std::mutex> lock(m);
        row_numbers.push_back(r.row_number);
        EXPECT_TRUE(r.status.ok());
    };
    Producer p(cfg, transport);
    Table t = p.table("t", {"id"});
    Reports reports;
    ASSERT_TRUE(p.enqueue(t, Row().add(0)).ok());
    RowBlock b = block_of(1, 10);
    ASSERT_TRUE(p.enqueue_block(t, b, reports.callback()).ok());
    EXPECT_TRUE(b.empty()); // taken
    ASSERT_TRUE(p.enqueue(t, Row().add(10)).ok());
    ASSERT_TRUE(p.flush(10s).ok());

    auto calls = transport->calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].data, "0\n1\n2\n3\n");
    EXPECT_EQ(calls[1].data, "4\n5\n6\n7\n");
    EXPECT_EQ(calls[2].data, "8\n9\n10\n");
    for (int i = 0; i < 3; i++)
        EXPECT_EQ(calls[static_cast<std::size_t>(i)].batch_seq, i + 1);
    EXPECT_EQ(per_row, 11);
    std::sort(row_numbers.begin(), row_numbers.end());
    EXPECT_EQ(row_numbers, (std::vector<std::uint32_t>{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4}));

    ASSERT_EQ(reports.all.size(), 3u); // one per batch the block went into
    EXPECT_TRUE(reports.cover_each_row_once(9));
    for (const BlockReport &r : reports.all) {
        EXPECT_TRUE(r.status.ok());
        EXPECT_EQ(r.ok_rows(), r.count);
        EXPECT_EQ(r.table.name(), "t");
        EXPECT_EQ(r.attempts, 1u);
        // the run's first row sits at first_row_number in batch batch_seq
        const std::int64_t at = r.batch_seq * 10 + r.first_row_number;
        EXPECT_EQ(at, r.first == 0 ? 12 : r.first == 3 ? 21 : 31) << r.first;
    }
    Metrics m2 = p.metrics();
    EXPECT_EQ(m2.enqueued, 11u);
    EXPECT_EQ(m2.acknowledged, 11u);
    EXPECT_EQ(m2.queue_depth, 0u);
}

TEST(EnqueueBlock, ServerRejectsAreReportedByBlockIndex) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int n) { return CallResult::success(n + 1, 2); });
    transport->set_dead_letter_handler([](std::int64_t, std::vector<DeadLetter> &out) {
        out.push_back(DeadLetter{2, "bad value", "22P02"});
        out.push_back(DeadLetter{5, "duplicate", "23505"});
        return Status();
    });
    ProducerConfig cfg = one_batch_config();
    cfg.batch_max_rows = 6;
    Producer p(cfg, transport);
    Table t = p.table("t");
    std::atomic<int> single_rejected{0};
    ASSERT_TRUE(p.enqueue(t, Row().add(0), [&](const DeliveryReport &r) {
                     single_rejected += r.status.code() == ErrorCode::kRejected;
                 }).ok()); // row 1 of the batch; the block's rows are 2..6
    Reports reports;
    RowBlock b = block_of(1, 6);
    ASSERT_TRUE(p.enqueue_block(t, b, reports.callback()).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_EQ(single_rejected, 0);
    ASSERT_EQ(reports.all.size(), 1u);
    const BlockReport &r = reports.all[0];
    EXPECT_TRUE(r.status.ok());
    EXPECT_EQ(r.first, 0u);
    EXPECT_EQ(r.count, 5u);
    EXPECT_EQ(r.first_row_number, 2u);
    ASSERT_EQ(r.exceptions.size(), 2u);
    EXPECT_EQ(r.exceptions[0].index, 0u); // batch row 2
    EXPECT_EQ(r.exceptions[0].status.code(), ErrorCode::kRejected);
    EXPECT_EQ(r.exceptions[0].status.sqlstate(), "22P02");
    EXPECT_EQ(r.exceptions[1].index, 3u); // batch row 5
    EXPECT_EQ(r.exceptions[1].status.message(), "duplicate");
    EXPECT_EQ(r.ok_rows(), 3u);
    EXPECT_EQ(r.row_status(3).sqlstate(), "23505");
    EXPECT_TRUE(r.row_status(1).ok());
    EXPECT_EQ(p.metrics().dead_lettered, 2u);
    EXPECT_EQ(p.metrics().failed, 2u);
    EXPECT_EQ(p.metrics().acknowledged, 4u);
}

TEST(EnqueueBlock, AFailedBatchFailsItsRun) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &c, int n) {
        return c.data.rfind("3\n", 0) == 0 ? CallResult::failure("42501", "permission denied")
                                           : CallResult::success(n + 1);
    });
    ProducerConfig cfg = one_batch_config();
    cfg.batch_max_rows = 3;
    Producer p(cfg, transport);
    Reports reports;
    RowBlock b = block_of(0, 7); // batches 0-2, 3-5 (fails), 6
    ASSERT_TRUE(p.enqueue_block(p.table("t"), b, reports.callback()).ok());
    ASSERT_TRUE(p.flush(10s).ok());
    ASSERT_EQ(reports.all.size(), 3u);
    EXPECT_TRUE(reports.cover_each_row_once(7));
    std::size_t ok = 0;
    for (const BlockReport &r : reports.all) {
        ok += r.ok_rows();
        if (r.first == 3) {
            EXPECT_EQ(r.status.code(), ErrorCode::kPermanentError);
            EXPECT_EQ(r.status.sqlstate(), "42501");
            EXPECT_EQ(r.ok_rows(), 0u);
        }
    }
    EXPECT_EQ(ok, 4u);
}

TEST(EnqueueBlock, QueueLimitsCountRowsAndBytesAndARefusedBlockIsKept) {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([&](const FakeTransport::Call &, int n) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, 20s, [&] { return open; });
        return CallResult::success(n + 1);
    });
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 10;
    cfg.queue_max_bytes = 1000;
    Producer p(cfg, transport);
    Table t = p.table("t");

    RowBlock too_many = block_of(0, 11);
    Status s = p.enqueue_block(t, too_many);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(too_many.rows(), 11u); // left as it was
    RowBlock too_big;
    ASSERT_TRUE(too_big.add_copy_line(std::string(1000, 'x')).ok());
    EXPECT_EQ(p.enqueue_block(t, too_big).code(), ErrorCode::kInvalidArgument);
    RowBlock empty;
    EXPECT_EQ(p.enqueue_block(t, empty).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(p.enqueue_block(Table(), too_big).code(), ErrorCode::kInvalidArgument);

    RowBlock first = block_of(0, 6);
    ASSERT_TRUE(p.enqueue_block(t, first).ok());
    EXPECT_EQ(p.metrics().queue_depth, 6u);
    EXPECT_EQ(p.metrics().queue_bytes, 12u);
    RowBlock second = block_of(6, 11); // 5 rows: 11 > 10
    const std::string before = second.data();
    s = p.enqueue_block(t, second);
    EXPECT_EQ(s.code(), ErrorCode::kQueueFull);
    EXPECT_EQ(second.data(), before);
    EXPECT_EQ(second.rows(), 5u);
    EXPECT_EQ(p.metrics().queue_depth, 6u); // nothing of it reserved
    EXPECT_EQ(p.metrics().enqueue_rejected, 5u);
    {
        std::lock_guard<std::mutex> lock(m);
        open = true;
    }
    cv.notify_all();
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_TRUE(p.enqueue_block(t, second).ok()); // the same block, once there is room
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_EQ(p.metrics().acknowledged, 11u);
}

TEST(EnqueueBlock, BlockPolicyWaitsForRoomForTheWholeBlock) {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([&](const FakeTransport::Call &, int n) {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, 20s, [&] { return open; });
        return CallResult::success(n + 1);
    });
    ProducerConfig cfg = test_config();
    cfg.queue_max_rows = 10;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 100ms;
    Producer p(cfg, transport);
    Table t = p.table("t");
    RowBlock a = block_of(0, 8), b = block_of(8, 11);
    ASSERT_TRUE(p.enqueue_block(t, a).ok());
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(p.enqueue_block(t, b).code(), ErrorCode::kTimedOut);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
    EXPECT_EQ(b.rows(), 3u);
    std::thread opener([&] {
        std::this_thread::sleep_for(50ms);
        std::lock_guard<std::mutex> lock(m);
        open = true;
        cv.notify_all();
    });
    Status s;
    for (int i = 0; i < 100 && !(s = p.enqueue_block(t, b)).ok(); i++) // 100 ms each: room comes
        ASSERT_EQ(s.code(), ErrorCode::kTimedOut);
    EXPECT_TRUE(s.ok());
    opener.join();
    ASSERT_TRUE(p.flush(10s).ok());
    EXPECT_EQ(p.metrics().acknowledged, 11u);
}

TEST(EnqueueBlock, AfterCloseRefusedAndUnsentBlocksReportShutdown) {
    auto transport = std::make_shared<FakeTransport>();
    transport->set_handler([](const FakeTransport::Call &, int) {
        std::this_thread::sleep_for(300ms);
        return CallResult::failure("08006", "connection lost", true);
    });
    ProducerConfig cfg = one_batch_config();
    cfg.batch_max_rows = 2;
    Producer p(cfg, transport);
    Table t = p.table("t");
    Reports reports;
    RowBlock b = block_of(0, 5);
    ASSERT_TRUE(p.enqueue_block(t, b, reports.callback()).ok());
    EXPECT_EQ(p.close(50ms).code(), ErrorCode::kTimedOut);
    EXPECT_TRUE(reports.cover_each_row_once(5));
    for (const BlockReport &r : reports.all)
        EXPECT_EQ(r.status.code(), ErrorCode::kShutdown);
    RowBlock late = block_of(0, 2);
    EXPECT_EQ(p.enqueue_block(t, late).code(), ErrorCode::kClosed);
    EXPECT_EQ(late.rows(), 2u);
}

TEST(EnqueueBlock, ManyThreadsEveryRowReportedOnce) {
    auto transport = std::make_shared<FakeTransport>();
    ProducerConfig cfg = test_config();
    cfg.pool_max = 4;
    cfg.batch_max_rows = 37; // blocks are split over batches
    cfg.queue_max_rows = 500;
    cfg.full_queue_policy = FullQueuePolicy::kBlock;
    cfg.block_timeout = 10s;
    std::atomic<long> singles{0};
    cfg.on_delivery = [&](const DeliveryReport &) { singles++; };
    Producer p(cfg, transport);
    Table t = p.table("t");
    constexpr int kThreads = 4, kBlocks = 50, kRows = 23;
    std::vector<std::vector<std::atomic<int>>> seen(kThreads);
    for (auto &v : seen)
        v = std::vector<std::atomic<int>>(kBlocks * kRows);
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; th++)
        threads.emplace_back([&, th] {
            for (int blk = 0; blk < kBlocks; blk++) {
                RowBlock b = block_of(0, kRows);
                auto *row_seen = &seen[static_cast<std::size_t>(th)][static_cast<std::size_t>(blk * kRows)];
                Status s = p.enqueue_block(t, b, [row_seen](const BlockReport &r) {
                    EXPECT_TRUE(r.status.ok());
                    for (std::size_t i = r.first; i < r.first + r.count; i++)
                        row_seen[i]++;
                });
                EXPECT_TRUE(s.ok()) << s.to_string();
            }
        });
    for (auto &th : threads)
        th.join();
    ASSERT_TRUE(p.flush(20s).ok());
    for (auto &v : seen)
        for (auto &c : v)
            EXPECT_EQ(c.load(), 1);
    EXPECT_EQ(singles, kThreads * kBlocks * kRows);
    long rows = 0;
    for (const auto &c : transport->calls()) {
        EXPECT_LE(c.rows, 37u);
        rows += c.rows;
    }
    EXPECT_EQ(rows, kThreads * kBlocks * kRows);
}

TEST(NodeArena, HandsOutAlignedDistinctNodesAcrossChunks) {
    struct alignas(64) Node {
        char bytes[64];
    };
    NodeArena<int> ints;
    NodeArena<Node> nodes(ints); // rebound copies share the chunks
    EXPECT_TRUE(nodes == ints);
    EXPECT_FALSE(NodeArena<Node>() == nodes);
    std::vector<Node *> got;
    const std::size_t n = NodeArena<Node>::kChunkNodes * 2 + 5;
    for (std::size_t i = 0; i < n; i++) {
        Node *p = nodes.allocate(1);
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
        std::memset(p, static_cast<int>(i & 0xff), sizeof *p); // writable (ASan checks the bounds)
        got.push_back(p);
    }
    EXPECT_EQ(got[1], got[0] + 1); // contiguous within a chunk
    std::sort(got.begin(), got.end());
    EXPECT_EQ(std::unique(got.begin(), got.end()), got.end());
    for (Node *p : got)
        nodes.deallocate(p, 1); // nothing: freed with the chunks

    RowQueue q(20000, 1u << 30); // a queue of many nodes works as before
    for (int i = 0; i < 20000; i++) {
        ASSERT_TRUE(q.try_reserve(1));
        auto r = std::make_unique<QueuedRow>();
        r->line = std::to_string(i);
        q.push(std::move(r));
    }
    EXPECT_FALSE(q.try_reserve(1));
    for (int i = 0; i < 20000; i++) {
        auto r = q.pop();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->line, std::to_string(i));
    }
    EXPECT_FALSE(q.pop());
    q.release(20000, 20000);
}
