// Tables (target + column list) and the per-row delivery report.
#pragma once
#include <pgingest/export.h>
#include <pgingest/status.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pgingest {

struct TableSpec {
    std::string name;                 // as SQL would parse it: events, public.events, "My Table"
    std::vector<std::string> columns; // the columns a row's fields map to; empty: all, in table order
};

// A handle to a target registered with Producer::table(). Cheap to copy.
class PGINGEST_API Table {
  public:
    Table() = default;
    bool valid() const { return spec_ != nullptr; }
    const std::string &name() const { return spec_->name; }
    const std::vector<std::string> &columns() const { return spec_->columns; }
    const TableSpec *spec() const { return spec_.get(); }

    explicit Table(std::shared_ptr<const TableSpec> spec) : spec_(std::move(spec)) {}

  private:
    std::shared_ptr<const TableSpec> spec_;
};

// What happened to one row. status.ok() means what the producer's AckMode (config.hpp) says:
// with kCommitted (the default) committed by the server; with kLogged, kQueued or kMemory accepted
// by the server, with that mode's promise about crashes, and not yet inserted (a row the server
// rejects later is not reported: look up `ticket` with ingest_ticket_status). Otherwise status
// says why it failed.
struct DeliveryReport {
    Table table;
    Status status;
    std::int64_t ticket = 0;              // the server's ticket of the call that carried the row (0: none)
    std::int64_t batch_seq = 0;           // the producer's batch number (exactly-once key with producer_id)
    std::uint32_t row_number = 0;         // 1-based position of the row in its batch
    std::uint32_t attempts = 0;           // sends of the batch
    std::chrono::microseconds latency{0}; // enqueue to report
};

using DeliveryCallback = std::function<void(const DeliveryReport &)>;

// A row of a block whose status is not its BlockReport's status.
struct BlockRowStatus {
    std::size_t index = 0; // 0-based position of the row in its block
    Status status;
};

// What happened to a run of consecutive rows of one Producer::enqueue_block() call, all sent in
// the same batch. Every row of the block is in exactly one report's run; a block split over
// several batches gets one report per batch, in any order, possibly at the same time from
// different sender threads. Each row's status (as a DeliveryReport's status would say it) is
// `status`, except for the rows listed in `exceptions` (rows the server rejected: kRejected, with
// its error text and SQLSTATE; only when `status` is ok).
struct BlockReport {
    Table table;
    Status status;
    std::size_t first = 0; // the run: rows first .. first + count - 1 of the block
    std::size_t count = 0;
    std::vector<BlockRowStatus> exceptions; // ascending index
    std::int64_t ticket = 0;                // as in DeliveryReport
    std::int64_t batch_seq = 0;
    std::uint32_t first_row_number = 0; // 1-based position of row `first` in its batch
    std::uint32_t attempts = 0;
    std::chrono::microseconds latency{0}; // enqueue_block to report

    // Rows of the run whose status is ok.
    std::size_t ok_rows() const { return status.ok() ? count - exceptions.size() : 0; }
    // The status of row `index` of the block (first <= index < first + count).
    const Status &row_status(std::size_t index) const {
        for (const BlockRowStatus &e : exceptions)
            if (e.index == index)
                return e.status;
        return status;
    }
};

using BlockCallback = std::function<void(const BlockReport &)>;

} // namespace pgingest
