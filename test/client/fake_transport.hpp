// A scriptable in-memory Transport for unit tests: records every call, answers with a handler.
#pragma once
#include <pgingest/transport.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace pgingest::testing {

using Clock = std::chrono::steady_clock;

class FakeTransport : public Transport {
  public:
    struct Call {
        Clock::time_point at;
        std::string table;
        std::vector<std::string> columns;
        std::string data;
        std::uint32_t rows = 0;
        std::string producer_id;
        std::int64_t batch_seq = 0;
        bool copy = false;
        int connection = 0;
    };
    // Answers a call (n: 0-based index over all calls); runs outside the lock, may block.
    using Handler = std::function<CallResult(const Call &call, int n)>;
    using DeadLetterHandler = std::function<Status(std::int64_t ticket, std::vector<DeadLetter> &out)>;

    void set_handler(Handler h) {
        std::lock_guard<std::mutex> lock(mutex_);
        handler_ = std::move(h);
    }
    void set_dead_letter_handler(DeadLetterHandler h) {
        std::lock_guard<std::mutex> lock(mutex_);
        dead_letter_handler_ = std::move(h);
    }
    void fail_connects(int n) { connect_failures_left_ = n; }

    std::vector<Call> calls() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return calls_;
    }
    int connects() const { return connects_; }
    int cancels() const { return cancels_; }
    int max_concurrent_calls() const { return max_active_; }

    std::unique_ptr<Connection> connect(Status &error) override {
        if (connect_failures_left_.fetch_sub(1) > 0) {
            error = Status(ErrorCode::kRetriesExhausted, "fake: connection refused");
            return nullptr;
        }
        return std::make_unique<Conn>(*this, ++connects_);
    }

  private:
    class Conn : public Connection {
      public:
        Conn(FakeTransport &t, int id) : t_(t), id_(id) {}
        CallResult enqueue_copy(const BatchRequest &b) override { return t_.call(b, false, id_); }
        CallResult copy_from_stdin(const BatchRequest &b) override { return t_.call(b, true, id_); }
        Status dead_letters(std::int64_t ticket, std::vector<DeadLetter> &out) override {
            DeadLetterHandler h;
            {
                std::lock_guard<std::mutex> lock(t_.mutex_);
                h = t_.dead_letter_handler_;
            }
            return h ? h(ticket, out) : Status();
        }
        void cancel() override { t_.cancels_++; }

      private:
        FakeTransport &t_;
        int id_;
    };

    CallResult call(const BatchRequest &b, bool copy, int conn) {
        Call c{Clock::now(),        b.table->name, b.table->columns,
               std::string(b.data), b.rows,        std::string(b.producer_id),
               b.batch_seq,         copy,          conn};
        Handler h;
        int n;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            n = static_cast<int>(calls_.size());
            calls_.push_back(c);
            h = handler_;
        }
        int active = ++active_;
        for (int m = max_active_; active > m && !max_active_.compare_exchange_weak(m, active);) {
        }
        CallResult r = h ? h(c, n) : CallResult::success(n + 1);
        --active_;
        return r;
    }

    mutable std::mutex mutex_;
    std::vector<Call> calls_;
    Handler handler_;
    DeadLetterHandler dead_letter_handler_;
    std::atomic<int> connect_failures_left_{0}, connects_{0}, cancels_{0}, active_{0}, max_active_{0};
};

// Test config: one sender unless a test wants more, short timings, no log noise.
inline ProducerConfig test_config() {
    ProducerConfig c;
    c.pool_min = 1;
    c.pool_max = 1;
    c.linger = std::chrono::milliseconds(1);
    c.retry.initial_backoff = std::chrono::milliseconds(20);
    c.retry.max_backoff = std::chrono::milliseconds(200);
    c.log_level = LogLevel::kOff;
    return c;
}

// For tests that check what one batch holds: only full batches and flush() send.
inline ProducerConfig one_batch_config() {
    ProducerConfig c = test_config();
    c.linger = std::chrono::seconds(30);
    return c;
}

} // namespace pgingest::testing
