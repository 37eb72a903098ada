-- bench/run.sh, phases web and pgbouncer: the web-request table of issue 13 and the users it
-- references; @USERS@ is replaced by bench/run.sh (BENCH_WEB_USERS)
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL DEFAULT now());
INSERT INTO users (id, name) SELECT g, 'user-' || g FROM generate_series(1, @USERS@) AS g;
-- autovacuum off like the narrow tables: every run starts from TRUNCATE ... RESTART IDENTITY + CHECKPOINT
CREATE TABLE web_events (
  id bigserial PRIMARY KEY,
  at timestamptz DEFAULT now(),
  user_id int REFERENCES users,
  kind text,
  path text,
  payload jsonb
) WITH (autovacuum_enabled = off);
CREATE INDEX web_events_user_at ON web_events (user_id, at);
CREATE INDEX web_events_kind ON web_events (kind);
CREATE INDEX web_events_payload ON web_events USING gin (payload);
VACUUM ANALYZE users;
-- roles for the pgbouncer phase: each acknowledgement mode is a role default, so nothing is SET
-- in a pooled session (transaction pooling would hand it to the next client). Fire-and-forget is
-- ingest.ack = memory (the ring-only path), not wait_for_commit = off (= queued since 0.3.0).
CREATE ROLE bench_ff LOGIN;
ALTER ROLE bench_ff SET ingest.ack = memory;
CREATE ROLE bench_durable LOGIN;
ALTER ROLE bench_durable SET ingest.ack = committed;
CREATE ROLE bench_async LOGIN;
ALTER ROLE bench_async SET synchronous_commit = off;
CREATE ROLE bench_sync LOGIN;
ALTER ROLE bench_sync SET synchronous_commit = on;
GRANT SELECT, INSERT ON bench_nopk, web_events TO bench_ff, bench_durable, bench_async, bench_sync;
GRANT USAGE ON SEQUENCE bench_id, web_events_id_seq TO bench_ff, bench_durable, bench_async, bench_sync;
