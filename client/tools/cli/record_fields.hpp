// Turning parsed records into COPY text fields, shared by `pgingest load` and `pgingest serve`:
// JSON objects mapped to columns by key, and libcsv's callbacks collecting CSV records.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace pgingest_cli {

using Json = nlohmann::ordered_json;

// The columns of table_cols that are keys of obj, in table order (as ingest_enqueue(target,
// jsonb) maps an object: a missing key takes the column default).
std::vector<std::string> json_columns(const Json &obj, const std::vector<std::string> &table_cols);
// The first key of obj that is not in known, or nullptr.
const std::string *json_unknown_key(const Json &obj, const std::vector<std::string> &known);
// obj's values for names, COPY-escaped: missing or null -> \N, a string as is, anything else
// (numbers, booleans, nested objects and arrays) as its JSON text.
std::vector<std::string> json_fields(const Json &obj, const std::vector<std::string> &names);

// libcsv callbacks (csv_parse(..., csv_field_cb, csv_record_cb, &ctx)) collecting records of
// COPY-escaped fields. With CSV_EMPTY_IS_NULL an empty unquoted field is NULL, unless
// null_string names another marker (then it is the empty string and the marker is NULL).
struct CsvCtx {
    std::vector<std::string> fields;
    std::vector<std::vector<std::string>> records; // completed records, escaped fields
    const std::string *null_string = nullptr;
};
extern "C" void csv_field_cb(void *s, std::size_t len, void *data);
extern "C" void csv_record_cb(int, void *data);

} // namespace pgingest_cli
