#!/usr/bin/env bash
# pg_ingest benchmark suite: one command, run on demand (not part of CI pass/fail).
#
#   bench/run.sh                      full run (~30 min): writes bench/results/RESULTS.md + *.png
#   BENCH_ROWS=200000 BENCH_SECONDS=5 BENCH_MEMORY_SECONDS=20 bench/run.sh     small run (minutes)
#
# It starts its own throwaway cluster (scripts/cluster.sh with PGI_DATA/PGI_PORT, then the
# settings below appended to postgresql.conf), runs every contender against the same cluster and
# the same table definitions, one after the other, starting each from TRUNCATE + CHECKPOINT, and
# destroys the cluster on exit. Raw logs go to bench/results/raw/ (not committed).
#
# Environment (defaults in brackets):
#   BENCH_ROWS              rows per bulk contender [10000000] (rounded up to a multiple of
#                           BENCH_ARRAY_ROWS * BENCH_ARRAY_SESSIONS)
#   BENCH_SECONDS           measured duration of each single-row pgbench run [8]
#   BENCH_CLIENTS           client counts of the single-row runs ["1 4 16 64 256 1000"]
#   BENCH_TABLES            tables ["nopk pk"] (bench_nopk: no index; bench_pk: primary key on id)
#   BENCH_PHASES            phases to run ["single bulk latency memory web overhead pgbouncer ack serve"]
#   BENCH_JOBS              pgbench -j [2]
#   BENCH_ARRAY_ROWS        rows per ingest_enqueue array call [1000]
#   BENCH_ARRAY_SESSIONS    concurrent sessions of the array contender [4]
#   BENCH_LATENCY_SECONDS   duration of each latency run [20]
#   BENCH_LATENCY_CLIENTS   clients of the latency runs [client count of the measured peak]
#   BENCH_MEMORY_SECONDS    duration of the memory run [300]
#   BENCH_MEMORY_INTERVAL   RSS sampling interval in seconds [5]
#   BENCH_MEMORY_CLIENTS    clients of the memory run [16]
#   BENCH_CLIENT_PROGRAM    libpgingest benchmark program [build/client/client/tools/pgingest-bench]; skipped
#                           (with a note in the results) when it is not an executable file.
#                           Contract: see "libpgingest hook" below and docs/PERFORMANCE.md.
#   BENCH_CLIENT_THREADS    producer threads for it [16]
#   BENCH_LOADER_PROGRAM    the pgingest CLI of the bulk contender "pgingest load CSV" (vs psql \copy of
#                           the same CSV file) [build/client/client/tools/pgingest, built by make client];
#                           skipped (with a note in the results) when it is not an executable file
#   BENCH_SERVE_*           the serve phase (HTTP ingestion, bench/serve.sh: seconds, connections, batch,
#                           contenders); writes bench/results/SERVE.md
#   BENCH_WEB_*, BENCH_OVERHEAD_*, BENCH_PGB_*
#                           the web-table, call-overhead and pgbouncer phases (bench/web_phases.sh:
#                           seconds, clients, users, pool size, port); pgbouncer is installed with
#                           apt-get by the phase when missing
#   BENCH_ACK_SECONDS, BENCH_ACK_CLIENTS
#                           the ack phase (bench/ack_phase.sh): each ingest.ack mode vs INSERT and vs
#                           the ring-only fire-and-forget of pg_ingest 0.2.0, with WAL bytes per row
#   BENCH_PG_SETTINGS       extra postgresql.conf lines, ';'-separated (e.g. "commit_delay=100")
#   BENCH_FLUSH_DELAY_US    >0: the server's every fdatasync (WAL flush) sleeps this long after the
#                           real one (LD_PRELOAD of bench/slowflush.c), to model a slower disk [0]
#   BENCH_DATA              cluster data directory [/var/tmp/pg_ingest-bench/data]
#   BENCH_TMP               scratch directory for the COPY files [/var/tmp/pg_ingest-bench/files]
#   BENCH_PORT              port number (unix socket only, no TCP) [55439]
#   BENCH_OUT               results directory [bench/results]
#   BENCH_KEEP_CLUSTER      1: leave the cluster running at the end [0]
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
TOP=$(pwd)
BENCH=$TOP/bench

BENCH_ROWS=${BENCH_ROWS:-10000000}
BENCH_SECONDS=${BENCH_SECONDS:-8}
BENCH_CLIENTS=${BENCH_CLIENTS:-1 4 16 64 256 1000}
BENCH_TABLES=${BENCH_TABLES:-nopk pk}
BENCH_PHASES=${BENCH_PHASES:-single bulk latency memory web overhead pgbouncer ack serve}
BENCH_JOBS=${BENCH_JOBS:-2}
BENCH_ARRAY_ROWS=${BENCH_ARRAY_ROWS:-1000}
BENCH_ARRAY_SESSIONS=${BENCH_ARRAY_SESSIONS:-4}
BENCH_LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-20}
BENCH_LATENCY_CLIENTS=${BENCH_LATENCY_CLIENTS:-}
BENCH_MEMORY_SECONDS=${BENCH_MEMORY_SECONDS:-300}
BENCH_MEMORY_INTERVAL=${BENCH_MEMORY_INTERVAL:-5}
BENCH_MEMORY_CLIENTS=${BENCH_MEMORY_CLIENTS:-16}
BENCH_CLIENT_PROGRAM=${BENCH_CLIENT_PROGRAM:-$TOP/build/client/client/tools/pgingest-bench}
BENCH_CLIENT_THREADS=${BENCH_CLIENT_THREADS:-16}
BENCH_LOADER_PROGRAM=${BENCH_LOADER_PROGRAM:-$TOP/build/client/client/tools/pgingest}
BENCH_PG_SETTINGS=${BENCH_PG_SETTINGS:-}
BENCH_FLUSH_DELAY_US=${BENCH_FLUSH_DELAY_US:-0}
BENCH_DATA=${BENCH_DATA:-/var/tmp/pg_ingest-bench/data}
BENCH_TMP=${BENCH_TMP:-/var/tmp/pg_ingest-bench/files}
BENCH_PORT=${BENCH_PORT:-55439}
BENCH_OUT=${BENCH_OUT:-$BENCH/results}
BENCH_KEEP_CLUSTER=${BENCH_KEEP_CLUSTER:-0}

