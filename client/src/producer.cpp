// Producer: enqueue() on application threads, one batcher thread (queue -> batches), the sender
// pool (batches -> server -> delivery reports).
#include "batch.hpp"
#include "context.hpp"
#include "sender_pool.hpp"
#include "table_registry.hpp"

#include <pgingest/producer.hpp>

#include <stdexcept>
#include <thread>

namespace pgingest {
namespace detail {

class ProducerCore {
  public:
    ProducerCore(ProducerConfig config, std::shared_ptr<Transport> transport)
        : ctx_(std::move(config), std::move(transport), Uuid::random_v4().to_string()), pool_(ctx_),
          builder_(
              ctx_.config.batch_max_rows, ctx_.config.batch_max_bytes, ctx_.config.linger,
              [this](const TableSpec *spec) { return tables_.handle(spec); }, &ctx_.buffers) {
        pool_.start();
        batcher_ = std::thread([this] { run_batcher(); });
        ctx_.log.debug("producer ", ctx_.producer_id, " started");
    }

    ~ProducerCore() {
        bool closed_before;
        {
            std::lock_guard<std::mutex> lock(close_mutex_);
            closed_before = close_done_;
        }
        Status s = close(ctx_.config.close_timeout);
        if (!closed_before && !s.ok())
            ctx_.log.error("producer destroyed without close(): ", s.message());
    }

    Table table(std::string_view name, std::vector<std::string> columns) {
        return tables_.get(name, std::move(columns));
    }

    Status enqueue(const TableSpec *spec, Row &&row, DeliveryCallback &&done) {
        Status s = admit(spec, std::move(row), std::move(done));
        if (!s.ok())
            Counters::add(ctx_.counters.enqueue_rejected);
        return s;
    }

    Status enqueue(std::string_view name, Row &&row, DeliveryCallback &&done) {
        if (name.empty()) {
            Counters::add(ctx_.counters.enqueue_rejected);
            return Status(ErrorCode::kInvalidArgument, "empty table name");
        }
        return enqueue(tables_.by_name(name), std::move(row), std::move(done));
    }

    Status enqueue(const Table &table, Row &&row, DeliveryCallback &&done) {
        if (!table.valid() || !tables_.handle(table.spec()).valid()) {
            Counters::add(ctx_.counters.enqueue_rejected);
            return Status(ErrorCode::kInvalidArgument,
                          "the table handle does not come from this producer's table()");
        }
        return enqueue(table.spec(), std::move(row), std::move(done));
    }

    Status enqueue_block(const Table &table, RowBlock &block, BlockCallback &&done) {
        Active active(active_enqueuers_);
        Status s;
        if (!table.valid() || !tables_.handle(table.spec()).valid())
            s = Status(ErrorCode::kInvalidArgument,
                       "the table handle does not come from this producer's table()");
        else if (block.empty())
            s = Status(ErrorCode::kInvalidArgument, "an empty block");
        else if (block.rows() > ctx_.queue.max_rows() || block.bytes() > ctx_.queue.max_bytes())
            s = Status(ErrorCode::kInvalidArgument,
                       "a block of " + std::to_string(block.rows()) + " rows / " +
                           std::to_string(block.bytes()) +
                           " bytes can never fit queue_max_rows = " + std::to_string(ctx_.queue.max_rows()) +
                           ", queue_max_bytes = " + std::to_string(ctx_.queue.max_bytes()));
        else
            s = reserve(block.rows(), block.bytes());
        if (!s.ok()) {
            Counters::add(ctx_.counters.enqueue_rejected);
            return s;
        }
        auto queued = std::make_unique<QueuedRow>();
        queued->table = table.spec();
        queued->block_rows = block.rows();
        queued->line = block.take_data();
        if (done)
            queued->block_done = std::make_shared<const BlockCallback>(std::move(done));
        push(std::move(queued));
        return Status();
    }

    Status flush(std::chrono::milliseconds timeout) {
        const Clock::time_point deadline = Clock::now() + timeout;
        flush_requests_.fetch_add(1, std::memory_order_seq_cst);
        flush_generation_.fetch_add(1, std::memory_order_seq_cst);
        ctx_.queue.wake_consumer();
        bool done = ctx_.queue.wait_empty(deadline);
        flush_requests_.fetch_sub(1, std::memory_order_seq_cst);
        if (done)
            return Status();
        return Status(ErrorCode::kTimedOut, std::to_string(ctx_.queue.outstanding_rows()) +
                                                " rows not yet reported after " +
                                                std::to_string(timeout.count()) + " ms");
    }

