# ingest.ack = logged under kill -9 of the postmaster (issue 14): COMMIT returns once the rows'
# envelope is in WAL flushed to disk (a row of ingest_queue written in the caller's transaction),
# without waiting for the worker's insert. From then on the rows must land exactly once whatever
# crashes: after a crash a worker started by the launcher inserts the queue's leftover rows.
#
# 8 clients, logged in as a role without superuser rights, enqueue one row per autocommit
# transaction with ingest.ack = logged and keep a ledger of the ids whose COMMIT returned. The
# worker is throttled (ingest.test_worker_delay = 300ms before each batch), so at every kill many
# acknowledged rows are still queued. 4 rounds: odd rounds kill only the postmaster (its children
# notice and exit), even rounds every child too. In the last round the table is held under SHARE
# LOCK first (the worker's insert waits, the enqueues go on), so the rows acknowledged in that
# round's last 2 s are in ingest_queue only; after that kill the clients are stopped and the server
# is started again with nothing enqueued: the launcher alone must bring those rows in.
# Checks: the queue was not empty at the kills; after the restart ingest_queue drains to empty;
# every acknowledged id is present, none twice; acknowledged rows that were absent at the last
# kill were inserted after the restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

my $node = ingest_node('crash_ack_logged', fsync => 1,
    conf => "log_statement = none\ningest.test_worker_delay = 300ms\n");
$node->safe_psql('postgres', q{
    CREATE TABLE cl (id bigint NOT NULL, client int);
    CREATE ROLE ingest_client LOGIN;
    GRANT INSERT ON cl TO ingest_client;
});
my $as_client = $node->connstr('postgres') . ' user=ingest_client';
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'ingest_client'}), 'f',
    'the clients\' role is not a superuser');

# The role can use the mode at all (a clear failure here beats a load that never starts).
my ($rc, $out, $err) = $node->psql('postgres',
    q{SET ingest.ack = logged; SELECT current_user, ingest_enqueue('cl', ROW(1, 0)::cl) > 0;},
    connstr => $as_client, timeout => 60);
is($out, 'ingest_client|t', 'ingest.ack = logged: the role enqueues') or diag($err);
ok(poll_until(60, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM cl WHERE id = 1') eq '1' }),
    'and the row lands');

my ($r, $acked_ref) = ack_crash_load($node, 'cl', ack => 'logged', user => 'ingest_client', min_running => 500, min_acked => 2000, check_queued => 1);
my @acked = @$acked_ref;

my $present = check_exactly_once($node, 'cl', [ @acked, 1 ], 'logged');
my %at_kill = map { $_ => 1 } split /\n/, ($r->{at_kill} // '');
my @recovered = grep { !$at_kill{$_} && $present->{$_} } @acked;
cmp_ok(scalar(@recovered), '>', 0,
    scalar(@recovered) . ' acknowledged rows were only queued at the last kill and landed after the restart');

# And the server goes on working normally.
is($node->safe_psql('postgres', q{SET ingest.ack = logged; SELECT ingest_enqueue('cl', ROW(2, 0)::cl) > 0},
    connstr => $as_client), 't', 'enqueue after the crashes');
ok(poll_until(60, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM cl WHERE id = 2') eq '1' }),
    'and it lands');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$node->stop;
done_testing();
