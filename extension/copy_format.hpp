// copy_format.hpp — the value-format contract between the two sides: backends write queued rows
// as COPY text lines with pinned output formats, the worker reads them back with COPY FROM in a
// session pinned to the same formats. Both halves live in copy_format.cpp; change them together.
#pragma once

#include "pg_headers.hpp"

extern "C" {
#include "access/htup.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
}

namespace pg_ingest {

// ---- Writing (backends, ingest_enqueue*)

// Appends s with COPY text escapes for backslash, newline, carriage return and tab.
void append_copy_escaped(StringInfo buf, const char *s, size_t len);

// Output functions depend on session settings (DateStyle, IntervalStyle, extra_float_digits,
// bytea_output); the worker parses in its own session. While serializing we pin the formats the
// worker reads back unambiguously and without loss, and restore the caller's afterwards (the
// destructor also runs when a PostgreSQL error comes back as a C++ exception).
struct StableFormats {
    StableFormats();
    ~StableFormats();
    StableFormats(const StableFormats &) = delete;
    StableFormats &operator=(const StableFormats &) = delete;

  private:
    int date_style, date_order, interval_style, float_digits, bytea_out;
};

// Appends one composite value of the target's row type as a COPY text line (all non-dropped,
// non-generated columns); errors if its type is not reltype.
void append_composite_row(StringInfo buf, Oid reltype, const char *relname, HeapTupleHeader td);

// Binary rows (record.hpp): the column types a composite value of this row type is sent as, when
// every column it writes (row_attnums) has a built-in type with binary send and receive functions,
// ingest.binary_rows is on and the session's client encoding is the database's (text types' send
// functions convert to it); else nullptr: write COPY text.
const uint32 *row_binary_types(Oid reltype);

// Appends one composite value as a COPY BINARY tuple (only when row_binary_types said so).
void append_composite_row_binary(StringInfo buf, Oid reltype, const char *relname, HeapTupleHeader td);

// Appends one JSON scalar (or nested JSON, as text) as a COPY text field.
void append_json_scalar(StringInfo buf, JsonbValue *v);

// The attribute numbers a composite value of this row type is written with (every column not
// dropped, not generated, in order): the row form names its columns, so a column dropped and
// another added before the worker inserts can never shift values. Returns the count.
int row_attnums(Oid reltype, int16 *out);

// ---- The settings that give a value's text its meaning (DateStyle, IntervalStyle, TimeZone,
// search_path, lc_monetary), captured at enqueue and applied by the worker to the entry's group.

// Appends the current session's values; pinned_formats: DateStyle and IntervalStyle as
// StableFormats wrote them (the row form).
void capture_input_settings(StringInfo out, bool pinned_formats);

// Sets them for the current GUC nest level (GUC_ACTION_SAVE: undone by AtEOXact_GUC at that
// level). Call inside pg_guard.
void apply_input_settings(const char *blob, uint32_t len);

// ---- Reading back (the worker)

// Pins the worker session's input formats to those StableFormats writes, whatever ALTER
// DATABASE/ROLE ... SET says.
void pin_input_formats();

// The options of the worker's COPY FROM (palloc'd): COPY text, in the database encoding; or
// COPY BINARY, whose data then starts with kBinaryCopyHeader.
List *copy_input_options(bool binary);
constexpr int kBinaryCopyHeaderLen = 19;
extern const char kBinaryCopyHeader[kBinaryCopyHeaderLen];

// The length of the COPY BINARY tuple at p, or 0 if it is malformed or runs past end.
size_t binary_row_length(const char *p, const char *end);

// Appends the binary row (n bytes at p, values of the given built-in types) as the COPY text line
// the row form would have written (pinned formats), without its newline: for dead letters, and
// for rows whose columns changed type after they were enqueued. Call inside pg_guard.
void binary_row_to_text(StringInfo out, const char *p, size_t n, const uint32 *types, int ntypes);

} // namespace pg_ingest
