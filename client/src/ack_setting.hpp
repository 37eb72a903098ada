// The statements that give a connection's session the producer's AckMode, and the fallback for
// servers older than pg_ingest 0.3.0 (libpq_transport.cpp sends them; test/client/ack_test.cpp
// checks them without a server).
#pragma once
#include <pgingest/config.hpp>

#include <string>
#include <string_view>

namespace pgingest::detail {

// "SET ingest.ack = committed" etc.; empty for a value outside AckMode.
std::string ack_statement(AckMode mode);

// True when a failed SET says the server does not know the setting: 42602 (invalid name: pg_ingest
// 0.2.0 reserves the "ingest" prefix but has no ingest.ack) or 42704 (unrecognized configuration
// parameter). A server without pg_ingest loaded takes any ingest.* as a placeholder instead.
bool unknown_setting(std::string_view sqlstate);

// What such an older server offers for the mode through ingest.wait_for_commit (committed: on;
// memory: off, which kept rows only in shared memory there), or nullptr when it cannot give the
// mode's promise (logged, queued).
const char *legacy_ack_statement(AckMode mode);

} // namespace pgingest::detail
