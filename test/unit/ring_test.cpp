// Unit tests of the shared-memory ring and its cursor (extension/ring.hpp), with plain threads
// standing in for backends (producers) and a worker (consumer). Built with ThreadSanitizer and with
// AddressSanitizer+UBSan by test/run-all.sh (suite "unit").
#include "../../extension/ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <ostream>
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

// What a RingCursor yields from `from`: (position, state, length) of each record, in order.
struct Seen {
    uint64_t pos, state, len;
    bool operator==(const Seen &o) const { return pos == o.pos && state == o.state && len == o.len; }
};

std::ostream &operator<<(std::ostream &os, const Seen &s) {
    return os << "{" << s.pos << ", state " << s.state << ", len " << s.len << "}";
}

std::vector<Seen> walk(RingCursor &c) {
    std::vector<Seen> seen;
    for (; c.valid(); c.next())
        seen.push_back(Seen{c.pos(), c.state(), c.length()});
    return seen;
}

void publish_new(Ring *r, uint64_t len, uint64_t expect_pos) {
    uint64_t pos;
    ASSERT_TRUE(r->reserve(len, &pos));
    ASSERT_EQ(pos, expect_pos);
    r->publish(pos, len);
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

TEST(RingCursor, WalksDoneReadyAndPaddingAcrossTheWrapUpToTheHead) {
    RingHolder h(1024);
    Ring *r = h.ring;
    publish_new(r, 256, 0);
    publish_new(r, 256, 256);
    publish_new(r, 256, 512);
    ASSERT_TRUE(r->mark(0, kReady, kDone));
    ASSERT_TRUE(r->mark(256, kReady, kDone));
    ASSERT_EQ(r->advance_tail(r->head.load()), 512u);
    // 512 bytes do not fit in the 256 left before the end: padding at 768, the record at 1024.
    publish_new(r, 512, 1024);
    ASSERT_TRUE(r->mark(512, kReady, kDone)); // handled, not yet reclaimed

    RingCursor c(r, r->tail.load());
    std::vector<Seen> expected = {{512, kDone, 256}, {768, kPad, 256}, {1024, kReady, 512}};
    EXPECT_EQ(walk(c), expected);
    EXPECT_FALSE(c.unpublished()) << "the walk ended at the head, not at a record being written";
    EXPECT_EQ(c.pos(), 1536u);
    EXPECT_EQ(c.pos(), r->head.load());

    // Reclaimed positions whose bytes a later lap reused read as nothing (data[0] now holds the
    // tag of the record at 1024, not of the one at 0).
    RingCursor old(r, 0);
    EXPECT_FALSE(old.valid());
    EXPECT_EQ(old.pos(), 0u);

    // After reclaiming: the walk from the new tail yields only what is left.
    ASSERT_EQ(r->advance_tail(r->head.load()), 1024u);
    RingCursor rest(r, r->tail.load());
    EXPECT_EQ(walk(rest), (std::vector<Seen>{{1024, kReady, 512}}));
}

TEST(RingCursor, StopsAtAReservedRecordAndAtTheHeadItStartedWith) {
    RingHolder h(1024);
    Ring *r = h.ring;
    publish_new(r, 128, 0);
    uint64_t unpublished;
    ASSERT_TRUE(r->reserve(128, &unpublished)); // a producer still copying its record
    ASSERT_EQ(unpublished, 128u);
    publish_new(r, 128, 256);

    RingCursor c(r, 0);
    EXPECT_EQ(walk(c), (std::vector<Seen>{{0, kReady, 128}}));
    EXPECT_TRUE(c.unpublished()) << "nothing past a record being written may be read";
    EXPECT_EQ(c.pos(), 128u);

    r->publish(unpublished, 128);
    RingCursor all(r, 0);
    publish_new(r, 64, 384); // published after the cursor read the head: not part of its walk
    EXPECT_EQ(walk(all), (std::vector<Seen>{{0, kReady, 128}, {128, kReady, 128}, {256, kReady, 128}}));
    EXPECT_FALSE(all.unpublished());
    EXPECT_EQ(all.pos(), 384u);

    RingCursor empty(r, r->head.load());
    EXPECT_FALSE(empty.valid());
    EXPECT_FALSE(empty.unpublished());
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
        RingCursor c(r, pos);
        if (!c.valid()) {
            std::this_thread::yield();
            continue;
        }
        for (; c.valid(); c.next()) {
            if (c.state() != kReady)
                continue;
            Body b;
            std::memcpy(&b, r->bytes(c.pos()) + sizeof(RecordTag), sizeof b);
            const unsigned char *payload = r->bytes(c.pos()) + sizeof(RecordTag) + sizeof b;
            bool ok =
                b.producer < kProducers && b.seq == next_seq[b.producer] && c.length() == record_len(b.payload);
            for (uint32_t i = 0; ok && i < b.payload; i++)
                ok = payload[i] == (b.seq & 0xff);
            if (!ok)
                failed = true;
            if (b.producer < kProducers)
                next_seq[b.producer] = b.seq + 1;
            count++;
            sum += b.seq;
            ASSERT_TRUE(r->mark(c.pos(), kReady, kDone));
        }
        pos = c.pos();
        r->advance_tail(pos);
    }
    for (auto &t : producers)
        t.join();
    EXPECT_FALSE(failed.load()) << "a record was torn, out of order, or seen twice";
    EXPECT_EQ(count, total);
    EXPECT_EQ(sum, uint64_t(kProducers) * (uint64_t(kPerProducer) * (kPerProducer - 1) / 2));
    EXPECT_EQ(r->head.load(), r->tail.load());
}