RAW=$BENCH_OUT/raw
MARKER=pg_ingest-bench-cluster
SOCK=$BENCH_DATA/socket
export PGHOST=$SOCK PGPORT=$BENCH_PORT PGUSER=postgres PGDATABASE=bench
CONNINFO="host=$SOCK port=$BENCH_PORT user=postgres dbname=bench"
# the row every bulk contender writes for g = 1..N (COPY files, INSERT ... SELECT, arrays)
ROWEXPR="g::bigint, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 millisecond', (g % 1000)::int, 'msg-' || lpad(g::text, 12, '0') || 'xxxxxxxxxxxxxxxxxxxxxxxx'"

die() { echo "bench: ERROR: $*" >&2; exit 1; }
log() { echo "bench: $(date +%H:%M:%S) $*" >&2; }
has_phase() { [[ " $BENCH_PHASES " == *" $1 "* ]]; }
num() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a positive integer (got '$2')"; }
for v in BENCH_ROWS BENCH_SECONDS BENCH_JOBS BENCH_ARRAY_ROWS BENCH_ARRAY_SESSIONS BENCH_LATENCY_SECONDS \
         BENCH_MEMORY_SECONDS BENCH_MEMORY_INTERVAL BENCH_MEMORY_CLIENTS BENCH_CLIENT_THREADS BENCH_PORT \
         BENCH_FLUSH_DELAY_US; do
  num "$v" "${!v}"
done
for c in $BENCH_CLIENTS; do num BENCH_CLIENTS "$c"; done
for t in $BENCH_TABLES; do [[ $t == nopk || $t == pk ]] || die "BENCH_TABLES: unknown table '$t' (nopk, pk)"; done
[ "$(id -u)" -eq 0 ] || die "run as root (the cluster runs as the postgres OS user; see scripts/cluster.sh)"
for tool in pgbench psql pg_config gnuplot awk sort runuser; do
  command -v "$tool" >/dev/null || die "$tool not found (gnuplot: apt-get install -y gnuplot-nox)"
done
pg_config --version | grep -q ' 15\.' || log "warning: pg_config is not PostgreSQL 15: $(pg_config --version)"

# ---------------------------------------------------------------- cluster
cluster() { PGI_DATA=$BENCH_DATA PGI_PORT=$BENCH_PORT LD_PRELOAD=${SLOWFLUSH_SO:-} "$TOP/scripts/cluster.sh" "$@"; }
BG_PIDS=()
cleanup() {
  local rc=$?
  set +e
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  declare -F extra_cleanup >/dev/null && extra_cleanup
  if [ "$BENCH_KEEP_CLUSTER" = 1 ]; then
    log "cluster left running: PGHOST=$SOCK PGPORT=$BENCH_PORT PGDATABASE=bench"
  elif [ -f "$BENCH_DATA/$MARKER" ]; then
    [ -f "$BENCH_DATA/server.log" ] && cp "$BENCH_DATA/server.log" "$RAW/server.log" 2>/dev/null
    cluster destroy >/dev/null 2>&1
  fi
  rm -rf "$BENCH_TMP"
  [ $rc -ne 0 ] && echo "bench: FAILED (exit $rc); raw logs in $RAW" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -e "$BENCH_DATA" ]; then
  [ -f "$BENCH_DATA/$MARKER" ] || die "$BENCH_DATA exists and is not a benchmark cluster; remove it or set BENCH_DATA"
  log "removing the leftover benchmark cluster in $BENCH_DATA"
  cluster destroy >/dev/null
