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

void LoadState::reject(std::uint64_t line, const std::string &reason, std::string raw) {
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r'))
        raw.pop_back();
    std::lock_guard<std::mutex> g(mu_);
    ++rejected_;
    if (rejects_) {
        std::fprintf(rejects_, "%llu\t%s\t%s\n", static_cast<unsigned long long>(line), one_line(reason).c_str(),
                     raw.c_str());
        std::fflush(rejects_);
    }
}

std::uint64_t LoadState::rejected() const {
    std::lock_guard<std::mutex> g(mu_);
    return rejected_;
}

Sink::Sink(LoadState &st, pgingest::Producer *producer, std::string table_name, std::vector<std::string> columns)
    : st_(st), producer_(producer), name_(std::move(table_name)) {
    if (producer_)
        table_ = producer_->table(name_, std::move(columns));
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

void Sink::send(std::uint64_t line, const std::vector<std::string> &fields, std::string raw,
                const pgingest::Table *table) {
    std::string copy;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i)
            copy += '\t';
        copy += fields[i];
    }
    st_.read++;
    if (!producer_) {
        st_.committed++;
        return;
    }
    auto raw_p = std::make_shared<std::string>(std::move(raw));
    LoadState *st = &st_;
    auto cb = [st, line, raw_p](const pgingest::DeliveryReport &r) {
        if (r.status.ok()) {
            st->committed++;
        } else {
            if (r.status.code() == pgingest::ErrorCode::kRetriesExhausted)
                st->connection_failed = true;
            st->reject(line, r.status.to_string(), *raw_p);
        }
    };
    for (;;) {
        pgingest::Status s = producer_->enqueue(table ? *table : table_, pgingest::Row::from_copy_line(copy), cb);
        if (s.ok())
            return;
        if (s.code() == pgingest::ErrorCode::kTimedOut || s.code() == pgingest::ErrorCode::kQueueFull)
            continue; // policy block: wait for room again
        st_.reject(line, s.to_string(), *raw_p);
        return;
    }
}

} // namespace pgingest_cli
