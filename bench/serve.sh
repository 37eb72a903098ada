#!/usr/bin/env bash
# The serve phase of bench/run.sh: HTTP ingestion under wrk, `pgingest serve` (ack=committed and
# ack=queued) beside a baseline in the same run, a minimal node-postgres endpoint doing one
# multi-row INSERT per request over a pool of 20 (bench/serve_baseline.js, `pg` installed with npm
# into BENCH_TMP). Every contender gets BENCH_SERVE_CONNECTIONS connections posting
# BENCH_SERVE_BATCH-record JSON arrays for BENCH_SERVE_SECONDS, against bench_nopk, from TRUNCATE.
# Called by run.sh with the cluster up and PGHOST/PGPORT/PGUSER/PGDATABASE exported; writes
# raw/serve.tsv, raw/serve_*.log and $BENCH_OUT/SERVE.md.
# serve.tsv: contender connections batch seconds ok non2xx errors rows_per_s rows_in_table p50 p90
#            p99 p999 max flush_s status note
#
#   BENCH_SERVE_SECONDS [20]  BENCH_SERVE_CONNECTIONS [1000]  BENCH_SERVE_BATCH [100]
#   BENCH_SERVE_WRK_THREADS [2]  BENCH_SERVE_PORT [18480]
#   BENCH_SERVE_CONTENDERS ["serve_committed serve_queued node_pg"]
#   BENCH_SERVE_PROGRAM [build/client/client/tools/pgingest]
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
BENCH=$TOP/bench
BENCH_OUT=${BENCH_OUT:-$BENCH/results}
RAW=$BENCH_OUT/raw
BENCH_TMP=${BENCH_TMP:-/var/tmp/pg_ingest-bench/files}
SECS=${BENCH_SERVE_SECONDS:-20}
CONNS=${BENCH_SERVE_CONNECTIONS:-1000}
export BENCH_SERVE_BATCH=${BENCH_SERVE_BATCH:-100}
WRK_THREADS=${BENCH_SERVE_WRK_THREADS:-2}
PORT=${BENCH_SERVE_PORT:-18480}
CONTENDERS=${BENCH_SERVE_CONTENDERS:-serve_committed serve_queued node_pg}
PROGRAM=${BENCH_SERVE_PROGRAM:-$TOP/build/client/client/tools/pgingest}

log() { echo "bench: $(date +%H:%M:%S) serve: $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
mkdir -p "$RAW" "$BENCH_TMP"
command -v wrk >/dev/null || { log "wrk not found (apt-get install wrk; scripts/install-deps.sh does)"; exit 1; }
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((CONNS * 2 + 100)) ] || ulimit -n $((CONNS * 2 + 100))
: >"$RAW/serve.tsv"

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

