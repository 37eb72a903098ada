// Batches: rows of one target, sealed (numbered, immutable) by the BatchBuilder on the batcher
// thread, then owned by the sender pool until every row is reported.
#pragma once
#include "row_queue.hpp"

#include <pgingest/delivery.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace pgingest::detail {

// Consecutive rows of a batch that came from one enqueue() (one row) or one enqueue_block() call
// (a run of the block's rows: a block may be split over batches).
struct BatchPart {
    Clock::time_point enqueued;
    std::uint32_t rows = 1;
    std::size_t bytes = 0;
    DeliveryCallback done;                           // enqueue()
    std::shared_ptr<const BlockCallback> block_done; // enqueue_block(), when block
    std::size_t first = 0;                           // block: index of the part's first row in the block
    bool block = false;
};

struct Batch {
    Table table;
    std::int64_t seq = 0; // exactly-once key with the producer id; never changes once set
    std::string data;     // the rows as COPY text, each ending in '\n'
    std::vector<BatchPart> parts;
    std::size_t rows = 0; // in all parts
    int attempts = 0;
    Clock::time_point not_before{}; // earliest next send (retry backoff)
    Status last_error;
    std::size_t bytes() const { return data.size(); }
};
using BatchPtr = std::unique_ptr<Batch>;

// Batch buffers (Batch::data) kept for the next batches: a fresh buffer of about batch_max_bytes for
// every batch costs more in page faults (malloc maps and unmaps buffers that large) than filling
// it. At most max_buffers are kept, each no larger than max_capacity. Thread-safe.
class BufferPool {
  public:
    BufferPool(std::size_t max_buffers, std::size_t max_capacity)
        : max_buffers_(max_buffers), max_capacity_(max_capacity) {}
    // An empty string, with the capacity of a kept buffer when there is one.
    std::string take();
    // Keeps s's buffer if there is room (else frees it).
    void give(std::string &&s);

  private:
    const std::size_t max_buffers_, max_capacity_;
    std::mutex mutex_;
    std::vector<std::string> free_;
};

// Groups rows per target and seals a batch when it reaches max_rows or max_bytes, or when its
// first row has waited `linger`. A row that would push a batch past max_bytes starts a new one
// (a single row larger than max_bytes is a batch of its own). A block's rows are placed as the
// same rows enqueued one by one would be (split over batches where those limits say so). Not
// thread-safe: one owner.
class BatchBuilder {
  public:
    using Resolve = std::function<Table(const TableSpec *)>;
    // buffers: where new batches take their buffer from (none: allocated).
    BatchBuilder(std::size_t max_rows, std::size_t max_bytes, std::chrono::milliseconds linger,
                 Resolve resolve, BufferPool *buffers = nullptr);

    void add(std::unique_ptr<QueuedRow> row, std::vector<BatchPtr> &sealed);
    // Seals batches whose linger has expired at `now` (all open batches if `all`).
    void seal_due(Clock::time_point now, bool all, std::vector<BatchPtr> &sealed);
    // When the oldest open batch's linger expires.
    std::optional<Clock::time_point> next_deadline() const;
    bool empty() const { return open_.empty(); }

  private:
    void seal(const TableSpec *key, std::vector<BatchPtr> &sealed);
    Batch &open(const TableSpec *key);
    void add_block(QueuedRow &block, std::vector<BatchPtr> &sealed);

    const std::size_t max_rows_, max_bytes_;
    const std::chrono::milliseconds linger_;
    Resolve resolve_;
    BufferPool *buffers_;
    std::int64_t next_seq_ = 1;
    std::unordered_map<const TableSpec *, BatchPtr> open_;
};

} // namespace pgingest::detail
