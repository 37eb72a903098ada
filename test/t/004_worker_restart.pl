# The worker is terminated (pg_terminate_backend) again and again while 8 pgbench clients
# enqueue: it must come back each time with a new pid, and no row may be lost or duplicated.
# Ids come from a sequence (no transaction here rolls back, so ids 1..N have no gaps): the table
# must hold exactly ids 1..N, N being the number of transactions pgbench committed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IngestNode;

my $node = ingest_node('worker_restart');
$node->safe_psql('postgres', q{
    CREATE TABLE w (id bigint NOT NULL, client int, how text);
    CREATE SEQUENCE w_ids;
});

# Clients alternate wait_for_commit on/off; a second script gives its transaction an xid
# first, so its rows are handed over tagged with that xid and waited for after the commit.
my $dir = PostgreSQL::Test::Utils::tempdir();
open my $fh, '>', "$dir/plain.sql" or die;
print $fh q{
\set half :client_id % 2
SELECT set_config('ingest.wait_for_commit', CASE WHEN :half = 0 THEN 'on' ELSE 'off' END, false);
SELECT ingest_enqueue('w', ROW(nextval('w_ids'), :client_id, 'plain')::w);
};
close $fh;
open $fh, '>', "$dir/xid.sql" or die;
print $fh q{
BEGIN;
SELECT txid_current();
SELECT ingest_enqueue('w', ROW(nextval('w_ids'), :client_id, 'xid')::w);
COMMIT;
};
close $fh;

my $clients = 8;
my $per_client = 3000;
my $total = $clients * $per_client;
my ($out, $err) = ('', '');
# About 25 s at the rate limit, whatever the speed of the machine.
my $bench = IPC::Run::start(
    [ 'pgbench', '--no-vacuum', "--client=$clients", '--jobs=2', "--transactions=$per_client", '--rate=1000',
      '-f', "$dir/plain.sql\@3", '-f', "$dir/xid.sql\@1", '-h', $node->host, '-p', $node->port, 'postgres' ],
    '<', '/dev/null', '>', \$out, '2>', \$err, IPC::Run::timeout(110));

my $kills = 12;
my $done = 0;
my $pid = wait_for_worker_change($node, undef, 30);
ok(defined $pid, 'a worker runs once the load starts');
for my $i (1 .. $kills) {
    last unless $bench->pumpable;
    sleep 1;
    my $r = $node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
    my $new = wait_for_worker_change($node, $pid, 30);
    ok(defined $new, "termination $i: worker $pid replaced by " . ($new // 'nothing'));
    last unless defined $new;
    $pid = $new;
    $done++;
}
my $finished = eval { $bench->finish; 1 };
ok($finished, 'pgbench finished') or diag("pgbench: $@");
is($bench->result(0), 0, 'pgbench exit status 0') if $finished;
like($out, qr{processed: $total/$total}, "pgbench committed all $total transactions")
  or diag("stdout: $out\nstderr: $err");
cmp_ok($done, '>=', 8, "worker terminated and restarted $done times during the load");

is($node->safe_psql('postgres', q{SELECT ingest_flush('60s')}), 't', 'ingest_flush');
my $sum = $total * ($total + 1) / 2;
is($node->safe_psql('postgres', q{SELECT last_value FROM w_ids}), $total, 'sequence handed out one id per transaction');
is($node->safe_psql('postgres', q{SELECT count(*), count(DISTINCT id), sum(id), min(id), max(id) FROM w}),
    "$total|$total|$sum|1|$total", 'every committed row landed exactly once');
is($node->safe_psql('postgres', q{SELECT rows_enqueued, rows_committed, rows_failed, rows_queued FROM ingest_status WHERE relname = 'w'}),
    "$total|$total|0|0", 'ingest_status: all committed, nothing queued');
is(scalar(worker_pids($node)), 1, 'exactly one worker runs at the end');
my @exits = (slurp_file($node->logfile) =~ /pg_ingest worker started/g);
cmp_ok(scalar(@exits), '>', $done, 'log shows a worker start per termination');

$node->stop;
done_testing();
