-- bulk: one ingest_enqueue call with an array of @ARRAY@ rows per transaction; chunks are numbered
-- by a sequence so that several sessions together produce ids 1..N exactly once.
-- @TABLE@, @ARRAY@ and @ROWEXPR@ (the shared row expression over g) are replaced by bench/run.sh
SELECT nextval('bench_chunk') - 1 AS c \gset
SELECT ingest_enqueue('@TABLE@'::regclass, array_agg(ROW(@ROWEXPR@)::@TABLE@)) FROM generate_series(:c::bigint * @ARRAY@ + 1, :c::bigint * @ARRAY@ + @ARRAY@) AS g;
