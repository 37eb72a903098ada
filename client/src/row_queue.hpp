// The in-process queue between enqueue() (any thread) and the batcher thread.
//
// Capacity is counted in rows and bytes from enqueue until the row's delivery report (not just
// until the batcher pops it), so rows in batches, in flight and waiting for a retry all count:
// memory stays bounded whatever the server does. Reservations are CAS loops and the queue is a
// Boost.Lockfree queue whose nodes are all allocated up front (bounded_push never allocates):
// the enqueue path takes no lock unless the queue is full and the caller chose to block.
//
// The mutex and condition variables are only for sleeping: enqueuers waiting for room, flush()
// waiting for "nothing outstanding", and the batcher waiting for rows. Wake-ups are Dekker-style:
// a waiter announces itself (seq_cst) before re-checking under the mutex; the other side changes
// the counters (seq_cst) before reading the announcement, and notifies under the mutex.
#pragma once
#include <pgingest/delivery.hpp>

#include <boost/lockfree/queue.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace pgingest::detail {

using Clock = std::chrono::steady_clock;

// One row from enqueue(), or the rows of one enqueue_block() call (block_rows > 0).
struct QueuedRow {
    const TableSpec *table = nullptr;
    std::string line; // a row: its COPY text line, without the newline; a block: lines each ending in '\n'
    Clock::time_point enqueued;
    DeliveryCallback done;                           // a row's callback
    std::size_t block_rows = 0;                      // 0: a single row
    std::shared_ptr<const BlockCallback> block_done; // a block's callback (may be null)
    bool is_block() const { return block_rows > 0; }
    std::size_t rows() const { return block_rows > 0 ? block_rows : 1; }
    std::size_t bytes() const { return block_rows > 0 ? line.size() : line.size() + 1; }
};

// The allocator of the queue's nodes. Boost.Lockfree allocates the freelist's nodes one by one,
// each aligned to a cache line: for queue_max_rows nodes that was the main cost of starting a
// producer (one aligned malloc and about two page faults per node). This one hands them out of
// chunks of kChunkNodes nodes, contiguously; deallocate() does nothing and the chunks are freed
// with the last copy of the allocator (the queue's). The queue allocates only up front (it uses
// bounded_push), so the chunks hold exactly its nodes.
struct NodeChunks { // NodeArena's shared state (one per queue)
    struct Free {
        std::size_t align;
        void operator()(char *p) const { ::operator delete(p, std::align_val_t(align)); }
    };
    std::mutex mutex;
    std::vector<std::unique_ptr<char, Free>> list;
    std::size_t size = 0, used = 0, align = 0; // of the last chunk
};

template <typename T> class NodeArena {
  public:
    using value_type = T;
    static constexpr std::size_t kChunkNodes = 4096;

    NodeArena() : chunks_(std::make_shared<NodeChunks>()) {}
    template <typename U> NodeArena(const NodeArena<U> &other) : chunks_(other.chunks_) {}

    T *allocate(std::size_t n) {
        constexpr std::size_t kChunkAlign = alignof(T) > 64 ? alignof(T) : 64; // a cache line at least
        const std::size_t bytes = n * sizeof(T);
        std::lock_guard<std::mutex> lock(chunks_->mutex);
        std::size_t at = (chunks_->used + alignof(T) - 1) / alignof(T) * alignof(T);
        if (chunks_->list.empty() || at + bytes > chunks_->size || chunks_->align < alignof(T)) {
            const std::size_t size = std::max(bytes, kChunkNodes * sizeof(T));
            chunks_->list.emplace_back(
                static_cast<char *>(::operator new(size, std::align_val_t(kChunkAlign))),
                NodeChunks::Free{kChunkAlign});
            chunks_->size = size;
            chunks_->align = kChunkAlign;
            at = 0;
        }
        chunks_->used = at + bytes;
        return reinterpret_cast<T *>(chunks_->list.back().get() + at);
    }
    void deallocate(T *, std::size_t) {}

    template <typename U> bool operator==(const NodeArena<U> &o) const { return chunks_ == o.chunks_; }
    template <typename U> bool operator!=(const NodeArena<U> &o) const { return chunks_ != o.chunks_; }

  private:
    template <typename U> friend class NodeArena;
    std::shared_ptr<NodeChunks> chunks_;
};

class RowQueue {
  public:
    RowQueue(std::size_t max_rows, std::size_t max_bytes);
    ~RowQueue(); // frees rows still queued (none after a close)
    RowQueue(const RowQueue &) = delete;
    RowQueue &operator=(const RowQueue &) = delete;

    // Room for `rows` rows of `bytes` bytes in all: lock-free, false when full.
    bool try_reserve(std::size_t rows, std::size_t bytes);
    bool try_reserve(std::size_t bytes) { return try_reserve(1, bytes); }
    // Waits until there is room (true), the deadline passes or stop() returns true (false).
    bool reserve_blocking(std::size_t rows, std::size_t bytes, Clock::time_point deadline,
                          const std::function<bool()> &stop);
    bool reserve_blocking(std::size_t bytes, Clock::time_point deadline, const std::function<bool()> &stop) {
        return reserve_blocking(1, bytes, deadline, stop);
    }
    // After a successful reservation (one queue slot per row or block). Lock-free.
    void push(std::unique_ptr<QueuedRow> row);
    // Batcher side.
    std::unique_ptr<QueuedRow> pop();
    std::uint64_t queued() const { return queued_.load(std::memory_order_seq_cst); }
    // Sleeps until a row is pushed, wake() is called and `ready` holds, or the deadline passes.
    void wait_for_rows(Clock::time_point deadline, const std::function<bool()> &ready);
    void wake_consumer();

    // After a row's delivery report: gives its room back, wakes blocked enqueuers and flushers.
    void release(std::size_t rows, std::size_t bytes);
    // Waits until no row is outstanding; false at the deadline.
    bool wait_empty(Clock::time_point deadline);
    // Wakes every sleeper so it re-checks its stop condition.
    void wake_all();

    std::uint64_t outstanding_rows() const { return rows_.load(std::memory_order_relaxed); }
    std::uint64_t outstanding_bytes() const { return bytes_.load(std::memory_order_relaxed); }
    std::size_t max_rows() const { return max_rows_; }
    std::size_t max_bytes() const { return max_bytes_; }

  private:
    const std::size_t max_rows_, max_bytes_;
    std::atomic<std::uint64_t> rows_{0}, bytes_{0}; // outstanding (reserved until reported)
    std::atomic<std::uint64_t> queued_{0};          // in the lock-free queue
    boost::lockfree::queue<QueuedRow *, boost::lockfree::allocator<NodeArena<QueuedRow *>>> queue_;

    std::mutex mutex_;
    std::condition_variable room_cv_;     // enqueuers waiting for room, flushers waiting for empty
    std::condition_variable consumer_cv_; // the batcher
    std::atomic<int> room_waiters_{0};
    std::atomic<bool> consumer_sleeping_{false};
};

} // namespace pgingest::detail
