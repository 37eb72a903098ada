#!/usr/bin/env bash
# memsample.sh INTERVAL LABEL:PID ...
# Every INTERVAL seconds, one line per live process on stdout (tab-separated):
#   elapsed_s  label  pid  VmRSS_kB  VmHWM_kB  RssAnon_kB  RssShmem_kB
# (from /proc/PID/status). VmRSS/VmHWM of a PostgreSQL process include the pages of shared
# memory (shared_buffers, the pg_ingest ring) it has touched; RssAnon is its private memory,
# the number that shows a leak. Stops when none of the processes is left (or when killed).
set -uo pipefail
interval=$1; shift
declare -A label
files=()
for spec in "$@"; do label[${spec#*:}]=${spec%%:*}; files+=("/proc/${spec#*:}/status"); done
specs=$(for p in "${!label[@]}"; do printf '%s=%s ' "$p" "${label[$p]}"; done)
start=$(date +%s%N)
while :; do
  t=$(( ($(date +%s%N) - start) / 1000000 ))
  live=()
  for f in "${files[@]}"; do [ -r "$f" ] && live+=("$f"); done
  [ ${#live[@]} -gt 0 ] || exit 0
  # one awk for all processes; a process that exits meanwhile is simply missing from this sample
  awk -v t="$t" -v specs="$specs" '
    BEGIN { n = split(specs, s, " "); for (i = 1; i <= n; i++) { split(s[i], kv, "="); lab[kv[1]] = kv[2] } }
    FNR == 1 { if (pid != "") out(); split(FILENAME, parts, "/"); pid = parts[3]; rss = hwm = anon = shm = "" }
    /^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } /^RssAnon:/ { anon = $2 } /^RssShmem:/ { shm = $2 }
    END { if (pid != "") out() }
    function out() { if (rss != "") printf "%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", t / 1000, lab[pid], pid, rss, hwm, anon, shm }
  ' "${live[@]}" 2>/dev/null
  sleep "$interval"
done
