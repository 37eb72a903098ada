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

// The current user's check at enqueue time: errors ("permission denied for table ...") as an
// INSERT would.
void check_insert_privilege(Relation rel, const int16 *attnums, int natts);

} // namespace pg_ingest
