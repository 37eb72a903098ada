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
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
make -s >/dev/null
$SUDO make -s install >/dev/null
make -s client >/dev/null                      # libpgingest and the pgingest loader
$SUDO cmake --install build/client >/dev/null  # /usr/local: library, headers, pkg-config, pgingest
echo "== 3/5 private cluster"; scripts/cluster.sh start
psql_() { PGOPTIONS="-c client_min_messages=warning" scripts/cluster.sh psql -v ON_ERROR_STOP=1 -q "$@"; }
# Recreated on every run: a cluster kept from an earlier checkout may hold the extension's
# objects as an older build defined them. Only demo data lives here.
psql_ -c "DROP EXTENSION IF EXISTS pg_ingest CASCADE" -c "CREATE EXTENSION pg_ingest" \
      -c "DROP TABLE IF EXISTS demo_events" \
      -c "CREATE TABLE demo_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, user_id int NOT NULL,
                                    kind text NOT NULL, payload jsonb)" \
      -c "SELECT ingest_reset_stats()" >/dev/null

echo "== 4/5 load $ROWS events through pg_ingest"
# A file rather than a pipe, so the progress line can show percent and ETA.
SAMPLE=build/quickstart/events-$ROWS.csv
if [ ! -s "$SAMPLE" ]; then
  mkdir -p build/quickstart
  scripts/gen-events.sh "$ROWS" > "$SAMPLE.tmp" && mv "$SAMPLE.tmp" "$SAMPLE"
fi
eval "$(scripts/cluster.sh env)"
start=$(date +%s.%N)
build/client/client/tools/pgingest load --table demo_events --format csv "$SAMPLE"
psql_ -c "SELECT ingest_flush('120s')" >/dev/null
end=$(date +%s.%N)

echo "== 5/5 result"
psql_ -P pager=off -c "SELECT relname, rows_enqueued, rows_committed, rows_failed, rows_queued, batches, avg_batch_rows, last_error FROM ingest_status WHERE relname = 'demo_events'" \
      -c "SELECT count(*) AS rows_in_table FROM demo_events"
awk -v r="$ROWS" -v a="$start" -v b="$end" 'BEGIN { printf "loaded %d rows in %.1f s (%.0f rows/s)\n", r, b - a, r / (b - a) }'
echo "connect with: scripts/cluster.sh psql     stop and remove with: make quickstart-stop"
