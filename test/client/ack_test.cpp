// The ack setting: its names, ProducerConfig's ack/durable keys and their precedence, the C API
// key, and what the libpq transport sends on each new connection (checked against
// fake_pg_server.hpp: libpq talking to a fake server over a Unix socket, no PostgreSQL).
#include "ack_setting.hpp"
#include "fake_pg_server.hpp"

#include <pgingest/pgingest.h>
#include <pgingest/producer.hpp>
#include <pgingest/transport.hpp>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

using namespace pgingest;
using pgingest::testing::FakePgServer;
using namespace std::chrono_literals;

namespace {

const std::vector<std::pair<AckMode, std::string>> kModes = {
    {AckMode::kCommitted, "committed"},
    {AckMode::kLogged, "logged"},
    {AckMode::kQueued, "queued"},
    {AckMode::kMemory, "memory"},
};

const AckMode kNotAMode = static_cast<AckMode>(42);

// Connects once through the libpq transport; the status of the attempt.
Status connect_once(const std::shared_ptr<Transport> &transport) {
    Status error;
    auto conn = transport->connect(error);
    EXPECT_EQ(conn != nullptr, error.ok()) << error.to_string();
    return error;
}

} // namespace

TEST(Ack, NamesRoundTrip) {
    for (const auto &[mode, name] : kModes) {
        EXPECT_STREQ(ack_mode_name(mode), name.c_str());
        AckMode parsed = kNotAMode;
        EXPECT_TRUE(parse_ack_mode(name, parsed)) << name;
        EXPECT_EQ(parsed, mode);
    }
    EXPECT_EQ(ack_mode_name(kNotAMode), nullptr);
    AckMode untouched = AckMode::kMemory;
    for (const char *bad :
         {"", "Committed", "COMMITTED", "commit", "committed ", "on", "off", "durable", "1"})
        EXPECT_FALSE(parse_ack_mode(bad, untouched)) << '"' << bad << '"';
    EXPECT_EQ(untouched, AckMode::kMemory);
}

TEST(Ack, DefaultIsCommitted) {
    ProducerConfig c;
    EXPECT_FALSE(c.ack.has_value());
    EXPECT_TRUE(c.durable);
    EXPECT_EQ(c.effective_ack(), AckMode::kCommitted);
}

TEST(Ack, SetAcceptsEveryMode) {
    for (const auto &[mode, name] : kModes) {
        ProducerConfig c;
        ASSERT_TRUE(c.set("ack", name).ok()) << name;
        ASSERT_TRUE(c.ack.has_value());
        EXPECT_EQ(*c.ack, mode);
        EXPECT_EQ(c.effective_ack(), mode);
        EXPECT_TRUE(c.validate().ok());
    }
}

TEST(Ack, SetRefusesUnknownValuesClearlyAndKeepsTheOldOne) {
    ProducerConfig c;
    ASSERT_TRUE(c.set("ack", "logged").ok());
    for (const char *bad : {"", "Logged", "fast", "on", "true", "wait"}) {
        Status s = c.set("ack", bad);
        EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
        EXPECT_NE(s.message().find("setting ack = \"" + std::string(bad) + "\""), std::string::npos)
            << s.message();
        EXPECT_NE(s.message().find("expected committed, logged, queued or memory"), std::string::npos)
            << s.message();
    }
    EXPECT_EQ(c.effective_ack(), AckMode::kLogged);
}

TEST(Ack, DurableIsTheOlderForm) {
    ProducerConfig c;
    ASSERT_TRUE(c.set("durable", "off").ok());
    EXPECT_FALSE(c.ack.has_value());
    EXPECT_EQ(c.effective_ack(), AckMode::kQueued);
    ASSERT_TRUE(c.set("durable", "on").ok());
    EXPECT_EQ(c.effective_ack(), AckMode::kCommitted);
    // The fields, as C++ callers set them.
    ProducerConfig f;
    f.durable = false;
    EXPECT_EQ(f.effective_ack(), AckMode::kQueued);
    // A bad durable value says what it takes.
    Status s = c.set("durable", "maybe");
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(s.message().find("expected on or off"), std::string::npos) << s.message();
}

TEST(Ack, AckWinsOverDurableInEitherOrder) {
    ProducerConfig a; // ack first
    ASSERT_TRUE(a.set("ack", "memory").ok());
    ASSERT_TRUE(a.set("durable", "on").ok());
    EXPECT_EQ(a.effective_ack(), AckMode::kMemory);
    ProducerConfig b; // durable first
    ASSERT_TRUE(b.set("durable", "off").ok());
    ASSERT_TRUE(b.set("ack", "committed").ok());
    EXPECT_EQ(b.effective_ack(), AckMode::kCommitted);
    ProducerConfig f; // the fields
    f.durable = false;
    f.ack = AckMode::kLogged;
    EXPECT_EQ(f.effective_ack(), AckMode::kLogged);
}

TEST(Ack, ValidateRefusesAValueOutsideTheEnum) {
    ProducerConfig c;
    c.ack = kNotAMode;
    Status s = c.validate();
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(s.message().find("ack"), std::string::npos) << s.message();
    EXPECT_THROW({ Producer p(c); }, std::invalid_argument);
}

TEST(Ack, CApiTakesTheKey) {
    char err[200] = "";
    pgi_config *conf = pgi_config_new();
    EXPECT_EQ(pgi_config_set(conf, "ack", "queued", err, sizeof err), PGI_OK);
    EXPECT_EQ(pgi_config_set(conf, "ack", "soon", err, sizeof err), PGI_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(err).find("committed, logged, queued or memory"), std::string::npos) << err;
    pgi_config_free(conf);
}

