# Failover with ingest.ack = logged (issue 14): COMMIT returns once the rows' envelope (a row of
# ingest_queue) is flushed locally and on the synchronous standby. The primary is then killed
# with rows still queued; the standby is promoted and, with nothing enqueued on it, a worker
# started by its launcher must insert the queue's rows: every acknowledged id present exactly once.
#
# Primary + streaming standby, both with pg_ingest preloaded (the standby is a base backup of the
# primary, configuration included), synchronous_standby_names naming the standby. The primary's
# worker sleeps 2 s before each batch, so most acknowledged rows are only queued. 8 clients (a role
# without superuser rights) enqueue one row per transaction and keep ledgers of the acknowledged
# ids. While in recovery the standby must run no pg_ingest worker (it could not insert anyway, and
# must not try). Then kill -9 of the primary (postmaster and children), promote, wait until the
# promoted standby's ingest_queue is empty, check.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

my $worker_sql = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker'};

my $primary = ingest_node('promote_primary', fsync => 1, init => { allows_streaming => 1 },
    conf => "log_statement = none\nshared_buffers = 16MB\n");
$primary->safe_psql('postgres', q{
    CREATE TABLE fo (id bigint NOT NULL, client int);
    CREATE ROLE ingest_client LOGIN;
    GRANT INSERT ON fo TO ingest_client;
});
my $as_client = $primary->connstr('postgres') . ' user=ingest_client';
is($primary->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'ingest_client'}), 'f',
    'the clients\' role is not a superuser');

# The standby: a base backup of the primary (postgresql.conf with shared_preload_libraries =
# 'pg_ingest' included), streaming from it. Its walreceiver's application_name is its cluster_name,
# the node's name.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('promote_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT pg_is_in_recovery(), current_setting('shared_preload_libraries')}),
    't|pg_ingest', 'the standby is in recovery with pg_ingest preloaded');

# Synchronous replication to it, and the primary's worker held back (both set after the backup,
# so the promoted standby runs neither a throttled worker nor waits for a standby of its own).
$primary->safe_psql('postgres', q{
    ALTER SYSTEM SET synchronous_standby_names = 'promote_standby';
    ALTER SYSTEM SET ingest.test_worker_delay = '2000ms';
    SELECT pg_reload_conf();
});
ok(poll_until(60, sub {
    (scalar_sql($primary, q{SELECT sync_state FROM pg_stat_replication WHERE application_name = 'promote_standby'}) // '') eq 'sync'
}), 'the standby is synchronous');

my ($rc, $out, $err) = $primary->psql('postgres',
    q{SET ingest.ack = logged; SELECT ingest_enqueue('fo', ROW(1, 0)::fo) > 0;}, connstr => $as_client, timeout => 60);
is($out, 't', 'ingest.ack = logged: the role enqueues on the primary') or diag($err);

my $clients = start_ack_clients($primary, clients => 8, table => 'fo', per_run => 1000,
    ack => 'logged', user => 'ingest_client', flush => 1);
ok(poll_until(60, sub { ack_count($clients) >= 500 }), 'load is running')
  or diag('client errors: ' . ack_errors($clients));

# While the load runs, the standby (in recovery) runs no pg_ingest worker.
my ($samples, $standby_workers) = (0, 0);
my $t_end = time + 4;
while (time < $t_end) {
    my $n = scalar_sql($standby, $worker_sql);
    if (defined $n) { $samples++; $standby_workers += $n; }
    sleep 0.2;
}
cmp_ok($samples, '>=', 5, "the standby answered $samples times during the load");
is($standby_workers, 0, 'no pg_ingest worker ran on the standby while it was in recovery');

# Just before the kill: rows are queued on the primary, and replicated to the standby's queue.
my $queued_primary = queue_depth($primary);
my $queued_standby = queue_depth($standby);
like($queued_primary // '', qr/^[1-9]\d*$/, 'rows were queued on the primary: ' . ($queued_primary // 'unreadable'));
like($queued_standby // '', qr/^[1-9]\d*$/, 'and in the standby\'s replicated ingest_queue: ' . ($queued_standby // 'unreadable'));

my ($pm, $kids) = kill9_server($primary, 1);
my $res = stop_ack_clients($clients);
is($res->{hung}, 0, 'clients stopped');
my @acked = @{ $res->{acked} };
cmp_ok(scalar(@acked), '>', 1000, scalar(@acked) . ' rows acknowledged');
is(ingest_messages($res->{errors}, 'WARNING'), '', 'no client got a pg_ingest warning');
is(ingest_messages($res->{errors}, 'ERROR'), '', 'no client got an error about pg_ingest or its queue');

# What the standby has before the promotion, once it replayed all it received (nothing more can
# arrive: the primary is gone).
ok(poll_until(60, sub {
    (scalar_sql($standby, 'SELECT pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()') // '') eq 't'
}), 'the standby replayed all the WAL it received');
my %before = map { $_ => 1 } split /\n/, $standby->safe_psql('postgres', 'SELECT id FROM fo');
is(scalar_sql($standby, $worker_sql), '0', 'still no pg_ingest worker on the standby before the promotion');
# Nor did one start and fail (the postmaster logs a background worker's failed exit), and nothing
# logged an error about pg_ingest. (Other pg_ingest processes, e.g. a launcher, are only reported.)
my $log_before = slurp_file($standby->logfile);
my @worker_exits = ($log_before =~ /(background worker "pg_ingest worker" \(PID \d+\) [^\n]*)/g);
is(join("\n", @worker_exits[ 0 .. ($#worker_exits < 9 ? $#worker_exits : 9) ]), '',
    'no pg_ingest worker exited on the standby while it was in recovery');
my @other_exits = ($log_before =~ /(background worker "pg_ingest[^"]*" \(PID \d+\) [^\n]*)/g);
note('pg_ingest background worker exits on the standby before the promotion: ' . scalar(@other_exits)
    . (@other_exits ? "; first: $other_exits[0]" : ''));
is(ingest_messages($log_before, 'ERROR|FATAL|PANIC'), '', 'the standby logged no pg_ingest error while in recovery');

my $t0 = time;
$standby->promote;
ok(poll_until(60, sub { (scalar_sql($standby, 'SELECT pg_is_in_recovery()') // '') eq 'f' }), 'standby promoted');
my ($drained, $state) = wait_until_drained($standby, 'SELECT count(*) FROM fo', 120);
ok($drained, 'on the promoted standby, with nothing enqueued, ingest_queue drains to empty') or diag($state);
note(sprintf('promotion and drain took %.0f s', time - $t0));

my $present = check_exactly_once($standby, 'fo', [ @acked, 1 ], 'after failover');
my @recovered = grep { !$before{$_} && $present->{$_} } @acked;
cmp_ok(scalar(@recovered), '>', 0,
    scalar(@recovered) . ' acknowledged rows were only queued at the failover and were inserted by the promoted standby');

# The promoted standby takes new rows too.
is($standby->safe_psql('postgres', q{SET ingest.ack = logged; SELECT ingest_enqueue('fo', ROW(2, 0)::fo) > 0},
    connstr => $standby->connstr('postgres') . ' user=ingest_client'), 't', 'enqueue on the promoted standby');
ok(poll_until(60, sub { $standby->safe_psql('postgres', 'SELECT count(*) FROM fo WHERE id = 2') eq '1' }),
    'and it lands');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$standby->stop;
done_testing();
