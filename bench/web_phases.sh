# Phases web, overhead and pgbouncer of bench/run.sh (issue 13). Sourced by run.sh after its
# helpers (q, log, die, pgbench_field, flush_ring, script_for, ingest_batches) are defined, with the
# cluster up; not a program of its own.
#
#   web        web_events (bigserial PK, FK to users, btree (user_id, at), btree (kind), GIN
#              (payload)), one event per request: ingest_enqueue JSON form vs INSERT, durable
#              (ingest.ack = committed vs synchronous_commit = on) and fire-and-forget (ingest.ack
#              = memory, the ring-only path, vs synchronous_commit = off) at BENCH_WEB_CLIENTS,
#              fire-and-forget at BENCH_WEB_CLIENTS_HIGH too (collapse ratio), and ingest.ack =
#              queued (what wait_for_commit = off means since 0.3.0) at BENCH_WEB_CLIENTS
#   overhead   narrow table: the single-row enqueue call (ingest.ack = memory) vs the same call
#              that only builds the row (SELECT length(ROW(...)::t::text))
#   pgbouncer  BENCH_PGB_CLIENTS clients through a pgbouncer started here (loopback, transaction
#              pooling, pool BENCH_PGB_POOL), fire-and-forget: enqueue (ingest.ack = memory) vs
#              INSERT sync off; the acknowledgement mode is a role default (ALTER ROLE ... SET),
#              never a session SET; short checks that the durable mode (ingest.ack = committed) and
#              SET LOCAL ingest.ack = memory work through it too
#
# extra.tsv: phase contender clients status tx enqueue_rps drain_s committed_rps rows_before_drain
#            rows_in_table lat_ms conn_ms avg_batch rows_failed note
# pgb_show.tsv: role how setting value (what a pooled server connection runs with)

BENCH_WEB_SECONDS=${BENCH_WEB_SECONDS:-15}
BENCH_WEB_CLIENTS=${BENCH_WEB_CLIENTS:-16}
BENCH_WEB_CLIENTS_HIGH=${BENCH_WEB_CLIENTS_HIGH:-64}
BENCH_WEB_USERS=${BENCH_WEB_USERS:-10000}
BENCH_OVERHEAD_SECONDS=${BENCH_OVERHEAD_SECONDS:-15}
BENCH_OVERHEAD_CLIENTS=${BENCH_OVERHEAD_CLIENTS:-16}
BENCH_PGB_SECONDS=${BENCH_PGB_SECONDS:-15}
BENCH_PGB_CHECK_SECONDS=${BENCH_PGB_CHECK_SECONDS:-5}
BENCH_PGB_CLIENTS=${BENCH_PGB_CLIENTS:-1000}
BENCH_PGB_POOL=${BENCH_PGB_POOL:-20}
BENCH_PGB_PORT=${BENCH_PGB_PORT:-56439}
for v in BENCH_WEB_SECONDS BENCH_WEB_CLIENTS BENCH_WEB_CLIENTS_HIGH BENCH_WEB_USERS BENCH_OVERHEAD_SECONDS \
         BENCH_OVERHEAD_CLIENTS BENCH_PGB_SECONDS BENCH_PGB_CHECK_SECONDS BENCH_PGB_CLIENTS BENCH_PGB_POOL BENCH_PGB_PORT; do
  num "$v" "${!v}"
  echo "$v=${!v}" >>"$RAW/meta.env"
done

web_setup() { # once: users, web_events, the pgbouncer roles
  [ -n "${WEB_SETUP_DONE:-}" ] && return 0
  log "web setup: users ($BENCH_WEB_USERS rows), web_events, roles bench_ff/bench_durable/bench_async/bench_sync"
  q -f "$(script_for web_setup.sql setup)" >/dev/null
  WEB_SETUP_DONE=1
}

