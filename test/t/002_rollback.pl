# Rolled-back work never lands, committed work always does, for ingest.wait_for_commit on and off.
#
# 10,000 small transactions per mode (4 concurrent sessions): every even id belongs to a
# transaction (or savepoint) that commits, every odd id to one that rolls back — by explicit
# ROLLBACK, a statement error, an error inside the enqueue call, a deferred constraint failing at
# COMMIT, ROLLBACK TO SAVEPOINT, or a released savepoint whose parent rolls back. Then a few large
# transactions whose rows are spilled to the ring before COMMIT (tagged with the xid), committed
# or rolled back the same ways. Exactly the even ids must land: count, distinct count, sum, and
# no odd id at all.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

# 8MB ring: rows are spilled once a transaction buffers 2MB (ring / 4).
my $node = ingest_node('rollback', conf => "ingest.ring_size = 8MB\n");
$node->safe_psql('postgres', q{
    CREATE TABLE parent (id int PRIMARY KEY);
    CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
});

my $ntx = 10_000;
my $sessions = 4;
my $pad = 'x' x 100;    # ~110 bytes a row, so the large transactions spill

for my $mode (qw(on off)) {
    my $t = "r_$mode";
    $node->safe_psql('postgres', "CREATE TABLE $t (id bigint NOT NULL, note text)");
    my $enq = sub { my ($id) = @_; "SELECT ingest_enqueue('$t', ROW($id, 'r')::$t);" };

    my @scripts = map { "SET ingest.wait_for_commit = $mode;\n" } 1 .. $sessions;
    my ($exp_n, $exp_sum, $exp_errors) = (0, 0, 0);
    for my $i (1 .. $ntx) {
        my $sql;
        my $form = int(($i - 1) / 2) % 7;
        if ($i % 2 == 0) {
            $exp_n++;
            $exp_sum += $i;
            my $odd = 10_000_000 + $i + 1;    # rolled back inside a committed transaction
            $sql = (
                $enq->($i),
                "BEGIN; " . $enq->($i) . " COMMIT;",
                "BEGIN; SAVEPOINT a; " . $enq->($i) . " RELEASE a; COMMIT;",
                "BEGIN; SAVEPOINT a; " . $enq->($odd) . " ROLLBACK TO a; " . $enq->($i) . " COMMIT;",
                "BEGIN; SELECT txid_current() > 0; " . $enq->($i) . " COMMIT;",
                "BEGIN; " . $enq->($i) . " SAVEPOINT a; " . $enq->($odd) . " SELECT 1/0; ROLLBACK TO a; COMMIT;",
                "BEGIN; SAVEPOINT a; SAVEPOINT b; " . $enq->($i) . " RELEASE b; SAVEPOINT c; "
                  . $enq->($odd) . " ROLLBACK TO c; RELEASE a; COMMIT;",
            )[$form];
            $exp_errors++ if $form == 5;
        } else {
            $sql = (
                "BEGIN; " . $enq->($i) . " ROLLBACK;",
                "BEGIN; " . $enq->($i) . " SELECT 1/0; COMMIT;",
                "BEGIN; SAVEPOINT a; " . $enq->($i) . " RELEASE a; ROLLBACK;",
                "BEGIN; SELECT txid_current() > 0; " . $enq->($i) . " ROLLBACK;",
                "SELECT ingest_enqueue('$t', ROW($i, 'r')::$t) / 0;",
                "SELECT ingest_enqueue('$t', ARRAY[ROW($i, 'r')::$t, NULL]);",
                "BEGIN; INSERT INTO child VALUES ($i); " . $enq->($i) . " COMMIT;",
            )[$form];
            $exp_errors++ if $form == 1 || $form == 4 || $form == 5 || $form == 6;
        }
        $scripts[$i % $sessions] .= "$sql\n";
    }

    my @res = psql_scripts($node, 'postgres', \@scripts, timeout => 240);
    is(join(',', map { $_->{rc} } @res), join(',', (0) x $sessions), "mode $mode: small transactions: psql sessions finished");
    my $errtext = join('', map { $_->{err} } @res);
    my @errors = ($errtext =~ /^psql:[^\n]*ERROR:  ([^\n]*)/mg);
    is(scalar(@errors), $exp_errors, "mode $mode: small transactions: expected number of errors");
    my @unexpected = grep { !/division by zero|array element 2 is NULL|violates foreign key constraint/ } @errors;
    is(join("\n", @unexpected), '', "mode $mode: no unexpected errors");
    unlike($errtext, qr/WARNING/, "mode $mode: no warnings");

    # Large transactions, one at a time (an open spilled transaction holds its ring space).
    my $arr = sub {
        my ($from, $to) = @_;
        "SELECT ingest_enqueue('$t', ARRAY(SELECT ROW(g, '$pad')::$t FROM generate_series($from, $to, 2) g)) IS NOT NULL;";
    };
    my $big = "SET ingest.wait_for_commit = $mode;\n";
    my @land = ([ 20_000_000, 20_059_998 ], [ 20_300_000, 20_309_998 ], [ 20_500_000, 20_559_998 ]);
    $big .= "BEGIN; " . $arr->(@{ $land[0] }) . " COMMIT;\n";
    $big .= "BEGIN; " . $arr->(20_100_001, 20_159_999) . " ROLLBACK;\n";
    $big .= "BEGIN; SAVEPOINT a; " . $arr->(20_200_001, 20_259_999) . " ROLLBACK TO a; " . $arr->(@{ $land[1] }) . " COMMIT;\n";
    $big .= "BEGIN; " . $arr->(20_400_001, 20_459_999) . " SELECT 1/0; COMMIT;\n";
    $big .= "SELECT ingest_enqueue('$t', ARRAY(SELECT ROW(g, '$pad')::$t FROM generate_series(20600001, 20659999, 2) g)) / 0;\n";
    $big .= "BEGIN; SAVEPOINT a; " . $arr->(@{ $land[2] }) . " RELEASE a; COMMIT;\n";
    $big .= "BEGIN; INSERT INTO child VALUES (1); " . $arr->(20_700_001, 20_759_999) . " COMMIT;\n";
    for my $r (@land) {
        for (my $g = $r->[0]; $g <= $r->[1]; $g += 2) { $exp_n++; $exp_sum += $g; }
    }
    my ($bres) = psql_scripts($node, 'postgres', [$big], timeout => 240);
    is($bres->{rc}, 0, "mode $mode: large transactions: psql finished");
    my @berr = ($bres->{err} =~ /ERROR:  ([^\n]*)/g);
    is(scalar(@berr), 3, "mode $mode: large transactions: three errors")
      or diag($bres->{err});

    is($node->safe_psql('postgres', q{SELECT ingest_flush('60s')}), 't', "mode $mode: ingest_flush");
    sleep 1;    # anything wrongly kept back would have time to arrive
    is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT id), sum(id) FROM $t"),
        "$exp_n|$exp_n|$exp_sum", "mode $mode: exactly the committed rows landed (count, distinct, sum)");
    is($node->safe_psql('postgres', "SELECT count(*) FROM $t WHERE id % 2 <> 0"), '0',
        "mode $mode: no rolled-back row landed");
    is($node->safe_psql('postgres', "SELECT rows_committed, rows_failed, rows_queued, rows_enqueued = rows_committed + rows_discarded FROM ingest_status WHERE relname = '$t'"),
        "$exp_n|0|0|t", "mode $mode: ingest_status agrees (enqueued = committed + discarded)");
    cmp_ok($node->safe_psql('postgres', "SELECT rows_discarded FROM ingest_status WHERE relname = '$t'"), '>=', 20_000,
        "mode $mode: rolled-back large transactions had been spilled to the ring and were discarded");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$node->stop;
done_testing();
