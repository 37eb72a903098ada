# IngestNode.pm — shared helpers for pg_ingest's TAP tests.
package IngestNode;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';
our @EXPORT = qw(ingest_node start_with_retry);

# A fresh cluster with pg_ingest preloaded and the extension created in "postgres".
# Crash tests need restart_after_crash = on (Cluster->init turns it off).
sub ingest_node {
    my ($name, %opts) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init;
    my $conf = "shared_preload_libraries = 'pg_ingest'\n"
      . "max_worker_processes = 16\n"
      . "max_connections = 64\n"
      . "restart_after_crash = on\n"
      . ($opts{fsync} ? "fsync = on\n" : "")
      . ($opts{conf} // '');
    $node->append_conf('postgresql.conf', $conf);
    $node->start;
    $node->safe_psql('postgres', 'CREATE EXTENSION pg_ingest');
    return $node;
}

# After kill -9 of the postmaster the old postmaster.pid can linger a moment: retry the start
# (as PostgreSQL's own src/test/recovery/t/017_shm.pl does).
sub start_with_retry {
    my ($node) = @_;
    for my $i (1 .. 30) {
        return 1 if $node->start(fail_ok => 1);
        sleep 1;
    }
    return 0;
}

1;