fi
mkdir -p "$(dirname "$BENCH_DATA")" "$BENCH_TMP" "$RAW"
chown postgres "$(dirname "$BENCH_DATA")" 2>/dev/null || true
rm -f "$RAW"/*.tsv "$RAW"/*.log "$RAW"/*.txt "$RAW"/*.dat "$RAW"/*.env
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096 || die "cannot raise the open-files limit to 4096 (needed for 1000 clients)"

if [ "$BENCH_FLUSH_DELAY_US" -gt 0 ]; then
  SLOWFLUSH_SO=$BENCH_TMP/slowflush.so
  cc -O2 -shared -fPIC -o "$SLOWFLUSH_SO" "$BENCH/slowflush.c" -ldl || die "cannot build bench/slowflush.c"
  chmod 755 "$BENCH_TMP" "$SLOWFLUSH_SO"
  export BENCH_FLUSH_DELAY_US
  log "every WAL flush of the server sleeps ${BENCH_FLUSH_DELAY_US} us more (bench/slowflush.c)"
fi
log "starting the benchmark cluster in $BENCH_DATA (socket $SOCK, port $BENCH_PORT)"
cluster start >/dev/null
touch "$BENCH_DATA/$MARKER"
cluster stop >/dev/null
{
  echo "# ---- bench/run.sh: identical for every contender (later lines override cluster.sh's) ----"
  echo "max_connections = 1100            # 1000 pgbench clients + the suite's own sessions"
  echo "shared_buffers = 2GB               # the tables of a 10M-row run fit"
  echo "wal_buffers = 64MB"
  echo "max_wal_size = 16GB                # no checkpoint in the middle of a run (one before each run)"
  echo "min_wal_size = 2GB"
  echo "checkpoint_timeout = 30min"
  echo "fsync = on"
  echo "synchronous_commit = on            # contenders that want 'off' set it per session"
  echo "full_page_writes = on"
  echo "commit_delay = 0"
  echo "wal_level = replica"
  echo "max_worker_processes = 16"
  echo "log_min_messages = warning"
  echo "log_checkpoints = on"
  echo "ingest.ring_size = 64MB            # pg_ingest defaults, spelled out"
  echo "ingest.batch_rows = 10000"
  echo "ingest.batch_bytes = 8MB"
  echo "ingest.flush_interval = 10ms"
  echo "ingest.ack = committed            # per-contender sessions set their mode with PGOPTIONS"
  if [ -n "$BENCH_PG_SETTINGS" ]; then
    echo "# BENCH_PG_SETTINGS"
    tr ';' '\n' <<<"$BENCH_PG_SETTINGS"
  fi
} >>"$BENCH_DATA/postgresql.conf"
cluster start >/dev/null || { tail -20 "$BENCH_DATA/server.log" >&2; die "the benchmark cluster did not start"; }

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -d postgres -c "CREATE DATABASE bench"
q -f "$BENCH/sql/setup.sql"

# ---------------------------------------------------------------- run metadata
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host=$(hostname)"
  echo "kernel=$(uname -srm)"
  echo "os=$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}")"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "cores=$(nproc)"
  echo "memory=$(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"
  echo "loadavg_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "disk=$(df -hT "$BENCH_DATA" | awk 'NR==2 {print $2 ", " $3 " total, " $5 " free at start"}')"
  echo "postgres=$(q -c 'SELECT version()' | cut -d, -f1)"
  echo "pgbench=$(pgbench --version)"
  echo "pg_ingest=$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_ingest'") (git $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  for v in BENCH_ROWS BENCH_SECONDS BENCH_CLIENTS BENCH_TABLES BENCH_PHASES BENCH_JOBS BENCH_ARRAY_ROWS \
           BENCH_ARRAY_SESSIONS BENCH_LATENCY_SECONDS BENCH_LATENCY_CLIENTS BENCH_MEMORY_SECONDS \
           BENCH_MEMORY_INTERVAL BENCH_MEMORY_CLIENTS BENCH_CLIENT_THREADS BENCH_PG_SETTINGS BENCH_FLUSH_DELAY_US; do
    echo "$v=${!v}"
  done
  echo "BENCH_CLIENT_PROGRAM=${BENCH_CLIENT_PROGRAM#$TOP/}"
  echo "BENCH_LOADER_PROGRAM=${BENCH_LOADER_PROGRAM#"$TOP"/}"
} >"$RAW/meta.env"
q -F $'\t' -c "SELECT name, current_setting(name) FROM pg_settings
  WHERE name IN ('max_connections','shared_buffers','wal_buffers','max_wal_size','min_wal_size',
                 'checkpoint_timeout','fsync','synchronous_commit','full_page_writes','commit_delay',
                 'commit_siblings','wal_level','wal_sync_method','wal_writer_delay','huge_pages',
                 'max_worker_processes')
     OR name LIKE 'ingest.%' ORDER BY name" >"$RAW/settings.tsv"

# ---------------------------------------------------------------- helpers
table_name() { echo "bench_$1"; }
script_for() { # script_for TEMPLATE TABLE -> path of the instantiated pgbench script
  local out="$BENCH_TMP/$(basename "$1" .sql)_$2.sql"
  sed -e "s/@TABLE@/$2/g" -e "s/@ARRAY@/$BENCH_ARRAY_ROWS/g" -e "s/@USERS@/${BENCH_WEB_USERS:-10000}/g" -e "s#@ROWEXPR@#$ROWEXPR#g" "$BENCH/sql/$1" >"$out" ||
    die "cannot instantiate $BENCH/sql/$1"
  echo "$out"
}
reset_table() { # empty table, restart ids, zero pg_ingest counters, checkpoint: same start state
  q -c "TRUNCATE bench_nopk, bench_pk" -c "ALTER SEQUENCE bench_id RESTART" -c "ALTER SEQUENCE bench_chunk RESTART" \
    -c "SELECT ingest_reset_stats()" -c "CHECKPOINT" >/dev/null
}
now() { date +%s.%N; }
count_rows() { q -c "SELECT count(*) FROM $1"; }
flush_ring() { # seconds ingest_flush took; dies if it timed out
  local t0 t1 ok
  t0=$(now); ok=$(q -c "SELECT ingest_flush('10 min')"); t1=$(now)
  [ "$ok" = t ] || die "ingest_flush timed out after 10 min"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}
ingest_batches() { q -F ' ' -c "SELECT coalesce(sum(batches), 0), coalesce(round(sum(rows_committed)::numeric / nullif(sum(batches), 0), 1), 0) FROM ingest_status WHERE relname = '$1'"; }
pgbench_field() { # pgbench_field LOGFILE what
  case $2 in
    tx)  sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1" | head -1 ;;
    tps) sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$1" | head -1 ;;
    lat) sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$1" | head -1 ;;
    conn) sed -n 's/^initial connection time = \([0-9.]*\) ms/\1/p' "$1" | head -1 ;;
  esac
}
is_connect_failure() { grep -q -i -E 'connection to server|could not connect|too many clients|connection .* failed|Resource temporarily unavailable|out of memory' "$1"; }

# ---------------------------------------------------------------- connection calibration
# pgbench 15 starts its -T clock before all clients are connected: connecting 1000 clients can
# take longer than the whole run on a small machine. So each client count is first connected once
# (pgbench -t 1, SELECT 1); -T of every run with that count is BENCH_SECONDS plus that
# connection time (2x; one retry with more if no transaction finished), so that about BENCH_SECONDS are measured with every client connected
# (pgbench's tps excludes the initial connection time). connect.tsv: clients conn_ms extra_s status
declare -A CONNECT_EXTRA=()
calibrate_connect() { # calibrate_connect CLIENTS
  local c=$1 logf="$RAW/connect_$1.log" ms rc=0
  [ -n "${CONNECT_EXTRA[$c]:-}" ] && return 0
  echo "SELECT 1;" >"$BENCH_TMP/select1.sql"
  pgbench -n -c "$c" -j "$((c < BENCH_JOBS ? c : BENCH_JOBS))" -t 1 -f "$BENCH_TMP/select1.sql" >"$logf" 2>&1 || rc=$?
  ms=$(pgbench_field "$logf" conn)
  if [ $rc -ne 0 ] || [ -z "$ms" ]; then
    CONNECT_EXTRA[$c]=failed
    printf '%s\t0\t0\tconnect_failed\n' "$c" >>"$RAW/connect.tsv"
    log "connect $c clients: FAILED ($(grep -i -m1 -E 'error|fatal' "$logf" | cut -c1-160))"
    return 0
  fi
  CONNECT_EXTRA[$c]=$(awk -v ms="$ms" 'BEGIN {printf "%d", ms * 2 / 1000 + 0.5}')
  printf '%s\t%.0f\t%s\tok\n' "$c" "$ms" "${CONNECT_EXTRA[$c]}" >>"$RAW/connect.tsv"
  log "connect $c clients: ${ms} ms -> -T $BENCH_SECONDS + ${CONNECT_EXTRA[$c]} s"
}

# ---------------------------------------------------------------- 1. single rows, N clients
# single.tsv: table contender clients status tx enqueue_rps drain_s committed_rps rows_in_table lat_ms batches avg_batch conn_ms note
run_single() { # run_single TABLE CONTENDER CLIENTS
  local tbl=$1 contender=$2 c=$3 script opts="" logf rc=0 tx tps lat conn drain=0 crps rows b j
  tbl=$(table_name "$tbl")
  case $contender in
    insert_sync_on)    script=insert.sql ;;
    insert_sync_off)   script=insert.sql; opts="-c synchronous_commit=off" ;;
    enqueue_committed) script=enqueue.sql; opts="-c ingest.ack=committed" ;;
    enqueue_memory)    script=enqueue.sql; opts="-c ingest.ack=memory" ;;
    enqueue_queued)    script=enqueue.sql; opts="-c ingest.ack=queued" ;;
  esac
  script=$(script_for "$script" "$tbl")
  j=$((c < BENCH_JOBS ? c : BENCH_JOBS))
  logf="$RAW/single_${tbl}_${contender}_${c}.log"
  calibrate_connect "$c"
  if [ "${CONNECT_EXTRA[$c]}" = failed ]; then
    log "single  $tbl $contender clients=$c: skipped, $c clients could not connect (see $RAW/connect_$c.log)"
    printf '%s\t%s\t%s\tconnect_failed\t0\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$tbl" "$contender" "$c" "$c clients could not connect, see raw/connect_$c.log" >>"$RAW/single.tsv"
    return 0
  fi
  reset_table
  log "single  $tbl $contender clients=$c (-T $BENCH_SECONDS + ${CONNECT_EXTRA[$c]} s)"
  PGOPTIONS="$opts" pgbench -n -M prepared -c "$c" -j "$j" -T "$((BENCH_SECONDS + CONNECT_EXTRA[$c]))" -f "$script" >"$logf" 2>&1 || rc=$?
  if [ $rc -eq 0 ] && [ "$(pgbench_field "$logf" tx)" = 0 ]; then
    # connecting took longer than calibrated (a busy machine): once more with a larger allowance
    CONNECT_EXTRA[$c]=$((CONNECT_EXTRA[$c] * 2 + 10))
    log "  -> no transaction finished within -T (slow connections); again with -T $BENCH_SECONDS + ${CONNECT_EXTRA[$c]} s"
    reset_table
    PGOPTIONS="$opts" pgbench -n -M prepared -c "$c" -j "$j" -T "$((BENCH_SECONDS + CONNECT_EXTRA[$c]))" -f "$script" >"$logf" 2>&1 || rc=$?
  fi
  if [ $rc -ne 0 ] || [ -z "$(pgbench_field "$logf" tps)" ] || [ "$(pgbench_field "$logf" tx)" = 0 ]; then
    local status=failed note
    is_connect_failure "$logf" && status=connect_failed
    note=$(grep -i -m1 -E 'error|fatal' "$logf" | tr '\t' ' ' | cut -c1-160 || true)
    [ -z "$note" ] && [ "$(pgbench_field "$logf" tx)" = 0 ] && note="no transaction completed (connecting took the whole -T?)"
    log "  -> $status: $note"
    if [[ $contender == enqueue_* ]]; then flush_ring >/dev/null || die "ingest_flush failed"; fi
    printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$tbl" "$contender" "$c" "$status" "${note:-see $logf}" >>"$RAW/single.tsv"
    return 0
  fi
  tx=$(pgbench_field "$logf" tx); tps=$(pgbench_field "$logf" tps); lat=$(pgbench_field "$logf" lat); conn=$(pgbench_field "$logf" conn)
  if [[ $contender == enqueue_* ]]; then drain=$(flush_ring) || die "ingest_flush failed"; fi
  rows=$(count_rows "$tbl")
  # committed rows/s: for the fire-and-forget modes (ingest.ack = memory, queued) the time to
  # drain the ring after the last enqueue (ingest_flush) is added to pgbench's measured time
  # (tx / tps); for the others every counted transaction was committed when it returned, so
  # committed rows/s = tps.
  local d=0
  case $contender in enqueue_memory | enqueue_queued) d=$drain ;; esac
  crps=$(awk -v tx="$tx" -v tps="$tps" -v d="$d" 'BEGIN {printf "%.0f", tx / (tx / tps + d)}')
  b=$(ingest_batches "$tbl")
  printf '%s\t%s\t%s\tok\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$tbl" "$contender" "$c" "$tx" "$tps" "$drain" "$crps" "$rows" "${lat:-0}" \
    "${b% *}" "${b#* }" "${conn:-0}" >>"$RAW/single.tsv"
  log "  -> tps $tps, committed rows/s $crps (drain ${drain}s), rows in table $rows"
}

# ---------------------------------------------------------------- 2. bulk
# bulk.tsv: table contender rows seconds rps status note
BULK_ROWS=$(( (BENCH_ROWS + BENCH_ARRAY_ROWS * BENCH_ARRAY_SESSIONS - 1) / (BENCH_ARRAY_ROWS * BENCH_ARRAY_SESSIONS) * BENCH_ARRAY_ROWS * BENCH_ARRAY_SESSIONS ))
bulk_record() { # table contender t0 t1 status note
  local rows=0 secs rps
  [ "$5" = ok ] && rows=$(count_rows "$1")
  secs=$(awk -v a="$3" -v b="$4" 'BEGIN {printf "%.3f", b - a}')
  rps=$(awk -v r="$rows" -v s="$secs" 'BEGIN {printf "%.0f", (s > 0 ? r / s : 0)}')
  if [ "$5" = ok ] && [ "$rows" != "$BULK_ROWS" ]; then
    log "  -> FAILED: $rows rows in $1, expected $BULK_ROWS"
    set -- "$1" "$2" "$3" "$4" failed "wrong row count: expected $BULK_ROWS rows, found $rows"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rows" "$secs" "$rps" "$5" "${6:-}" >>"$RAW/bulk.tsv"
  log "  -> $rows rows in ${secs}s = $rps rows/s"
}
run_bulk() { # run_bulk TABLE CONTENDER
  local tbl contender=$2 t0 t1 rc=0 logf status=ok note=""
  tbl=$(table_name "$1")
  logf="$RAW/bulk_${tbl}_${contender}.log"
  reset_table
  log "bulk    $tbl $contender ($BULK_ROWS rows)"
  case $contender in
    copy_text)
      t0=$(now); psql -X -v ON_ERROR_STOP=1 -c "\\copy $tbl FROM '$BENCH_TMP/rows.txt'" >"$logf" 2>&1 || rc=$?; t1=$(now) ;;
    copy_binary)
      t0=$(now); psql -X -v ON_ERROR_STOP=1 -c "\\copy $tbl FROM '$BENCH_TMP/rows.bin' WITH (FORMAT binary)" >"$logf" 2>&1 || rc=$?; t1=$(now) ;;
    copy_csv)
      t0=$(now); psql -X -v ON_ERROR_STOP=1 -c "\\copy $tbl FROM '$BENCH_TMP/rows.csv' WITH (FORMAT csv)" >"$logf" 2>&1 || rc=$?; t1=$(now) ;;
    pgingest_load_csv)
      # the CLI loader (libpgingest underneath, its default ack: committed) reading the same CSV
      # file; ingest_flush() afterwards only makes sure nothing is left in the ring
      t0=$(now)
      "$BENCH_LOADER_PROGRAM" load -t "$tbl" -f csv --progress none "$BENCH_TMP/rows.csv" >"$logf" 2>&1 || rc=$?
      [ $rc -eq 0 ] && flush_ring >/dev/null
      t1=$(now) ;;
    insert_select)
      t0=$(now); psql -X -v ON_ERROR_STOP=1 -c "INSERT INTO $tbl SELECT $ROWEXPR FROM generate_series(1, $BULK_ROWS) AS g" >"$logf" 2>&1 || rc=$?; t1=$(now) ;;
    enqueue_array|enqueue_array_memory)
      # enqueue_array: every call waits for its rows' commit (ingest.ack = committed).
      # enqueue_array_memory: calls return at once (ingest.ack = memory) and the load ends with
      # ingest_flush(), which returns once every row is committed and that commit is flushed: a
      # bulk load's one acknowledgement (a crash before it loses what was still queued).
      local per=$((BULK_ROWS / BENCH_ARRAY_ROWS / BENCH_ARRAY_SESSIONS)) j ack=committed
      [ "$contender" = enqueue_array_memory ] && ack=memory
      j=$((BENCH_ARRAY_SESSIONS < BENCH_JOBS ? BENCH_ARRAY_SESSIONS : BENCH_JOBS))
      t0=$(now)
      PGOPTIONS="-c ingest.ack=$ack" pgbench -n -M prepared -c "$BENCH_ARRAY_SESSIONS" -j "$j" -t "$per" \
        -f "$(script_for enqueue_array.sql "$tbl")" >"$logf" 2>&1 || rc=$?
      flush_ring >/dev/null
      t1=$(now) ;;
    libpgingest)
      run_hook_bulk "$tbl" "$logf" || rc=$?
      t0=$HOOK_T0; t1=$HOOK_T1 ;;
  esac
  if [ $rc -ne 0 ]; then
    status=failed; note=$(grep -i -m1 -E 'error|fatal|failed' "$logf" | tr '\t' ' ' | cut -c1-160 || true)
    log "  -> failed: $note"
  fi
  bulk_record "$tbl" "$contender" "$t0" "$t1" "$status" "$note"
}

# ---------------------------------------------------------------- libpgingest hook
# >>> libpgingest hook (contender "libpgingest, $BENCH_CLIENT_THREADS producer threads") <<<
# Runs $BENCH_CLIENT_PROGRAM if it is an executable file, else the contender is skipped with a
# note in RESULTS.md. The program is called as
#   PROG --conninfo CONNINFO --table TABLE --columns id,ts,n,msg --threads T --rows N
#        (bulk: enqueue rows g = 1..N, as fast as possible; exit after every row was
#         acknowledged, i.e. after Producer::close())
#   PROG ... --rate R --seconds S
#        (latency: enqueue R rows/s in total for S seconds; ids from 1)
# and prints key=value lines on stdout; the suite reads rows_acked=, rows_failed= and, for the
# latency form, p50_ms=, p99_ms=, p999_ms= (enqueue() call to delivery report with status OK).
# Row g: id g, ts '2024-01-01 00:00:00+00' + g ms, n g % 1000, msg 'msg-' + g zero-padded to 12
# digits + 24 'x' (the same rows as the COPY files). The suite measures wall time itself (start
# of the process to its exit, plus ingest_flush()) and counts the rows in the table.
HOOK_T0=0 HOOK_T1=0 HOOK_NOTE="" LOADER_NOTE=""
hook_present() {
  if [ -f "$BENCH_CLIENT_PROGRAM" ] && [ -x "$BENCH_CLIENT_PROGRAM" ]; then return 0; fi
  HOOK_NOTE="${BENCH_CLIENT_PROGRAM#$TOP/} not found or not executable (set BENCH_CLIENT_PROGRAM)"
  return 1
}
# The CLI loader of the bulk contender "pgingest load CSV" (BENCH_LOADER_PROGRAM): skipped with a
# note in RESULTS.md when it is not an executable file, like the hook above.
loader_present() {
  if [ -f "$BENCH_LOADER_PROGRAM" ] && [ -x "$BENCH_LOADER_PROGRAM" ]; then return 0; fi
  LOADER_NOTE="${BENCH_LOADER_PROGRAM#"$TOP"/} not found or not executable (make client, or set BENCH_LOADER_PROGRAM)"
  return 1
}
run_hook_bulk() { # run_hook_bulk TABLE LOGFILE; sets HOOK_T0/HOOK_T1; samples the client's RSS
  local tbl=$1 logf=$2 pid rc=0
  HOOK_T0=$(now)
  "$BENCH_CLIENT_PROGRAM" --conninfo "$CONNINFO" --table "$tbl" --columns id,ts,n,msg \
    --threads "$BENCH_CLIENT_THREADS" --rows "$BULK_ROWS" >"$logf" 2>&1 &
  pid=$!; BG_PIDS+=("$pid")
  "$BENCH/memsample.sh" "$BENCH_MEMORY_INTERVAL" "libpgingest:$pid" >>"$RAW/memory_hook_${tbl}.tsv" 2>/dev/null &
  local spid=$!; BG_PIDS+=("$spid")
  wait "$pid" || rc=$?
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  [ $rc -eq 0 ] && flush_ring >/dev/null
  HOOK_T1=$(now)
  return $rc
}

# ---------------------------------------------------------------- 3. latency
# latency.tsv: contender clients target_rate achieved_tps p50 p90 p99 p999 max p99_service status note
# Latency of one transaction as pgbench logs it with --rate: from its *scheduled* start to the
# end of COMMIT (for ingest_enqueue with ingest.ack=committed: until the rows are committed and
# flushed), so any client-side queueing (schedule lag) counts; p99_service excludes that lag.
percentiles() { # stdin: one latency (µs) per line -> "p50 p90 p99 p999 max" in ms; also writes curve
  sort -n | awk -v curve="$1" '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "0 0 0 0 0"; exit }
      split("50 90 99 99.9", ps, " ")
      out = ""
      for (i = 1; i <= 4; i++) { k = int(NR * ps[i] / 100 + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; out = out sprintf("%.2f ", v[k] / 1000) }
      print out sprintf("%.2f", v[NR] / 1000)
      if (curve != "") {
        n = split("1 5 10 20 30 40 50 60 70 80 90 95 97 98 99 99.5 99.9 99.95 99.99", cs, " ")
        for (i = 1; i <= n; i++) { k = int(NR * cs[i] / 100 + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; printf "%s %.3f\n", cs[i], v[k] / 1000 > curve }
      }
    }'
}
run_latency_sql() { # run_latency_sql CONTENDER PEAK_RPS PEAK_CLIENTS
  local contender=$1 rate c script opts="" prefix logf rc=0 tps p pserv
  rate=$(awk -v p="$2" 'BEGIN {printf "%d", p / 2}')
  c=${BENCH_LATENCY_CLIENTS:-$3}
  case $contender in
    enqueue_committed) script=enqueue.sql; opts="-c ingest.ack=committed" ;;
    insert_sync_on)    script=insert.sql ;;
  esac
  script=$(script_for "$script" bench_nopk)
  prefix="$BENCH_TMP/lat_$contender"; logf="$RAW/latency_$contender.log"
  rm -f "$prefix".*
  reset_table
  log "latency $contender clients=$c rate=$rate/s (${BENCH_LATENCY_SECONDS}s)"
  calibrate_connect "$c"
  [ "${CONNECT_EXTRA[$c]}" = failed ] && CONNECT_EXTRA[$c]=0
  (cd "$BENCH_TMP" && PGOPTIONS="$opts" pgbench -n -M prepared -c "$c" -j "$((c < BENCH_JOBS ? c : BENCH_JOBS))" \
     -T "$((BENCH_LATENCY_SECONDS + CONNECT_EXTRA[$c]))" -R "$rate" -P 5 -l --log-prefix="$prefix" -f "$script") >"$logf" 2>&1 || rc=$?
  if [ $rc -ne 0 ] || ! ls "$prefix".* >/dev/null 2>&1; then
    printf '%s\t%s\t%s\t0\t0\t0\t0\t0\t0\t0\tfailed\tsee %s\n' "$contender" "$c" "$rate" "$logf" >>"$RAW/latency.tsv"
    log "  -> failed (see $logf)"; return 0
  fi
  if [[ $contender == enqueue_* ]]; then flush_ring >/dev/null || die "ingest_flush failed"; fi
  tps=$(pgbench_field "$logf" tps)
  p=$(cat "$prefix".* | awk '$3 ~ /^[0-9]+$/ {print $3}' | percentiles "$RAW/latency_curve_$contender.dat")
  pserv=$(cat "$prefix".* | awk '$3 ~ /^[0-9]+$/ {print $3 - (NF >= 7 ? $7 : 0)}' | percentiles "")
  printf '%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\tok\t\n' "$contender" "$c" "$rate" "$tps" $p "$(echo "$pserv" | cut -d' ' -f3)" >>"$RAW/latency.tsv"
  log "  -> tps $tps; p50/p90/p99/p99.9/max ms: $p"
}
run_latency_hook() { # run_latency_hook PEAK_RPS
  local rate logf="$RAW/latency_libpgingest.log" rc=0 p50 p99 p999
  rate=$(awk -v p="$1" 'BEGIN {printf "%d", p / 2}')
  reset_table
  log "latency libpgingest threads=$BENCH_CLIENT_THREADS rate=$rate/s (${BENCH_LATENCY_SECONDS}s)"
  "$BENCH_CLIENT_PROGRAM" --conninfo "$CONNINFO" --table bench_nopk --columns id,ts,n,msg \
    --threads "$BENCH_CLIENT_THREADS" --rate "$rate" --seconds "$BENCH_LATENCY_SECONDS" >"$logf" 2>&1 || rc=$?
  p50=$(sed -n 's/^p50_ms=//p' "$logf" | tail -1); p99=$(sed -n 's/^p99_ms=//p' "$logf" | tail -1); p999=$(sed -n 's/^p999_ms=//p' "$logf" | tail -1)
  if [ $rc -ne 0 ] || [ -z "$p99" ]; then
    printf 'libpgingest\t%s\t%s\t0\t0\t0\t0\t0\t0\t0\tfailed\texit %s or no p99_ms= line, see %s\n' "$BENCH_CLIENT_THREADS" "$rate" "$rc" "${logf#$TOP/}" >>"$RAW/latency.tsv"
    log "  -> failed (see $logf)"; return 0
  fi
  printf 'libpgingest\t%s\t%s\t%s\t%s\t-\t%s\t%s\t-\t-\tok\t\n' "$BENCH_CLIENT_THREADS" "$rate" "$rate" "$p50" "$p99" "${p999:--}" >>"$RAW/latency.tsv"
}

# ---------------------------------------------------------------- 4. memory
run_memory() {
  local c=$BENCH_MEMORY_CLIENTS script logf="$RAW/memory_pgbench.log" pid spid wpid bpids rc=0 i
  script=$(script_for enqueue.sql bench_nopk)
  reset_table
  log "memory  enqueue_committed clients=$c for ${BENCH_MEMORY_SECONDS}s, RSS every ${BENCH_MEMORY_INTERVAL}s"
  pgbench -n -M prepared -c "$c" -j "$((c < BENCH_JOBS ? c : BENCH_JOBS))" -T "$BENCH_MEMORY_SECONDS" -P 10 -f "$script" >"$logf" 2>&1 &
  pid=$!; BG_PIDS+=("$pid")
  # wait until every client is connected and the worker runs
  for i in $(seq 1 100); do
    bpids=$(q -c "SELECT string_agg('backend:' || pid, ' ') FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend'")
    wpid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' LIMIT 1")
    [ -n "$wpid" ] && [ "$(wc -w <<<"$bpids")" -ge "$c" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$wpid" ] || { wait "$pid" || true; die "memory run: no pg_ingest worker found (see $logf)"; }
  "$BENCH/memsample.sh" "$BENCH_MEMORY_INTERVAL" "worker:$wpid" "pgbench:$pid" $bpids >"$RAW/memory.tsv" &
  spid=$!; BG_PIDS+=("$spid")
  wait "$pid" || rc=$?
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  flush_ring >/dev/null
  [ $rc -eq 0 ] || log "  -> pgbench exited with $rc (see $logf)"
  log "  -> $(pgbench_field "$logf" tps) tps, $(wc -l <"$RAW/memory.tsv") samples"
  hook_present && run_memory_hook
}

# The client library for BENCH_MEMORY_SECONDS at the rate of its bulk peak (or 200,000 rows/s
# without a bulk result): its queue stays full, so its memory is at its configured bound.
run_memory_hook() {
  local rate pid spid rc=0 logf="$RAW/memory_libpgingest.log" f="$RAW/memory_hook_${BENCH_MEMORY_SECONDS}s_at_peak.tsv"
  rate=$(awk -F'\t' '$1 == "bench_nopk" && $2 == "libpgingest" && $6 == "ok" {print $5}' "$RAW/bulk.tsv" 2>/dev/null || true)
  rate=${rate:-200000}
  reset_table
  log "memory  libpgingest threads=$BENCH_CLIENT_THREADS rate=$rate/s for ${BENCH_MEMORY_SECONDS}s, RSS every ${BENCH_MEMORY_INTERVAL}s"
  "$BENCH_CLIENT_PROGRAM" --conninfo "$CONNINFO" --table bench_nopk --columns id,ts,n,msg \
    --threads "$BENCH_CLIENT_THREADS" --rate "$rate" --seconds "$BENCH_MEMORY_SECONDS" --warmup 0 >"$logf" 2>&1 &
  pid=$!; BG_PIDS+=("$pid")
  "$BENCH/memsample.sh" "$BENCH_MEMORY_INTERVAL" "libpgingest:$pid" >"$f" 2>/dev/null &
  spid=$!; BG_PIDS+=("$spid")
  wait "$pid" || rc=$?
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  flush_ring >/dev/null
  log "  -> exit $rc, $(sed -n 's/^rows_acked=//p' "$logf") rows acknowledged, $(wc -l <"$f") samples"
  reset_table
}

# ---------------------------------------------------------------- 5.-7. web table, call overhead, pgbouncer
. "$BENCH/web_phases.sh"
. "$BENCH/ack_phase.sh"

# ---------------------------------------------------------------- the run
T_START=$(date +%s)
if has_phase single; then
  for t in $BENCH_TABLES; do
    for contender in insert_sync_on insert_sync_off enqueue_committed enqueue_memory; do
      for c in $BENCH_CLIENTS; do run_single "$t" "$contender" "$c"; done
    done
    # ingest.ack = queued (what wait_for_commit = off means since 0.3.0): at 16 clients only
    [[ " $BENCH_CLIENTS " == *" 16 "* ]] && run_single "$t" enqueue_queued 16
  done
fi

if has_phase bulk; then
  log "generating $BULK_ROWS rows as COPY text, COPY binary and CSV files (psql \\copy ... TO)"
  q -c "\\copy (SELECT $ROWEXPR FROM generate_series(1, $BULK_ROWS) AS g) TO '$BENCH_TMP/rows.txt'"
  q -c "\\copy (SELECT $ROWEXPR FROM generate_series(1, $BULK_ROWS) AS g) TO '$BENCH_TMP/rows.bin' WITH (FORMAT binary)"
  q -c "\\copy (SELECT $ROWEXPR FROM generate_series(1, $BULK_ROWS) AS g) TO '$BENCH_TMP/rows.csv' WITH (FORMAT csv)"
  ls -l "$BENCH_TMP"/rows.* | awk '{print $NF, $5}' >"$RAW/bulk_files.txt"
  for t in $BENCH_TABLES; do
    for contender in copy_text copy_binary copy_csv insert_select enqueue_array enqueue_array_memory; do run_bulk "$t" "$contender"; done
    if hook_present; then
      run_bulk "$t" libpgingest
    else
      printf '%s\tlibpgingest\t0\t0\t0\tskipped\t%s\n' "$(table_name "$t")" "$HOOK_NOTE" >>"$RAW/bulk.tsv"
      log "bulk    $(table_name "$t") libpgingest: skipped, $HOOK_NOTE"
    fi
    if loader_present; then
      run_bulk "$t" pgingest_load_csv
    else
      printf '%s\tpgingest_load_csv\t0\t0\t0\tskipped\t%s\n' "$(table_name "$t")" "$LOADER_NOTE" >>"$RAW/bulk.tsv"
      log "bulk    $(table_name "$t") pgingest_load_csv: skipped, $LOADER_NOTE"
    fi
  done
  rm -f "$BENCH_TMP"/rows.*
fi

if has_phase latency; then
  # half of the peak of single-row enqueue (ack committed) and INSERT (sync on) on bench_nopk
  for contender in enqueue_committed insert_sync_on; do
    peak=$(awk -F'\t' -v k="$contender" '$1 == "bench_nopk" && $2 == k && $4 == "ok" && $8 > best {best = $8; c = $3} END {if (best) print best, c}' "$RAW/single.tsv" 2>/dev/null || true)
    if [ -z "$peak" ]; then
      log "latency $contender: no single-row peak measured (phase single on bench_nopk), measuring it with 16 clients"
      run_single nopk "$contender" 16
      peak=$(awk -F'\t' -v k="$contender" '$1 == "bench_nopk" && $2 == k && $4 == "ok" && $8 > best {best = $8; c = $3} END {if (best) print best, c}' "$RAW/single.tsv")
    fi
    [ -n "$peak" ] && run_latency_sql "$contender" $peak
  done
  if hook_present; then
    hpeak=$(awk -F'\t' '$1 == "bench_nopk" && $2 == "libpgingest" && $6 == "ok" {print $5}' "$RAW/bulk.tsv" 2>/dev/null || true)
    if [ -n "$hpeak" ]; then run_latency_hook "$hpeak"
    else printf 'libpgingest\t%s\t0\t0\t0\t0\t0\t0\t0\t0\tskipped\tno bulk libpgingest result on bench_nopk to take half of\n' "$BENCH_CLIENT_THREADS" >>"$RAW/latency.tsv"; fi
  else
    printf 'libpgingest\t%s\t0\t0\t0\t0\t0\t0\t0\t0\tskipped\t%s\n' "$BENCH_CLIENT_THREADS" "$HOOK_NOTE" >>"$RAW/latency.tsv"
  fi
fi

has_phase memory && run_memory
has_phase web && run_web
has_phase overhead && run_overhead
has_phase pgbouncer && run_pgbouncer
has_phase ack && run_ack
# HTTP ingestion (pgingest serve vs. node-postgres), its own report: bench/serve.sh
has_phase serve && { BENCH_OUT=$BENCH_OUT BENCH_TMP=$BENCH_TMP "$BENCH/serve.sh" || log "serve phase failed (see $RAW/serve_*.log)"; }

echo "elapsed_seconds=$(( $(date +%s) - T_START ))" >>"$RAW/meta.env"
echo "loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.env"
log "writing $BENCH_OUT/RESULTS.md and charts"
"$BENCH/report.sh" "$BENCH_OUT"
log "done in $(( $(date +%s) - T_START )) s: $BENCH_OUT/RESULTS.md"