reset_extra() { # reset_extra TABLE: empty table, restarted ids, zero counters, checkpoint
  case $1 in
    web_events) q -c "TRUNCATE web_events RESTART IDENTITY" >/dev/null ;;
    bench_nopk) q -c "TRUNCATE bench_nopk" -c "ALTER SEQUENCE bench_id RESTART" >/dev/null ;;
  esac
  q -c "SELECT ingest_reset_stats()" -c "CHECKPOINT" >/dev/null
}

# EXTRA_ENV: environment of pgbench in the next run_extra (PGOPTIONS for direct runs; PGHOST,
# PGPORT, PGUSER for pgbouncer). EXTRA_MODE: pgbench -M.
EXTRA_ENV=() EXTRA_MODE=prepared
declare -A EXTRA_CONNECT=()
run_extra() { # run_extra PHASE CONTENDER CLIENTS TABLE SCRIPT SECONDS FIRE_AND_FORGET(0|1)
  local phase=$1 k=$2 c=$3 tbl=$4 script=$5 secs=$6 ff=$7 j logf clog rc=0 key ms tx tps lat conn drain=0 before=0 rows=0 crps b failed=0 note=""
  j=$((c < BENCH_JOBS ? c : BENCH_JOBS))
  logf="$RAW/${phase}_${k}_${c}.log"
  # pgbench 15 starts -T before its clients are connected: connect once first, add 2x that time
  key="${EXTRA_ENV[*]}|$c"
  if [ -z "${EXTRA_CONNECT[$key]:-}" ]; then
    clog="$RAW/${phase}_connect_${k}_${c}.log"
    echo "SELECT 1;" >"$BENCH_TMP/select1.sql"
    EXTRA_CONNECT[$key]=0
    if env "${EXTRA_ENV[@]}" pgbench -n -c "$c" -j "$j" -t 1 -f "$BENCH_TMP/select1.sql" >"$clog" 2>&1; then
      ms=$(pgbench_field "$clog" conn)
      [ -n "$ms" ] && EXTRA_CONNECT[$key]=$(awk -v ms="$ms" 'BEGIN {printf "%d", ms * 2 / 1000 + 0.5}')
    fi
  fi
  reset_extra "$tbl"
  log "$phase $k clients=$c -T $secs+${EXTRA_CONNECT[$key]}"
  local pgb0=0 t0 wpid w0=0
  t0=$(date +%s.%N)
  if [ "$phase" = pgbouncer ] && [ -n "$PGB_PID" ]; then pgb0=$(proc_cpu_ticks "$PGB_PID"); fi
  # the database's pg_ingest worker (started by reset_extra's enqueue-free setup or earlier runs)
  wpid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' AND datname = current_database() LIMIT 1")
  [ -n "$wpid" ] && w0=$(proc_cpu_ticks "$wpid")
  env "${EXTRA_ENV[@]}" pgbench -n -M "$EXTRA_MODE" -c "$c" -j "$j" -T "$((secs + EXTRA_CONNECT[$key]))" -f "$script" >"$logf" 2>&1 || rc=$?
  # pgbouncer is one process (one core at most): its CPU share shows whether it was the limit
  if [ "$phase" = pgbouncer ] && [ -n "$PGB_PID" ]; then
    awk -v k="$k" -v a="$pgb0" -v b="$(proc_cpu_ticks "$PGB_PID")" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%s\t%.2f\t%.2f\t%.0f\n", k, (b - a) / hz, t1 - t0, 100 * (b - a) / hz / (t1 - t0)}' >>"$RAW/pgb_cpu.tsv"
  fi
  tx=$(pgbench_field "$logf" tx); tps=$(pgbench_field "$logf" tps); lat=$(pgbench_field "$logf" lat); conn=$(pgbench_field "$logf" conn)
  # rows visible right after pgbench returned: with a durable acknowledgement every counted
  # transaction's row must already be there
  [ "$tbl" != - ] && before=$(count_rows "$tbl")
  if [[ $k == enqueue* || $k == *_enqueue* ]]; then drain=$(flush_ring) || die "ingest_flush failed"; fi
  # the worker's CPU from pgbench's start to the last row inserted: how much of a core it had (a
  # worker that the run itself started spent all of its CPU in it)
  if [ -z "$wpid" ] && [[ $k == enqueue* ]]; then
    wpid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' AND datname = current_database() LIMIT 1")
    w0=0
  fi
  if [ -n "$wpid" ] && [[ $k == enqueue* ]]; then
    awk -v ph="$phase" -v k="$k" -v c="$c" -v a="$w0" -v b="$(proc_cpu_ticks "$wpid")" -v t0="$t0" -v t1="$(date +%s.%N)" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%s\t%s\t%s\t%.2f\t%.2f\t%.0f\n", ph, k, c, (b - a) / hz, t1 - t0, 100 * (b - a) / hz / (t1 - t0)}' \
      >>"$RAW/worker_cpu.tsv"
  fi
  if [ "$tbl" != - ]; then
    rows=$(count_rows "$tbl")
    failed=$(q -c "SELECT coalesce(sum(rows_failed), 0) FROM ingest_status WHERE relname = '$tbl'")
    b=$(ingest_batches "$tbl")
  else
    b="0 0"
  fi
  if [ $rc -ne 0 ] || [ -z "$tx" ] || [ "$tx" = 0 ] || [ -z "$tps" ]; then
    note=$(grep -i -m1 -E 'error|fatal|abort' "$logf" | tr '\t' ' ' | cut -c1-200 || true)
    printf '%s\t%s\t%s\tfailed\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t%s\n' "$phase" "$k" "$c" "${note:-exit $rc, see ${logf#$TOP/}}" >>"$RAW/extra.tsv"
    log "  -> failed: ${note:-exit $rc}"
    return 0
  fi
  [ "$failed" != 0 ] && note="$failed rows dead-lettered"
  [ "$tbl" != - ] && [ "$rows" -lt "$tx" ] && note="${note:+$note; }only $rows rows in the table for $tx transactions"
  crps=$(awk -v tx="$tx" -v tps="$tps" -v d="$([ "$ff" = 1 ] && echo "$drain" || echo 0)" 'BEGIN {printf "%.0f", tx / (tx / tps + d)}')
  printf '%s\t%s\t%s\tok\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$k" "$c" "$tx" "$tps" "$drain" "$crps" "$before" "$rows" \
    "${lat:-0}" "${conn:-0}" "${b#* }" "$failed" "$note" >>"$RAW/extra.tsv"
  log "  -> tps $tps, committed rows/s $crps (drain ${drain}s), rows before drain $before, in table $rows${note:+ ($note)}"
}