TEST(Ack, Statements) {
    for (const auto &[mode, name] : kModes)
        EXPECT_EQ(detail::ack_statement(mode), "SET ingest.ack = " + name);
    EXPECT_EQ(detail::ack_statement(kNotAMode), "");
    EXPECT_STREQ(detail::legacy_ack_statement(AckMode::kCommitted), "SET ingest.wait_for_commit = on");
    EXPECT_STREQ(detail::legacy_ack_statement(AckMode::kMemory), "SET ingest.wait_for_commit = off");
    EXPECT_EQ(detail::legacy_ack_statement(AckMode::kLogged), nullptr);
    EXPECT_EQ(detail::legacy_ack_statement(AckMode::kQueued), nullptr);
    EXPECT_TRUE(detail::unknown_setting("42704"));
    EXPECT_TRUE(detail::unknown_setting("42602"));
    for (const char *other : {"", "22023", "42501", "08006", "57P01"})
        EXPECT_FALSE(detail::unknown_setting(other)) << other;
}

// The libpq transport, against a fake server: one SET ingest.ack per connection, nothing else.
TEST(AckTransport, SetsIngestAckOnEachConnection) {
    for (const auto &[mode, name] : kModes) {
        FakePgServer server;
        auto transport = make_libpq_transport(server.conninfo(), mode);
        ASSERT_TRUE(connect_once(transport).ok()) << name;
        ASSERT_TRUE(connect_once(transport).ok()) << name;
        EXPECT_EQ(server.queries(), std::vector<std::string>(2, "SET ingest.ack = " + name));
    }
}

TEST(AckTransport, DeprecatedDurableOverload) {
    for (bool durable : {true, false}) {
        FakePgServer server;
        ASSERT_TRUE(connect_once(make_libpq_transport(server.conninfo(), durable)).ok());
        EXPECT_EQ(server.queries(), std::vector<std::string>{durable ? "SET ingest.ack = committed"
                                                                     : "SET ingest.ack = queued"});
    }
}

// pg_ingest 0.2.0 reserves the "ingest" prefix and has no ingest.ack (42602; 42704, unrecognized
// parameter, is taken the same way). Its wait_for_commit gives committed (on) and memory (off).
TEST(AckTransport, OlderServerGetsWaitForCommitWhereItMeansTheSame) {
    for (const char *state : {"42602", "42704"}) {
        auto old_server = [state](const std::string &q) {
            return q.rfind("SET ingest.ack", 0) == 0 ? std::string(state) : std::string();
        };
        for (auto [mode, legacy] : {std::pair{AckMode::kCommitted, "SET ingest.wait_for_commit = on"},
                                    std::pair{AckMode::kMemory, "SET ingest.wait_for_commit = off"}}) {
            FakePgServer server(old_server);
            ASSERT_TRUE(connect_once(make_libpq_transport(server.conninfo(), mode)).ok());
            EXPECT_EQ(server.queries(), (std::vector<std::string>{
                                            std::string("SET ingest.ack = ") + ack_mode_name(mode), legacy}));
        }
        for (AckMode mode : {AckMode::kLogged, AckMode::kQueued}) {
            FakePgServer server(old_server);
            Status s = connect_once(make_libpq_transport(server.conninfo(), mode));
            EXPECT_EQ(s.code(), ErrorCode::kPermanentError);
            EXPECT_EQ(s.sqlstate(), state);
            EXPECT_NE(s.message().find(std::string("SET ingest.ack = ") + ack_mode_name(mode) + " failed"),
                      std::string::npos)
                << s.message();
            EXPECT_NE(s.message().find("needs pg_ingest 0.3.0 or later"), std::string::npos) << s.message();
            EXPECT_EQ(server.queries().size(), 1u); // no weaker mode behind the caller's back
        }
    }
}

TEST(AckTransport, OtherFailuresOfTheSetAreNotRetriedAnotherWay) {
    FakePgServer server([](const std::string &) { return std::string("42501"); });
    Status s = connect_once(make_libpq_transport(server.conninfo(), AckMode::kCommitted));
    EXPECT_EQ(s.code(), ErrorCode::kPermanentError);
    EXPECT_EQ(s.sqlstate(), "42501");
    EXPECT_EQ(s.message().find("0.3.0"), std::string::npos) << s.message();
    EXPECT_EQ(server.queries(), std::vector<std::string>{"SET ingest.ack = committed"});
}

TEST(AckTransport, AModeOutsideTheEnumSendsNothing) {
    FakePgServer server;
    Status s = connect_once(make_libpq_transport(server.conninfo(), kNotAMode));
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(server.queries().empty());
}

// Producer(config) gives its connections config.effective_ack().
TEST(AckTransport, ProducerUsesTheEffectiveMode) {
    struct Case {
        const char *ack;     // nullptr: not set
        const char *durable; // nullptr: not set
        const char *expected;
    };
    for (const Case &k :
         {Case{nullptr, nullptr, "SET ingest.ack = committed"},
          Case{nullptr, "off", "SET ingest.ack = queued"}, Case{"logged", "off", "SET ingest.ack = logged"},
          Case{"memory", nullptr, "SET ingest.ack = memory"}}) {
        FakePgServer server;
        ProducerConfig c;
        c.conninfo = server.conninfo();
        c.pool_min = 1;
        c.pool_max = 1;
        c.log_level = LogLevel::kOff;
        if (k.durable) {
            ASSERT_TRUE(c.set("durable", k.durable).ok());
        }
        if (k.ack) {
            ASSERT_TRUE(c.set("ack", k.ack).ok());
        }
        {
            Producer p(c); // its sender opens the pool's connection at start
            ASSERT_TRUE(server.wait_for_queries(1, 10s));
            p.close(0ms);
        }
        EXPECT_EQ(server.queries().at(0), k.expected);
    }
}
