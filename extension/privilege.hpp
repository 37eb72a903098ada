// privilege.hpp — the one INSERT privilege check, used at enqueue time (as the caller) and by the
// worker before inserting (as the enqueuing role).
#pragma once

#include "pg_headers.hpp"

extern "C" {
#include "utils/relcache.h"
}

namespace pg_ingest {

// Whether roleid may insert into the table: INSERT on the table, else INSERT on every named
// column (natts == 0: on every column). The worker dead-letters a group for which this is false.
bool has_insert_privilege(Oid reloid, Oid roleid, const int16 *attnums, int natts);

// The current user's checks at enqueue time, from the catalog alone (before any lock is taken,
// so a role without rights can neither wait for nor block the table's lock): USAGE on the
// table's schema, then INSERT as above (any_column: INSERT on the table or on at least one column,
// for callers that learn the columns later). Errors as an INSERT would.
void check_insert_privilege(Oid reloid, const int16 *attnums, int natts, bool any_column = false);

} // namespace pg_ingest
