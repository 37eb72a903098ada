// The C API, with the real libpq transport pointed at a server that does not exist.
#include <pgingest/pgingest.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Seen {
    std::mutex m;
    std::vector<std::pair<intptr_t, pgi_error>> rows;
    std::string first_message;
};

void on_delivery(const pgi_delivery_report *r, void *ctx) {
    auto *seen = static_cast<Seen *>(ctx);
    std::lock_guard<std::mutex> lock(seen->m);
    if (seen->rows.empty())
        seen->first_message = r->message;
    seen->rows.emplace_back(reinterpret_cast<intptr_t>(r->row_opaque), r->error);
}

} // namespace

TEST(CApi, ConfigErrorsAreReported) {
    char err[200] = "";
    pgi_config *conf = pgi_config_new();
    EXPECT_EQ(pgi_config_set(conf, "pool_max", "abc", err, sizeof err), PGI_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(err).find("pool_max"), std::string::npos);
    EXPECT_EQ(pgi_config_set(conf, "bogus", "1", err, sizeof err), PGI_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(pgi_config_set(conf, "pool_min", "3", err, sizeof err), PGI_OK);
    EXPECT_EQ(pgi_config_set(conf, "pool_max", "2", err, sizeof err), PGI_OK);
    EXPECT_EQ(pgi_producer_new(conf, err, sizeof err), nullptr); // pool_min > pool_max
    EXPECT_NE(std::string(err).find("pool_min"), std::string::npos);
    pgi_config_free(conf);
    EXPECT_STREQ(pgi_error_name(PGI_ERR_QUEUE_FULL), "queue full");
}

TEST(CApi, RowsFailThroughTheCallbackWhenTheServerIsUnreachable) {
    char err[200] = "";
    Seen seen;
    pgi_config *conf = pgi_config_new();
    // A unix socket directory that does not exist: libpq fails at once, no network involved.
    ASSERT_EQ(
        pgi_config_set(conf, "conninfo", "host=/nonexistent/pgingest-test port=1 dbname=x", err, sizeof err),
        PGI_OK);
    ASSERT_EQ(pgi_config_set(conf, "pool_min", "1", err, sizeof err), PGI_OK);
    ASSERT_EQ(pgi_config_set(conf, "retry_max_attempts", "2", err, sizeof err), PGI_OK);
    ASSERT_EQ(pgi_config_set(conf, "retry_initial_backoff_ms", "10", err, sizeof err), PGI_OK);
    ASSERT_EQ(pgi_config_set(conf, "log_level", "off", err, sizeof err), PGI_OK);
    pgi_config_set_delivery_cb(conf, on_delivery, &seen);
    pgi_producer *p = pgi_producer_new(conf, err, sizeof err);
    pgi_config_free(conf);
    ASSERT_NE(p, nullptr) << err;
    EXPECT_EQ(std::strlen(pgi_producer_id(p)), 36u);

    const char *cols[] = {"id", "v"};
    EXPECT_EQ(pgi_define_table(p, "t", cols, 2), PGI_OK);
    pgi_row *row = pgi_row_new();
    for (intptr_t i = 1; i <= 3; i++) {
        pgi_row_clear(row);
        pgi_row_add_int64(row, i);
        pgi_row_add_text(row, "x\ty");
        EXPECT_EQ(pgi_row_error(row), PGI_OK);
        EXPECT_EQ(pgi_produce(p, "t", row, reinterpret_cast<void *>(i)), PGI_OK);
    }
    pgi_row_clear(row);
    pgi_row_add_date(row, 2023, 2, 29);
    EXPECT_EQ(pgi_row_error(row), PGI_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(pgi_produce(p, "t", row, nullptr), PGI_ERR_INVALID_ARGUMENT);
    pgi_row_free(row);

    EXPECT_EQ(pgi_flush(p, 20000), PGI_OK);
    pgi_metrics m;
    pgi_get_metrics(p, &m);
    EXPECT_EQ(m.enqueued, 3u);
    EXPECT_EQ(m.failed, 3u);
    EXPECT_GE(m.connect_failures, 2u);
    EXPECT_EQ(pgi_close(p, 1000), PGI_OK);
    EXPECT_EQ(pgi_produce(p, "t", nullptr, nullptr), PGI_ERR_INVALID_ARGUMENT);
    pgi_producer_free(p);

    std::lock_guard<std::mutex> lock(seen.m);
    ASSERT_EQ(seen.rows.size(), 3u);
    intptr_t sum = 0;
    for (auto &r : seen.rows) {
        sum += r.first;
        EXPECT_EQ(r.second, PGI_ERR_RETRIES_EXHAUSTED);
    }
    EXPECT_EQ(sum, 6);
    EXPECT_NE(seen.first_message.find("2 attempts"), std::string::npos) << seen.first_message;
}
