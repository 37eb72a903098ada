-- overhead phase: the call of enqueue.sql without the enqueue: builds the same row and its text
-- form only; @TABLE@ is replaced by bench/run.sh
\set n random(0, 999999)
SELECT length(ROW(nextval('bench_id'), now(), :n, 'pgbench single-row message, 40 bytes ok.')::@TABLE@::text);
