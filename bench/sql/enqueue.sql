-- single-row ingest_enqueue (pgbench -M prepared); @TABLE@ is replaced by bench/run.sh
\set n random(0, 999999)
SELECT ingest_enqueue('@TABLE@'::regclass, ROW(nextval('bench_id'), now(), :n, 'pgbench single-row message, 40 bytes ok.')::@TABLE@);
