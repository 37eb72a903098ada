#include "sender_pool.hpp"

#include "retry.hpp"

#include <exception>

namespace pgingest::detail {

namespace {

template <typename Callback, typename Report>
void invoke(Context &ctx, const Callback &cb, const Report &report) {
    if (!cb)
        return;
    try {
        cb(report);
    } catch (const std::exception &e) {
        ctx.log.error("a delivery callback threw: ", e.what());
    } catch (...) {
        ctx.log.error("a delivery callback threw");
    }
}

} // namespace

void report_batch(Context &ctx, Batch &b, const Status &status, std::int64_t ticket,
                  const std::vector<DeadLetter> *dead) {
    std::vector<const DeadLetter *> by_row;
    if (dead) {
        by_row.assign(b.rows, nullptr);
        for (const DeadLetter &d : *dead)
            if (d.row_number >= 1 && d.row_number <= b.rows)
                by_row[d.row_number - 1] = &d;
    }
    const Clock::time_point now = Clock::now();
    DeliveryReport report; // per row: enqueue()'s rows, and config.on_delivery
    report.table = b.table;
    report.ticket = ticket;
    report.batch_seq = b.seq;
    report.attempts = static_cast<std::uint32_t>(b.attempts);
    std::size_t bytes = 0, failed = 0, rejected = 0;
    const DeadLetter *first_rejected = nullptr;
    std::size_t i = 0; // row index in the batch
    for (BatchPart &part : b.parts) {
        const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(now - part.enqueued);
        bytes += part.bytes;
        if (!part.block) {
            const DeadLetter *d = by_row.empty() ? nullptr : by_row[i];
            report.status = d ? Status(ErrorCode::kRejected, d->error, d->sqlstate) : status;
            if (d && !first_rejected)
                first_rejected = d;
            report.row_number = static_cast<std::uint32_t>(i + 1);
            report.latency = latency;
            if (report.status.ok()) {
                ctx.latency.record(static_cast<std::uint64_t>(latency.count()));
            } else {
                failed++;
                rejected += d != nullptr;
            }
            invoke(ctx, ctx.config.on_delivery, report);
            invoke(ctx, part.done, report);
            i++;
            continue;
        }
        // A run of a block's rows: one BlockReport, and per-row reports only for config.on_delivery.
        BlockReport br;
        br.table = b.table;
        br.status = status;
        br.first = part.first;
        br.count = part.rows;
        br.ticket = ticket;
        br.batch_seq = b.seq;
        br.first_row_number = static_cast<std::uint32_t>(i + 1);
        br.attempts = report.attempts;
        br.latency = latency;
        if (!by_row.empty())
            for (std::size_t k = 0; k < part.rows; k++)
                if (const DeadLetter *d = by_row[i + k]) {
                    br.exceptions.push_back(
                        BlockRowStatus{part.first + k, Status(ErrorCode::kRejected, d->error, d->sqlstate)});
                    if (!first_rejected)
                        first_rejected = d;
                }
        const std::size_t ok = br.ok_rows();
        ctx.latency.record(static_cast<std::uint64_t>(latency.count()), ok);
        failed += part.rows - ok;
        rejected += br.exceptions.size();
        if (ctx.config.on_delivery) {
            report.latency = latency;
            std::size_t e = 0;
            for (std::size_t k = 0; k < part.rows; k++) {
                if (e < br.exceptions.size() && br.exceptions[e].index == part.first + k)
                    report.status = br.exceptions[e++].status;
                else
                    report.status = status;
                report.row_number = static_cast<std::uint32_t>(i + k + 1);
                invoke(ctx, ctx.config.on_delivery, report);
            }
        }
        if (part.block_done)
            invoke(ctx, *part.block_done, br);
        i += part.rows;
    }
    Counters::add(ctx.counters.acknowledged, b.rows - failed);
    Counters::add(ctx.counters.failed, failed);
    Counters::add(ctx.counters.dead_lettered, rejected);
    if (!status.ok())
        ctx.log.error("batch ", b.seq, " for ", b.table.name(), " (", b.rows,
                      " rows) failed: ", status.to_string());
    else if (first_rejected)
        ctx.log.warning(rejected, " of ", b.rows, " rows of batch ", b.seq, " for ", b.table.name(),
                        " were rejected by the server (ticket ", ticket, "), e.g. row ",
                        first_rejected->row_number, ": ", first_rejected->error);
    ctx.queue.release(b.rows, bytes);
    ctx.buffers.give(std::move(b.data)); // the batch is done with
}

SenderPool::SenderPool(Context &ctx) : ctx_(ctx) {}

SenderPool::~SenderPool() {
    stop();
}

void SenderPool::start() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (workers_.size() < ctx_.config.pool_min)
        spawn_locked();
}

