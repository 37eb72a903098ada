-- web phase: one request = one event, plain INSERT (pgbench -M prepared); @USERS@ from bench/run.sh
\set uid random(1, @USERS@)
\set k random(1, 8)
\set p random(1, 2000)
\set s random(1, 100000000)
\set ms random(1, 5000)
INSERT INTO web_events (user_id, kind, path, payload)
VALUES (:uid::int, (ARRAY['view','click','scroll','search','add_to_cart','purchase','login','logout'])[:k::int],
        '/products/' || :p::int,
        jsonb_build_object('session', :s::bigint, 'ms', :ms::int, 'ref', 'https://example.org/p/' || :p::int,
                           'ua', 'Mozilla/5.0 (X11; Linux x86_64) bench', 'ab', ARRAY['a' || :k::int, 'b' || :p::int % 7]));
