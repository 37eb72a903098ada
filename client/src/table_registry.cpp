#include "table_registry.hpp"

namespace pgingest::detail {

TableRegistry::~TableRegistry() {
    Node *n = head_.load(std::memory_order_acquire);
    while (n) {
        Node *next = n->next;
        delete n;
        n = next;
    }
}

template <typename Pred> const TableRegistry::Node *TableRegistry::find(Pred pred) const {
    const Node *found = nullptr;
    for (const Node *n = head_.load(std::memory_order_acquire); n; n = n->next)
        if (pred(*n->table.spec()))
            found = n; // keep walking: the oldest match is nearest the tail
    return found;
}

Table TableRegistry::insert(std::string_view name, std::vector<std::string> columns, bool any_columns) {
    auto matches = [&](const TableSpec &s) {
        return s.name == name && (any_columns || s.columns == columns);
    };
    Node *node = nullptr;
    Node *head = head_.load(std::memory_order_acquire);
    for (;;) {
        if (const Node *n = find(matches)) {
            delete node;
            return n->table;
        }
        if (!node)
            node = new Node{Table(std::make_shared<const TableSpec>(TableSpec{std::string(name), columns})),
                            nullptr};
        node->next = head;
        if (head_.compare_exchange_weak(head, node, std::memory_order_acq_rel, std::memory_order_acquire))
            return node->table;
        // Someone else inserted: look again (they may have added the same entry).
    }
}

Table TableRegistry::get(std::string_view name, std::vector<std::string> columns) {
    return insert(name, std::move(columns), false);
}

const TableSpec *TableRegistry::by_name(std::string_view name) {
    if (const Node *n = find([&](const TableSpec &s) { return s.name == name; }))
        return n->table.spec();
    return insert(name, {}, true).spec();
}

Table TableRegistry::handle(const TableSpec *spec) const {
    if (const Node *n = find([&](const TableSpec &s) { return &s == spec; }))
        return n->table;
    return Table();
}

} // namespace pgingest::detail
