# With synchronous standbys configured, an acknowledged enqueue (wait_for_commit = on) waits for
# them as a COMMIT of the caller's own rows would: the worker commits asynchronously, so the
# caller flushes the worker's commit and then waits for synchronous replication of it. Here the
# named standby never connects, so the caller must be seen waiting (wait event SyncRep) until it
# is cancelled; with synchronous_commit = local it must not wait.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IngestNode;

my $node = ingest_node('sync_rep', conf => "wal_level = replica\nmax_wal_senders = 2\n");
$node->safe_psql('postgres', q{
    CREATE TABLE t (id int);
    SELECT ingest_enqueue('t', ROW(0)::t);
    ALTER SYSTEM SET synchronous_standby_names = 'no_such_standby';
    SELECT pg_reload_conf();
});

# synchronous_commit = local: no wait for standbys, the row is acknowledged at once.
my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
    "SET synchronous_commit = local; SELECT ingest_enqueue('t', ROW(1)::t) > 0;", timeout => 60);
is($out, 't', 'synchronous_commit = local: enqueue acknowledged') or diag($err);
cmp_ok($secs, '<', 10, sprintf('synchronous_commit = local: no wait for the standby (%.1f s)', $secs));

# synchronous_commit = on (default): the acknowledgement waits for the standby.
my ($in, $bout, $berr) = ('', '', '');
my $h = IPC::Run::start(
    [ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
      "SET application_name = 'waiter'; SELECT ingest_enqueue('t', ROW(2)::t) > 0" ],
    '<', \$in, '>', \$bout, '2>', \$berr, IPC::Run::timeout(120));
my $waiting_sql = q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'waiter' AND wait_event = 'SyncRep'};
ok(poll_until(30, sub { $node->safe_psql('postgres', $waiting_sql) eq '1' }),
    'the acknowledging caller waits for the synchronous standby');
sleep 2;
is($node->safe_psql('postgres', $waiting_sql), '1', 'and is still waiting 2 s later');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE id = 2'), '1',
    'the row is committed locally meanwhile');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'waiter'});
$h->finish;
like($berr, qr/canceling wait for synchronous replication/, 'a cancel ends the wait with PostgreSQL\'s warning');

$node->safe_psql('postgres', q{ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf();});
$node->stop;
done_testing();
