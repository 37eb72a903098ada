# Attack 12 (b, c): the dead-letter store and DROP EXTENSION.
# (c) pg_dump of the database must include ingest_dead_letter's rows (the only copy of rejected
#     data); before the fix the extension's tables were not marked for dumping.
# (b) DROP EXTENSION pg_ingest while rows are queued dropped the extension and wrote the queued
#     rows (row data) into the server log. Fixed behaviour: the DROP is refused with an error
#     (hint: ingest_flush), the rows then land, and the row data never reaches the server log.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('dead_letter_store');
$node->safe_psql('postgres', q{
    CREATE ROLE atk_ivy;
    CREATE TABLE dt (id int, v text);
    ALTER TABLE dt OWNER TO atk_ivy;
});

# (c) A dead letter, then pg_dump --data-only.
$node->psql('postgres', q{SET ROLE atk_ivy; SELECT ingest_enqueue_copy('dt', convert_to(E'pgdump-marker-4711\tx\n', 'UTF8'))});
is($node->safe_psql('postgres', q{SELECT count(*) FROM ingest_dead_letter WHERE raw_row LIKE 'pgdump-marker-4711%'}),
    '1', 'the bad row is dead-lettered');
my ($dump, $dump_err) = ('', '');
my $dump_ok = IPC::Run::run([ 'pg_dump', '--data-only', '-d', $node->connstr('postgres') ],
    '>', \$dump, '2>', \$dump_err, IPC::Run::timeout(60));
ok($dump_ok, 'pg_dump --data-only runs') or diag($dump_err);
like($dump, qr/pgdump-marker-4711/, 'pg_dump --data-only includes the ingest_dead_letter rows');

# (b) Rows queued (worker held), then DROP EXTENSION.
$node->safe_psql('postgres', q{ALTER SYSTEM SET ingest.test_worker_delay = '60s'; SELECT pg_reload_conf();});
sleep 1;
$node->safe_psql('postgres', q{
    SET ROLE atk_ivy; SET ingest.wait_for_commit = off;
    -- Built from two halves: the test server logs every statement's text (log_statement = all).
    SELECT ingest_enqueue('dt', ROW(1, 'drop-marker-' || 'secret-0815')::dt);
});
my ($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION pg_ingest');
isnt($rc, 0, 'DROP EXTENSION with rows queued is refused');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ingest.test_worker_delay; SELECT pg_reload_conf();});
my $landed = poll_until(15, sub { $node->safe_psql('postgres', 'SELECT count(*) FROM dt') eq '1' });
ok($landed, 'the queued row lands after the refused DROP');
sleep 1;
my $log = slurp_file($node->logfile);
unlike($log, qr/drop-marker-secret-0815/, 'the queued row data is not written to the server log');

$node->stop('immediate');
done_testing();
