# CREATE EXTENSION without shared_preload_libraries fails with a message that says what to do.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('not_preloaded');
$node->init;
$node->start;
my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION pg_ingest');
isnt($rc, 0, 'CREATE EXTENSION fails');
like($err, qr/pg_ingest must be loaded via shared_preload_libraries/, 'error names shared_preload_libraries');
like($err, qr/HINT:.*Add pg_ingest to shared_preload_libraries/, 'with a hint');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_ingest'}), '0',
    'nothing was created');
$node->stop;
done_testing();