    Status close(std::chrono::milliseconds timeout) {
        std::lock_guard<std::mutex> lock(close_mutex_);
        if (close_done_)
            return close_status_;
        // No new rows: wait out enqueue() calls already past the closed_ check.
        closed_.store(true, std::memory_order_seq_cst);
        ctx_.queue.wake_all();
        while (active_enqueuers_.load(std::memory_order_seq_cst) > 0)
            std::this_thread::yield();
        Status flushed = flush(timeout);
        // The batcher hands over whatever is left, then the pool fails what was not delivered.
        stop_batcher_.store(true, std::memory_order_seq_cst);
        ctx_.queue.wake_consumer();
        batcher_.join();
        pool_.stop();
        close_done_ = true;
        if (!flushed.ok())
            close_status_ =
                Status(ErrorCode::kTimedOut,
                       "close: " + flushed.message() + "; they were reported with ErrorCode::kShutdown");
        ctx_.log.debug("producer ", ctx_.producer_id, " closed");
        return close_status_;
    }

    Metrics metrics() const {
        Metrics m;
        ctx_.counters.fill(m);
        m.queue_depth = ctx_.queue.outstanding_rows();
        m.queue_bytes = ctx_.queue.outstanding_bytes();
        m.latency_p50_us = ctx_.latency.percentile(0.5);
        m.latency_p90_us = ctx_.latency.percentile(0.9);
        m.latency_p99_us = ctx_.latency.percentile(0.99);
        m.latency_p999_us = ctx_.latency.percentile(0.999);
        m.latency_max_us = ctx_.latency.max();
        return m;
    }

    const std::string &producer_id() const { return ctx_.producer_id; }

  private:
    // enqueue() minus the rejection counter.
    Status admit(const TableSpec *spec, Row &&row, DeliveryCallback &&done) {
        if (!row.status().ok())
            return row.status();
        if (row.field_count() == 0)
            return Status(ErrorCode::kInvalidArgument, "a row needs at least one field");
        auto queued = std::make_unique<QueuedRow>();
        queued->table = spec;
        queued->line = row.take_line();
        queued->done = std::move(done);
        const std::size_t bytes = queued->bytes();
        if (bytes > ctx_.queue.max_bytes())
            return Status(ErrorCode::kInvalidArgument, "a row of " + std::to_string(bytes) +
                                                           " bytes can never fit queue_max_bytes = " +
                                                           std::to_string(ctx_.queue.max_bytes()));

        Active active(active_enqueuers_);
        Status s = reserve(1, bytes);
        if (!s.ok())
            return s;
        push(std::move(queued));
        return Status();
    }

    struct Active { // close() waits for calls between the closed_ check and the push
        std::atomic<int> &n;
        explicit Active(std::atomic<int> &c) : n(c) { n.fetch_add(1, std::memory_order_seq_cst); }
        ~Active() { n.fetch_sub(1, std::memory_order_seq_cst); }
    };

    // Room in the queue for rows/bytes, as the full-queue policy says. The caller holds an Active
    // from before this call until its push().
    Status reserve(std::size_t rows, std::size_t bytes) {
        if (closed_.load(std::memory_order_seq_cst))
            return Status(ErrorCode::kClosed, "the producer is closed");
        if (!ctx_.queue.try_reserve(rows, bytes)) {
            if (ctx_.config.full_queue_policy == FullQueuePolicy::kFail)
                return full_error();
            const Clock::time_point deadline = Clock::now() + ctx_.config.block_timeout;
            if (!ctx_.queue.reserve_blocking(rows, bytes, deadline,
                                             [this] { return closed_.load(std::memory_order_seq_cst); })) {
                if (closed_.load(std::memory_order_seq_cst))
                    return Status(ErrorCode::kClosed,
                                  "the producer was closed while enqueue waited for room");
                Status full = full_error();
                return Status(ErrorCode::kTimedOut, "no room after " +
                                                        std::to_string(ctx_.config.block_timeout.count()) +
                                                        " ms: " + full.message());
            }
        }
        return Status();
    }

    void push(std::unique_ptr<QueuedRow> queued) {
        const std::size_t rows = queued->rows(), bytes = queued->bytes();
        queued->enqueued = Clock::now();
        ctx_.queue.push(std::move(queued));
        Counters::add(ctx_.counters.enqueued, rows);
        Counters::add(ctx_.counters.bytes_enqueued, bytes);
    }

