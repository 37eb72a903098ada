# Mixed transactions stay all-or-nothing across kill -9 of the postmaster (issue 14).
#
# Each client transaction writes a row of its own (own_*) and enqueues 300 rows of about 14 kB,
# all tagged with the transaction's id:
#   BEGIN; INSERT INTO own_m VALUES (id); SELECT ingest_enqueue('big_m', <300 rows>); COMMIT;
# With ingest.ring_size = 16MB a transaction's buffer spills to the ring (and its rows to
# ingest_queue) once it holds 4 MB (ring / 4), i.e. before COMMIT. 3 clients (spilled envelopes
# pin ring space until their transaction ends: more would fill the ring), logged in as a role
# without superuser rights, run such transactions while the postmaster is killed 4 times (odd
# rounds alone, even rounds with every child; the last round with big_m under SHARE LOCK, so the
# worker inserts nothing in its last 2 s, and with the clients stopped before the restart). The
# worker sleeps 200 ms before each batch. After the last restart, with nothing enqueued, the queue
# must drain; then for every transaction id either its own_m row and all its 300 rows, each
# exactly once, are present, or none of them; and every acknowledged transaction is present.
# Run with ingest.ack = logged, then again with committed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IngestNode;

my $rows = 300;
my $node = ingest_node('crash_mixed', fsync => 1,
    conf => "log_statement = none\ningest.ring_size = 16MB\ningest.test_worker_delay = 200ms\n");
$node->safe_psql('postgres', q{CREATE ROLE ingest_client LOGIN});
my $as_client = $node->connstr('postgres') . ' user=ingest_client';
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'ingest_client'}), 'f',
    'the clients\' role is not a superuser');

