// Sender threads, one connection each: pool_min at start, more on demand up to pool_max. Sealed
// batches wait in a ready list (retries with their backoff time); a free sender takes the first
// one that is due, sends it, and reports its rows, or puts it back for a retry.
#pragma once
#include "batch.hpp"
#include "context.hpp"

#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace pgingest::detail {

// Reports every row of a batch (status for all rows, or per row from the server's dead letters),
// then gives the rows' room back to the queue.
void report_batch(Context &ctx, Batch &batch, const Status &status, std::int64_t ticket = 0,
                  const std::vector<DeadLetter> *dead = nullptr);

class SenderPool {
  public:
    explicit SenderPool(Context &ctx);
    ~SenderPool(); // stop()
    SenderPool(const SenderPool &) = delete;
    SenderPool &operator=(const SenderPool &) = delete;

    void start();
    void submit(std::vector<BatchPtr> &batches); // takes them all
    // Fails every batch not yet sent with kShutdown, cancels calls in progress, joins the threads.
    void stop();
    std::size_t size();

  private:
    struct Worker {
        std::thread thread;
        std::unique_ptr<Connection> conn;
        Connection *busy = nullptr; // conn while a call is in progress (guarded by mutex_)
        int connect_failures = 0;
        std::mt19937_64 rng;
    };

    void spawn_locked();
    void run(Worker &w);
    BatchPtr next_batch();
    void send(Worker &w, BatchPtr batch);
    bool ensure_connection(Worker &w, Status &error);
    void drop_connection(Worker &w);
    CallResult call(Worker &w, const Batch &batch, bool &via_copy);
    void handle_failure(Worker &w, BatchPtr batch, const CallResult &r);
    void requeue(BatchPtr batch);
    void sleep_unless_stopped(std::chrono::milliseconds d);

    Context &ctx_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<BatchPtr> ready_;
    std::list<Worker> workers_;
    std::size_t idle_ = 0;     // senders waiting in next_batch()
    std::size_t starting_ = 0; // senders not yet there (connecting)
    bool stopping_ = false;
};

} // namespace pgingest::detail
