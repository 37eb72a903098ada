# ALTER EXTENSION pg_ingest UPDATE from 0.1.0 to 0.2.0: rows queued before the update land after
# it, dead letters of 0.1.0 are kept (role OID and exact bytes filled in), an exactly-once key of
# 0.1.0 still deduplicates; the updated schema is the fresh one (pg_dump); pg_dump keeps the
# bookkeeping tables; dead letters expire after ingest.dead_letter_retention; statistics slots
# of dropped tables are reused (ingest.max_tables).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('upgrade', conf => "ingest.max_tables = 16\nlog_min_messages = warning\n");
sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

# --- 0.1.0 with rows queued and dead letters -----------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE upd');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
sql('upd', q{
    CREATE EXTENSION pg_ingest VERSION '0.1.0';
    CREATE ROLE alice;
    CREATE TABLE t (id int PRIMARY KEY, v text);
    GRANT INSERT ON t TO alice;
    INSERT INTO t VALUES (1, 'taken');
    -- Dead letters as 0.1.0 wrote them: one of alice, one of a role since dropped.
    INSERT INTO ingest_dead_letter (ticket, row_number, target, target_name, role_name, raw_row, error, sqlstate)
    VALUES (101, 1, 't'::regclass, 't', 'alice', E'1\told', 'duplicate key', '23505'),
           (102, 1, 't'::regclass, 't', 'ghost', E'2\tghost', 'permission denied', '42501');
    -- An exactly-once key committed by 0.1.0.
    INSERT INTO ingest_producer_batch (producer_id, batch_seq, ticket) VALUES ('etl', 7, 100);
});
is(sql('upd', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_ingest'}), '0.1.0', 'installed 0.1.0');

sql('upd', q{ALTER SYSTEM SET ingest.test_worker_delay = '1h'; SELECT pg_reload_conf();});
sleep 1;
sql('upd', q{
    SET ROLE alice;
    SET ingest.wait_for_commit = off;
    SELECT ingest_enqueue_copy('t', convert_to(E'10\tqueued\n11\tqueued\n1\tdup\n', 'UTF8'));
    SELECT ingest_enqueue_copy('t', convert_to(E'12\tresent\n', 'UTF8'), NULL, 'etl', 7);
});
is(sql('upd', 'SELECT count(*) FROM t'), '1', 'rows are queued, not inserted');

# --- update ---------------------------------------------------------------------------------------
sql('upd', q{ALTER EXTENSION pg_ingest UPDATE TO '0.2.0'});
is(sql('upd', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_ingest'}), '0.2.0', 'updated to 0.2.0');
sql('upd', q{ALTER SYSTEM RESET ingest.test_worker_delay; SELECT pg_reload_conf();});
ok(poll_until(90, sub { sql('upd', 'SELECT count(*) FROM t WHERE id IN (10, 11)') eq '2' }),
    'rows queued before the update landed after it');
sql('upd', q{SELECT ingest_flush('60s')});
is(sql('upd', 'SELECT count(*) FROM t WHERE id = 12'), '0', 'an exactly-once key of 0.1.0 still deduplicates');
is(sql('upd', q{SELECT string_agg(format('%s|%s|%s|%s', ticket, role_name, role_oid = coalesce(to_regrole(role_name), 0),
                                         encode(raw_data, 'escape')), ',' ORDER BY id)
                FROM ingest_dead_letter WHERE ticket IN (101, 102)}),
    "101|alice|t|1\told,102|ghost|t|2\tghost", '0.1.0 dead letters kept, role OIDs and bytes filled in');
is(sql('upd', q{SELECT role_oid = 'alice'::regrole AND raw_data = convert_to(E'1\tdup', 'UTF8')
                FROM ingest_dead_letter WHERE ticket > 102}), 't', 'the queued bad row was dead-lettered with its role and bytes');
is(sql('upd', q{SET ROLE alice; SELECT string_agg(raw_row, ',' ORDER BY id) FROM ingest_my_dead_letters}),
    "1\told,1\tdup", 'alice sees her old and new dead letters, not the dropped role\'s');

# --- pg_dump keeps the bookkeeping: dump, restore into a new database, go on ----------------------
my $dump = "$PostgreSQL::Test::Utils::tmp_check/upd.sql";
$node->command_ok([ 'pg_dump', '-f', $dump, '-d', $node->connstr('upd') ], 'pg_dump of the updated database');
my $text = slurp_file($dump);
like($text, qr/COPY public\.ingest_dead_letter /, 'dump holds the dead letters');
like($text, qr/setval\('public\.ingest_dead_letter_id_seq'/, 'dump holds the dead letters\' identity sequence');
like($text, qr/COPY public\.ingest_producer_batch /, 'dump holds the exactly-once keys');
# Robust against another build's control file in the shared install: ask for our version.
$text =~ s/CREATE EXTENSION IF NOT EXISTS pg_ingest WITH SCHEMA public;/CREATE EXTENSION IF NOT EXISTS pg_ingest WITH SCHEMA public VERSION '0.2.0';/;
open my $fh, '>', $dump or die $!;
print $fh $text;
close $fh;
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', $node->connstr('restored') ],
    'restore');
is(sql('restored', 'SELECT count(*) FROM ingest_dead_letter'), sql('upd', 'SELECT count(*) FROM ingest_dead_letter'),
    'dead letters restored');
sql('restored', q{SET ROLE alice; SELECT ingest_enqueue('t', ROW(1, 'dup after restore')::t)});
is(sql('restored', q{SELECT count(*) FROM ingest_dead_letter WHERE raw_row LIKE '%after restore'}), '1',
    'new dead letters after the restore (identity continues)');

# --- dead-letter retention ---------------------------------------------------------------------
sql('upd', q{UPDATE ingest_dead_letter SET failed_at = now() - interval '30 days' WHERE ticket = 102;
             ALTER SYSTEM SET ingest.dead_letter_retention = '1d';});
$node->restart;    # a worker prunes when it starts (and then every few minutes)
sql('upd', q{SET ROLE alice; SELECT ingest_enqueue('t', ROW(20, 'wake the worker')::t)});
ok(poll_until(30, sub { sql('upd', 'SELECT count(*) FROM ingest_dead_letter WHERE ticket = 102') eq '0' }),
    'dead letter older than ingest.dead_letter_retention deleted');
is(sql('upd', 'SELECT count(*) FROM ingest_dead_letter WHERE ticket = 101'), '1', 'younger dead letters kept');
sql('upd', q{ALTER SYSTEM RESET ingest.dead_letter_retention; SELECT pg_reload_conf();});

# --- statistics slots of dropped tables are reused (ingest.max_tables = 16) ------------------------
sql('fresh', q{CREATE EXTENSION pg_ingest VERSION '0.2.0'});
for my $i (1 .. 20) {
    sql('fresh', "CREATE TABLE d$i (id int); SELECT ingest_enqueue('d$i', ROW(1)::d$i); DROP TABLE d$i;");
}
sql('fresh', 'CREATE TABLE newt (id int)');
my $n = 0;
ok(poll_until(60, sub {
    sql('fresh', "SELECT ingest_enqueue('newt', ROW(" . ++$n . ")::newt)");
    return sql('fresh', q{SELECT count(*) FROM ingest_status WHERE relname = 'newt'}) eq '1';
}), 'a new table is tracked after more tables than slots were dropped');

# --- the updated schema is the fresh one -----------------------------------------------------------
# pg_dump leaves extension members out of a schema dump: detach them first (in both databases,
# the same way), so that it dumps every table, view, function, comment and privilege.
sub schema_dump {
    my ($db) = @_;
    sql($db, q{
        DO $$
        DECLARE obj text;
        BEGIN
            FOR obj IN SELECT pg_describe_object(d.classid, d.objid, 0) FROM pg_depend d
                       JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
                       WHERE e.extname = 'pg_ingest' AND d.deptype = 'e'
            LOOP
                EXECUTE 'ALTER EXTENSION pg_ingest DROP ' || obj;
            END LOOP;
        END $$;
        DROP TABLE IF EXISTS t, newt;
    });
    my ($out, $err) = ('', '');
    $node->run_log([ 'pg_dump', '--schema-only', '--no-owner', '-d', $node->connstr($db) ], '>', \$out, '2>', \$err)
      or die "pg_dump $db: $err";
    # Harmless differences: comments, and the random key of pg_dump's \restrict / \unrestrict
    # lines (PostgreSQL 15.14 and later).
    $out =~ s/^--.*\n//mg;
    $out =~ s/^\\(un|)restrict \S+$/\\$1restrict KEY/mg;
    return $out;
}
my $updated = schema_dump('upd');
my $fresh = schema_dump('fresh');
like($fresh, qr/CREATE TABLE public\.ingest_dead_letter/, 'dump shows the detached objects');
is($updated, $fresh, 'pg_dump --schema-only: updated 0.1.0 = fresh 0.2.0');

$node->stop;
done_testing();
