// Unit tests of the shared-memory ring (extension/ring.hpp) with plain threads standing in for
// backends (producers) and a worker (consumer). Built with ThreadSanitizer and with
// AddressSanitizer+UBSan by test/run-all.sh (suite "unit").
#include "../../extension/ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace pg_ingest;

namespace {

struct RingHolder {
    std::unique_ptr<unsigned char[]> mem;
    Ring *ring;
    explicit RingHolder(uint64_t capacity) : mem(new unsigned char[Ring::shmem_size(capacity) + kAlign]) {
        void *p = mem.get();
        size_t space = Ring::shmem_size(capacity) + kAlign;
        ring = static_cast<Ring *>(std::align(alignof(Ring), sizeof(Ring), p, space));
        ring->init(capacity);
    }
};

// A record body: producer id, sequence, payload length, payload bytes (all derived from seq).
struct Body {
    uint32_t producer;
    uint32_t seq;
    uint32_t payload;
    uint32_t pad;
};

uint64_t record_len(uint32_t payload) { return align_up(sizeof(RecordTag) + sizeof(Body) + payload); }

bool produce(Ring *r, uint32_t producer, uint32_t seq, uint32_t payload) {
    uint64_t len = record_len(payload);
    uint64_t pos;
    if (!r->reserve(len, &pos))
        return false;
    unsigned char *p = r->bytes(pos) + sizeof(RecordTag);
    Body b{producer, seq, payload, 0};
    std::memcpy(p, &b, sizeof b);
    std::memset(p + sizeof b, static_cast<int>(seq & 0xff), payload);
    r->publish(pos, len);
    return true;
}

} // namespace

TEST(Ring, ReserveFailsWhenFullAndSucceedsAfterTailMoves) {
    RingHolder h(1024);
    Ring *r = h.ring;
    uint64_t pos;
    ASSERT_TRUE(r->reserve(512, &pos));
    EXPECT_EQ(pos, 0u);
    r->publish(pos, 512);
    ASSERT_TRUE(r->reserve(512, &pos));
    r->publish(pos, 512);
    EXPECT_FALSE(r->reserve(16, &pos)) << "a full ring must refuse, never overwrite";
    EXPECT_EQ(r->used(), 1024u);
    // Not done yet: the tail cannot move.
    EXPECT_EQ(r->advance_tail(r->head.load()), 0u);
    ASSERT_TRUE(r->mark(0, kReady, kDone));
    EXPECT_EQ(r->advance_tail(r->head.load()), 512u);
    EXPECT_TRUE(r->handled(0));
    EXPECT_FALSE(r->handled(512));
    EXPECT_TRUE(r->reserve(512, &pos));
    EXPECT_EQ(pos, 1024u);
}

TEST(Ring, WrapAroundInsertsPadding) {
    RingHolder h(1024);
    Ring *r = h.ring;
    uint64_t pos;
    ASSERT_TRUE(r->reserve(768, &pos));
    r->publish(pos, 768);
    r->mark(pos, kReady, kDone);
    r->advance_tail(r->head.load());
    // 512 bytes do not fit in the 256 left before the end: padding, then the record at 1024.
    ASSERT_TRUE(r->reserve(512, &pos));
    EXPECT_EQ(pos, 1024u);
    EXPECT_EQ(r->state(768), kPad);
    EXPECT_EQ(r->length(768), 256u);
    EXPECT_EQ(r->state(1024), 0u) << "reserved but unpublished records are invisible";
    r->publish(pos, 512);
    EXPECT_EQ(r->state(1024), kReady);
    EXPECT_EQ(r->bytes(1024), r->bytes(0)) << "the record is contiguous at the start of the data";
}

TEST(Ring, StaleBytesOfAnEarlierLapAreNotARecord) {
    RingHolder h(256);
    Ring *r = h.ring;
    uint64_t pos;
    ASSERT_TRUE(r->reserve(256, &pos));
    r->publish(pos, 256);
    r->mark(0, kReady, kDone);
    r->advance_tail(r->head.load());
    ASSERT_TRUE(r->reserve(256, &pos));
    EXPECT_EQ(pos, 256u);
    // Same bytes as the old record at position 0, but its tag carries position 0, not 256.
    EXPECT_EQ(r->state(256), 0u);
}

TEST(Ring, ForgedTagInACallersBytesIsClearedWhenReclaimed) {
    RingHolder h(256);
    Ring *r = h.ring;
    uint64_t pos;
    // A 256-byte record whose body holds, at offset 64, what a published record at position
    // 256 + 64 (the same place one lap later) would carry as its tag.
    ASSERT_TRUE(r->reserve(256, &pos));
    uint64_t forged[2] = {(256 + 64) | kReady, 64};
    std::memcpy(r->bytes(64), forged, sizeof forged);
    r->publish(pos, 256);
    r->mark(0, kReady, kDone);
    r->advance_tail(r->head.load());
    // Next lap: 64 bytes, then a record reserved at 320 but not yet published.
    ASSERT_TRUE(r->reserve(64, &pos));
    r->publish(pos, 64);
    ASSERT_TRUE(r->reserve(64, &pos));
    ASSERT_EQ(pos, 320u);
    EXPECT_EQ(r->state(320), 0u) << "old body bytes must not read as a published record";
}

TEST(Ring, ManyProducersOneConsumerExactlyOnce) {
    constexpr int kProducers = 8;
    constexpr uint32_t kPerProducer = 20000;
    RingHolder h(64 * 1024);
    Ring *r = h.ring;
    std::atomic<bool> failed{false};

    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; p++) {
        producers.emplace_back([r, p] {
            for (uint32_t seq = 0; seq < kPerProducer; seq++) {
                uint32_t payload = (seq * 7919u + p) % 300;
                while (!produce(r, p, seq, payload))
                    std::this_thread::yield(); // full: wait for the consumer, as a backend would
            }
        });
    }

    // The consumer: reads published records in order, checks them, marks them done, moves tail.
    std::vector<uint32_t> next_seq(kProducers, 0);
    uint64_t count = 0, sum = 0;
    uint64_t pos = 0;
    const uint64_t total = uint64_t(kProducers) * kPerProducer;
    while (count < total) {
        uint64_t s = r->state(pos);
        if (s == 0) {
            std::this_thread::yield();
            continue;
        }
        uint64_t len = r->length(pos);
        if (s == kReady) {
            Body b;
            std::memcpy(&b, r->bytes(pos) + sizeof(RecordTag), sizeof b);
            const unsigned char *payload = r->bytes(pos) + sizeof(RecordTag) + sizeof b;
            bool ok = b.producer < kProducers && b.seq == next_seq[b.producer] && len == record_len(b.payload);
            for (uint32_t i = 0; ok && i < b.payload; i++)
                ok = payload[i] == (b.seq & 0xff);
            if (!ok)
                failed = true;
            if (b.producer < kProducers)
                next_seq[b.producer] = b.seq + 1;
            count++;
            sum += b.seq;
            ASSERT_TRUE(r->mark(pos, kReady, kDone));
        }
        pos += len;
        r->advance_tail(pos);
    }
    for (auto &t : producers)
        t.join();
    EXPECT_FALSE(failed.load()) << "a record was torn, out of order, or seen twice";
    EXPECT_EQ(count, total);
    EXPECT_EQ(sum, uint64_t(kProducers) * (uint64_t(kPerProducer) * (kPerProducer - 1) / 2));
    EXPECT_EQ(r->head.load(), r->tail.load());
}
