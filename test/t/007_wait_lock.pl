# A transaction that locks the target table and then waits (ingest.wait_for_commit = on) for the
# worker, which needs a RowExclusiveLock on that table, would wait forever. With
# ingest.wait_timeout = 2s its COMMIT must fail within a few seconds with an error naming
# wait_timeout, and the row must never land. Sessions that hold nothing conflicting are fine.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('wait_lock');
$node->safe_psql('postgres', q{
    CREATE TABLE t (id int NOT NULL, note text);
    CREATE TABLE other (x int);
});
# Start the worker.
$node->safe_psql('postgres', q{SELECT ingest_enqueue('t', ROW(0, 'warm-up')::t)});

my $pre = "SET ingest.wait_for_commit = on; SET ingest.wait_timeout = '2s';\n";

# Conflicting locks on the target, taken before the enqueue (no xid: the rows are handed over and
# waited for before the commit, so the wait can still be cancelled).
my @conflicting = (
    [ 1, 'LOCK TABLE t' ],
    [ 2, 'LOCK TABLE t IN SHARE MODE' ],
    [ 3, 'LOCK TABLE t IN EXCLUSIVE MODE' ],
);
for my $c (@conflicting) {
    my ($id, $lock) = @$c;
    my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
        "$pre BEGIN; $lock; SELECT ingest_enqueue('t', ROW($id, '$lock')::t) > 0; COMMIT; SELECT 'alive';", timeout => 60);
    like($err, qr/ERROR:  [^\n]*\n(?:(?:DETAIL|HINT):  [^\n]*\n)*/, "$lock: COMMIT fails");
    like($err, qr/wait_timeout/, "$lock: the error mentions wait_timeout") or diag($err);
    like($err, qr/ERROR:  [^\n]*timed out/, "$lock: the error says the wait timed out") or diag($err);
    cmp_ok($secs, '>=', 1.9, sprintf("$lock: not before the 2 s timeout (%.1f s)", $secs));
    cmp_ok($secs, '<', 10, sprintf("$lock: COMMIT returned within 10 s (%.1f s)", $secs));
    like($out, qr/^alive$/m, "$lock: the session is usable afterwards");
}

# Two rows in one call, same situation.
{
    my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
        "$pre BEGIN; LOCK TABLE t; SELECT ingest_enqueue('t', ARRAY[ROW(4, 'a')::t, ROW(5, 'b')::t]) > 0; COMMIT;",
        timeout => 60);
    like($err, qr/wait_timeout/, 'two rows under an exclusive lock: COMMIT fails mentioning wait_timeout');
    cmp_ok($secs, '<', 10, sprintf('two rows: COMMIT returned within 10 s (%.1f s)', $secs));
}

# A session that ends with the lock and the enqueued row, without COMMIT: nothing lands.
{
    my ($rc, $out, $err) = timed_psql($node, 'postgres',
        "$pre BEGIN; LOCK TABLE t; INSERT INTO other VALUES (1); SELECT ingest_enqueue('t', ROW(6, 'x')::t) > 0;"
          . " SAVEPOINT s; RELEASE s; SELECT 1;", timeout => 60);
    # (no COMMIT: the session ends, the transaction is rolled back)
    is($rc, 0, 'session ending inside a transaction that locked the table exits normally');
}

# Not conflicting: locks on other tables, or lock modes compatible with RowExclusiveLock.
my @fine = (
    [ 101, 'LOCK TABLE other' ],
    [ 102, 'LOCK TABLE t IN ROW EXCLUSIVE MODE' ],
    [ 103, 'LOCK TABLE t IN ACCESS SHARE MODE' ],
    [ 104, 'SELECT count(*) FROM t' ],
);
for my $c (@fine) {
    my ($id, $lock) = @$c;
    my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
        "$pre BEGIN; $lock; SELECT ingest_enqueue('t', ROW($id, '$lock')::t) > 0; COMMIT;", timeout => 60);
    is($rc, 0, "$lock: COMMIT succeeds");
    is($err, '', "$lock: no error or warning");
    cmp_ok($secs, '<', 2, sprintf("$lock: COMMIT returns promptly (%.1f s)", $secs));
    is($node->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1', "$lock: row landed when COMMIT returned");
}

# With an xid (the transaction also wrote elsewhere) the rows must be atomic with that write: the
# same timeout, and the whole transaction rolls back.
{
    my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
        "$pre BEGIN; LOCK TABLE t; INSERT INTO other VALUES (2); SELECT ingest_enqueue('t', ROW(7, 'xid')::t) > 0; COMMIT;",
        timeout => 60);
    like($err, qr/ERROR:  [^\n]*timed out/, 'lock + xid: COMMIT fails with the timeout error') or diag($err);
    like($err, qr/wait_timeout/, 'lock + xid: the error mentions wait_timeout');
    cmp_ok($secs, '<', 10, sprintf('lock + xid: COMMIT returned within 10 s (%.1f s)', $secs));
}

# wait_for_commit = off: COMMIT does not wait, the row lands once the lock is gone.
{
    my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
        "SET ingest.wait_for_commit = off; BEGIN; LOCK TABLE t; SELECT ingest_enqueue('t', ROW(301, 'off')::t) > 0; COMMIT;",
        timeout => 60);
    is($rc, 0, 'lock + wait_for_commit off: COMMIT succeeds');
    cmp_ok($secs, '<', 2, sprintf('lock + wait_for_commit off: COMMIT returns promptly (%.1f s)', $secs));
}

is($node->safe_psql('postgres', q{SELECT ingest_flush('30s')}), 't', 'ingest_flush');
sleep 3;    # the worker was blocked on the locks; give any withdrawn row time to (wrongly) arrive
is($node->safe_psql('postgres', q{SELECT ingest_flush('30s')}), 't', 'ingest_flush again');
is($node->safe_psql('postgres', q{SELECT count(*) FROM t WHERE id BETWEEN 1 AND 7}), '0',
    'rows of the timed-out transactions never landed');
is($node->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM t}), '0,101,102,103,104,301',
    'exactly the committed rows are in the table');
is($node->safe_psql('postgres', q{SELECT count(*) FROM other}), '0', 'the failed transactions rolled back entirely (their INSERTs too)');
is($node->safe_psql('postgres', q{SELECT rows_committed, rows_failed, rows_queued FROM ingest_status WHERE relname = 't'}),
    '6|0|0', 'ingest_status: 6 committed, nothing queued');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'no dead letters');

# The worker is not stuck: a fresh enqueue with wait_for_commit = on commits at once.
my ($rc, $out, $err, $secs) = timed_psql($node, 'postgres',
    "SET ingest.wait_for_commit = on; SELECT ingest_enqueue('t', ROW(401, 'after')::t) > 0;");
ok($rc == 0 && $secs < 2, sprintf('worker still works afterwards (%.1f s)', $secs));

$node->stop;
done_testing();