    Status full_error() const {
        return Status(
            ErrorCode::kQueueFull,
            "queue full: " + std::to_string(ctx_.queue.outstanding_rows()) + " rows / " +
                std::to_string(ctx_.queue.outstanding_bytes()) +
                " bytes not yet reported (queue_max_rows = " + std::to_string(ctx_.queue.max_rows()) +
                ", queue_max_bytes = " + std::to_string(ctx_.queue.max_bytes()) + ")");
    }

    void run_batcher() {
        std::vector<BatchPtr> sealed;
        for (;;) {
            // Read before draining: once stop_batcher_ is set no row is pushed any more, and a
            // flush() that bumps the generation after this read wakes the wait below.
            const bool stopping = stop_batcher_.load(std::memory_order_seq_cst);
            const std::uint64_t generation = flush_generation_.load(std::memory_order_seq_cst);
            const bool hurry = stopping || flush_requests_.load(std::memory_order_seq_cst) > 0;
            while (std::unique_ptr<QueuedRow> row = ctx_.queue.pop()) {
                builder_.add(std::move(row), sealed);
                if (sealed.size() >= 16)
                    pool_.submit(sealed);
            }
            builder_.seal_due(Clock::now(), hurry, sealed); // during a flush: everything, at once
            pool_.submit(sealed);
            if (stopping)
                return;
            std::optional<Clock::time_point> next = builder_.next_deadline();
            ctx_.queue.wait_for_rows(next ? *next : Clock::now() + std::chrono::seconds(1), [&] {
                return flush_generation_.load(std::memory_order_seq_cst) != generation ||
                       stop_batcher_.load(std::memory_order_seq_cst);
            });
        }
    }

    Context ctx_;
    TableRegistry tables_;
    SenderPool pool_;
    BatchBuilder builder_; // batcher thread only
    std::thread batcher_;

    std::atomic<bool> closed_{false};
    std::atomic<int> active_enqueuers_{0};
    std::atomic<int> flush_requests_{0};             // flush() calls in progress: no linger
    std::atomic<std::uint64_t> flush_generation_{0}; // bumped by each flush() to wake the batcher
    std::atomic<bool> stop_batcher_{false};
    std::mutex close_mutex_;
    bool close_done_ = false;
    Status close_status_;
};

} // namespace detail

namespace {
ProducerConfig checked(ProducerConfig config) {
    Status s = config.validate();
    if (!s.ok())
        throw std::invalid_argument("pgingest: " + s.message());
    return config;
}
} // namespace

Producer::Producer(ProducerConfig config)
    : Producer(config, make_libpq_transport(config.conninfo, config.effective_ack())) {}

Producer::Producer(ProducerConfig config, std::shared_ptr<Transport> transport)
    : core_(std::make_unique<detail::ProducerCore>(checked(std::move(config)), std::move(transport))) {}

Producer::~Producer() = default;

Table Producer::table(std::string_view name, std::vector<std::string> columns) {
    return core_->table(name, std::move(columns));
}

Status Producer::enqueue(const Table &table, Row row, DeliveryCallback on_delivery) {
    return core_->enqueue(table, std::move(row), std::move(on_delivery));
}

Status Producer::enqueue(std::string_view table, Row row, DeliveryCallback on_delivery) {
    return core_->enqueue(table, std::move(row), std::move(on_delivery));
}

std::future<DeliveryReport> Producer::enqueue_future(const Table &table, Row row) {
    auto promise = std::make_shared<std::promise<DeliveryReport>>();
    std::future<DeliveryReport> future = promise->get_future();
    Status s = enqueue(table, std::move(row), [promise](const DeliveryReport &r) { promise->set_value(r); });
    if (!s.ok()) {
        DeliveryReport r;
        r.table = table;
        r.status = std::move(s);
        promise->set_value(std::move(r));
    }
    return future;
}

Status Producer::enqueue_block(const Table &table, RowBlock &block, BlockCallback on_delivery) {
    return core_->enqueue_block(table, block, std::move(on_delivery));
}

Status Producer::flush(std::chrono::milliseconds timeout) {
    return core_->flush(timeout);
}
Status Producer::close(std::chrono::milliseconds timeout) {
    return core_->close(timeout);
}
Metrics Producer::metrics() const {
    return core_->metrics();
}
const std::string &Producer::producer_id() const {
    return core_->producer_id();
}

} // namespace pgingest
