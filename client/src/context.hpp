// What the batcher and the sender threads share within one producer.
#pragma once
#include "batch.hpp"
#include "logger.hpp"
#include "metrics_internal.hpp"
#include "row_queue.hpp"

#include <pgingest/config.hpp>
#include <pgingest/transport.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace pgingest::detail {

struct Context {
    ProducerConfig config;
    Logger log;
    std::shared_ptr<Transport> transport;
    std::string producer_id;
    RowQueue queue;
    Counters counters;
    LatencyHistogram latency;
    std::atomic<bool> fallback_active{false}; // the server has no pg_ingest: COPY FROM STDIN
    BufferPool buffers;                       // batch buffers, reused

    Context(ProducerConfig cfg, std::shared_ptr<Transport> t, std::string id)
        : config(std::move(cfg)), log(config.on_log, config.log_level), transport(std::move(t)),
          producer_id(std::move(id)), queue(config.queue_max_rows, config.queue_max_bytes),
          buffers(4, 2 * config.batch_max_bytes + (64u << 10)) {}
};

} // namespace pgingest::detail
