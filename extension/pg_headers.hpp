// pg_headers.hpp — PostgreSQL's core headers, inside extern "C". Every extension .cpp file includes
// it first (directly, or through one of our headers that does); plain C++ headers (ring.hpp,
// record.hpp) must not include it.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}
