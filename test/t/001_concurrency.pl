# 16 concurrent clients enqueue 300,000 single rows (PGI_CONCURRENCY_ROWS: more, for a soak; CI
# keeps the default to stay within its time); after ingest_flush() the table holds
# every row exactly once (count, distinct count and sum of ids) and ingest_status agrees.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IngestNode;

my $node = ingest_node('concurrency');
$node->safe_psql('postgres', q{
    CREATE TABLE events (id bigint NOT NULL, ts timestamptz NOT NULL, n int, msg text);
    CREATE SEQUENCE event_ids;
});

my $total = $ENV{PGI_CONCURRENCY_ROWS} // 300_000;
my $clients = 16;
my $per_client = int($total / $clients);
$total = $per_client * $clients;

# Half the clients wait for the commit, half fire and forget: both paths under load at once.
$node->pgbench(
    "--no-vacuum --client=$clients --jobs=2 --transactions=$per_client",
    0,
    [qr{processed: $total/$total}],
    [qr{^$}],
    'pgbench: 16 clients enqueue single rows',
    {
        'enqueue' => q{
\set half :client_id % 2
SELECT set_config('ingest.wait_for_commit', CASE WHEN :half = 0 THEN 'on' ELSE 'off' END, false);
SELECT ingest_enqueue('events', ROW(nextval('event_ids'), now(), :client_id, 'payload forty bytes long, more or less')::events);
}
    });

is($node->safe_psql('postgres', q{SELECT ingest_flush('120s')}), 't', 'ingest_flush returns true');

my $expected_sum = $total * ($total + 1) / 2;
is($node->safe_psql('postgres', q{SELECT count(*), count(DISTINCT id), sum(id), min(id), max(id) FROM events}),
    "$total|$total|$expected_sum|1|$total", 'every row landed exactly once');

# Per-client counts: each client's rows all arrived.
is($node->safe_psql('postgres', q{SELECT count(DISTINCT n), min(c), max(c) FROM (SELECT n, count(*) c FROM events GROUP BY n) s}),
    "$clients|$per_client|$per_client", 'each client delivered all its rows');

is($node->safe_psql('postgres', q{
    SELECT rows_enqueued, rows_committed, rows_failed, rows_queued FROM ingest_status WHERE relname = 'events'}),
    "$total|$total|0|0", 'ingest_status totals agree with the table');

my $batches = $node->safe_psql('postgres', q{SELECT batches FROM ingest_status WHERE relname = 'events'});
cmp_ok($batches, '<', $total, "rows were batched ($batches batches)");
is($node->safe_psql('postgres', q{SELECT ring_used_bytes FROM ingest_ring}), '0', 'ring empty afterwards');

$node->stop;
done_testing();