std::size_t SenderPool::size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return workers_.size();
}

void SenderPool::spawn_locked() {
    workers_.emplace_back();
    Worker &w = workers_.back();
    w.rng.seed(std::random_device{}());
    starting_++;
    w.thread = std::thread([this, &w] { run(w); });
}

void SenderPool::submit(std::vector<BatchPtr> &batches) {
    if (batches.empty())
        return;
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) {
        lock.unlock();
        for (BatchPtr &b : batches)
            report_batch(ctx_, *b,
                         Status(ErrorCode::kShutdown, "the producer was closed before the batch was sent"));
        batches.clear();
        return;
    }
    for (BatchPtr &b : batches)
        ready_.push_back(std::move(b));
    batches.clear();
    // Grow on demand: a sender for every batch waiting, up to pool_max.
    while (idle_ + starting_ < ready_.size() && workers_.size() < ctx_.config.pool_max)
        spawn_locked();
    cv_.notify_all();
}

void SenderPool::stop() {
    std::deque<BatchPtr> left;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        left.swap(ready_);
        for (Worker &w : workers_)
            if (w.busy)
                w.busy->cancel();
    }
    cv_.notify_all();
    for (BatchPtr &b : left) {
        std::string why = b->attempts == 0
                              ? "the producer was closed before the batch was sent"
                              : "the producer was closed while the batch waited to be resent (last error: " +
                                    b->last_error.message() + ")";
        report_batch(ctx_, *b, Status(ErrorCode::kShutdown, why, b->last_error.sqlstate()));
    }
    for (Worker &w : workers_)
        if (w.thread.joinable())
            w.thread.join();
}

void SenderPool::run(Worker &w) {
    Status ignored;
    ensure_connection(w, ignored); // open the pool's connections early; failures are retried on use
    {
        std::lock_guard<std::mutex> lock(mutex_);
        starting_--;
    }
    while (BatchPtr b = next_batch())
        send(w, std::move(b));
    drop_connection(w);
}

BatchPtr SenderPool::next_batch() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (stopping_)
            return nullptr;
        const Clock::time_point now = Clock::now();
        std::optional<Clock::time_point> earliest;
        for (auto it = ready_.begin(); it != ready_.end(); ++it) {
            if ((*it)->not_before <= now) {
                BatchPtr b = std::move(*it);
                ready_.erase(it);
                return b;
            }
            if (!earliest || (*it)->not_before < *earliest)
                earliest = (*it)->not_before;
        }
        idle_++;
        if (earliest)
            cv_.wait_until(lock, *earliest);
        else
            cv_.wait(lock);
        idle_--;
    }
}

void SenderPool::sleep_unless_stopped(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, d, [this] { return stopping_; });
}

bool SenderPool::ensure_connection(Worker &w, Status &error) {
    if (w.conn)
        return true;
    w.conn = ctx_.transport->connect(error);
    if (!w.conn) {
        w.connect_failures++;
        Counters::add(ctx_.counters.connect_failures);
        if (error.ok())
            error = Status(ErrorCode::kRetriesExhausted, "could not connect");
        ctx_.log.warning("cannot connect to the server: ", error.message());
        return false;
    }
    w.connect_failures = 0;
    Counters::add(ctx_.counters.connections);
    return true;
}

void SenderPool::drop_connection(Worker &w) {
    if (!w.conn)
        return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        w.busy = nullptr;
    }
    w.conn.reset();
    ctx_.counters.connections.fetch_sub(1, std::memory_order_relaxed);
}

CallResult SenderPool::call(Worker &w, const Batch &b, bool &via_copy) {
    BatchRequest req;
    req.table = b.table.spec();
    req.data = b.data;
    req.rows = static_cast<std::uint32_t>(b.rows);
    req.producer_id = ctx_.producer_id;
    req.batch_seq = b.seq;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        w.busy = w.conn.get();
    }
    via_copy = ctx_.fallback_active.load(std::memory_order_relaxed);
    CallResult r = via_copy ? w.conn->copy_from_stdin(req) : w.conn->enqueue_copy(req);
    if (!via_copy && !r.ok && classify(r) == FailureKind::kUndefinedFunction) {
        if (ctx_.config.copy_fallback) {
            if (!ctx_.fallback_active.exchange(true))
                ctx_.log.warning(
                    "the server has no pg_ingest (", r.message,
                    "): sending rows with COPY FROM STDIN instead; without the extension there is "
                    "no exactly-once resend and no dead-lettering (a bad row fails its whole batch)");
            via_copy = true;
            r = w.conn->copy_from_stdin(req);
        } else {
            r.message = "the server has no pg_ingest (" + r.message +
                        "): run CREATE EXTENSION pg_ingest, or enable copy_fallback";
        }
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        w.busy = nullptr;
    }
    return r;
}

