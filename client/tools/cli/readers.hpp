// Input readers of `pgingest load`: CSV (libcsv), TSV and JSON lines, each turning the lines of
// one file into COPY-escaped fields for a Sink, rejecting what does not parse.
#pragma once
#include "load_state.hpp"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace pgingest_cli {

// Mapping of input to columns, decided by the first record/object when not given.
struct Columns {
    std::vector<std::string> names; // empty: all table columns (count from the server)
    std::size_t count = 0;          // expected field count (0: unknown yet)
};

// The sink for records with these columns (created on first use); nullptr when none can be had.
using SinkFactory = std::function<Sink *(const Columns &)>;

// Each returns false on an input error. line_no counts the file's lines; header_pending is set
// while the header record is still to come.
bool load_csv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no);
bool load_tsv(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
              bool &header_pending, std::uint64_t &line_no);
// Objects map to columns by key (table_cols: the table's columns in order), like
// ingest_enqueue(target, jsonb).
bool load_jsonl(std::FILE *f, const LoadOptions &o, LoadState &st, Columns &cols, const SinkFactory &sink_for,
                const std::vector<std::string> &table_cols, std::uint64_t &line_no);

} // namespace pgingest_cli
