#include "load_state.hpp"

#include "common.hpp"

#include <memory>

namespace pgingest_cli {

LoadState::~LoadState() {
    if (rejects_)
        std::fclose(rejects_);
}

bool LoadState::open_rejects() {
    if (opt_.rejects.empty())
        return true;
    rejects_ = std::fopen(opt_.rejects.c_str(), "w");
    return rejects_ != nullptr;
}

void LoadState::reject(std::uint64_t line, const std::string &reason, std::string_view raw) {
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r'))
        raw.remove_suffix(1);
    std::lock_guard<std::mutex> g(mu_);
    ++rejected_;
    if (rejects_) {
        std::fprintf(rejects_, "%llu\t%s\t%.*s\n", static_cast<unsigned long long>(line),
                     one_line(reason).c_str(), static_cast<int>(raw.size()), raw.data());
        std::fflush(rejects_);
    }
}

Sink::Sink(LoadState &st, pgingest::Producer *producer, std::string table_name,
           std::vector<std::string> columns)
    : st_(st), producer_(producer), name_(std::move(table_name)) {
    if (producer_)
        table_ = producer_->table(name_, std::move(columns));
    start_block();
}

const pgingest::Table *Sink::table_for(const std::vector<std::string> &columns) {
    auto it = by_columns_.find(columns);
    if (it != by_columns_.end())
        return &it->second;
    if (by_columns_.size() >= kMaxColumnSets)
        return nullptr;
    pgingest::Table t = producer_ ? producer_->table(name_, columns) : pgingest::Table();
    return &by_columns_.emplace(columns, std::move(t)).first->second;
}

void Sink::start_block() {
    rows_ = std::make_shared<BlockRows>();
    rows_->lines.reserve(kBlockRows);
    if (st_.keeps_rejects())
        rows_->raw_end.reserve(kBlockRows);
    block_.reserve(kBlockBytes + 1024);
}

void Sink::send(std::uint64_t line, const std::vector<std::string> &fields, std::string_view raw,
                const pgingest::Table *table) {
    join_.clear();
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i)
            join_ += '\t';
        join_ += fields[i];
    }
    send_line(line, join_, raw, table);
}

void Sink::send_line(std::uint64_t line, std::string_view copy_line, std::string_view raw,
                     const pgingest::Table *table) {
    if (!producer_) {
        st_.read++;
        st_.committed++;
        return;
    }
    const pgingest::Table *target = table ? table : &table_;
    if (target != block_table_) {
        flush();
        block_table_ = target;
    }
    pgingest::Status s = block_.add_copy_line(copy_line);
    if (!s.ok()) { // not a COPY line: the row is refused as enqueue() would refuse it
        st_.read++;
        st_.reject(line, s.to_string(), raw);
        return;
    }
    rows_->lines.push_back(line);
    if (st_.keeps_rejects()) {
        rows_->raw.append(raw);
        rows_->raw_end.push_back(rows_->raw.size());
    }
    if (block_.rows() >= kBlockRows || block_.bytes() >= kBlockBytes)
        flush();
}

void Sink::flush() {
    if (block_.empty())
        return;
    st_.read += block_.rows();
    std::shared_ptr<const BlockRows> rows = std::move(rows_);
    LoadState *st = &st_;
    // Called once per batch the block went into, maybe from several sender threads at once: reads
    // `rows` only.
    pgingest::BlockCallback done = [st, rows](const pgingest::BlockReport &r) {
        const std::size_t ok = r.ok_rows();
        st->committed += ok;
        if (ok == r.count)
            return;
        if (!r.status.ok()) {
            if (r.status.code() == pgingest::ErrorCode::kRetriesExhausted)
                st->connection_failed = true;
            const std::string reason = r.status.to_string();
            for (std::size_t i = r.first; i < r.first + r.count; i++)
                st->reject(rows->lines[i], reason, rows->raw_of(i));
            return;
        }
        for (const pgingest::BlockRowStatus &e : r.exceptions)
            st->reject(rows->lines[e.index], e.status.to_string(), rows->raw_of(e.index));
    };
    for (;;) {
        pgingest::Status s = producer_->enqueue_block(*block_table_, block_, done);
        if (s.ok())
            break;
        // FullQueuePolicy::kBlock: wait for room again, unless a second Ctrl-C says stop waiting
        if ((s.code() == pgingest::ErrorCode::kTimedOut || s.code() == pgingest::ErrorCode::kQueueFull) &&
            g_interrupted < 2)
            continue;
        const std::string reason = s.to_string();
        for (std::size_t i = 0; i < block_.rows(); i++)
            st_.reject(rows->lines[i], reason, rows->raw_of(i));
        block_.clear();
        break;
    }
    start_block();
}

} // namespace pgingest_cli
