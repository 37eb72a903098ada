// batch.hpp — what the worker's files share about one batch: the envelopes taken from the ring,
// their entries grouped by (table, role, columns), the rows of a group, and the dead-lettered
// ones; and the batch transaction's start and abort.
#pragma once

#include "pg_guard.hpp"

extern "C" {
#include "pgstat.h"
#include "utils/snapmgr.h"
}

#include <cstdint>
#include <string>
#include <vector>

#include "record.hpp"

namespace pg_ingest {

// One byte range of COPY text handed to COPY FROM (whole entries, or single rows when bisecting).
struct Segment {
    const char *p;
    size_t n;
};

// One queued row of an entry, as the worker isolates it.
struct QueuedRow {
    const char *p;
    size_t n;     // including the newline
    size_t entry; // index into WorkerBatch::entries
    uint32_t rowno;
};

struct EntryRef {
    uint64_t env_pos;
    EntryHeader *e;
    uint32_t failed = 0;
    bool duplicate = false;     // an exactly-once batch that was already committed
    uint32_t failed_before = 0; // for a duplicate: rows the original call had dead-lettered
};

// Entries that go into one table as one role with one column list, read with the same input
// settings (copy_format.cpp) and in the same format: one COPY.
struct Group {
    Oid reloid, roleid;
    std::vector<int16_t> attnums;
    std::string settings;
    std::vector<size_t> entries;
    std::vector<uint32_t> types; // binary rows (record.hpp): their column types; empty: COPY text
};

// The envelopes one worker transaction inserts (not the client library's batch).
struct WorkerBatch {
    std::vector<uint64_t> envelopes;
    std::vector<EntryRef> entries;
    std::vector<Group> groups;
    uint64_t rows = 0, bytes = 0;
    uint64_t scan_end = 0;
    uint64_t first_pending = UINT64_MAX;
    uint64_t lanes_seen = 0; // the worker's lanes (WorkerSlot::lanes) when it collected the batch
    uint32_t lanes_busy = 0; // lanes of ours that had envelopes ready in the scan
    std::vector<std::pair<uint64_t, Oid>> unserved; // other databases' envelopes no worker drains
};

// A row that could not be inserted, for ingest_dead_letter.
struct DeadRow {
    const EntryHeader *e;
    uint32_t rowno;
    std::string raw;
    std::string error;
    std::string sqlstate;
};

// Starts the transaction of a batch (or of the worker's housekeeping). Call inside pg_guard.
inline void start_batch_transaction(const char *activity) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, activity);
}

inline void abort_batch_transaction() {
    pg_guard([] {
        AbortCurrentTransaction();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

} // namespace pg_ingest
