# SIGKILL of an ordinary backend, 20 times during a load: each time the postmaster crash-restarts
# the server (shared memory, and with it the ring, is created afresh). Afterwards the worker comes
# back and ingesting works again. Rows acknowledged with ingest.wait_for_commit = on (their COMMIT
# returned) must all be in the table, and no row may be there twice.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

# No statement logging: the load runs hundreds of thousands of statements.
my $node = ingest_node('crash_backend', conf => "log_statement = none\n");

# The server log written since byte $offset.
sub log_since {
    my ($offset) = @_;
    open my $fh, '<', $node->logfile or return '';
    seek $fh, $offset, 0;
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text // '';
}
$node->safe_psql('postgres', q{CREATE TABLE cb (id bigint NOT NULL, client int)});

my $clients = start_ack_clients($node, clients => 6, table => 'cb', per_run => 3000);
ok(poll_until(60, sub { ack_count($clients) >= 100 }), 'load is running');

my $crashes = 20;
my $ok_rounds = 0;
for my $i (1 .. $crashes) {
    my $reset_before = $node->safe_psql('postgres', q{SELECT stats_reset FROM ingest_ring});
    # Pick a client backend running an enqueue and SIGKILL it; again if it had exited already
    # (a zombie still accepts the signal), until the postmaster reports the kill.
    my ($victim, $acks);
    poll_until(30, sub {
        ($victim) = split /\n/, $node->safe_psql('postgres', q{
            SELECT pid FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE '%ingest_enqueue%'
            ORDER BY random() LIMIT 1});
        return 0 unless defined $victim && $victim =~ /^\d+$/;
        $acks = ack_count($clients);
        my $offset = -s $node->logfile;
        return 0 unless kill('KILL', $victim) == 1;
        my $seen = poll_until(5, sub { log_since($offset) =~ /server process \(PID $victim\) was terminated by signal 9/ });
        diag("crash $i: SIGKILL to $victim not reported by the postmaster; log since: " . substr(log_since($offset), 0, 2000)) unless $seen;
        return $seen;
    }) or do { fail("crash $i: could not kill a client backend"); last };
    # The postmaster notices, kills everything, and reinitializes shared memory.
    my $restarted = poll_until(60, sub {
        my ($rc, $out) = $node->psql('postgres', q{SELECT stats_reset FROM ingest_ring}, timeout => 10);
        return defined $rc && $rc == 0 && $out ne $reset_before;
    });
    my $resumed = $restarted && poll_until(60, sub { ack_count($clients) > $acks + 20 });
    if (!$restarted || !$resumed) {
        fail("crash $i: killed $victim; server restarted: $restarted, load resumed: " . ($resumed ? 1 : 0));
        last;
    }
    $ok_rounds++;
}
is($ok_rounds, $crashes, "$crashes backend kills: each time shared memory was reinitialized and the load resumed");

my $res = stop_ack_clients($clients);
is($res->{hung}, 0, 'clients stopped');
my @acked = @{ $res->{acked} };
cmp_ok(scalar(@acked), '>', 1000, scalar(@acked) . ' rows acknowledged');
my @warnings = grep { /pg_ingest/ } ($res->{errors} =~ /WARNING:  ([^\n]*)/g);
is(join("\n", @warnings), '', 'no client got a pg_ingest warning (an acknowledged commit was always confirmed)');

my $crash_logs = () = slurp_file($node->logfile) =~ /all server processes terminated; reinitializing/g;
cmp_ok($crash_logs, '>=', $ok_rounds, "log shows $crash_logs crash restarts");

# The worker comes back and works: an enqueue with wait_for_commit = on returns and lands.
is($node->safe_psql('postgres', q{SET ingest.wait_for_commit = on; SELECT ingest_enqueue('cb', ROW(1, 0)::cb) > 0}),
    't', 'enqueue after the crashes commits');
is(scalar(worker_pids($node)), 1, 'one worker runs');
is($node->safe_psql('postgres', q{SELECT ingest_flush('60s')}), 't', 'ingest_flush');

is($node->safe_psql('postgres', q{SELECT count(*) FROM cb WHERE id = 1}), '1', 'row enqueued after the crashes landed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT id FROM cb GROUP BY id HAVING count(*) > 1) d}),
    '0', 'no row landed twice');
my %present = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', q{SELECT id FROM cb});
my @missing = grep { !$present{$_} } @acked;
is(scalar(@missing), 0, 'every acknowledged row is present')
  or diag('missing (first 20): ' . join(' ', @missing[ 0 .. ($#missing < 19 ? $#missing : 19) ]));
is($node->safe_psql('postgres', q{SELECT rows_queued FROM ingest_status WHERE relname = 'cb'}), '0', 'nothing left queued');

$node->stop;
done_testing();
