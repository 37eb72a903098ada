# A clean shutdown (fast, then smart) while committed rows still wait in the ring: with
# ingest.wait_for_commit = off a COMMIT returns once the rows are in the ring, so the worker must
# drain the ring before the server stops. After the restart every committed enqueue is in the
# table exactly once; rows of a transaction still open at shutdown (some already spilled to the
# ring) never land.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('shutdown', conf => "ingest.ring_size = 16MB\n");
$node->safe_psql('postgres', q{CREATE TABLE s (id bigint NOT NULL, note text)});

# Slow the worker down: small batches, each after a 200 ms nap.
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET ingest.test_worker_delay = '200ms';
    ALTER SYSTEM SET ingest.batch_rows = 500;
    SELECT pg_reload_conf();
});

my $sessions = 4;
my $per_tx = 100;

# Committed enqueues of ids [$first, $first + $n): transactions of $per_tx rows (arrays), with some
# single-row transactions mixed in. Returns the sum of the ids.
sub load {
    my ($first, $n) = @_;
    my @scripts = map { "SET ingest.wait_for_commit = off;\n" } 1 .. $sessions;
    my $k = 0;
    for (my $id = $first; $id < $first + $n; $id += $per_tx) {
        my $last = $id + $per_tx - 1;
        my $sql = ($k % 5 == 0)
          ? join('', map { "SELECT ingest_enqueue('s', ROW($_, 'single')::s) IS NOT NULL;\n" } $id .. $last)
          : "SELECT ingest_enqueue('s', ARRAY(SELECT ROW(g, 'batch')::s FROM generate_series($id, $last) g)) IS NOT NULL;\n";
        $scripts[ $k++ % $sessions ] .= $sql;
    }
    my @res = psql_scripts($node, 'postgres', \@scripts, on_error_stop => 1, timeout => 120);
    is(join(',', map { $_->{rc} } @res), join(',', (0) x $sessions), "load of ids from $first committed")
      or diag(join('', map { $_->{err} } @res));
    my $sum = 0;
    $sum += $_ for $first .. $first + $n - 1;
    return $sum;
}

my $drains_before = 0;
for my $case ([ 'fast', 1_000_000 ], [ 'smart', 2_000_000 ]) {
    my ($mode, $first) = @$case;
    my $n = 50_000;
    my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM s');

    # A transaction left open at shutdown: it has enqueued 45,000 rows (~5MB, so 4MB were spilled
    # to the ring tagged with its xid) and one small row. None of it may land.
    my $open;
    if ($mode eq 'fast') {
        $open = $node->background_psql('postgres', on_error_stop => 0);
        $open->query_safe(q{BEGIN});
        $open->query_safe(q{SELECT ingest_enqueue('s', ARRAY(SELECT ROW(-g, repeat('o', 100))::s FROM generate_series(1, 45000) g)) IS NOT NULL});
    }

    my $sum = load($first, $n);
    my $queued = $node->safe_psql('postgres', q{SELECT rows_queued FROM ingest_status WHERE relname = 's'});
    cmp_ok($queued, '>', 10_000, "$mode: rows still queued in the ring at shutdown ($queued)");

    my $t0 = time;
    $node->stop($mode);
    my $took = time - $t0;
    ok($took < 60, "$mode shutdown finished ($took s)");
    eval { $open->quit } if $open;
    $node->start;

    is($node->safe_psql('postgres', q{SELECT ingest_flush('60s')}), 't', "$mode: ingest_flush after restart");
    is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT id), sum(id) FROM s WHERE id >= $first AND id < $first + $n"),
        "$n|$n|$sum", "$mode: every committed enqueue landed exactly once");
    is($node->safe_psql('postgres', 'SELECT count(*) FROM s') - $before, $n, "$mode: nothing else landed");
    # Each worker of the database logs it (a second one may have been sharing the backlog).
    my @drains = (slurp_file($node->logfile) =~ /pg_ingest worker draining the ring before exit/g);
    cmp_ok(scalar(@drains), '>', $drains_before, "$mode: the worker logged that it drained the ring before exit");
    $drains_before = scalar(@drains);
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM s WHERE id < 0'), '0', 'rows of the open transaction never landed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$node->stop;
done_testing();
