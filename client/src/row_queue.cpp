#include "row_queue.hpp"

#include <thread>

namespace pgingest::detail {

RowQueue::RowQueue(std::size_t max_rows, std::size_t max_bytes)
    : max_rows_(max_rows), max_bytes_(max_bytes), queue_(max_rows + 1) {}

RowQueue::~RowQueue() {
    QueuedRow *r;
    while (queue_.pop(r))
        delete r;
}

bool RowQueue::try_reserve(std::size_t n, std::size_t bytes) {
    std::uint64_t rows = rows_.load(std::memory_order_relaxed);
    do {
        if (rows + n > max_rows_)
            return false;
    } while (
        !rows_.compare_exchange_weak(rows, rows + n, std::memory_order_seq_cst, std::memory_order_relaxed));
    std::uint64_t b = bytes_.load(std::memory_order_relaxed);
    do {
        if (b + bytes > max_bytes_) {
            rows_.fetch_sub(n, std::memory_order_seq_cst);
            return false;
        }
    } while (
        !bytes_.compare_exchange_weak(b, b + bytes, std::memory_order_seq_cst, std::memory_order_relaxed));
    return true;
}

bool RowQueue::reserve_blocking(std::size_t rows, std::size_t bytes, Clock::time_point deadline,
                                const std::function<bool()> &stop) {
    room_waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock<std::mutex> lock(mutex_);
    bool ok = false;
    while (!stop()) {
        if (try_reserve(rows, bytes)) {
            ok = true;
            break;
        }
        if (room_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
            ok = !stop() && try_reserve(rows, bytes);
            break;
        }
    }
    lock.unlock();
    room_waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return ok;
}

void RowQueue::push(std::unique_ptr<QueuedRow> row) {
    QueuedRow *raw = row.release();
    // All nodes were allocated up front and outstanding rows <= max_rows, so there is always a
    // free node; the loop only guards against a transiently empty freelist under contention.
    while (!queue_.bounded_push(raw))
        std::this_thread::yield();
    queued_.fetch_add(1, std::memory_order_seq_cst);
    if (consumer_sleeping_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lock(mutex_);
        consumer_cv_.notify_one();
    }
}

std::unique_ptr<QueuedRow> RowQueue::pop() {
    QueuedRow *r = nullptr;
    if (!queue_.pop(r))
        return nullptr;
    queued_.fetch_sub(1, std::memory_order_seq_cst);
    return std::unique_ptr<QueuedRow>(r);
}

void RowQueue::wait_for_rows(Clock::time_point deadline, const std::function<bool()> &ready) {
    std::unique_lock<std::mutex> lock(mutex_);
    consumer_sleeping_.store(true, std::memory_order_seq_cst);
    consumer_cv_.wait_until(lock, deadline, [&] { return queued() > 0 || ready(); });
    consumer_sleeping_.store(false, std::memory_order_relaxed);
}

void RowQueue::wake_consumer() {
    std::lock_guard<std::mutex> lock(mutex_);
    consumer_cv_.notify_all();
}

void RowQueue::release(std::size_t rows, std::size_t bytes) {
    bytes_.fetch_sub(bytes, std::memory_order_seq_cst);
    rows_.fetch_sub(rows, std::memory_order_seq_cst);
    if (room_waiters_.load(std::memory_order_seq_cst) > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        room_cv_.notify_all();
    }
}

bool RowQueue::wait_empty(Clock::time_point deadline) {
    room_waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::unique_lock<std::mutex> lock(mutex_);
    bool ok = room_cv_.wait_until(lock, deadline, [&] { return rows_.load(std::memory_order_seq_cst) == 0; });
    lock.unlock();
    room_waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return ok;
}

void RowQueue::wake_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    room_cv_.notify_all();
    consumer_cv_.notify_all();
}

} // namespace pgingest::detail
