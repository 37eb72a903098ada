// txn_buffer.hpp — the transaction buffer (txn_buffer.cpp): the rows this backend's transaction
// enqueued, handed to the ring when it commits; and the slices the enqueue functions write them in.
#pragma once

#include "pg_headers.hpp"

extern "C" {
#include "lib/stringinfo.h"
}

namespace pg_ingest {

// The target of one enqueue call, checked by the caller (enqueue_sql.cpp).
struct Target {
    Oid reloid;
    Oid reltype;
    char relkind;
    const char *relname;
};

struct Pending; // one buffered entry (txn_buffer.cpp)

// Keeps memory this process frees for reuse instead of handing it back to the kernel at once
// (txn_buffer.cpp says why). Called once per process.
void keep_freed_memory();

// A new ticket: unique, growing across restarts.
uint64 new_ticket();

// Collects the rows of one call into Pending slices of bounded size. Each add_row() call appends
// exactly one line that the caller has already written into `scratch`.
struct SliceWriter {
    const Target *t;
    const int16 *attnums;
    int natts;
    uint64 ticket;
    const char *producer = nullptr; // exactly-once identity of a client batch, on every slice
    int64 batch_seq = 0;
    uint32 rows = 0;
    Pending *cur = nullptr;
    bool pinned_formats = false;    // the rows were written with StableFormats (the row form)
    const uint32 *types = nullptr;  // binary rows (COPY BINARY tuples): the natts column types
    const char *settings = nullptr; // captured with the first slice (copy_format.cpp)
    uint32 settings_len = 0;

    // Appends one row: n bytes at p, plus a newline when the bytes do not end in one.
    void add_row(const char *p, int n, bool add_newline);
    void add_row(StringInfo line) {
        add_row(line->data, line->len, false);
        resetStringInfo(line);
    }
};

// Whether this backend's transaction has rows buffered or handed over early (not yet committed).
bool txn_has_rows();

// Registers the transaction callbacks that hand the buffer over (idempotent).
void enqueue_install_callbacks();

} // namespace pg_ingest