# ---------------------------------------------------------------- web
run_web() {
  local ins enq
  web_setup
  ins=$(script_for web_insert.sql web_events); enq=$(script_for web_enqueue.sql web_events)
  EXTRA_MODE=prepared
  EXTRA_ENV=(PGOPTIONS="-c synchronous_commit=off")
  run_extra web insert_sync_off "$BENCH_WEB_CLIENTS" web_events "$ins" "$BENCH_WEB_SECONDS" 0
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=memory")
  run_extra web enqueue_memory "$BENCH_WEB_CLIENTS" web_events "$enq" "$BENCH_WEB_SECONDS" 1
  run_extra web enqueue_memory "$BENCH_WEB_CLIENTS_HIGH" web_events "$enq" "$BENCH_WEB_SECONDS" 1
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=queued")
  run_extra web enqueue_queued "$BENCH_WEB_CLIENTS" web_events "$enq" "$BENCH_WEB_SECONDS" 1
  EXTRA_ENV=(PGOPTIONS="-c synchronous_commit=on")
  run_extra web insert_sync_on "$BENCH_WEB_CLIENTS" web_events "$ins" "$BENCH_WEB_SECONDS" 0
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=committed")
  run_extra web enqueue_committed "$BENCH_WEB_CLIENTS" web_events "$enq" "$BENCH_WEB_SECONDS" 0
}

