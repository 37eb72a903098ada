// The pgingest command's --ack and --wait-for-commit options, where no server is needed: the
// values each takes, that they exclude each other, --help, and that a valid choice gets past the
// option checks (a --dry-run with --columns connects to nothing). Runs the built binary
// (PGINGEST_CLI_PATH, set by CMake). What each mode does on a server: test/t/011_cli.pl.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct CliRun {
    int code = -1;
    std::string output; // stdout and stderr
};

CliRun pgingest(const std::string &args) {
    std::string cmd = std::string(PGINGEST_CLI_PATH) + " " + args + " </dev/null 2>&1";
    CliRun r;
    FILE *p = popen(cmd.c_str(), "r");
    if (!p)
        return r;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;)
        r.output.append(buf, n);
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

bool has(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

// Dry runs read a one-row CSV file (one per process: ctest runs tests in parallel); their dsn
// points nowhere, so a connection attempt would fail.
class Cli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        file_ = ::testing::TempDir() + "pgingest_cli_test." + std::to_string(getpid()) + ".csv";
        std::ofstream(file_) << "1,x\n";
    }
    static void TearDownTestSuite() { std::remove(file_.c_str()); }
    static std::string dry_run(const std::string &options) {
        return "load --dsn 'host=/nonexistent/pgingest port=1' -t t -c id,name --dry-run " + options + " " +
               file_;
    }
    static inline std::string file_;
};

TEST_F(Cli, AckTakesEachMode) {
    for (const char *mode : {"committed", "logged", "queued", "memory"}) {
        CliRun r = pgingest(dry_run(std::string("--ack ") + mode));
        EXPECT_EQ(r.code, 0) << mode << ": " << r.output;
        EXPECT_TRUE(has(r.output, "dry run: 1 rows read, 1 valid")) << r.output;
    }
}

TEST_F(Cli, AckRefusesOtherValues) {
    for (const char *bad : {"on", "Committed", "durable", "''"}) {
        CliRun r = pgingest(dry_run(std::string("--ack ") + bad));
        EXPECT_EQ(r.code, 2) << bad << ": " << r.output;
        EXPECT_TRUE(has(r.output, "--ack")) << r.output;
        EXPECT_TRUE(has(r.output, "committed,logged,queued,memory")) << r.output;
    }
}

TEST_F(Cli, WaitForCommitStillWorks) {
    for (const char *v : {"on", "off"}) {
        CliRun r = pgingest(dry_run(std::string("--wait-for-commit ") + v));
        EXPECT_EQ(r.code, 0) << v << ": " << r.output;
    }
    CliRun r = pgingest(dry_run("--wait-for-commit queued"));
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(has(r.output, "--wait-for-commit")) << r.output;
}

TEST_F(Cli, AckAndWaitForCommitExcludeEachOther) {
    for (const char *both : {"--ack queued --wait-for-commit off", "--wait-for-commit on --ack committed"}) {
        CliRun r = pgingest(dry_run(both));
        EXPECT_EQ(r.code, 2) << both << ": " << r.output;
        EXPECT_TRUE(has(r.output, "excludes")) << r.output;
        EXPECT_FALSE(has(r.output, "rows read")) << r.output;
    }
}

TEST_F(Cli, HelpDescribesAck) {
    CliRun r = pgingest("load --help");
    EXPECT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(has(r.output, "--ack TEXT:{committed,logged,queued,memory}")) << r.output;
    EXPECT_TRUE(has(r.output, "committed (inserted; the default)")) << r.output;
    EXPECT_TRUE(has(r.output, "--wait-for-commit TEXT:{on,off}")) << r.output;
    EXPECT_TRUE(has(r.output, "deprecated")) << r.output;
}
