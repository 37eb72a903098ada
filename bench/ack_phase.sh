# Phase ack of bench/run.sh (issue 14): what each ingest.ack mode costs on the narrow table
# (bench_nopk, no index) at BENCH_ACK_CLIENTS single-row clients, against INSERT with
# synchronous_commit on and off, and against the ring-only fire-and-forget of pg_ingest 0.2.0
# (the same library in a second database, bench_v02, whose extension is 0.2.0: without
# ingest_queue, queued falls back to the ring alone). Also the WAL each contender writes per row
# (pg_current_wal_lsn() before the run and after its rows were drained). Sourced by run.sh after
# web_phases.sh (run_extra, reset_extra, EXTRA_ENV); not a program of its own.
#
# ack_wal.tsv: contender clients rows wal_bytes wal_bytes_per_row

BENCH_ACK_SECONDS=${BENCH_ACK_SECONDS:-15}
BENCH_ACK_CLIENTS=${BENCH_ACK_CLIENTS:-16}
for v in BENCH_ACK_SECONDS BENCH_ACK_CLIENTS; do
  num "$v" "${!v}"
  echo "$v=${!v}" >>"$RAW/meta.env"
done

ack_setup() {
  [ -n "${ACK_SETUP_DONE:-}" ] && return 0
  log "ack setup: database bench_v02 with pg_ingest 0.2.0 (ring only) and bench_nopk"
  q -d postgres -c "DROP DATABASE IF EXISTS bench_v02" -c "CREATE DATABASE bench_v02" >/dev/null
  q -d bench_v02 -c "CREATE EXTENSION pg_ingest VERSION '0.2.0'" \
    -c "CREATE TABLE bench_nopk (id bigint, ts timestamptz, n int, msg text) WITH (autovacuum_enabled = off)" \
    -c "CREATE UNLOGGED SEQUENCE bench_id CACHE 100" >/dev/null
  ACK_SETUP_DONE=1
}

lsn() { q -d "${PGDATABASE}" -c "SELECT pg_current_wal_lsn()"; }
wal_since() { q -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$1')::bigint"; }

# run_ack CONTENDER SCRIPT FIRE_AND_FORGET: one run_extra in phase ack, plus its WAL per row
run_ack_one() {
  local k=$1 script=$2 ff=$3 before wal rows
  before=$(lsn)
  run_extra ack "$k" "$BENCH_ACK_CLIENTS" bench_nopk "$script" "$BENCH_ACK_SECONDS" "$ff"
  wal=$(wal_since "$before"); rows=$(count_rows bench_nopk)
  printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$BENCH_ACK_CLIENTS" "$rows" "$wal" \
    "$(awk -v w="$wal" -v r="$rows" 'BEGIN {printf "%.0f", (r > 0 ? w / r : 0)}')" >>"$RAW/ack_wal.tsv"
  log "  -> WAL $wal bytes for $rows rows"
}

run_ack() {
  local ins enq
  ack_setup
  ins=$(script_for insert.sql bench_nopk); enq=$(script_for enqueue.sql bench_nopk)
  EXTRA_MODE=prepared
  EXTRA_ENV=(PGOPTIONS="-c synchronous_commit=on"); run_ack_one insert_sync_on "$ins" 0
  EXTRA_ENV=(PGOPTIONS="-c synchronous_commit=off"); run_ack_one insert_sync_off "$ins" 0
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=committed"); run_ack_one enqueue_committed "$enq" 0
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=logged"); run_ack_one enqueue_logged "$enq" 1
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=queued"); run_ack_one enqueue_queued "$enq" 1
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=memory"); run_ack_one enqueue_memory "$enq" 1
  # every helper (pgbench, reset, count, flush) in the 0.2.0 database for this one
  EXTRA_ENV=(PGOPTIONS="-c ingest.ack=queued" PGDATABASE=bench_v02)
  PGDATABASE=bench_v02 run_ack_one enqueue_ring_only_v02 "$enq" 1
}