wait_http() { # wait_http URL: until anything answers (any HTTP code), 30 s at most
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" != 000 ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

node_ready() { # installs pg for the baseline into BENCH_TMP/node; false (with a note) when it cannot
  command -v node >/dev/null && command -v npm >/dev/null || { NOTE="node or npm not installed"; return 1; }
  mkdir -p "$BENCH_TMP/node"
  cp "$BENCH/package.json" "$BENCH_TMP/node/"
  (cd "$BENCH_TMP/node" && npm install --no-audit --no-fund --loglevel=error) >"$RAW/serve_npm.log" 2>&1 ||
    { NOTE="npm install pg failed, see raw/serve_npm.log"; return 1; }
}

val() { sed -n "s/^$1=//p" "$2" | tail -1; }

run_contender() { # run_contender NAME
  local name=$1 logf="$RAW/serve_$1.log" path="/v1/tables/bench_nopk/rows" rc=0 t_flush0 t_flush1
  NOTE=""
  q -c "TRUNCATE bench_nopk" -c "SELECT ingest_reset_stats()" -c "CHECKPOINT" >/dev/null
  case $name in
    serve_committed|serve_queued)
      [ -x "$PROGRAM" ] || { NOTE="${PROGRAM#$TOP/} not built (make client)"; return 1; }
      [ "$name" = serve_queued ] && path="$path?ack=queued"
      "$PROGRAM" serve --listen "127.0.0.1:$PORT" --threads 2 --pool-max 8 >"$RAW/serve_${name}_server.log" 2>&1 &
      SERVER_PID=$! ;;
    node_pg)
      node_ready || return 1
      NODE_PATH="$BENCH_TMP/node/node_modules" node "$BENCH/serve_baseline.js" "$PORT" >"$RAW/serve_${name}_server.log" 2>&1 &
      SERVER_PID=$! ;;
  esac
  wait_http "http://127.0.0.1:$PORT/healthz" || { NOTE="server did not start, see raw/serve_${name}_server.log"; stop_server; return 1; }
  log "$name: wrk -t $WRK_THREADS -c $CONNS -d ${SECS}s, $BENCH_SERVE_BATCH records per request"
  WRK_PATH=$path wrk -t "$WRK_THREADS" -c "$CONNS" -d "${SECS}s" --timeout 30s -s "$BENCH/serve_post.lua" \
    "http://127.0.0.1:$PORT" >"$logf" 2>&1 || rc=$?
  stop_server # SIGTERM: pgingest serve flushes every accepted row before it exits
  t_flush0=$(date +%s.%N); q -c "SELECT ingest_flush('10 min')" >/dev/null; t_flush1=$(date +%s.%N)
  [ $rc -eq 0 ] && [ -n "$(val wrk_requests "$logf")" ] || { NOTE="wrk failed (exit $rc), see raw/serve_$name.log"; return 1; }
  local reqs dur errs st ok rows rps p50 p90 p99 p999 mx
  reqs=$(val wrk_requests "$logf"); dur=$(val wrk_duration_s "$logf"); errs=$(val wrk_errors "$logf")
  st=$(val wrk_status_errors "$logf"); ok=$((reqs - st))
  rows=$(q -c "SELECT count(*) FROM bench_nopk")
  rps=$(awk -v ok="$ok" -v b="$BENCH_SERVE_BATCH" -v d="$dur" 'BEGIN {printf "%.0f", (d > 0 ? ok * b / d : 0)}')
  p50=$(val wrk_p50_ms "$logf"); p90=$(val wrk_p90_ms "$logf"); p99=$(val wrk_p99_ms "$logf")
  p999=$(val wrk_p999_ms "$logf"); mx=$(val wrk_max_ms "$logf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\tok\t\n' "$name" "$CONNS" "$BENCH_SERVE_BATCH" "$dur" \
    "$ok" "$st" "$errs" "$rps" "$rows" "$p50" "$p90" "$p99" "$p999" "$mx" \
    "$(awk -v a="$t_flush0" -v b="$t_flush1" 'BEGIN {print b - a}')" >>"$RAW/serve.tsv"
  log "  -> $ok requests answered 2xx ($st non-2xx, $errs errors), $rps acknowledged rows/s, $rows rows in table; p50/p99 $p50/$p99 ms"
}

for c in $CONTENDERS; do
  if ! run_contender "$c"; then
    log "$c: skipped: $NOTE"
    printf '%s\t%s\t%s\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\tskipped\t%s\n' "$c" "$CONNS" "$BENCH_SERVE_BATCH" "$NOTE" >>"$RAW/serve.tsv"
  fi
done

{
  echo "# HTTP ingestion: pgingest serve vs. a node-postgres endpoint"
  echo
  echo "wrk, $CONNS connections ($WRK_THREADS threads), ${SECS} s per contender, each request a JSON array of"
  echo "$BENCH_SERVE_BATCH records into bench_nopk (id, ts, n, msg), from TRUNCATE; same cluster and settings as"
  echo "RESULTS.md. Rows/s counts the rows of 2xx answers; \"rows in table\" is counted after the server's"
  echo "SIGTERM drain and ingest_flush(). Latency: wrk's, request sent to answer received (ms)."
  echo
  echo "| contender | 2xx answers | non-2xx | socket errors/timeouts | acknowledged rows/s | rows in table | p50 | p90 | p99 | p99.9 | max | note |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '{
    label = $1
    if ($1 == "serve_committed") label = "pgingest serve, ack=committed"
    if ($1 == "serve_queued") label = "pgingest serve, ack=queued"
    if ($1 == "node_pg") label = "node-postgres, INSERT per request, pool 20"
    if ($16 == "ok")
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | |\n", label, $5, $6, $7 - $6, $8, $9, $10, $11, $12, $13, $14
    else
      printf "| %s | – | – | – | – | – | – | – | – | – | – | skipped: %s |\n", label, $17
  }' "$RAW/serve.tsv"
  echo
  echo "Machine and settings: see RESULTS.md (raw/meta.env). Raw wrk output: raw/serve_*.log."
} >"$BENCH_OUT/SERVE.md"
log "wrote $BENCH_OUT/SERVE.md"
