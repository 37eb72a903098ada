# Attack 9: DROP DATABASE while rows for it are queued.
# Rows queued for database x (the worker held by ingest.test_worker_delay), then DROP DATABASE x
# WITH (FORCE). Fixed behaviour: the ring space is reclaimed within a bounded time (tail catches
# head) and other databases keep enqueuing, also more data than the ring holds in total. Before
# the fix the dropped database's worker slot kept pinning the tail while its worker failed to
# reconnect (about 10 s), so another database's COMMITs failed with "ring is full".
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('drop_database',
    conf => "ingest.ring_size = 4MB\ningest.enqueue_timeout = 3s\ningest.wait_timeout = 10s\n");
$node->safe_psql('postgres', q{
    CREATE ROLE atk_hal;
    CREATE DATABASE x;
    CREATE TABLE keep (id int, pad text);
    ALTER TABLE keep OWNER TO atk_hal;
});
$node->safe_psql('x', q{
    CREATE EXTENSION pg_ingest;
    CREATE TABLE xt (id int, pad text);
    ALTER TABLE xt OWNER TO atk_hal;
});
# Start x's worker, then hold it.
$node->safe_psql('x', q{SET ROLE atk_hal; SELECT ingest_enqueue('xt', ROW(0, 'warm')::xt)});
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.test_worker_delay = '60s'; SELECT pg_reload_conf();});
sleep 1;
$node->safe_psql('x', q{
    SET ROLE atk_hal; SET ingest.wait_for_commit = off;
    SELECT ingest_enqueue_copy('xt', convert_to(string_agg(g::text || E'\tqueued-for-x\n', ''), 'UTF8'))
    FROM generate_series(1, 2000) g;
});
ok($node->safe_psql('postgres', 'SELECT ring_used_bytes > 0 FROM ingest_ring') eq 't', 'rows for x are queued');

my ($rc, $out, $err) = timed_psql($node, 'postgres', 'DROP DATABASE x WITH (FORCE)', timeout => 30);
is($rc, 0, 'DROP DATABASE x WITH (FORCE) succeeds') or diag($err);
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.test_worker_delay; SELECT pg_reload_conf();});

my $reclaimed = poll_until(8, sub {
    $node->safe_psql('postgres', 'SELECT tail = head FROM ingest_ring') eq 't';
});
ok($reclaimed, 'the ring is reclaimed (tail = head) within 8 s of the drop');

# Other databases keep enqueuing: 12 x 1 MB through a 4 MB ring, each committed.
my $ok = 1;
for my $i (1 .. 12) {
    my ($r, $o, $e) = timed_psql($node, 'postgres', qq{
        SET ROLE atk_hal;
        SELECT ingest_enqueue_copy('keep', convert_to(string_agg(($i * 10000 + g)::text || E'\t' || repeat('p', 1000) || E'\n', ''), 'UTF8'))
        FROM generate_series(1, 1000) g;}, timeout => 30, on_error_stop => 1);
    if ($r != 0) { diag("round $i: $e"); $ok = 0; last; }
}
ok($ok, 'another database enqueues 12 MB through the 4 MB ring after the drop');
is($node->safe_psql('postgres', q{SELECT ingest_flush('20s')}), 't', 'flushed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM keep'), '12000', 'those rows landed');

$node->stop('immediate');
done_testing();
