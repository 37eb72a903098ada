# Attack 7: a trigger on a target table that itself calls ingest_enqueue() (into another table).
# The worker runs the trigger, so the enqueue happens inside the worker's own transaction; the
# worker then waited for itself at its own commit. Fixed behaviour: both the target row and the
# trigger's row land (within 30 s), and a fast shutdown completes promptly afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use IngestNode;

my $node = ingest_node('trigger_enqueue');
$node->safe_psql('postgres', q{
    CREATE ROLE atk_tom;
    CREATE TABLE src (id int);
    CREATE TABLE side (id int);
    ALTER TABLE src OWNER TO atk_tom;
    ALTER TABLE side OWNER TO atk_tom;
    CREATE FUNCTION src_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ingest_enqueue('public.side'::regclass, ROW(NEW.id)::public.side);
        RETURN NEW;
    END $$;
    ALTER FUNCTION src_forward() OWNER TO atk_tom;
    CREATE TRIGGER forward BEFORE INSERT ON src FOR EACH ROW EXECUTE FUNCTION src_forward();
});

# The non-superuser enqueues one row (fire-and-forget, so the test bounds the wait itself).
my ($rc, $out, $err) = timed_psql($node, 'postgres',
    q{SET ROLE atk_tom; SET ingest.wait_for_commit = off; SELECT ingest_enqueue('src', ROW(1)::src) > 0;},
    timeout => 30);
is($rc, 0, 'enqueue into the table with the enqueuing trigger succeeds') or diag($err);

my $landed = poll_until(25, sub {
    $node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM src) = 1 AND (SELECT count(*) FROM side) = 1})
      eq 't';
});
ok($landed, 'the target row and the row its trigger enqueued both land within 25 s');
is($node->safe_psql('postgres', 'SELECT count(*) FROM src'), '1', 'target row landed once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM side'), '1', "trigger's row landed once");

# Fast shutdown must complete promptly (pg_ctl's own wait bounded at 15 s).
my $t0 = Time::HiRes::time();
my $stop_rc = system('pg_ctl', '-D', $node->data_dir, '-m', 'fast', '-t', '15', '-w', 'stop');
my $secs = Time::HiRes::time() - $t0;
ok($stop_rc == 0 && $secs < 15, sprintf('pg_ctl stop -m fast completes promptly (%.1f s)', $secs));
if ($stop_rc == 0) {
    $node->_update_pid(0);
} else {
    $node->stop('immediate', fail_ok => 1);
}
done_testing();
