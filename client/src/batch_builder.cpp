#include "batch.hpp"

namespace pgingest::detail {

BatchBuilder::BatchBuilder(std::size_t max_rows, std::size_t max_bytes, std::chrono::milliseconds linger,
                           Resolve resolve)
    : max_rows_(max_rows), max_bytes_(max_bytes), linger_(linger), resolve_(std::move(resolve)) {}

void BatchBuilder::add(std::unique_ptr<QueuedRow> row, std::vector<BatchPtr> &sealed) {
    const TableSpec *key = row->table;
    auto it = open_.find(key);
    if (it != open_.end() && it->second->bytes() + row->bytes() > max_bytes_) {
        seal(key, sealed);
        it = open_.end();
    }
    if (it == open_.end()) {
        auto b = std::make_unique<Batch>();
        b->table = resolve_(key);
        it = open_.emplace(key, std::move(b)).first;
    }
    Batch &b = *it->second;
    b.data.append(row->line);
    b.data += '\n';
    b.rows.push_back(RowMeta{row->enqueued, static_cast<std::uint32_t>(row->bytes()), std::move(row->done)});
    if (b.rows.size() >= max_rows_ || b.bytes() >= max_bytes_)
        seal(key, sealed);
}

void BatchBuilder::seal_due(Clock::time_point now, bool all, std::vector<BatchPtr> &sealed) {
    std::vector<const TableSpec *> due;
    for (auto &kv : open_)
        if (all || kv.second->rows.front().enqueued + linger_ <= now)
            due.push_back(kv.first);
    for (const TableSpec *key : due)
        seal(key, sealed);
}

std::optional<Clock::time_point> BatchBuilder::next_deadline() const {
    std::optional<Clock::time_point> next;
    for (auto &kv : open_) {
        Clock::time_point d = kv.second->rows.front().enqueued + linger_;
        if (!next || d < *next)
            next = d;
    }
    return next;
}

void BatchBuilder::seal(const TableSpec *key, std::vector<BatchPtr> &sealed) {
    auto it = open_.find(key);
    it->second->seq = next_seq_++;
    sealed.push_back(std::move(it->second));
    open_.erase(it);
}

} // namespace pgingest::detail
