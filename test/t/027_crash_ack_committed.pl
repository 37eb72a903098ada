# ingest.ack = committed (the default; ingest.wait_for_commit = on) under kill -9 of the
# postmaster, now that every envelope is also a row of ingest_queue: the same rounds as 026, with
# COMMIT waiting for the worker's commit. Every acknowledged row must be present exactly once, and
# rows queued but not yet inserted at a crash (transactions that committed while their client
# never got the answer) must neither be lost from the queue nor inserted twice: after the last
# restart, with nothing enqueued, ingest_queue drains to empty and no id is there twice.
#
# 8 clients (a role without superuser rights) with ingest.ack = committed; the worker sleeps
# 100 ms before each batch, so a batch serves many waiting clients and crashes hit envelopes in
# every state. Odd rounds kill only the postmaster, even rounds every child too; the last round
# holds SHARE LOCK on the table first (the worker's insert waits), kills everything, and restarts
# with the clients stopped.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

my $node = ingest_node('crash_ack_committed', fsync => 1,
    conf => "log_statement = none\ningest.test_worker_delay = 100ms\n");
$node->safe_psql('postgres', q{
    CREATE TABLE cc (id bigint NOT NULL, client int);
    CREATE ROLE ingest_client LOGIN;
    GRANT INSERT, SELECT ON cc TO ingest_client;
});
my $as_client = $node->connstr('postgres') . ' user=ingest_client';
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'ingest_client'}), 'f',
    'the clients\' role is not a superuser');
is($node->safe_psql('postgres', 'SHOW ingest.ack', connstr => $as_client), 'committed',
    'ingest.ack defaults to committed');

# With committed, the row is in the table when COMMIT returns.
my ($rc, $out, $err) = $node->psql('postgres',
    q{SET ingest.ack = committed; SELECT ingest_enqueue('cc', ROW(1, 0)::cc) > 0; SELECT count(*) FROM cc WHERE id = 1;},
    connstr => $as_client, timeout => 60);
is($out, "t\n1", 'ingest.ack = committed: the row is there when COMMIT returns') or diag($err);

my ($r, $acked_ref) = ack_crash_load($node, 'cc', ack => 'committed', user => 'ingest_client', min_running => 100, min_acked => 200, per_run => 200, resume_acks => 20);
my @acked = @$acked_ref;

check_exactly_once($node, 'cc', [ @acked, 1 ], 'committed');

# The deprecated alias still means committed.
($rc, $out, $err) = $node->psql('postgres',
    q{SET ingest.wait_for_commit = on; SELECT ingest_enqueue('cc', ROW(2, 0)::cc) > 0; SELECT count(*) FROM cc WHERE id = 2;},
    connstr => $as_client, timeout => 60);
is($out, "t\n1", 'after the crashes, ingest.wait_for_commit = on: the row is there when COMMIT returns') or diag($err);
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$node->stop;
done_testing();
