// drop_guard.hpp — refuses DROP EXTENSION pg_ingest while rows are queued (drop_guard.cpp).
#pragma once

namespace pg_ingest {

// Installs the object-access hook; called once from _PG_init.
void install_drop_guard();

} // namespace pg_ingest
