// record.hpp — layout of what producers write into the ring (plain C++, no PostgreSQL headers).
//
// A ring record is an *envelope*: everything one transaction hands over at once (at commit, or
// when its local buffer spills). The worker takes envelopes whole, so one transaction's rows are
// never split across two worker transactions.
//
//   RecordTag (ring.hpp) | EnvelopeHeader | Entry | Entry | ...
//   Entry = EntryHeader | int16 attnums[natts] | producer id bytes | input settings | rows
//           [| uint32 column types[natts], binary entries only], padded to kAlign
//
// Rows are COPY text lines, or (kEntryBinary) tuples of PostgreSQL's COPY BINARY format (int16
// field count, then per field an int32 length, -1 for NULL, and the type's send-function bytes),
// written by the caller from typed values so the worker parses no text (copy_format.cpp). A
// binary entry carries the types its values were sent as: the worker reads them with those
// types' receive functions only while the columns still have them.
//
// Each entry is the rows of one ingest_enqueue() call (or a slice of one, when a large call is
// split): one target relation, one role, one column list, one ticket, and the settings its values
// are read with (copy_format.cpp: the caller's DateStyle, TimeZone, search_path, ...), so that a
// value means in the worker what it meant in the caller's session.
#pragma once

#include <cstdint>
#include <cstring>

#include "ring.hpp"

namespace pg_ingest {

struct EnvelopeHeader {
    uint32_t dboid;
    uint32_t xid;   // enqueuing (sub)transaction, or 0: insert only once it has committed
    int32_t waiter; // pgprocno of a backend waiting before its commit (cancellable), or -1
    uint32_t nentries;
    uint64_t waiter_gen; // generation the waiter published in its WaitSlot
    int64_t enqueued_at; // TimestampTz of the hand-over
    // The envelope's row in ingest_queue (wal_queue.cpp), which the worker deletes in the
    // transaction that inserts the rows; queue_id 0: not logged there.
    uint64_t queue_id;
    uint32_t queue_block; // its tuple id
    uint16_t queue_offset;
    // Which lane the envelope travels in (lane_of): the enqueuing session's, or its exactly-once
    // producer's. One worker at a time drains a lane, in ring order, so one session's (one
    // producer's) rows are inserted in the order they were handed over, however many workers
    // drain the database (worker_slots.cpp).
    uint16_t lane_key;
};

// Lanes per database; a worker owns a set of them (a bit mask, WorkerSlot::lanes).
constexpr int kLanes = 32;

inline int lane_of(const EnvelopeHeader *env) {
    return env->lane_key % kLanes;
}

enum EntryFlags : uint16_t {
    kEntryHasProducer = 1, // exactly-once producer id + batch sequence present
    kEntryBinary = 2,      // rows in COPY BINARY tuple format, column types after the rows
};

struct EntryHeader {
    uint32_t len; // whole entry in bytes, multiple of kAlign
    uint32_t reloid;
    uint32_t roleid;
    uint32_t nrows;
    uint64_t ticket;
    uint32_t first_row; // 1-based number of this slice's first row within the ticket
    uint16_t natts;     // 0 = all columns in table order
    uint16_t flags;
    uint32_t data_len;
    uint32_t producer_len;
    int64_t batch_seq;
    uint32_t settings_len; // bytes of input settings (copy_format.cpp), after the producer id
    uint32_t reserved;
};

constexpr uint64_t kEnvelopeOverhead = sizeof(RecordTag) + align_up(sizeof(EnvelopeHeader));

inline uint64_t entry_size(uint32_t natts, uint32_t producer_len, uint32_t settings_len, uint64_t data_len) {
    return align_up(sizeof(EntryHeader) + natts * sizeof(int16_t) + producer_len + settings_len + data_len);
}

inline EnvelopeHeader *envelope_of(Ring *r, uint64_t pos) {
    return reinterpret_cast<EnvelopeHeader *>(r->bytes(pos) + sizeof(RecordTag));
}

inline EntryHeader *first_entry(Ring *r, uint64_t pos) {
    return reinterpret_cast<EntryHeader *>(r->bytes(pos) + kEnvelopeOverhead);
}

inline EntryHeader *next_entry(EntryHeader *e) {
    return reinterpret_cast<EntryHeader *>(reinterpret_cast<unsigned char *>(e) + e->len);
}

inline const int16_t *entry_attnums(const EntryHeader *e) {
    return reinterpret_cast<const int16_t *>(e + 1);
}

inline const char *entry_producer(const EntryHeader *e) {
    return reinterpret_cast<const char *>(entry_attnums(e) + e->natts);
}

inline const char *entry_settings(const EntryHeader *e) {
    return entry_producer(e) + e->producer_len;
}

inline const char *entry_data(const EntryHeader *e) {
    return entry_settings(e) + e->settings_len;
}

// Bytes of the column types a binary entry carries after its rows (0 for COPY text).
inline uint32_t entry_types_len(const EntryHeader *e) {
    return (e->flags & kEntryBinary) ? (uint32_t)e->natts * sizeof(uint32_t) : 0;
}

// The type of column i of a binary entry (unaligned: read by copy).
inline uint32_t entry_type(const EntryHeader *e, int i) {
    uint32_t t;
    std::memcpy(&t, entry_data(e) + e->data_len + (size_t)i * sizeof(uint32_t), sizeof(t));
    return t;
}

} // namespace pg_ingest
