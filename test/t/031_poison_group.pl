# A role's trigger that catches the group timeout's cancel (EXCEPTION WHEN query_canceled) and
# goes on forever. Before: the worker ran that group until someone terminated it, and inserted
# nothing else for the database meanwhile. Now: a grace period after the cancel the worker records
# the group in its slot and ends itself (FATAL, which no handler catches); the restarted worker
# dead-letters that group with SQLSTATE 57014 without running it again, and the other rows land.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('poison_group', conf => "ingest.group_timeout = 1s\n");
$node->safe_psql('postgres', q{
    CREATE ROLE atk_pia LOGIN;
    CREATE TABLE tar (id int);
    CREATE TABLE other (id int);
    ALTER TABLE tar OWNER TO atk_pia;
    ALTER TABLE other OWNER TO atk_pia;
    CREATE TABLE acks (ticket bigint);
    GRANT INSERT ON acks TO atk_pia;
    GRANT CREATE ON SCHEMA public TO atk_pia;   -- for its trigger function
});
# The attacker's trigger: swallow every cancel and keep running.
$node->safe_psql('postgres', q{
    SET ROLE atk_pia;
    CREATE FUNCTION tar_forever() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        LOOP
            BEGIN
                PERFORM pg_sleep(0.2);
            EXCEPTION WHEN query_canceled THEN
                NULL;   -- keep going
            END;
        END LOOP;
    END $$;
    CREATE TRIGGER tar_forever BEFORE INSERT ON tar FOR EACH ROW EXECUTE FUNCTION tar_forever();
});

my $as_pia = $node->connstr('postgres') . ' user=atk_pia';
$node->safe_psql('postgres', q{
    SET ingest.ack = memory;
    INSERT INTO acks SELECT ingest_enqueue('tar', ARRAY[ROW(1), ROW(2)]::tar[]);
}, connstr => $as_pia);
sleep 0.5;
$node->safe_psql('postgres', q{
    SET ingest.ack = memory;
    SELECT ingest_enqueue('other', ARRAY[ROW(1), ROW(2), ROW(3)]::other[]);
}, connstr => $as_pia);

# group_timeout 1 s + grace 1 s, FATAL, restart after 1 s: well within 30 s.
ok(poll_until(30, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM other') eq '3' }),
    "the other table's rows land although the trigger ignores every cancel");
ok(poll_until(30, sub {
        $node->safe_psql('postgres',
            q{SELECT count(*) FROM ingest_dead_letter d JOIN acks a USING (ticket) WHERE d.sqlstate = '57014'}) eq '2';
    }),
    'the group whose code ignored the cancel is dead-lettered whole, SQLSTATE 57014');
like($node->safe_psql('postgres', q{SELECT min(error) FROM ingest_dead_letter d JOIN acks a USING (ticket)}),
    qr/caught query_canceled/, 'the dead letters say why');
is($node->safe_psql('postgres', 'SELECT count(*) FROM tar'), '0', 'none of its rows landed');
my $log = slurp_file($node->logfile);
like($log, qr/terminating background worker "pg_ingest worker"|FATAL:  terminating connection/,
    'the worker ended itself (FATAL)');

# The worker serves the database again, and the record is cleared: the role's later rows for
# the same table meet the same fate only by running into the timeout again, not by the record.
$node->safe_psql('postgres', q{SET ROLE atk_pia; DROP TRIGGER tar_forever ON tar});
is($node->safe_psql('postgres', q{SET ingest.ack = committed; SELECT ingest_enqueue('tar', ROW(3)::tar) > 0},
    connstr => $as_pia), 't', 'a later enqueue for that table is committed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM tar'), '1', 'and lands');

$node->stop('immediate');
done_testing();
