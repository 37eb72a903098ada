# `pgingest serve`, the HTTP ingest endpoint, against a real server, driven with curl: every
# endpoint and error code (401, 403, 404, 400, 413, 415, 503), 1,000 JSON records landing exactly
# once with their ticket turning committed, dead-lettered rows in the ticket, rows inserted as the
# token's role, /metrics, and SIGTERM during a load losing no acknowledged record.
# Needs PGI_CLI (the pgingest binary) and curl; fails when either is missing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);
use IngestNode;

my $bin = $ENV{PGI_CLI} // '';
unless (-x $bin) {
    fail("pgingest binary is built (PGI_CLI='$bin'; run make client)");
    done_testing();
    exit;
}
unless (system('curl --version >/dev/null 2>&1') == 0) {
    fail('curl is installed (scripts/install-deps.sh)');
    done_testing();
    exit;
}

my $node = ingest_node('serve', conf => "log_min_messages = warning\n");
my $dir = PostgreSQL::Test::Utils::tempdir();
my $json = JSON::PP->new->canonical;
sub sql { return $node->safe_psql('postgres', $_[0]); }

# The gateway logs in as gw; alice is granted to it and may insert, carol is granted but may not,
# bob is not granted to gw at all.
sql(q{
    CREATE ROLE gw LOGIN; CREATE ROLE alice; CREATE ROLE bob; CREATE ROLE carol;
    GRANT alice, carol TO gw;
    CREATE TABLE t (id int PRIMARY KEY, kind text DEFAULT 'dflt', n int, who text DEFAULT current_user);
    GRANT INSERT ON t TO alice, bob;
    CREATE TABLE ledger (id bigint PRIMARY KEY, worker int);
    GRANT INSERT ON ledger TO alice;
});
my $dsn = $node->connstr('postgres') . ' user=gw';

sub write_file {
    my ($name, $text) = @_;
    open(my $fh, '>', "$dir/$name") or die "$dir/$name: $!";
    print $fh $text;
    close $fh;
    return "$dir/$name";
}
my $sha_carol = `printf '%s' tok-carol | sha256sum`;
$sha_carol =~ s/\s.*//s;
my $tokens = write_file('tokens', "# test tokens\ntok-alice alice\ntok-bob bob\nsha256:$sha_carol carol\n");

# Starts `pgingest serve` on a free port; returns (handle, base URL, \stderr).
sub start_serve {
    my (@extra) = @_;
    my $port = PostgreSQL::Test::Cluster::get_free_port();
    my $err = '';
    my $h = IPC::Run::start([ $bin, 'serve', '--dsn', $dsn, '--listen', "127.0.0.1:$port", '--tokens', $tokens,
            @extra ], '<', '/dev/null', '>', '/dev/null', '2>', \$err, IPC::Run::timeout(300));
    my $url = "http://127.0.0.1:$port";
    poll_until(20, sub { $h->pump_nb; system("curl -sf -o /dev/null $url/healthz") == 0 })
      or diag("serve did not start: $err");
    return ($h, $url, \$err);
}

