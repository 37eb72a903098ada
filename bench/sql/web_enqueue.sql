-- web phase: one request = one event, pg_ingest's JSON form (columns by key; id and at take their
-- defaults in the worker), the same values as web_insert.sql; @USERS@ from bench/run.sh
\set uid random(1, @USERS@)
\set k random(1, 8)
\set p random(1, 2000)
\set s random(1, 100000000)
\set ms random(1, 5000)
SELECT ingest_enqueue('web_events'::regclass, jsonb_build_object(
  'user_id', :uid::int, 'kind', (ARRAY['view','click','scroll','search','add_to_cart','purchase','login','logout'])[:k::int],
  'path', '/products/' || :p::int,
  'payload', jsonb_build_object('session', :s::bigint, 'ms', :ms::int, 'ref', 'https://example.org/p/' || :p::int,
                                'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench', 'ab', ARRAY['a' || :k::int, 'b' || :p::int % 7])));