void SenderPool::send(Worker &w, BatchPtr b) {
    b->attempts++;
    Status conn_error;
    if (!ensure_connection(w, conn_error)) {
        handle_failure(w, std::move(b), CallResult::failure("", conn_error.message(), true));
        sleep_unless_stopped(jittered_backoff(ctx_.config.retry, w.connect_failures, w.rng));
        return;
    }
    Counters::add(ctx_.counters.rows_sent, b->rows);
    Counters::add(ctx_.counters.batches_sent);
    bool via_copy = false;
    CallResult r = call(w, *b, via_copy);
    if (via_copy)
        Counters::add(ctx_.counters.fallback_batches);
    if (r.connection_lost)
        drop_connection(w);
    if (!r.ok) {
        handle_failure(w, std::move(b), r);
        return;
    }
    if (r.rejected_rows == 0) {
        report_batch(ctx_, *b, Status(), r.ticket);
        return;
    }
    std::vector<DeadLetter> dead;
    Status s = w.conn ? w.conn->dead_letters(r.ticket, dead)
                      : Status(ErrorCode::kUnknownRowOutcome, "the connection was lost");
    if (s.ok()) {
        if (dead.size() != r.rejected_rows)
            ctx_.log.warning("the server reported ", r.rejected_rows, " rejected rows for ticket ", r.ticket,
                             " but ingest_dead_letter lists ", dead.size());
        report_batch(ctx_, *b, Status(), r.ticket, &dead);
        return;
    }
    drop_connection(w); // it may be broken; a fresh one costs little
    report_batch(ctx_, *b,
                 Status(ErrorCode::kUnknownRowOutcome,
                        "the server rejected " + std::to_string(r.rejected_rows) + " of " +
                            std::to_string(b->rows) + " rows (ticket " + std::to_string(r.ticket) +
                            ") but ingest_dead_letter could not be read (" + s.message() +
                            "); rows of this ticket not listed there were committed"),
                 r.ticket);
}

void SenderPool::handle_failure(Worker &w, BatchPtr b, const CallResult &r) {
    bool stopping;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping = stopping_;
    }
    if (stopping) {
        report_batch(ctx_, *b,
                     Status(ErrorCode::kShutdown,
                            "the producer was closed before the batch was acknowledged (last error: " +
                                r.message + ")",
                            r.sqlstate));
        return;
    }
    switch (classify(r)) {
    case FailureKind::kTransient:
        if (b->attempts < ctx_.config.retry.max_attempts) {
            auto wait = jittered_backoff(ctx_.config.retry, b->attempts, w.rng);
            ctx_.log.info("batch ", b->seq, " for ", b->table.name(), " (", b->rows,
                          " rows) failed on attempt ", b->attempts, " of ", ctx_.config.retry.max_attempts,
                          ": ", r.message, "; resending in ", wait.count(), " ms");
            b->not_before = Clock::now() + wait;
            b->last_error = Status(ErrorCode::kRetriesExhausted, r.message, r.sqlstate);
            Counters::add(ctx_.counters.retried);
            requeue(std::move(b));
            return;
        }
        report_batch(
            ctx_, *b,
            Status(ErrorCode::kRetriesExhausted,
                   "gave up after " + std::to_string(b->attempts) + " attempts; last error: " + r.message,
                   r.sqlstate));
        return;
    case FailureKind::kUndefinedFunction:
    case FailureKind::kPermanent:
        report_batch(ctx_, *b, Status(ErrorCode::kPermanentError, r.message, r.sqlstate));
        return;
    }
}

void SenderPool::requeue(BatchPtr b) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!stopping_) {
            ready_.push_back(std::move(b));
            cv_.notify_all();
            return;
        }
    }
    report_batch(ctx_, *b,
                 Status(ErrorCode::kShutdown, "the producer was closed while the batch waited to be resent"));
}

} // namespace pgingest::detail
