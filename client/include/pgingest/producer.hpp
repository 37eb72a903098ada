// The asynchronous producer: enqueue() rows from any thread, every row's fate comes back in a
// delivery report; flush() and close() before shutdown; metrics() on demand.
#pragma once
#include <pgingest/config.hpp>
#include <pgingest/delivery.hpp>
#include <pgingest/export.h>
#include <pgingest/metrics.hpp>
#include <pgingest/row.hpp>
#include <pgingest/status.hpp>
#include <pgingest/transport.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pgingest {

namespace detail {
class ProducerCore;
}

class PGINGEST_API Producer {
  public:
    // Starts the batching and sender threads; connections are opened by the sender threads, so
    // this does not wait for the server. Throws std::invalid_argument on an invalid config.
    explicit Producer(ProducerConfig config);
    // With another transport (tests, custom connection handling).
    Producer(ProducerConfig config, std::shared_ptr<Transport> transport);
    // Without close(): close(config.close_timeout); rows not acknowledged by then are reported
    // with ErrorCode::kShutdown.
    ~Producer();
    Producer(const Producer &) = delete;
    Producer &operator=(const Producer &) = delete;

    // The target `name` with the columns rows map to (empty: all columns in table order).
    // Idempotent and thread-safe; the first column list given for a name is the one
    // enqueue(name, ...) uses.
    Table table(std::string_view name, std::vector<std::string> columns = {});

    // Thread-safe, lock-free unless the queue is full and the policy is kBlock; no I/O. On success
    // the row's outcome is reported exactly once: config.on_delivery, then on_delivery here.
    // Otherwise nothing is reported and the error is returned (kQueueFull, kTimedOut, kClosed,
    // kInvalidArgument).
    Status enqueue(const Table &table, Row row, DeliveryCallback on_delivery = {});
    Status enqueue(std::string_view table, Row row, DeliveryCallback on_delivery = {});
    // Many rows of one table at once, for about the cost of one enqueue(): the block's rows are
    // queued as enqueue() would queue each of them, in order (the queue's limits count them as
    // rows and bytes, the full-queue policy applies to the block as a whole, and they go into the
    // same batches with the same exactly-once keys), and each row's outcome is reported exactly
    // once. Thread-safe like enqueue(). On success the rows are taken (the block is left empty)
    // and on_delivery gets one BlockReport per batch the rows went into (config.on_delivery is
    // still called for every row). Otherwise the block is left as it was, nothing is reported
    // and the error is returned (kQueueFull, kTimedOut, kClosed, kInvalidArgument: an empty block
    // or one larger than queue_max_rows or queue_max_bytes).
    Status enqueue_block(const Table &table, RowBlock &block, BlockCallback on_delivery = {});
    // The same, with the report as a future (ready at once when enqueue fails).
    std::future<DeliveryReport> enqueue_future(const Table &table, Row row);

    // Sends partial batches at once and waits until every row enqueued so far is reported.
    // kTimedOut if rows remain after timeout.
    Status flush(std::chrono::milliseconds timeout);
    // Refuses new rows, flushes up to timeout, then fails what is left with kShutdown and stops
    // the threads. Idempotent.
    Status close(std::chrono::milliseconds timeout);

    Metrics metrics() const;
    // Random per producer; with batch_seq the server's exactly-once key.
    const std::string &producer_id() const;

  private:
    std::unique_ptr<detail::ProducerCore> core_;
};

} // namespace pgingest
