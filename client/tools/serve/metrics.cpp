#include "metrics.hpp"

#include <cstdio>

namespace pgingest_serve {

void GatewayMetrics::request(const std::string &route, int code, double seconds) {
    std::lock_guard<std::mutex> g(mu_);
    ++requests_[{route, code}];
    Histogram &h = latency_[route];
    for (std::size_t i = 0; i < kBuckets.size(); ++i)
        if (seconds <= kBuckets[i])
            ++h.counts[i];
    ++h.count;
    h.sum += seconds;
}

namespace {
void counter(std::string &out, const char *name, const char *help, std::uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
}
} // namespace

std::string GatewayMetrics::render() const {
    std::string out;
    counter(out, "pgingest_rows_accepted_total", "Rows accepted into the producer queue.", rows_accepted);
    counter(out, "pgingest_rows_committed_total", "Accepted rows reported committed.", rows_committed);
    counter(out, "pgingest_rows_failed_total", "Accepted rows reported failed (dead-lettered or not sent).",
            rows_failed);
    counter(out, "pgingest_rows_refused_total", "Rows of requests refused before queueing (4xx/5xx).",
            rows_refused);
    out += "# HELP pgingest_producer_queue_rows Rows accepted and not yet reported.\n"
           "# TYPE pgingest_producer_queue_rows gauge\npgingest_producer_queue_rows " +
           std::to_string(queue_rows.load()) + "\n";
    out += "# HELP pgingest_producer_queue_bytes COPY text bytes of those rows.\n"
           "# TYPE pgingest_producer_queue_bytes gauge\npgingest_producer_queue_bytes " +
           std::to_string(queue_bytes.load()) + "\n";
    std::lock_guard<std::mutex> g(mu_);
    out += "# HELP pgingest_http_requests_total HTTP requests by route and status code.\n"
           "# TYPE pgingest_http_requests_total counter\n";
    for (const auto &kv : requests_)
        out += "pgingest_http_requests_total{route=\"" + kv.first.first + "\",code=\"" +
               std::to_string(kv.first.second) + "\"} " + std::to_string(kv.second) + "\n";
    out += "# HELP pgingest_http_request_duration_seconds Time from a complete request to its response.\n"
           "# TYPE pgingest_http_request_duration_seconds histogram\n";
    char num[64];
    for (const auto &kv : latency_) {
        const std::string lbl = "route=\"" + kv.first + "\"";
        for (std::size_t i = 0; i < kBuckets.size(); ++i) {
            std::snprintf(num, sizeof num, "%g", kBuckets[i]);
            out += "pgingest_http_request_duration_seconds_bucket{" + lbl + ",le=\"" + num + "\"} " +
                   std::to_string(kv.second.counts[i]) + "\n";
        }
        out += "pgingest_http_request_duration_seconds_bucket{" + lbl + ",le=\"+Inf\"} " +
               std::to_string(kv.second.count) + "\n";
        std::snprintf(num, sizeof num, "%.6f", kv.second.sum);
        out += "pgingest_http_request_duration_seconds_sum{" + lbl + "} " + num + "\n";
        out += "pgingest_http_request_duration_seconds_count{" + lbl + "} " +
               std::to_string(kv.second.count) + "\n";
    }
    return out;
}

} // namespace pgingest_serve