# ---------------------------------------------------------------- overhead
run_overhead() {
  EXTRA_MODE=prepared
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=memory")
  run_extra overhead build_row "$BENCH_OVERHEAD_CLIENTS" - "$(script_for build_row.sql bench_nopk)" "$BENCH_OVERHEAD_SECONDS" 0
  run_extra overhead enqueue_memory "$BENCH_OVERHEAD_CLIENTS" bench_nopk "$(script_for enqueue.sql bench_nopk)" "$BENCH_OVERHEAD_SECONDS" 1
}

# ---------------------------------------------------------------- pgbouncer
PGB_DIR="" PGB_PID=""
proc_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime
pgbouncer_start() {
  if ! command -v pgbouncer >/dev/null; then
    # bench-only package: installed here, not by scripts/install-deps.sh (CI does not need it)
    log "installing pgbouncer (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer; } \
      >"$RAW/pgbouncer_install.log" 2>&1 || { log "pgbouncer: apt-get install failed (see $RAW/pgbouncer_install.log)"; return 1; }
  fi
  PGB_DIR=$(mktemp -d "$BENCH_TMP/pgbouncer.XXXXXX")
  # trust for a throwaway loopback cluster; pgbouncer still wants every user in the auth_file
  printf '"%s" ""\n' postgres bench_ff bench_durable bench_async bench_sync >"$PGB_DIR/userlist.txt"
  cat >"$PGB_DIR/pgbouncer.ini" <<INI
[databases]
bench = host=$SOCK port=$BENCH_PORT dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BENCH_PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
pool_mode = transaction
default_pool_size = $BENCH_PGB_POOL
max_client_conn = $((BENCH_PGB_CLIENTS + 100))
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
INI
  chown -R postgres "$PGB_DIR"
  # pgbouncer refuses to run as root; -d: daemon, its pid in the pidfile
  runuser -u postgres -- pgbouncer -d "$PGB_DIR/pgbouncer.ini" >"$RAW/pgbouncer_start.log" 2>&1 ||
    { cat "$RAW/pgbouncer_start.log" >&2; log "pgbouncer did not start"; return 1; }
  for _ in $(seq 1 50); do
    [ -s "$PGB_DIR/pgbouncer.pid" ] && psql -X -At -h 127.0.0.1 -p "$BENCH_PGB_PORT" -U bench_ff -d bench -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  PGB_PID=$(cat "$PGB_DIR/pgbouncer.pid" 2>/dev/null || true)
  [ -n "$PGB_PID" ] || { log "pgbouncer: no pidfile"; return 1; }
  log "pgbouncer $(pgbouncer --version | head -1 | cut -d' ' -f2) pid $PGB_PID on 127.0.0.1:$BENCH_PGB_PORT, transaction pooling, pool $BENCH_PGB_POOL"
}
pgbouncer_stop() {
  [ -n "$PGB_PID" ] || return 0
  kill -INT "$PGB_PID" 2>/dev/null || true   # SIGINT: fast shutdown
  for _ in $(seq 1 50); do kill -0 "$PGB_PID" 2>/dev/null || break; sleep 0.1; done
  [ -n "$PGB_DIR" ] && cp "$PGB_DIR/pgbouncer.log" "$RAW/pgbouncer.log" 2>/dev/null || true
  PGB_PID=""
}
extra_cleanup() { pgbouncer_stop; }

