// ring.hpp — the shared-memory ring buffer of pg_ingest, as plain C++ (no PostgreSQL headers).
//
// One Ring lives in shared memory: a control block followed by `capacity` bytes of data.
// Positions are absolute 64-bit byte offsets that only grow; the byte of position p is
// data[p % capacity]. Everything is aligned to kAlign bytes.
//
//   tail <= (records being scanned or waiting) <= head,   head - tail <= capacity
//
// Producers (backends) reserve space with one compare-and-swap on `head` (no lock), write
// the record, and publish it by storing its tag with release ordering. Nothing between
// reserve() and publish() may fail: callers serialize first, then reserve, copy, publish.
// A record that would straddle the end of the data area is preceded by a padding record
// that fills the rest of the lap, so every record is contiguous.
//
// Every record starts with an 8-byte atomic tag = (absolute position | state). A reader at
// position p trusts the bytes there only when the tag carries p itself, so stale bytes from
// an earlier lap are never taken for a record. States: kReady (published, not yet handled),
// kDone (handled: committed, dead-lettered or discarded), kPad (skip to the end of the lap).
//
// The consumer side (workers) never moves `tail` past a record that is not kDone/kPad;
// advance_tail() is called under a lock held by the caller (see shmem.cpp), never on the
// enqueue path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pg_ingest {

constexpr uint64_t kAlign = 16;
constexpr uint64_t kStateMask = kAlign - 1;

inline constexpr uint64_t align_up(uint64_t n) {
    return (n + kAlign - 1) & ~(kAlign - 1);
}

enum RecState : uint64_t {
    kReady = 1,
    kDone = 2,
    kPad = 3,
};

// The first 16 bytes of every record, padding included.
struct RecordTag {
    std::atomic<uint64_t> tag; // position | state
    uint64_t len;              // whole record in bytes, multiple of kAlign
};
static_assert(sizeof(RecordTag) == kAlign, "RecordTag must fill one alignment unit");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared-memory atomics must be lock free");

struct Ring {
    std::atomic<uint64_t> head; // next position to reserve
    std::atomic<uint64_t> tail; // every record below tail is reclaimed
    uint64_t capacity;          // bytes in data[], multiple of kAlign
    uint64_t pad_;
    alignas(kAlign) unsigned char data[];

    static size_t shmem_size(uint64_t capacity) { return sizeof(Ring) + capacity; }

    void init(uint64_t cap) {
        capacity = cap & ~(kAlign - 1);
        head.store(0, std::memory_order_relaxed);
        tail.store(0, std::memory_order_relaxed);
        std::memset(data, 0, capacity);
    }

    RecordTag *at(uint64_t pos) { return reinterpret_cast<RecordTag *>(data + pos % capacity); }
    unsigned char *bytes(uint64_t pos) { return data + pos % capacity; }

    uint64_t used() const {
        return head.load(std::memory_order_acquire) - tail.load(std::memory_order_acquire);
    }

    // Reserves `len` contiguous bytes (len a multiple of kAlign, len <= capacity).
    // Returns false when the ring has no room now. On success *pos is the record's position;
    // a padding record in front of it, if one was needed, is already published.
    bool reserve(uint64_t len, uint64_t *pos) {
        uint64_t h = head.load(std::memory_order_relaxed);
        for (;;) {
            uint64_t off = h % capacity;
            uint64_t gap = (off + len > capacity) ? capacity - off : 0;
            uint64_t t = tail.load(std::memory_order_acquire);
            if (h + gap + len - t > capacity)
                return false;
            if (head.compare_exchange_weak(h, h + gap + len, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
                if (gap) {
                    RecordTag *p = at(h);
                    p->len = gap;
                    p->tag.store(h | kPad, std::memory_order_release);
                }
                *pos = h + gap;
                return true;
            }
        }
    }

    // Makes a fully written record visible to the consumers.
    void publish(uint64_t pos, uint64_t len) {
        RecordTag *p = at(pos);
        p->len = len;
        p->tag.store(pos | kReady, std::memory_order_release);
    }

    // State of the record at pos, or 0 when nothing is published there yet.
    uint64_t state(uint64_t pos) {
        uint64_t t = at(pos)->tag.load(std::memory_order_acquire);
        return (t & ~kStateMask) == pos ? (t & kStateMask) : 0;
    }

    bool mark(uint64_t pos, uint64_t from, uint64_t to) {
        uint64_t expected = pos | from;
        return at(pos)->tag.compare_exchange_strong(expected, pos | to, std::memory_order_acq_rel);
    }

    // Length of the published record at pos (call only after state(pos) != 0).
    uint64_t length(uint64_t pos) { return at(pos)->len; }

    // Moves tail over handled records, but never past `limit`. Caller holds the consumer lock.
    // Returns the new tail. The reclaimed records' bodies are zeroed first: old bytes (a caller's
    // data, say) must never read as the tag of a record reserved there later but not yet
    // published. Their tags stay (a reclaimed tag names its own lap, never a later one), so
    // handled() keeps answering for them meanwhile.
    uint64_t advance_tail(uint64_t limit) {
        uint64_t t = tail.load(std::memory_order_relaxed);
        while (t < limit) {
            uint64_t s = state(t);
            if (s != kDone && s != kPad)
                break;
            uint64_t len = length(t);
            std::memset(bytes(t) + sizeof(RecordTag), 0, len - sizeof(RecordTag));
            t += len;
        }
        tail.store(t, std::memory_order_release);
        return t;
    }

    // True when the record at pos has been handled (done, or already reclaimed).
    bool handled(uint64_t pos) {
        if (tail.load(std::memory_order_acquire) > pos)
            return true;
        return state(pos) == kDone || tail.load(std::memory_order_acquire) > pos;
    }
};

// Walks a ring's published records in order, from a position (the tail, or a worker's scan_low)
// up to the head as it was when the cursor was made. Every scan of the ring goes through it:
//
//   for (RingCursor c(ring, from); c.valid(); c.next())
//       ... c.pos(), c.state() (kReady, kDone or kPad), c.length() ...
//
// The walk ends at that head, or early at a record that is reserved but not yet published
// (unpublished() tells which): nothing past it can be read yet. After the walk pos() is where it
// ended. The caller keeps the records from being reclaimed meanwhile (holds the consumer lock,
// or is the worker whose scan_low holds the tail back).
class RingCursor {
  public:
    RingCursor(Ring *ring, uint64_t from)
        : ring_(ring), pos_(from), end_(ring->head.load(std::memory_order_acquire)) {
        load();
    }

    bool valid() const { return state_ != 0; }
    bool unpublished() const { return state_ == 0 && pos_ < end_; }
    uint64_t pos() const { return pos_; }
    uint64_t state() const { return state_; }
    uint64_t length() const { return len_; }

    void next() {
        pos_ += len_;
        load();
    }

  private:
    void load() {
        state_ = pos_ < end_ ? ring_->state(pos_) : 0;
        len_ = state_ != 0 ? ring_->length(pos_) : 0;
    }

    Ring *ring_;
    uint64_t pos_;
    uint64_t end_;
    uint64_t state_ = 0;
    uint64_t len_ = 0;
};

} // namespace pg_ingest
