#!/usr/bin/env bash
# Configures, builds and runs libpgingest's unit tests (test/client/) three ways: a normal build
# (which also checks the install tree: find_package(pgingest) and pkg-config), AddressSanitizer+UBSan,
# and ThreadSanitizer. Build trees go to build/client-tests/<kind> at the repository top.
#   client/run-tests.sh                 all three
#   client/run-tests.sh normal tsan     some of them
# Exits non-zero if anything fails to configure, build or pass.
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
OUT=$TOP/build/client-tests
KINDS=${*:-normal asan tsan}
JOBS=${JOBS:-2}
WERROR=${WERROR:-ON}
failed=()
start=$(date +%s)

run() { # run NAME CMD...: prints the output only on failure
  local name=$1; shift
  local log=$OUT/$name.log
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $name (log: $log)"; tail -n 80 "$log"
    return 1
  fi
}

check_install() { # the installed package works for a consumer, through CMake and pkg-config
  local b=$OUT/normal prefix=$OUT/normal/install consumer=$OUT/consumer
  rm -rf "$prefix" "$consumer"; mkdir -p "$consumer"
  cmake --install "$b" --prefix "$prefix" >/dev/null || return 1
  cat >"$consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(consumer CXX)
find_package(pgingest 0.1 REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE pgingest::pgingest)
add_executable(consumer_static main.cpp)
target_link_libraries(consumer_static PRIVATE pgingest::pgingest_static)
CMAKE
  cat >"$consumer/main.cpp" <<'CPP'
#include <pgingest/pgingest.hpp>
#include <pgingest/pgingest.h>
#include <chrono>
int main() { // touches every exported class, so a missing export fails to link
    using namespace std::chrono;
    pgingest::Row row;
    row.add(1).add("x").add(pgingest::Uuid::random_v4())
       .add(pgingest::Timestamp::from_time_point(system_clock::time_point{}));
    pgingest::ProducerConfig c;
    c.conninfo = "host=/nonexistent/pgingest port=1";
    c.pool_min = 1;
    c.log_level = pgingest::LogLevel::kOff;
    bool ok = row.status().ok() && c.set("linger_ms", "1").ok() && c.retry.backoff(2) == milliseconds(1000);
    pgingest::Producer p(c);
    ok = ok && p.enqueue(p.table("t"), std::move(row)).ok() && p.close(milliseconds(0)).code() != pgingest::ErrorCode::kOk;
    return ok && pgi_error_name(PGI_OK) != nullptr ? 0 : 1;
}
CPP
  cmake -S "$consumer" -B "$consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
    cmake --build "$consumer/build" -j"$JOBS" >/dev/null &&
    LD_LIBRARY_PATH="$prefix/lib" "$consumer/build/consumer" && "$consumer/build/consumer_static" &&
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --exists pgingest &&
    g++ -std=c++17 "$consumer/main.cpp" -o "$consumer/pc_consumer" \
      $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs pgingest) &&
    LD_LIBRARY_PATH="$prefix/lib" "$consumer/pc_consumer"
}

mkdir -p "$OUT"
for kind in $KINDS; do
  case $kind in
    normal) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGINGEST_BUILD_EXAMPLES=ON) ;;
    asan)   flags=(-DCMAKE_BUILD_TYPE=Debug -DPGINGEST_SANITIZE=address -DPGINGEST_BUILD_EXAMPLES=OFF) ;;
    tsan)   flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGINGEST_SANITIZE=thread -DPGINGEST_BUILD_EXAMPLES=OFF) ;;
    *) echo "unknown build kind $kind (normal, asan, tsan)"; exit 2 ;;
  esac
  echo "== client $kind build"
  b=$OUT/$kind
  run "$kind-configure" cmake -S "$TOP" -B "$b" -DPGINGEST_WERROR="$WERROR" -DPGINGEST_BUILD_TESTS=ON "${flags[@]}" &&
    run "$kind-build" cmake --build "$b" -j"$JOBS" &&
    run "$kind-test" ctest --test-dir "$b" --output-on-failure -j"$JOBS" || { failed+=("$kind"); continue; }
  grep -E "tests passed|tests failed" "$OUT/$kind-test.log"
  if [ "$kind" = normal ]; then
    run "normal-install" check_install || failed+=("install")
  fi
done

echo "client tests finished in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then echo "client: failed: ${failed[*]}"; exit 1; fi
echo "client: all passed"
