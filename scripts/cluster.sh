#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 cluster with pg_ingest preloaded: data directory inside the
# checkout (.pgdata, or /var/tmp when the server user cannot reach the checkout), unix socket
# only (no TCP port is opened), server running as the unprivileged user "postgres".
#
#   scripts/cluster.sh start     init (first time) and start; prints how to connect
#   scripts/cluster.sh stop      stop it
#   scripts/cluster.sh destroy   stop and delete it
#   scripts/cluster.sh env       print PGHOST/PGPORT/PGUSER/PGDATABASE exports for this cluster
#   scripts/cluster.sh psql ...  run psql against it
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
PG_BINDIR=$(pg_config --bindir)
SERVER_USER=${PGI_SERVER_USER:-postgres}
PORT=${PGI_PORT:-54329}

run_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$SERVER_USER" -- "$@"; else "$@"; fi; }

if [ "$(id -u)" -eq 0 ] && ! runuser -u "$SERVER_USER" -- test -x "$TOP"; then
  DATA=/var/tmp/pg_ingest-cluster
else
  DATA=$TOP/.pgdata
fi
DATA=${PGI_DATA:-$DATA}
SOCK=$DATA/socket

case ${1:-} in
start)
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"; [ "$(id -u)" -eq 0 ] && chown "$SERVER_USER" "$DATA"; chmod 700 "$DATA"
    run_as "$PG_BINDIR/initdb" -D "$DATA" -A trust -U postgres --no-sync >/dev/null
    mkdir -p "$SOCK"; [ "$(id -u)" -eq 0 ] && chown "$SERVER_USER" "$SOCK"
    cat >> "$DATA/postgresql.conf" <<CONF
# pg_ingest private cluster
shared_preload_libraries = 'pg_ingest'
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
max_worker_processes = 16
max_connections = 300
shared_buffers = 512MB
max_wal_size = 4GB
CONF
  fi
  if ! run_as "$PG_BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    run_as "$PG_BINDIR/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w start >/dev/null
  fi
  echo "private cluster running: data $DATA, socket $SOCK, port $PORT (unix socket only)"
  ;;
stop)
  [ -f "$DATA/PG_VERSION" ] && run_as "$PG_BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  echo "private cluster stopped"
  ;;
destroy)
  [ -f "$DATA/PG_VERSION" ] && run_as "$PG_BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
  echo "private cluster removed ($DATA)"
  ;;
env)
  echo "export PGHOST=$SOCK PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres"
  ;;
psql)
  shift
  exec "$PG_BINDIR/psql" -X -h "$SOCK" -p "$PORT" -U postgres "$@"
  ;;
*)
  echo "usage: $0 start|stop|destroy|env|psql [args]" >&2; exit 2 ;;
esac