for my $mode (qw(logged committed)) {
    my ($own, $big) = ("own_$mode", "big_$mode");
    $node->safe_psql('postgres', qq{
        CREATE TABLE $own (tid bigint PRIMARY KEY);
        CREATE TABLE $big (tid bigint NOT NULL, n int NOT NULL, pad text);
        GRANT INSERT ON $own, $big TO ingest_client;
    });
    # The worker is throttled for the load (the previous phase's last restart turned it off).
    $node->append_conf('postgresql.conf', "ingest.test_worker_delay = 200ms\n");
    $node->reload;

    my $enqueue = sub {
        my ($tid) = @_;
        return "SELECT ingest_enqueue('$big', ARRAY(SELECT ROW($tid, g, repeat('x', 14000))::$big "
          . "FROM generate_series(1, $rows) g)) IS NOT NULL;";
    };
    if ($mode eq 'logged') {
        # The transactions are big enough to spill: rolled back after a spill, their spilled rows
        # are discarded by the worker (ingest_status counts them).
        my ($rc, $out, $err) = $node->psql('postgres',
            "SET ingest.ack = $mode; BEGIN; " . $enqueue->(1) . " ROLLBACK;", connstr => $as_client, timeout => 60);
        is($rc, 0, "$mode: a rolled-back large transaction") or diag($err);
        ok(poll_until(60, sub {
            my $d = scalar_sql($node, "SELECT rows_discarded FROM ingest_status WHERE relname = '$big'");
            return defined $d && $d =~ /^\d+$/ && $d >= $rows / 2;
        }), "$mode: its rows had been spilled before the end of the transaction (the worker discarded them)");
    }

    my $clients = start_ack_clients($node, clients => 3, table => $big, per_run => 20,
        ack => $mode, user => 'ingest_client', flush => 1,
        setup => "SET ingest.enqueue_timeout = '60s'; SET ingest.wait_timeout = '60s';",
        stmt => sub {
            my ($tid, $c) = @_;
            return "BEGIN; INSERT INTO $own VALUES ($tid); " . $enqueue->($tid) . " COMMIT; SELECT 'ack', $tid, $c;";
        });
    ok(poll_until(90, sub { ack_count($clients) >= 10 }), "$mode: load is running")
      or diag('client errors: ' . ack_errors($clients));

    my $t0 = time;
    my $r = crash_rounds($node, $clients, rounds => 4, settle => 1.5, lock_table => $big, resume_acks => 3,
        at_kill_sql => "SELECT count(*) FROM $own o WHERE NOT EXISTS (SELECT 1 FROM $big b WHERE b.tid = o.tid)",
        final_conf => "ingest.test_worker_delay = 0\n");
    is($r->{ok}, 4, "$mode: 4 postmaster kills (2 with every child): the server came back each time, the load resumed");
    ok($r->{lock_ok}, "$mode: last round: SHARE LOCK on $big held the worker back");
    note("$mode: ingest_queue rows just before each kill: " . join(', ', map { $_->{queued} // 'unreadable' } @{ $r->{rounds} }));
    ok($r->{restarted}, "$mode: server started after the last kill");
    if ($mode eq 'logged') {
        like($r->{at_kill} // '', qr/^[1-9]\d*$/,
            "$mode: at the last kill, " . ($r->{at_kill} // '?') . ' committed transactions had their rows only queued');
    } else {
        note("$mode: at the last kill, " . ($r->{at_kill} // '?') . ' committed transactions had their rows only queued');
    }

    my $res = $r->{clients};
    is($res->{hung}, 0, "$mode: clients stopped");
    my @acked = @{ $res->{acked} };
    is(ingest_messages($res->{errors}, 'WARNING'), '', "$mode: no client got a pg_ingest warning");
    # A full ring (the worker is held back on purpose) refuses a transaction cleanly: it rolls
    # back whole and is not acknowledged. Any other error about pg_ingest is a failure.
    my @errors = split /\n/, ingest_messages($res->{errors}, 'ERROR');
    my $full = grep { /^pg_ingest ring is full$/ } @errors;
    note("$mode: $full transactions were refused with 'ring is full' (rolled back, not acknowledged)");
    is(join("\n", grep { !/^pg_ingest ring is full$/ } @errors), '',
        "$mode: no client got an error about pg_ingest or its queue (other than a full ring)");

    my ($drained, $state) = wait_until_drained($node, "SELECT count(*) FROM $big", 120);
    ok($drained, "$mode: after the restart, with nothing enqueued, ingest_queue drains to empty") or diag($state);
    note(sprintf('%s: crash rounds and drain took %.0f s', $mode, time - $t0));

    my $committed = $node->safe_psql('postgres', "SELECT count(*) FROM $own");
    cmp_ok($committed, '>=', 10, "$mode: $committed transactions committed (" . scalar(@acked) . ' acknowledged)');
    my $partial = $node->safe_psql('postgres', qq{
        SELECT tid || ': ' || count(*) || ' rows, ' || count(DISTINCT n) || ' distinct' FROM $big
        GROUP BY tid HAVING count(*) <> $rows OR count(DISTINCT n) <> $rows ORDER BY tid LIMIT 20});
    is($partial, '', "$mode: every transaction id present in $big has its $rows rows exactly once")
      or diag("partial or doubled transactions (first 20):\n$partial");
    my $orphans = $node->safe_psql('postgres', qq{
        SELECT DISTINCT tid FROM $big b WHERE NOT EXISTS (SELECT 1 FROM $own o WHERE o.tid = b.tid) ORDER BY tid LIMIT 20});
    is($orphans, '', "$mode: no enqueued rows of a transaction whose own write is absent")
      or diag('orphan transaction ids (first 20): ' . join(' ', split /\n/, $orphans));
    my $rowless = $node->safe_psql('postgres', qq{
        SELECT tid FROM $own o WHERE NOT EXISTS (SELECT 1 FROM $big b WHERE b.tid = o.tid) ORDER BY tid LIMIT 20});
    is($rowless, '', "$mode: no committed own write without its enqueued rows")
      or diag('transaction ids without their rows (first 20): ' . join(' ', split /\n/, $rowless));
    my %own = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', "SELECT tid FROM $own");
    my @missing = sort { $a <=> $b } grep { !$own{$_} } @acked;
    is(scalar(@missing), 0, "$mode: every one of the " . scalar(@acked) . ' acknowledged transactions is present')
      or diag(scalar(@missing) . ' missing; first 20: ' . first_n(20, @missing));
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

$node->stop;
done_testing();
