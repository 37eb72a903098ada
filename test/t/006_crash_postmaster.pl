# kill -9 of the postmaster, repeatedly, while 8 clients enqueue with ingest.wait_for_commit = on.
# Odd rounds kill only the postmaster (its children notice and exit on their own); even rounds
# then SIGKILL every child too, as in a machine crash that keeps the OS page cache. The server is
# started again (with retries while old children hold the shared memory). Every acknowledged row
# (its COMMIT returned) must be present exactly once, and no row at all may be there twice.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

my $node = ingest_node('crash_postmaster', fsync => 1, conf => "log_statement = none\n");
$node->safe_psql('postgres', q{CREATE TABLE cp (id bigint NOT NULL, client int)});

my $clients = start_ack_clients($node, clients => 8, table => 'cp', per_run => 1000);
ok(poll_until(60, sub { ack_count($clients) >= 200 }), 'load is running');

my $rounds = 6;
my $ok_rounds = 0;
for my $i (1 .. $rounds) {
    sleep 1.5;
    my $pm = postmaster_pid($node);
    kill 'STOP', $pm if $i % 2 == 0;    # forks nobody between the listing and the kill (kill9_server)
    my @kids = postmaster_children($pm);
    my $acks = ack_count($clients);
    $node->kill9;
    if ($i % 2 == 0) {
        kill 'KILL', @kids;
    }
    # Old children may hold the shared memory a moment: wait for them, then start (retrying).
    my $started = restart_after_kill9($node, $pm, \@kids);
    my $resumed = $started && poll_until(60, sub { ack_count($clients) > $acks + 100 });
    if (!$started || !$resumed) {
        fail("round $i: killed postmaster $pm" . ($i % 2 == 0 ? ' and ' . scalar(@kids) . ' children' : '')
              . "; restarted: $started; load resumed: " . ($resumed ? 1 : 0));
        last;
    }
    $ok_rounds++;
}
is($ok_rounds, $rounds, "$rounds postmaster kills: each time the server came back and the load resumed");

my $res = stop_ack_clients($clients);
is($res->{hung}, 0, 'clients stopped');
my @acked = @{ $res->{acked} };
cmp_ok(scalar(@acked), '>', 1000, scalar(@acked) . ' rows acknowledged');
my @warnings = grep { /pg_ingest/ } ($res->{errors} =~ /WARNING:  ([^\n]*)/g);
is(join("\n", @warnings), '', 'no client got a pg_ingest warning');

is($node->safe_psql('postgres', q{SET ingest.wait_for_commit = on; SELECT ingest_enqueue('cp', ROW(1, 0)::cp) > 0}),
    't', 'enqueue after the crashes commits');
is($node->safe_psql('postgres', q{SELECT ingest_flush('60s')}), 't', 'ingest_flush');
is(scalar(worker_pids($node)), 1, 'one worker runs');

is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT id FROM cp GROUP BY id HAVING count(*) > 1) d}),
    '0', 'no row landed twice');
my %present = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', q{SELECT id FROM cp});
my @missing = grep { !$present{$_} } @acked;
is(scalar(@missing), 0, 'every acknowledged row is present')
  or diag('missing (first 20): ' . join(' ', @missing[ 0 .. ($#missing < 19 ? $#missing : 19) ]));
ok($present{1}, 'row enqueued after the crashes landed');

$node->stop;
done_testing();
