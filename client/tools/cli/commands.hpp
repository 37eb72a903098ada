// The subcommands of pgingest; each returns the process exit code (common.hpp).
#pragma once
#include "load_state.hpp"

#include <string>

namespace pgingest_cli {

// pgingest load: files (or stdin) -> libpgingest; prints a summary on stderr.
int run_load(LoadOptions &o);
// pgingest status: ingest_status, readable (one block per row) or as JSON.
int run_status(const std::string &dsn, bool as_json);

} // namespace pgingest_cli
