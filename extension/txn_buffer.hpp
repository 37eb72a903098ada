// txn_buffer.hpp — the transaction buffer: rows enqueued by this backend's transaction, handed to
// the ring when it commits (txn_buffer.cpp).
#pragma once

#include "pg_headers.hpp"

namespace pg_ingest {

// Registers the transaction callbacks that hand the buffer over (idempotent).
void enqueue_install_callbacks();

} // namespace pg_ingest
