// Targets (table + column list) known to a producer: an append-only lock-free list, so enqueue by
// name can look a table up without a lock. Entries live as long as the producer.
#pragma once
#include <pgingest/delivery.hpp>

#include <atomic>
#include <string_view>
#include <vector>

namespace pgingest::detail {

class TableRegistry {
  public:
    TableRegistry() = default;
    ~TableRegistry();
    TableRegistry(const TableRegistry &) = delete;
    TableRegistry &operator=(const TableRegistry &) = delete;

    // The entry for exactly (name, columns), added if new.
    Table get(std::string_view name, std::vector<std::string> columns);
    // The first entry registered for name (any columns); added with all columns if none.
    const TableSpec *by_name(std::string_view name);
    // The handle of an entry of this registry, or an invalid Table if spec is not one.
    Table handle(const TableSpec *spec) const;

  private:
    struct Node {
        Table table;
        Node *next;
    };
    // The oldest node matching pred, or nullptr.
    template <typename Pred> const Node *find(Pred pred) const;
    Table insert(std::string_view name, std::vector<std::string> columns, bool any_columns);

    std::atomic<Node *> head_{nullptr};
};

} // namespace pgingest::detail
