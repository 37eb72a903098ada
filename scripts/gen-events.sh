#!/usr/bin/env bash
# Writes N realistic demo events as CSV (id,at,user_id,kind,payload) to stdout, for the quickstart.
set -euo pipefail
rows=${1:-1000000}
awk -v n="$rows" 'BEGIN {
  srand(42);
  split("view,click,buy,share", kinds, ",");
  base = 1767225600;  # 2026-01-01 00:00:00 UTC
  for (i = 1; i <= n; i++) {
    t = base + int(i * 0.5);
    printf "%d,%s,%d,%s,\"{\"\"session\"\": %d, \"\"ms\"\": %d}\"\n", i,
           strftime("%Y-%m-%d %H:%M:%S+00", t, 1), int(rand() * 10000), kinds[1 + i % 4],
           i % 977, int(rand() * 1500);
  }
}'
