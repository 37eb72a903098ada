# Parallel drain (issue 13): with ingest.workers_per_database = 2 a backlog makes the worker share
# its lanes with a second worker, and yet every session's rows are inserted in the order the
# session handed them over.
#
# 8 sessions of a role without superuser rights enqueue numbered rows (client, seq) into one
# table: by arrays of rows, by JSON arrays, and by single rows in transactions of five. A BEFORE
# INSERT trigger stamps each row, as it is inserted, with nextval() and the inserting worker's pid.
# The worker pauses before every batch (ingest.test_worker_delay) with small batches, so the queue
# backs up. Then: every row is there exactly once; more than one worker inserted rows; and for
# every session, the insertion order (the stamped id) follows seq. A second round after the extra
# worker has left (its lanes go back to the first) checks the same again.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use IngestNode;

my $node = ingest_node('parallel_drain',
    conf => "ingest.workers_per_database = 2\ningest.batch_rows = 100\ningest.test_worker_delay = 30ms\n");
$node->safe_psql('postgres', q{
    CREATE ROLE ingest_client LOGIN;
    CREATE TABLE ord (id bigint, client int NOT NULL, seq int NOT NULL, via int, round int NOT NULL);
    CREATE SEQUENCE ord_ids;
    CREATE FUNCTION ord_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.id := nextval('ord_ids');
        NEW.via := pg_backend_pid();
        RETURN NEW;
    END $$;
    CREATE TRIGGER ord_stamp BEFORE INSERT ON ord FOR EACH ROW EXECUTE FUNCTION ord_stamp();
    GRANT INSERT ON ord TO ingest_client;
    GRANT USAGE ON SEQUENCE ord_ids TO ingest_client; -- the trigger runs as the enqueuing role
});
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'ingest_client'}), 'f',
    'the sessions\' role is not a superuser');

my $clients = 8;
my $calls = 400; # per session, 5 rows each

# Session c's script for a round: rows (c, seq) with seq = 1, 2, ... in hand-over order.
sub script {
    my ($c, $round) = @_;
    my $ack = $c < 2 ? 'queued' : 'memory';
    my $s = "SET ingest.ack = $ack;\n";
    my $seq = 0;
    for my $call (1 .. $calls) {
        my @seqs = map { ++$seq } 1 .. 5;
        if ($c % 3 == 0) {
            $s .= "SELECT ingest_enqueue('ord', '["
              . join(',', map { qq({"client": $c, "seq": $_, "round": $round}) } @seqs) . "]'::jsonb);\n";
        } elsif ($c % 3 == 1) {
            $s .= "SELECT ingest_enqueue('ord', ARRAY["
              . join(',', map { "ROW(NULL, $c, $_, NULL, $round)::ord" } @seqs) . "]);\n";
        } else {
            $s .= "BEGIN;\n"
              . join('', map { "SELECT ingest_enqueue('ord', ROW(NULL, $c, $_, NULL, $round)::ord);\n" } @seqs)
              . "COMMIT;\n";
        }
    }
    return $s;
}

sub run_round {
    my ($round) = @_;
    my @scripts = map { script($_, $round) } 0 .. $clients - 1;
    my @res = psql_scripts_as($node, \@scripts, 'ingest_client');
    my @failed = grep { $_->{rc} != 0 } @res;
    is(scalar(@failed), 0, "round $round: all $clients sessions enqueued without error")
      or diag(join("\n", map { $_->{err} } @failed));
    is($node->safe_psql('postgres', q{SELECT ingest_flush('180s')}), 't', "round $round: ingest_flush");
    my $rows = $clients * $calls * 5;
    is($node->safe_psql('postgres', qq{SELECT count(*), count(DISTINCT (client, seq)) FROM ord WHERE round = $round}),
        "$rows|$rows", "round $round: every row landed exactly once")
      or diag($node->safe_psql('postgres', q{SELECT reason FROM ingest_dead_letter LIMIT 3}));
    # For each session, rows in insertion order (id) must have increasing seq.
    is($node->safe_psql('postgres', qq{
        SELECT count(*) FROM (
            SELECT seq, lag(seq) OVER (PARTITION BY client ORDER BY id) AS prev FROM ord WHERE round = $round) s
        WHERE prev > seq}), '0', "round $round: every session's rows were inserted in the order it enqueued them");
    return;
}

# psql_scripts as another role: the connection string names the user.
sub psql_scripts_as {
    my ($node, $scripts, $user) = @_;
    my @res;
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my @h;
    for my $i (0 .. $#$scripts) {
        open my $fh, '>', "$dir/s$i.sql" or die;
        print $fh $scripts->[$i];
        close $fh;
        push @h, IPC::Run::start(
            [ $node->installed_command('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
              '-d', $node->connstr('postgres') . " user=$user", '-f', "$dir/s$i.sql" ],
            '<', '/dev/null', '>', "$dir/s$i.out", '2>', "$dir/s$i.err", IPC::Run::timeout(300));
    }
    for my $i (0 .. $#h) {
        my $rc = eval { $h[$i]->finish; $h[$i]->result(0) } // -1;
        push @res, { rc => $rc, err => slurp_file("$dir/s$i.err") };
    }
    return @res;
}

run_round(1);
my $inserters = $node->safe_psql('postgres', q{SELECT count(DISTINCT via) FROM ord WHERE round = 1});
cmp_ok($inserters, '>=', 2, "round 1: rows were inserted by $inserters workers in parallel");
like(slurp_file($node->logfile), qr/pg_ingest worker started for database/, 'log shows the workers starting');

# Idle for 5 s, a database's extra worker leaves; its lanes go back to the one that stays.
ok(poll_until(60, sub { scalar(worker_pids($node)) == 1 }), 'the extra worker left when the queue was drained');
run_round(2);

# With one worker per database, the same load is drained by one process.
$node->append_conf('postgresql.conf', "ingest.workers_per_database = 1\n");
$node->reload;
ok(poll_until(60, sub { scalar(worker_pids($node)) <= 1 }), 'at most one worker before round 3');
run_round(3);
is($node->safe_psql('postgres', q{SELECT count(DISTINCT via) FROM ord WHERE round = 3}), '1',
    'round 3 (workers_per_database = 1): one worker inserted every row');

$node->stop;
done_testing();
