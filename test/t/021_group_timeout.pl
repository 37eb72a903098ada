# Attack 8: one role's locked table stalls every other table of the database.
# A role holds ACCESS EXCLUSIVE on its own table (open transaction in a second session) while rows
# for it are queued; the worker blocked on that lock and inserted nothing else for the database.
# Fixed behaviour, with ingest.group_timeout = '1s' (PGC_SIGHUP, ms units): other tables' rows keep
# landing within a few seconds; the stuck table's rows are retried and land after the lock is
# released, or are dead-lettered with SQLSTATE 57014: never silently lost.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('group_timeout');
$node->safe_psql('postgres', q{
    CREATE ROLE atk_gina;
    CREATE TABLE stuck (id int);
    CREATE TABLE free (id int);
    ALTER TABLE stuck OWNER TO atk_gina;
    ALTER TABLE free OWNER TO atk_gina;
    CREATE TABLE acks (ticket bigint);
    GRANT INSERT ON acks TO atk_gina;
});
my ($rc, $out, $err) = $node->psql('postgres', q{ALTER SYSTEM SET ingest.group_timeout = '1s'});
is($rc, 0, 'ingest.group_timeout can be set') or diag($err);
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.test_worker_delay = '60s'; SELECT pg_reload_conf();});
sleep 1;

# Rows for the table that will be locked, queued while the worker is held.
$node->safe_psql('postgres', q{
    SET ROLE atk_gina; SET ingest.wait_for_commit = off;
    INSERT INTO acks SELECT ingest_enqueue('stuck', ARRAY[ROW(1), ROW(2), ROW(3)]::stuck[]);
});
# The owner locks her own table in a second session and keeps the transaction open.
my $locker = $node->background_psql('postgres', timeout => 120);
$locker->query_safe(q{SET ROLE atk_gina});
$locker->query_safe(q{BEGIN; LOCK TABLE stuck IN ACCESS EXCLUSIVE MODE});
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.test_worker_delay; SELECT pg_reload_conf();});
sleep 1;    # the worker takes the batch for "stuck" and waits for the lock

# Another table's rows must keep landing.
$node->safe_psql('postgres', q{
    SET ROLE atk_gina; SET ingest.wait_for_commit = off;
    SELECT ingest_enqueue('free', ARRAY[ROW(1), ROW(2), ROW(3)]::free[]);
});
my $free_ok = poll_until(8, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM free') eq '3' });
ok($free_ok, "other tables' rows land within 8 s while one table is locked");

# Release the lock; the stuck rows are retried: they land, or are dead-lettered with 57014.
$locker->query_safe('COMMIT');
$locker->quit;
my $accounted = poll_until(20, sub {
    $node->safe_psql('postgres', q{
        SELECT (SELECT count(*) FROM stuck)
             + (SELECT count(*) FROM ingest_dead_letter d JOIN acks a USING (ticket)) = 3});
});
ok($accounted, "the locked table's rows are in the table or dead-lettered within 20 s of the release");
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM ingest_dead_letter d JOIN acks a USING (ticket) WHERE d.sqlstate <> '57014'}),
    '0', "the locked table's dead letters, if any, carry SQLSTATE 57014");
is($node->safe_psql('postgres', q{SELECT ingest_flush('20s')}), 't', 'everything is flushed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM free'), '3', "other table's rows landed exactly once");

$node->stop('immediate');
done_testing();
