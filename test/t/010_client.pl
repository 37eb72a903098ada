# libpgingest against a real server: 16 threads x ROWS rows land exactly once; the same with the
# client's backends terminated mid-stream and with the server restarted mid-stream; and the COPY
# fallback on a database without the extension. Needs PGI_CLIENT_BIN (the multi_producer example).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(sleep);
use IngestNode;

my $bin = $ENV{PGI_CLIENT_BIN};
plan skip_all => 'PGI_CLIENT_BIN not set (build the client: make client)' unless $bin && -x $bin;

my $node = ingest_node('client', conf => "log_min_messages = warning\n");
my $threads = 16;
my $rows = $ENV{PGI_CLIENT_ROWS} // 100_000;
my $total = $threads * $rows;
my $sum = $total * ($total - 1) / 2;
my $conninfo = $node->connstr('postgres');

sub exactly_once {
    my ($table, $what) = @_;
    is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT id), sum(id) FROM $table"),
        "$total|$total|$sum", "$what: every row exactly once");
}

sub run_client {
    my ($table, @settings) = @_;
    $node->safe_psql('postgres', "CREATE TABLE IF NOT EXISTS $table (id bigint, thread int)");
    my ($out, $err) = ('', '');
    my $h = IPC::Run::start([ $bin, $conninfo, $table, $threads, $rows, @settings ],
        '<', '/dev/null', '>', \$out, '2>', \$err, IPC::Run::timeout(600));
    return ($h, \$out, \$err);
}

# 1. Plain run.
my ($h, $out, $err) = run_client('plain');
$h->finish;
is($h->result(0), 0, 'client acknowledged every row') or diag($$out . $$err);
exactly_once('plain', 'plain run');

# 2. The client's backends terminated mid-stream, five times.
($h, $out, $err) = run_client('terminated', 'retry_max_attempts=10', 'retry_initial_backoff_ms=200');
my $terminated = 0;
for my $i (1 .. 5) {
    sleep 0.5;
    $terminated += $node->safe_psql('postgres', q{
        SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE '%ingest_enqueue_copy%'});

}
$h->finish;
is($h->result(0), 0, "client acknowledged every row despite $terminated terminated backends") or diag($$out . $$err);
cmp_ok($terminated, '>', 0, 'backends were terminated mid-stream');
exactly_once('terminated', 'backends terminated');

# 3. The server restarted mid-stream: retries outlast the restart.
($h, $out, $err) = run_client('restarted', 'retry_max_attempts=12', 'retry_initial_backoff_ms=500',
    'retry_max_backoff_ms=3000');
sleep 1;
$node->restart(mode => 'fast');
$h->finish;
is($h->result(0), 0, 'client acknowledged every row across a server restart') or diag($$out . $$err);
exactly_once('restarted', 'server restarted');

# 4. No extension in the database: with copy_fallback on, rows go in with COPY.
$node->safe_psql('postgres', 'CREATE DATABASE plain_db');
my $plain_conninfo = $node->connstr('plain_db');
$node->safe_psql('plain_db', 'CREATE TABLE fb (id bigint, thread int)');
my ($fout, $ferr) = ('', '');
IPC::Run::run([ $bin, $plain_conninfo, 'fb', 2, 1000, 'copy_fallback=on' ], '<', '/dev/null', '>', \$fout, '2>', \$ferr);
is($? >> 8, 0, 'fallback run acknowledged every row') or diag($fout . $ferr);
like($fout, qr/fallback [1-9]/, 'rows went through COPY');
is($node->safe_psql('plain_db', 'SELECT count(*), count(DISTINCT id) FROM fb'), '2000|2000', 'fallback rows landed once');
IPC::Run::run([ $bin, $plain_conninfo, 'fb2', 1, 10, 'copy_fallback=off' ], '<', '/dev/null', '>', \$fout, '2>', \$ferr);
isnt($? >> 8, 0, 'without fallback the rows fail');
like($ferr, qr/pg_ingest|extension/i, 'with an error naming the extension');

$node->stop;
done_testing();