# curl METHOD URL [token => T] [type => CT] [body => TEXT] -> { code, body, json, headers, secs }
my $n_req = 0;
sub req {
    my ($method, $url, %o) = @_;
    $n_req++;
    my @cmd = ('curl', '-s', '-X', $method, '-D', "$dir/h$n_req", '-o', "$dir/b$n_req", '-w', '%{http_code}',
        '--max-time', '60');
    push @cmd, '-H', "Authorization: Bearer $o{token}" if defined $o{token};
    push @cmd, '-H', "Content-Type: $o{type}" if defined $o{type};
    push @cmd, '--data-binary', '@' . write_file("in$n_req", $o{body}) if defined $o{body};
    push @cmd, $url;
    my $out = '';
    my $t0 = time;
    IPC::Run::run(\@cmd, '>', \$out);
    my %r = (code => $out, secs => time - $t0);
    $r{body} = PostgreSQL::Test::Utils::slurp_file("$dir/b$n_req") if -e "$dir/b$n_req";
    $r{headers} = PostgreSQL::Test::Utils::slurp_file("$dir/h$n_req") if -e "$dir/h$n_req";
    $r{json} = eval { $json->decode($r{body}) } if defined $r{body} && $r{body} =~ /^\s*\{/;
    return \%r;
}
my $JSON = 'application/json';
sub rows_body { my ($from, $to, %extra) = @_; return $json->encode([ map { { id => $_, %extra } } $from .. $to ]); }

my ($serve, $url, $serr) = start_serve('--max-body', '1000000', '--queue-rows', '3000');

# --- health -----------------------------------------------------------------------------------
my $r = req('GET', "$url/healthz");
is($r->{code}, 200, '/healthz: 200');
$r = req('GET', "$url/readyz");
is($r->{code}, 200, '/readyz: 200 (database reachable, extension present)') or diag($r->{body});
$r = req('GET', "$url/nowhere");
is($r->{code}, 404, 'unknown endpoint: 404');
$r = req('GET', "$url/v1/tables/t/rows");
is($r->{code}, 405, 'GET on the rows endpoint: 405');

# --- authentication and authorization ------------------------------------------------------------
$r = req('POST', "$url/v1/tables/t/rows", type => $JSON, body => rows_body(1, 1));
is($r->{code}, 401, 'no token: 401');
like($r->{headers}, qr/WWW-Authenticate: Bearer/i, '401 names the Bearer scheme');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-mallory', type => $JSON, body => rows_body(1, 1));
is($r->{code}, 401, 'unknown token: 401');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-carol', type => $JSON, body => rows_body(1, 1));
is($r->{code}, 403, 'hashed token, role without INSERT: 403');
like($r->{json}{error} // '', qr/permission denied/, '403 says why');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-bob', type => $JSON, body => rows_body(1, 1));
is($r->{code}, 403, 'role not granted to the login role: 403');
like($r->{json}{error} // '', qr/not a member of role "bob"/, '403 names the missing grant');
$r = req('POST', "$url/v1/tables/no_such_table/rows", token => 'tok-alice', type => $JSON, body => rows_body(1, 1));
is($r->{code}, 404, 'unknown table: 404');
is(sql('SELECT count(*) FROM t'), '0', 'nothing inserted by refused requests');

# --- bad input --------------------------------------------------------------------------------
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => qq([{"id": 1},\n {"id": 2,]));
is($r->{code}, 400, 'malformed JSON: 400');
like($r->{json}{error} // '', qr/record 2 \(line 2, column \d+\)/, 'malformed JSON: names the record and position')
  or diag($r->{body});
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => '[{"id": 1}, 7]');
is($r->{code}, 400, 'array element that is not an object: 400');
like($r->{json}{error} // '', qr/record 2 .*not a JSON object/, '... names the record');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => '[{"id": 1, "colour": "red"}]');
is($r->{code}, 400, 'key that is not a column: 400');
like($r->{json}{error} // '', qr/"colour" is not a column/, '... names the key');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'application/x-ndjson',
    body => qq({"id": 1}\n\n{"id": 2}\n{"id": 3, "n": }\n));
is($r->{code}, 400, 'malformed NDJSON: 400');
like($r->{json}{error} // '', qr/record 3 \(line 4, column \d+\)/, 'malformed NDJSON: record and line');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'text/csv', body => qq(id,kind\n1,a\n2,"b\n));
is($r->{code}, 400, 'malformed CSV (unterminated quote): 400');
like($r->{json}{error} // '', qr/record 2 \(line 3/, 'malformed CSV: record and line');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'text/csv', body => qq(id,kind\n1,a,x\n));
is($r->{code}, 400, 'CSV record with too many fields: 400');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'text/plain', body => '1');
is($r->{code}, 415, 'unsupported Content-Type: 415');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => rows_body(1, 1, kind => 'x' x 1_100_000));
is($r->{code}, 413, 'body over --max-body: 413');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => rows_body(100_001, 103_500));
is($r->{code}, 413, 'more rows than the gateway queue can ever hold: 413');
is(sql('SELECT count(*) FROM t'), '0', 'nothing inserted from bad requests');

# --- 1,000 JSON records, ack=committed: land exactly once, ticket committed ----------------------
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => $JSON, body => rows_body(1, 1000, n => 7));
is($r->{code}, 200, '1,000 records: 200') or diag($r->{body});
is($r->{json}{status}, 'committed', 'ack=committed (default): status committed');
is($r->{json}{rows}, 1000, 'the answer counts 1,000 rows');
is(sql('SELECT count(*), count(DISTINCT id), min(id), max(id), sum(n) FROM t'), '1000|1000|1|1000|7000',
    'the 1,000 rows are in the table, each once');
is(sql("SELECT count(*) FROM t WHERE who = 'alice' AND kind = 'dflt'"), '1000',
    'inserted as the token\'s role (current_user default), missing keys take defaults');
my $ticket = $r->{json}{ticket};
$r = req('GET', "$url/v1/tickets/$ticket", token => 'tok-alice');
is($r->{code}, 200, 'GET ticket: 200');
is($r->{json}{status}, 'committed', 'the ticket is committed');
is($r->{json}{rows_failed}, 0, 'no failed rows');
ok(@{ $r->{json}{server_tickets} // [] } >= 1, 'the ticket lists the server tickets of its rows');
$r = req('GET', "$url/v1/tickets/$ticket", token => 'tok-carol');
is($r->{json}{status}, 'unknown', "another role's ticket is unknown to the caller");
$r = req('GET', "$url/v1/tickets/$ticket");
is($r->{code}, 401, 'GET ticket without token: 401');
$r = req('GET', "$url/v1/tickets/12345", token => 'tok-alice');
is($r->{json}{status}, 'unknown', 'never-issued ticket: unknown');

# --- ack=queued: fast answer, ticket turns committed ---------------------------------------------
my @secs;
my @tickets;
for my $i (0 .. 4) {
    my $from = 2001 + $i * 1000;
    $r = req('POST', "$url/v1/tables/t/rows?ack=queued", token => 'tok-alice', type => $JSON,
        body => rows_body($from, $from + 999));
    is($r->{code}, 200, "ack=queued request $i: 200") or diag($r->{body});
    push @secs, $r->{secs};
    push @tickets, $r->{json}{ticket};
}
is($r->{json}{status}, 'queued', 'ack=queued: status queued');
my ($slowest) = sort { $b <=> $a } @secs;
ok($slowest < 1.0, sprintf('ack=queued answers 1,000 records quickly (slowest of 5 incl. curl start: %.0f ms)', $slowest * 1000));
ok(poll_until(30, sub { !grep { req('GET', "$url/v1/tickets/$_", token => 'tok-alice')->{json}{status} ne 'committed' } @tickets }),
    'the ack=queued tickets turn committed');
is(sql('SELECT count(*), count(DISTINCT id) FROM t WHERE id > 2000'), '5000|5000', 'ack=queued rows land once');

# --- dead letters show in the ticket; CSV ------------------------------------------------------
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'application/x-ndjson',
    body => qq({"id": 9001}\n{"id": 1, "kind": "duplicate"}\n{"id": 9002, "n": "not a number"}\n{"id": 9003}\n));
is($r->{code}, 200, 'NDJSON with bad rows: 200 (rows are judged by the database)');
is($r->{json}{status}, 'failed', 'status failed when rows were dead-lettered');
$r = req('GET', "$url/v1/tickets/$r->{json}{ticket}", token => 'tok-alice');
is($r->{json}{rows_failed}, 2, 'the ticket counts 2 failed rows');
my %err = map { $_->{record} => $_ } @{ $r->{json}{errors} // [] };
is($err{2}{sqlstate}, '23505', 'record 2: duplicate key (23505)');
like($err{2}{error} // '', qr/duplicate key/, 'record 2: the server\'s reason');
is($err{3}{sqlstate}, '22P02', 'record 3: invalid integer (22P02)');
is(sql('SELECT count(*) FROM t WHERE id IN (9001, 9003)'), '2', 'the good rows of that request committed');
is(sql("SELECT count(*) FROM ingest_dead_letter WHERE role_name = 'alice'"), '2', 'the bad rows are dead letters of alice');
$r = req('POST', "$url/v1/tables/t/rows", token => 'tok-alice', type => 'text/csv',
    body => qq(id,kind,n\n9101,"a,b",\n9102,"multi\nline",3\n));
is($r->{code}, 200, 'CSV: 200') or diag($r->{body});
is(sql("SELECT id, replace(kind, E'\\n', '<nl>'), coalesce(n::text, '<null>') FROM t WHERE id > 9100 ORDER BY id"),
    "9101|a,b|<null>\n9102|multi<nl>line|3", 'CSV values: quoted delimiter, newline, empty field NULL');

# --- /metrics --------------------------------------------------------------------------------
$r = req('GET', "$url/metrics");
is($r->{code}, 200, '/metrics: 200');
my $m = $r->{body} // '';
like($m, qr/^pgingest_http_requests_total\{route="rows",code="401"\} 2$/m, 'requests by code (401)');
like($m, qr/^pgingest_http_requests_total\{route="rows",code="200"\} \d+$/m, 'requests by code (200)');
like($m, qr/^pgingest_rows_accepted_total 6006$/m, 'rows accepted');
like($m, qr/^pgingest_rows_committed_total 6004$/m, 'rows committed');
like($m, qr/^pgingest_rows_failed_total 2$/m, 'rows failed');
like($m, qr/^pgingest_http_request_duration_seconds_bucket\{route="rows",le="0.1"\} \d+$/m, 'latency histogram');
like($m, qr/^pgingest_producer_queue_depth 0$/m, 'producer queue depth');
like($m, qr/^pgingest_server_rows_committed_total\{table="t"\} 6004$/m, "the server's ingest_status per table");
like($m, qr/^pgingest_server_ring_fill [0-9.]+$/m, 'ring fill');
like($m, qr/^pgingest_server_lag_seconds\{table="t"\} [0-9.]+$/m, 'lag');

# --- full queue: 503 with Retry-After; what was accepted still lands ----------------------------
sql("ALTER SYSTEM SET ingest.test_worker_delay = '1h'");
sql('SELECT pg_reload_conf()');
$r = req('POST', "$url/v1/tables/t/rows?ack=queued", token => 'tok-alice', type => $JSON, body => rows_body(20001, 22000));
is($r->{code}, 200, 'worker paused: 2,000 rows accepted (queue of 3,000)');
my $held = $r->{json}{ticket};
$r = req('POST', "$url/v1/tables/t/rows?ack=queued", token => 'tok-alice', type => $JSON, body => rows_body(22001, 23500));
is($r->{code}, 503, 'gateway queue full: 503');
like($r->{headers}, qr/Retry-After: 1/i, '503 carries Retry-After');
is(req('GET', "$url/v1/tickets/$held", token => 'tok-alice')->{json}{status}, 'queued', 'the held ticket is queued');
sql('ALTER SYSTEM RESET ingest.test_worker_delay');
sql('SELECT pg_reload_conf()');
ok(poll_until(60, sub { req('GET', "$url/v1/tickets/$held", token => 'tok-alice')->{json}{status} eq 'committed' }),
    'after the pause the held ticket turns committed');
is(sql('SELECT count(*) FROM t WHERE id > 20000'), '2000', 'the accepted rows landed, the refused ones did not');

$serve->signal('TERM');
$serve->finish;
is($serve->result(0), 0, 'SIGTERM when idle: exit 0') or diag($$serr);

# --- SIGTERM during a load: no acknowledged record lost ------------------------------------------
# Four writers post 50-record batches (ack alternating queued/committed) and note a batch's ids
# in their ledger only after a 200; SIGTERM arrives mid-load.
my ($serve2, $url2, $serr2) = start_serve('--threads', '2');
my $workers = 4;
my @pids;
for my $w (1 .. $workers) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open my $ledger, '>', "$dir/ledger$w" or POSIX::_exit(2);
        $ledger->autoflush(1);
        my $fails = 0;
        for my $b (0 .. 999) {
            my $base = $w * 1_000_000 + $b * 50;
            my $file = "$dir/w$w.json";
            open my $fh, '>', $file or POSIX::_exit(2);
            print $fh $json->encode([ map { { id => $base + $_, worker => $w } } 1 .. 50 ]);
            close $fh;
            my $ack = $b % 2 ? 'queued' : 'committed';
            my $code = `curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H 'Authorization: Bearer tok-alice' -H 'Content-Type: application/json' --data-binary \@$file '$url2/v1/tables/ledger/rows?ack=$ack'`;
            if ($code eq '200') {
                print $ledger join("\n", map { $base + $_ } 1 .. 50), "\n";
                $fails = 0;
            } else {
                last if ++$fails >= 5 || $code eq '000';
                sleep 0.05;
            }
        }
        close $ledger;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
sub ledger_ids {
    my @ids;
    for my $w (1 .. $workers) {
        open my $fh, '<', "$dir/ledger$w" or next;
        push @ids, grep { /^\d+$/ } map { chomp; $_ } <$fh>;
        close $fh;
    }
    return @ids;
}
ok(poll_until(30, sub { scalar(ledger_ids()) >= 2000 }), 'load under way (2,000 records acknowledged)');
$serve2->signal('TERM');
my $t0 = time;
$serve2->finish;
is($serve2->result(0), 0, 'SIGTERM during a load: exit 0') or diag($$serr2);
like($$serr2, qr/every accepted row was reported/, 'the gateway flushed before exiting');
ok(time - $t0 < 30, sprintf('drained in %.1f s', time - $t0));
waitpid($_, 0) for @pids;
my @acked = ledger_ids();
my %seen;
$seen{$_}++ for @acked;
ok(@acked > 0 && !grep({ $_ > 1 } values %seen), scalar(@acked) . ' acknowledged records, each acknowledged once');
my $list = join(',', @acked);
is(sql("SELECT count(*) FROM ledger WHERE id IN ($list)"), scalar(@acked), 'every acknowledged record is in the table');
is(sql('SELECT count(*) - count(DISTINCT id) FROM ledger'), '0', 'no record twice');

$node->stop;
done_testing();
