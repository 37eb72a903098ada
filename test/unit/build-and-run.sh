#!/usr/bin/env bash
# Builds and runs the ring unit tests under ThreadSanitizer and under AddressSanitizer+UBSan.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/unit; mkdir -p "$out"
rc=0
for san in thread "address,undefined"; do
  name=ring_test_${san%%,*}
  g++ -std=c++17 -O1 -g -fsanitize=$san -fno-omit-frame-pointer -Wall -Wextra -Werror \
      test/unit/ring_test.cpp -o "$out/$name" -lgtest -lgtest_main -pthread
  echo "-- $name"
  "$out/$name" --gtest_brief=1 || rc=1
done
exit $rc
