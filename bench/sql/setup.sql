-- bench/run.sh: objects in the benchmark database (fresh cluster each run)
CREATE EXTENSION pg_ingest;
-- the narrow table, without and with a primary key; autovacuum off so that it does not run in
-- the middle of a measurement (every run starts from TRUNCATE + CHECKPOINT)
CREATE TABLE bench_nopk (id bigint, ts timestamptz, n int, msg text) WITH (autovacuum_enabled = off);
CREATE TABLE bench_pk (id bigint PRIMARY KEY, ts timestamptz, n int, msg text) WITH (autovacuum_enabled = off);
-- ids for single rows; UNLOGGED so that nextval() writes no WAL and never assigns a
-- transaction id (a logged sequence would give every 32nd enqueue-only transaction an xid and
-- send it down pg_ingest's slower "transaction with an xid" path). Same for every contender.
CREATE UNLOGGED SEQUENCE bench_id CACHE 100;
-- chunk numbers for the array-enqueue bulk contender
CREATE UNLOGGED SEQUENCE bench_chunk CACHE 1;