run_pgbouncer() {
  local enq ins setlocal r how v
  web_setup
  pgbouncer_start || { printf 'pgbouncer\tenqueue_memory\t%s\tfailed\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\tpgbouncer did not start\n' "$BENCH_PGB_CLIENTS" >>"$RAW/extra.tsv"; return 0; }
  enq=$(script_for enqueue.sql bench_nopk); ins=$(script_for insert.sql bench_nopk); setlocal=$(script_for enqueue_setlocal.sql bench_nopk)
  # what a pooled server connection runs with, per role (role defaults) and with SET LOCAL
  : >"$RAW/pgb_show.tsv"
  : >"$RAW/pgb_cpu.tsv"
  for r in bench_ff bench_durable bench_async bench_sync; do
    for v in ingest.ack synchronous_commit; do
      printf '%s\trole default\t%s\t%s\n' "$r" "$v" \
        "$(psql -X -At -h 127.0.0.1 -p "$BENCH_PGB_PORT" -U "$r" -d bench -c "SHOW $v" 2>&1 | tail -1)" >>"$RAW/pgb_show.tsv"
    done
  done
  printf 'bench_durable\tBEGIN; SET LOCAL ...=memory; SHOW; COMMIT\tingest.ack\t%s\n' \
    "$(psql -X -At -h 127.0.0.1 -p "$BENCH_PGB_PORT" -U bench_durable -d bench \
        -c "BEGIN" -c "SET LOCAL ingest.ack = memory" -c "SHOW ingest.ack" -c "COMMIT" 2>&1 | grep -v -E '^(BEGIN|SET|COMMIT)$' | tail -1)" >>"$RAW/pgb_show.tsv"
  printf 'bench_durable\tthe next transaction on the pool\tingest.ack\t%s\n' \
    "$(psql -X -At -h 127.0.0.1 -p "$BENCH_PGB_PORT" -U bench_durable -d bench -c "SHOW ingest.ack" 2>&1 | tail -1)" >>"$RAW/pgb_show.tsv"
  # simple protocol: pgbouncer 1.18 in transaction pooling keeps no prepared statements
  EXTRA_MODE=simple
  EXTRA_ENV=(PGOPTIONS= PGHOST=127.0.0.1 PGPORT="$BENCH_PGB_PORT" PGUSER=bench_async)
  run_extra pgbouncer insert_sync_off "$BENCH_PGB_CLIENTS" bench_nopk "$ins" "$BENCH_PGB_SECONDS" 0
  EXTRA_ENV=(PGOPTIONS= PGHOST=127.0.0.1 PGPORT="$BENCH_PGB_PORT" PGUSER=bench_ff)
  run_extra pgbouncer enqueue_memory "$BENCH_PGB_CLIENTS" bench_nopk "$enq" "$BENCH_PGB_SECONDS" 1
  # the floor: a transaction that does nothing (SELECT 1) through the same pgbouncer, clients and
  # pool; no contender can beat its rate, so INSERT's rate × 3 above it puts 3× out of reach
  echo "SELECT 1;" >"$BENCH_TMP/select1_pgb.sql"
  run_extra pgbouncer select_1 "$BENCH_PGB_CLIENTS" - "$BENCH_TMP/select1_pgb.sql" "$BENCH_PGB_SECONDS" 0
  # the other modes, short: durable by role default, fire-and-forget by SET LOCAL, INSERT sync on
  EXTRA_ENV=(PGOPTIONS= PGHOST=127.0.0.1 PGPORT="$BENCH_PGB_PORT" PGUSER=bench_durable)
  run_extra pgbouncer enqueue_committed "$BENCH_PGB_CLIENTS" bench_nopk "$enq" "$BENCH_PGB_CHECK_SECONDS" 0
  run_extra pgbouncer enqueue_setlocal_memory "$BENCH_PGB_CLIENTS" bench_nopk "$setlocal" "$BENCH_PGB_CHECK_SECONDS" 1
  EXTRA_ENV=(PGOPTIONS= PGHOST=127.0.0.1 PGPORT="$BENCH_PGB_PORT" PGUSER=bench_sync)
  run_extra pgbouncer insert_sync_on "$BENCH_PGB_CLIENTS" bench_nopk "$ins" "$BENCH_PGB_CHECK_SECONDS" 0
  EXTRA_ENV=() EXTRA_MODE=prepared
  pgbouncer_stop
}
