-- single-row INSERT (pgbench -M prepared); @TABLE@ is replaced by bench/run.sh
\set n random(0, 999999)
INSERT INTO @TABLE@ (id, ts, n, msg) VALUES (nextval('bench_id'), now(), :n, 'pgbench single-row message, 40 bytes ok.');
