#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to rows flowing: installs dependencies, builds and
# installs pg_ingest, starts a private throwaway cluster (scripts/cluster.sh), creates a demo
# table, loads 1,000,000 generated events through pg_ingest and shows ingest_status.
# Run it again at will; `make quickstart-stop` removes the private cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${PGI_DEMO_ROWS:-1000000}

echo "== 1/5 dependencies"; scripts/install-deps.sh
echo "== 2/5 build and install"
make -s >/dev/null
if [ "$(id -u)" -eq 0 ]; then make -s install >/dev/null; else sudo make -s install >/dev/null; fi
[ -f CMakeLists.txt ] && [ -d client ] && make -s client >/dev/null 2>&1 || true
echo "== 3/5 private cluster"; scripts/cluster.sh start
psql_() { PGOPTIONS="-c client_min_messages=warning" scripts/cluster.sh psql -v ON_ERROR_STOP=1 -q "$@"; }
psql_ -c "CREATE EXTENSION IF NOT EXISTS pg_ingest" \
      -c "DROP TABLE IF EXISTS demo_events" \
      -c "CREATE TABLE demo_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, user_id int NOT NULL,
                                    kind text NOT NULL, payload jsonb)" \
      -c "SELECT ingest_reset_stats()" >/dev/null

echo "== 4/5 load $ROWS events through pg_ingest"
LOADER=build/client/pgingest
start=$(date +%s.%N)
if [ -x "$LOADER" ]; then
  eval "$(scripts/cluster.sh env)"
  scripts/gen-events.sh "$ROWS" | "$LOADER" load --table demo_events --format csv -
else
  # Until the pgingest loader is built: 1,000 calls of 1,000 rows each, from 4 sessions.
  per=$(( ROWS / 4 ))
  for s in 0 1 2 3; do
    psql_ -c "SELECT count(ingest_enqueue('demo_events', rows)) FROM (
                SELECT array_agg(ROW(g, now() - (g % 86400) * interval '1 second', g % 10000,
                                     (ARRAY['view','click','buy','share'])[1 + g % 4],
                                     jsonb_build_object('session', g % 977, 'ms', g % 1500))::demo_events) rows
                FROM generate_series($(( s * per + 1 )), $(( (s + 1) * per ))) g GROUP BY g / 1000) b" >/dev/null &
  done
  wait
fi
psql_ -c "SELECT ingest_flush('120s')" >/dev/null
end=$(date +%s.%N)

echo "== 5/5 result"
psql_ -P pager=off -c "SELECT relname, rows_enqueued, rows_committed, rows_failed, rows_queued, batches, avg_batch_rows, last_error FROM ingest_status WHERE relname = 'demo_events'" \
      -c "SELECT count(*) AS rows_in_table FROM demo_events"
awk -v r="$ROWS" -v a="$start" -v b="$end" 'BEGIN { printf "loaded %d rows in %.1f s (%.0f rows/s)\n", r, b - a, r / (b - a) }'
echo "connect with: scripts/cluster.sh psql     stop and remove with: make quickstart-stop"
