# A role's trigger that catches the group timeout's cancel (EXCEPTION WHEN query_canceled) and
# loops must not keep the worker from stopping: a fast shutdown completes promptly (SIGTERM ends
# the worker with a FATAL while a role's code runs, which no exception handler catches).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IngestNode;

my $node = ingest_node('uncatchable_stop');
$node->safe_psql('postgres', q{
    ALTER SYSTEM SET ingest.group_timeout = '1s';
    SELECT pg_reload_conf();
    CREATE ROLE atk_spin;
    CREATE TABLE spin_t (id int);
    ALTER TABLE spin_t OWNER TO atk_spin;
    CREATE FUNCTION spin() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        LOOP
            BEGIN
                PERFORM pg_sleep(0.2);
            EXCEPTION WHEN query_canceled THEN
                NULL;   -- swallow the group timeout and go on
            END;
        END LOOP;
    END $$;
    CREATE TRIGGER spin BEFORE INSERT ON spin_t FOR EACH ROW EXECUTE FUNCTION spin();
    ALTER FUNCTION spin() OWNER TO atk_spin;
});
$node->safe_psql('postgres', q{
    SET ROLE atk_spin; SET ingest.wait_for_commit = off;
    SELECT ingest_enqueue('spin_t', ROW(1)::spin_t);
});
# The worker is inside the trigger, past its group timeout.
my $spinning = poll_until(15, sub {
    $node->safe_psql('postgres', q{
        SELECT count(*) > 0 FROM pg_stat_activity
        WHERE backend_type = 'pg_ingest worker' AND wait_event = 'PgSleep'}) eq 't';
});
ok($spinning, 'the worker runs the looping trigger');
sleep 2;

my $start = time();
my $stop_rc = system('pg_ctl', '-D', $node->data_dir, '-m', 'fast', '-t', '20', '-w', 'stop');
my $secs = time() - $start;
ok($stop_rc == 0 && $secs < 20, sprintf('pg_ctl stop -m fast completes promptly (%.1f s)', $secs));
if ($stop_rc == 0) {
    $node->_update_pid(0);
} else {
    $node->stop('immediate', fail_ok => 1);
}
done_testing();
