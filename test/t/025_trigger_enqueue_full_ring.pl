# A trigger that enqueues from inside the worker, with the ring full: backends filled it while the
# worker was held, so the worker's commit (which hands the trigger's rows over) needs room that
# only the workers' share of the ring (the last 1/16) can give. Without that share the commit
# fails, is retried, and nothing drains. Expected: every row and every trigger row lands.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('trigger_full_ring',
    conf => "ingest.ring_size = 1MB\ningest.batch_rows = 10\ningest.enqueue_timeout = 1s\n");
$node->safe_psql('postgres', q{
    CREATE ROLE atk_fan;
    CREATE TABLE fan_src (id int, pad text);
    CREATE TABLE fan_side (id int);
    ALTER TABLE fan_src OWNER TO atk_fan;
    ALTER TABLE fan_side OWNER TO atk_fan;
    CREATE FUNCTION fan_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ingest_enqueue('public.fan_side'::regclass, ROW(NEW.id)::public.fan_side);
        RETURN NEW;
    END $$;
    ALTER FUNCTION fan_forward() OWNER TO atk_fan;
    CREATE TRIGGER forward BEFORE INSERT ON fan_src FOR EACH ROW EXECUTE FUNCTION fan_forward();
    ALTER SYSTEM SET ingest.test_worker_delay = '60s';
    SELECT pg_reload_conf();
});
sleep 1;

# Fill the ring: one-row transactions of about 8 kB until an enqueue fails for want of room.
my $queued = 0;
for my $i (1 .. 2000) {
    my ($rc, $out, $err) = $node->psql('postgres',
        qq{SET ROLE atk_fan; SET ingest.wait_for_commit = off;
           SELECT ingest_enqueue('fan_src', ROW($i, repeat('x', 8000))::fan_src)});
    last if $rc != 0;
    $queued++;
}
ok($queued > 50 && $queued < 2000, "the ring filled after $queued rows");

$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.test_worker_delay; SELECT pg_reload_conf();});
my $landed = poll_until(40, sub {
    $node->safe_psql('postgres', qq{
        SELECT (SELECT count(*) FROM fan_src) = $queued AND (SELECT count(*) FROM fan_side) = $queued})
      eq 't';
});
ok($landed, 'every row and every row its trigger enqueued landed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ingest_dead_letter'), '0', 'nothing was dead-lettered');

$node->stop('fast');
done_testing();
