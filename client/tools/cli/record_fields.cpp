#include "record_fields.hpp"

#include "common.hpp"

#include <algorithm>

namespace pgingest_cli {

std::vector<std::string> json_columns(const Json &obj, const std::vector<std::string> &table_cols) {
    std::vector<std::string> names;
    for (const auto &c : table_cols)
        if (obj.contains(c))
            names.push_back(c);
    return names;
}

const std::string *json_unknown_key(const Json &obj, const std::vector<std::string> &known) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            return &it.key();
    return nullptr;
}

std::vector<std::string> json_fields(const Json &obj, const std::vector<std::string> &names) {
    std::vector<std::string> fields;
    fields.reserve(names.size());
    for (const auto &name : names) {
        auto it = obj.find(name);
        if (it == obj.end() || it->is_null())
            fields.emplace_back("\\N");
        else if (it->is_string())
            fields.push_back(copy_escape(it->get_ref<const std::string &>()));
        else
            fields.push_back(copy_escape(it->dump()));
    }
    return fields;
}

extern "C" void csv_field_cb(void *s, std::size_t len, void *data) {
    auto *c = static_cast<CsvCtx *>(data);
    if (s == nullptr) { // empty unquoted field (CSV_EMPTY_IS_NULL): NULL unless --null names another marker
        bool other_marker = c->null_string && !c->null_string->empty();
        c->fields.emplace_back(other_marker ? "" : "\\N");
        return;
    }
    std::string_view v(static_cast<const char *>(s), len);
    if (c->null_string && !c->null_string->empty() && v == *c->null_string)
        c->fields.emplace_back("\\N");
    else
        c->fields.push_back(copy_escape(v));
}

extern "C" void csv_record_cb(int, void *data) {
    auto *c = static_cast<CsvCtx *>(data);
    c->records.push_back(std::move(c->fields));
    c->fields.clear();
}

} // namespace pgingest_cli
