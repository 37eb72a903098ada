#include "batch.hpp"

#include <algorithm>
#include <cstring>

namespace pgingest::detail {

namespace {
constexpr std::size_t kMaxReserve = 16u << 20;
}

std::string BufferPool::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty())
        return std::string();
    std::string s = std::move(free_.back());
    free_.pop_back();
    return s;
}

void BufferPool::give(std::string &&s) {
    if (s.capacity() > max_capacity_ || s.capacity() < 4096)
        return;
    s.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < max_buffers_)
        free_.push_back(std::move(s));
}

BatchBuilder::BatchBuilder(std::size_t max_rows, std::size_t max_bytes, std::chrono::milliseconds linger,
                           Resolve resolve, BufferPool *buffers)
    : max_rows_(max_rows), max_bytes_(max_bytes), linger_(linger), resolve_(std::move(resolve)),
      buffers_(buffers) {}

Batch &BatchBuilder::open(const TableSpec *key) {
    auto it = open_.find(key);
    if (it == open_.end()) {
        auto b = std::make_unique<Batch>();
        b->table = resolve_(key);
        if (buffers_)
            b->data = buffers_->take();
        it = open_.emplace(key, std::move(b)).first;
    }
    return *it->second;
}

void BatchBuilder::add(std::unique_ptr<QueuedRow> row, std::vector<BatchPtr> &sealed) {
    if (row->is_block()) {
        add_block(*row, sealed);
        return;
    }
    const TableSpec *key = row->table;
    auto it = open_.find(key);
    if (it != open_.end() && it->second->bytes() + row->bytes() > max_bytes_)
        seal(key, sealed);
    Batch &b = open(key);
    b.data.append(row->line);
    b.data += '\n';
    BatchPart part;
    part.enqueued = row->enqueued;
    part.bytes = row->bytes();
    part.done = std::move(row->done);
    b.parts.push_back(std::move(part));
    b.rows++;
    if (b.rows >= max_rows_ || b.bytes() >= max_bytes_)
        seal(key, sealed);
}

// The block's rows go where add() would put them one by one: whole runs of rows are appended
// while they fit (rows and bytes), and the batch is sealed when the next row does not.
void BatchBuilder::add_block(QueuedRow &q, std::vector<BatchPtr> &sealed) {
    const TableSpec *key = q.table;
    const char *data = q.line.data();
    const std::size_t size = q.line.size();
    std::size_t off = 0, index = 0;
    while (index < q.block_rows) {
        Batch &b = open(key);
        if (b.rows == 0) // room for the batch these rows will likely fill: not regrown (recopied) as it fills
            b.data.reserve(std::min({max_bytes_, (size / q.block_rows + 1) * max_rows_, kMaxReserve}));
        const std::size_t room_rows = max_rows_ - b.rows; // an open batch has fewer than max_rows
        const std::size_t room_bytes = b.bytes() < max_bytes_ ? max_bytes_ - b.bytes() : 0;
        std::size_t n = 0, len = 0;
        if (q.block_rows - index <= room_rows && size - off <= room_bytes) {
            n = q.block_rows - index; // the rest fits
            len = size - off;
        } else {
            while (n < room_rows && off + len < size) {
                const char *start = data + off + len;
                const char *nl = static_cast<const char *>(std::memchr(start, '\n', size - off - len));
                std::size_t l = static_cast<std::size_t>(nl - start) + 1; // every line ends in '\n'
                if (len + l > room_bytes && !(n == 0 && b.rows == 0))
                    break; // (a row larger than max_bytes alone in a batch: taken)
                len += l;
                n++;
            }
        }
        if (n == 0) { // the next row does not fit this batch: a new one
            seal(key, sealed);
            continue;
        }
        b.data.append(data + off, len);
        BatchPart part;
        part.enqueued = q.enqueued;
        part.rows = static_cast<std::uint32_t>(n);
        part.bytes = len;
        part.block_done = q.block_done;
        part.first = index;
        part.block = true;
        b.parts.push_back(std::move(part));
        b.rows += n;
        off += len;
        index += n;
        if (b.rows >= max_rows_ || b.bytes() >= max_bytes_)
            seal(key, sealed);
    }
}

void BatchBuilder::seal_due(Clock::time_point now, bool all, std::vector<BatchPtr> &sealed) {
    std::vector<const TableSpec *> due;
    for (auto &kv : open_)
        if (all || kv.second->parts.front().enqueued + linger_ <= now)
            due.push_back(kv.first);
    for (const TableSpec *key : due)
        seal(key, sealed);
}

std::optional<Clock::time_point> BatchBuilder::next_deadline() const {
    std::optional<Clock::time_point> next;
    for (auto &kv : open_) {
        Clock::time_point d = kv.second->parts.front().enqueued + linger_;
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
