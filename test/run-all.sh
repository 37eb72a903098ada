#!/usr/bin/env bash
# Runs every pg_ingest test: ring unit tests (test/unit), pg_regress (sql/, expected/), isolation
# (test/isolation), TAP crash/concurrency tests (test/t), and the client library's unit tests
# (test/client, through client/run-tests.sh). test/README.md maps the test folders.
# Builds and installs the extension first (installing needs root, or sudo).
# PostgreSQL refuses to run as root, so servers run as the unprivileged user $PGI_TEST_USER
# (default: postgres); test output goes to build/test, which that user owns.
#
#   test/run-all.sh                 everything
#   test/run-all.sh regress tap     only some suites (unit, regress, isolation, tap, client)
#   PGI_TAP_ONLY=011 test/run-all.sh tap    only the TAP tests whose name matches a regex
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
PG_BINDIR=$(pg_config --bindir)
PGXS_DIR=$(cd "$(dirname "$(pg_config --pgxs)")/../.." && pwd)
TEST_USER=${PGI_TEST_USER:-postgres}
OUT=$TOP/build/test
SUITES=${*:-unit regress isolation tap client}
WERROR=${WERROR:-1}
# Every suite runs under a time limit so a hung test fails instead of stalling CI; timeout(1)
# signals the whole process group (servers started by pg_ctl are detached and are stopped by
# the test framework or die with their data directory).
TAP_TIMEOUT=${PGI_TAP_TIMEOUT:-600}
SUITE_TIMEOUT=${PGI_SUITE_TIMEOUT:-1500}
limit() { local secs=$1; shift; timeout -k 30 "$secs" "$@"; local rc=$?; [ $rc -eq 124 ] && echo "TIMED OUT after ${secs}s: ${*: -1}"; return $rc; }

# AS_TEST_USER: command prefix that runs a program as the unprivileged test user.
if [ "$(id -u)" -eq 0 ]; then AS_TEST_USER=(runuser -u "$TEST_USER" -- env PATH="$PG_BINDIR:$PATH")
else AS_TEST_USER=(env PATH="$PG_BINDIR:$PATH"); fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

echo "== dependencies"
scripts/install-deps.sh || { echo "installing dependencies failed"; exit 1; }
echo "== build and install the extension"
make -s WERROR="$WERROR" >/dev/null || { echo "build failed"; exit 1; }
$SUDO make -s install >/dev/null || { echo "install failed"; exit 1; }
# The TAP tests drive the client library's programs (010_client, 011_cli): build them too.
if [[ " $SUITES " == *" tap "* ]] && [ -f CMakeLists.txt ]; then
  echo "== build the client library and tools"
  make -s client >/dev/null || { echo "client build failed"; exit 1; }
fi

# The test user needs its own writable directory and a readable copy of the test inputs; when
# it cannot reach the checkout (e.g. a clone under /root), both go to /tmp instead.
if [ "$(id -u)" -eq 0 ] && ! runuser -u "$TEST_USER" -- test -r "$TOP/sql/basic.sql"; then
  OUT=/tmp/pg_ingest-test
fi
rm -rf "$OUT"; mkdir -p "$OUT/src"
cp -r sql expected test "$OUT/src/"
# Programs the TAP tests drive (built above): copied where the test user can run them.
mkdir -p "$OUT/bin"
for b in build/client/client/examples/multi_producer build/client/client/tools/pgingest; do
  [ -x "$b" ] && cp "$b" "$OUT/bin/"
done
[ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER" "$OUT"
SRC=$OUT/src

passed=0; failed=0; failures=()

# run_pg_regress TOOL INPUTDIR DBNAME TESTS...: pg_regress or pg_isolation_regress on a temporary
# instance that preloads pg_ingest; prints regression.diffs on failure.
run_pg_regress() {
  local tool=$1 inputdir=$2 dbname=$3 name; shift 3
  name=$(dirname "$tool")
  limit "$SUITE_TIMEOUT" "${AS_TEST_USER[@]}" "$PGXS_DIR/src/test/$tool" --bindir="$PG_BINDIR" \
    --temp-instance="$OUT/$name/tmp_check" --temp-config="$SRC/test/pg_ingest.conf" \
    --inputdir="$inputdir" --outputdir="$OUT/$name" --dbname="$dbname" "$@"
  local rc=$?
  record "$name" $rc
  [ $rc -ne 0 ] && [ -f "$OUT/$name/regression.diffs" ] && cat "$OUT/$name/regression.diffs"
}
record() { if [ "$2" -eq 0 ]; then passed=$((passed+1)); else failed=$((failed+1)); failures+=("$1"); fi; }

for suite in $SUITES; do
  case $suite in
  unit)
    echo "== ring unit tests (ThreadSanitizer, AddressSanitizer+UBSan)"
    limit "$SUITE_TIMEOUT" test/unit/build-and-run.sh; record unit $?
    ;;
  regress)
    echo "== pg_regress"
    run_pg_regress regress/pg_regress "$SRC" contrib_regression $(cd sql && ls *.sql | sed 's/\.sql$//' | sort)
    ;;
  isolation)
    specs=$(cd test/isolation/specs 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
    [ -z "$specs" ] && continue
    echo "== isolation"
    run_pg_regress isolation/pg_isolation_regress "$SRC/test/isolation" isolation_regression $specs
    ;;
  tap)
    ls test/t/*.pl >/dev/null 2>&1 || continue
    echo "== TAP"
    for t in test/t/*.pl; do
      name=$(basename "$t" .pl)
      [ -n "${PGI_TAP_ONLY:-}" ] && [[ ! $name =~ $PGI_TAP_ONLY ]] && continue
      mkdir -p "$OUT/tap/$name"; [ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER" "$OUT/tap"
      (cd "$OUT/tap/$name" && limit "$TAP_TIMEOUT" "${AS_TEST_USER[@]}" TESTDIR="$OUT/tap/$name" PGI_TOP="$SRC" PGI_CLIENT_BIN="$OUT/bin/multi_producer" PGI_CLI="$OUT/bin/pgingest" \
        PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
        prove -I "$PGXS_DIR/src/test/perl" -I "$SRC/test/perl" "$SRC/$t")
      rc=$?; record "tap/$name" $rc
      # A timed-out test cannot stop its servers; do it here so they do not outlive the run.
      [ $rc -eq 124 ] && pkill -KILL -f -- "$OUT/tap/$name/"
      if [ $rc -ne 0 ]; then
        for f in "$OUT/tap/$name"/tmp_check/log/*; do echo "---- $f (tail)"; tail -n 60 "$f"; done
      fi
    done
    ;;
  client)
    [ -x client/run-tests.sh ] || continue
    echo "== client library"
    limit "$SUITE_TIMEOUT" client/run-tests.sh; record client $?
    ;;
  *) echo "unknown suite $suite"; exit 2 ;;
  esac
done

echo
echo "suites: ${passed} passed, ${failed} failed"
[ $failed -eq 0 ] || { echo "failed: ${failures[*]}"; exit 1; }
