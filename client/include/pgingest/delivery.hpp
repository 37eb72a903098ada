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
    std::int64_t ticket = 0;      // the server's ticket of the call that carried the row (0: none)
    std::int64_t batch_seq = 0;   // the producer's batch number (exactly-once key with producer_id)
    std::uint32_t row_number = 0; // 1-based position of the row in its batch
    std::uint32_t attempts = 0;   // sends of the batch
    std::chrono::microseconds latency{0}; // enqueue to report
};

using DeliveryCallback = std::function<void(const DeliveryReport &)>;

} // namespace pgingest
