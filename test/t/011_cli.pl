# The pgingest command-line loader against a real server: CSV edge cases (quoted newlines,
# escaped quotes, NULLs, wrong field counts -> rejects file with the right line numbers), server
# rejects, TSV, JSON lines from stdin, --max-errors, --dry-run, exit codes, --ack, `status`, and
# SIGINT mid-load (every row read is either committed or reported, none twice).
# Needs PGI_CLI (the pgingest binary); fails when it is missing.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(sleep);
use IngestNode;

my $bin = $ENV{PGI_CLI} // '';
unless (-x $bin) {
    fail("pgingest binary is built (PGI_CLI='$bin'; run make client)");
    done_testing();
    exit;
}

my $node = ingest_node('cli', conf => "log_min_messages = warning\n");
my $dsn = $node->connstr('postgres');
my $dir = PostgreSQL::Test::Utils::tempdir();

sub write_file {
    my ($name, $text) = @_;
    my $path = "$dir/$name";
    open(my $fh, '>', $path) or die "$path: $!";
    print $fh $text;
    close $fh;
    return $path;
}

sub read_file {
    my ($path) = @_;
    open(my $fh, '<', $path) or return '';
    local $/;
    my $t = <$fh>;
    close $fh;
    return $t;
}

# Runs pgingest with @args (stdin from $stdin, a string, when given); returns (exit code, stdout, stderr).
sub cli {
    my ($stdin, @args) = @_;
    my ($out, $err) = ('', '');
    my $in = $stdin // '';
    IPC::Run::run([ $bin, @args ], '<', \$in, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
    return ($? >> 8, $out, $err);
}

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql('CREATE TABLE t (id int PRIMARY KEY, name text, note text)');

# --- CSV edge cases -------------------------------------------------------------------------
my $csv = write_file('edge.csv', join('',
    "id,name,note\n",                # 1: header
    "1,\"multi\nline\",x\n",         # 2-3: quoted newline
    "2,,\"say \"\"hi\"\"\"\n",       # 4: empty unquoted field = NULL, escaped quotes
    "3,\"a,b\"\n",                   # 5: two fields: rejected
    "4,\"\",\\N\n",                  # 6: quoted empty string is '', \N is literal text in CSV
    "1,dup,y\n",                     # 7: duplicate key: dead-lettered by the server
    "5,\"tab\there\",\"back\\slash\"\n", # 8: tab and backslash survive
    "6,x,y,z\n"));                   # 9: four fields: rejected
my $rej = "$dir/edge.rejects";
my ($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '--table', 't', '--header', '--rejects', $rej, $csv);
is($rc, 1, 'CSV with rejects: exit code 1') or diag($err);
like($err, qr/7 rows read, 4 committed, 3 rejected/, 'summary counts read, committed, rejected');
is(sql("SELECT id, replace(coalesce(name, '<null>'), E'\\n', '<nl>'), coalesce(note, '<null>') FROM t ORDER BY id"),
    join("\n", "1|multi<nl>line|x", "2|<null>|say \"hi\"", "4||\\N", "5|tab\there|back\\slash"),
    'CSV values: quoted newline, NULL, escaped quotes, empty string, tab and backslash');
my @rejects = sort { $a->[0] <=> $b->[0] } map { [ split /\t/, $_, 3 ] } split /\n/, read_file($rej);
is(join(',', map { $_->[0] } @rejects), '5,7,9', 'rejects file names the input line numbers');
like($rejects[0][1], qr/expected 3 fields, got 2/, 'short record: reason');
is($rejects[0][2], '3,"a,b"', 'short record: the original input');
like($rejects[1][1], qr/duplicate key.*23505/, 'server reject: reason with SQLSTATE');
is($rejects[1][2], '1,dup,y', 'server reject: the original input');
like($rejects[2][1], qr/expected 3 fields, got 4/, 'long record: reason');

# --- --null, --columns, TSV -----------------------------------------------------------------
sql('TRUNCATE t');
($rc, $out, $err) = cli("10\tNA\tn\n11\tb\tNA\n", 'load', '--dsn', $dsn, '-t', 't', '-f', 'tsv', '--null', 'NA', '-');
is($rc, 0, 'TSV from stdin: exit code 0') or diag($err);
is(sql("SELECT id, coalesce(name, '<null>'), coalesce(note, '<null>') FROM t ORDER BY id"), "10|<null>|n\n11|b|<null>",
    'TSV with --null marker');
# CSV with --null: the marker is NULL, an empty unquoted field is then the empty string (as COPY).
($rc, $out, $err) = cli("13,NA,\n", 'load', '--dsn', $dsn, '-t', 't', '--null', 'NA', '-');
is($rc, 0, 'CSV with --null: exit code 0') or diag($err);
is(sql("SELECT coalesce(name, '<null>'), coalesce(note, '<null>') FROM t WHERE id = 13"), '<null>|',
    'CSV with --null: marker is NULL, empty field is the empty string');
($rc, $out, $err) = cli("12,z\n", 'load', '--dsn', $dsn, '-t', 't', '--columns', 'id,note', '-');
is($rc, 0, '--columns: exit code 0') or diag($err);
is(sql("SELECT coalesce(name, '<null>'), note FROM t WHERE id = 12"), '<null>|z', '--columns maps fields to columns');

# --- JSON lines from stdin --------------------------------------------------------------------
sql('TRUNCATE t');
my $jrej = "$dir/json.rejects";
($rc, $out, $err) = cli(join('', '{"id": 20, "name": "a\tb", "extra": 1}', "\n",
        '{"id": 21, "note": "only note"}', "\n", "not json\n", '{"id": "x"}', "\n", "[1,2]\n", "\n",
        '{"id": 22, "name": null, "note": {"nested": true}}', "\n"),
    'load', '--dsn', $dsn, '-t', 't', '-f', 'jsonl', '--rejects', $jrej, '-');
is($rc, 1, 'JSON lines with rejects: exit code 1') or diag($err);
like($err, qr/ignoring key "extra"/, 'unknown key: warned about');
is(sql("SELECT id, coalesce(name, '<null>'), coalesce(note, '<null>') FROM t ORDER BY id"),
    join("\n", "20|a\tb|<null>", "21|<null>|only note", "22|<null>|{\"nested\":true}"),
    'JSON lines mapped to columns by key; missing keys and null load NULL; objects as JSON text');
is(join(',', sort { $a <=> $b } map { (split /\t/)[0] } split /\n/, read_file($jrej)), '3,4,5',
    'JSON rejects: bad JSON, bad value, not an object, by line number');

sql("CREATE TABLE tj (id int, kind text DEFAULT 'default kind', n int)");
($rc, $out, $err) = cli(qq({"n": 1, "id": 1}\n{"id": 2, "kind": null}\n{"kind": "k", "id": 3}\n),
    'load', '--dsn', $dsn, '-t', 'tj', '-f', 'jsonl', '-');
is($rc, 0, 'JSON lines with varying keys: exit code 0') or diag($err);
is(sql("SELECT id, coalesce(kind, '<null>'), coalesce(n::text, '<null>') FROM tj ORDER BY id"),
    "1|default kind|1\n2|<null>|<null>\n3|k|<null>", 'JSON: a missing key takes the column default, null is NULL');

# --- --max-errors -------------------------------------------------------------------------
sql('TRUNCATE t');
my $bad = write_file('bad.csv', join('', map { "$_,only-two\n" } 1 .. 1000));
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--max-errors', '5', $bad);
is($rc, 1, '--max-errors: exit code 1');
like($err, qr/stopped after 5 errors/, '--max-errors: says it stopped');
my ($read) = $err =~ /(\d+) rows read/;
ok(defined $read && $read < 1000, "--max-errors stopped reading early ($read of 1000 read)");

# --- --dry-run sends nothing -------------------------------------------------------------
my $good = write_file('good.csv', join('', map { "$_,n$_,x\n" } 1 .. 100));
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--dry-run', $good);
is($rc, 0, '--dry-run of valid input: exit code 0') or diag($err);
like($err, qr/dry run: 100 rows read, 100 valid/, '--dry-run: summary');
is(sql('SELECT count(*) FROM t'), '0', '--dry-run: nothing sent');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--dry-run', $bad);
is($rc, 1, '--dry-run of bad input: exit code 1');

# --- exit codes ---------------------------------------------------------------------------
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, $good);
is($rc, 2, 'missing --table: exit code 2 (usage)');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--format', 'xml', $good);
is($rc, 2, 'bad --format: exit code 2');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 'no_such_table', $good);
is($rc, 2, 'unknown table: exit code 2');
like($err, qr/no_such_table.*does not exist/, 'unknown table: the server says so');
($rc, $out, $err) = cli(undef, 'load', '--dsn', "host=$dir/nowhere port=1", '-t', 't', $good);
is($rc, 3, 'no server: exit code 3 (connection)');
like($err, qr/cannot connect/, 'no server: says so');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', "$dir/missing.csv");
is($rc, 4, 'missing input file: exit code 4 (input)');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--wait-for-commit', 'off', $good);
is($rc, 0, 'all rows committed: exit code 0') or diag($err);
ok($node->poll_query_until('postgres', 'SELECT count(*) = 100 FROM t'), 'fire-and-forget rows arrive');

# --- --ack: the producer's ingest.ack; logged acknowledges rows once they are in WAL ----------
sql('TRUNCATE t');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--ack', 'logged', $good);
is($rc, 0, '--ack logged: exit code 0') or diag($err);
like($err, qr/100 rows read, 100 accepted, 0 rejected/, '--ack logged: the summary counts accepted rows');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 100 FROM t'), '--ack logged: the rows arrive');
($rc, $out, $err) = cli(undef, 'load', '--dsn', $dsn, '-t', 't', '--ack', 'queued', '--wait-for-commit', 'off', $good);
is($rc, 2, '--ack with --wait-for-commit: exit code 2 (usage)');

# --- status -------------------------------------------------------------------------------
($rc, $out, $err) = cli(undef, 'status', '--dsn', $dsn);
is($rc, 0, 'status: exit code 0') or diag($err);
like($out, qr/relname\s+: t\n/, 'status shows the table');
($rc, $out, $err) = cli(undef, 'status', '--dsn', $dsn, '--json');
is($rc, 0, 'status --json: exit code 0');
like($out, qr/"relname": "t"/, 'status --json: the table');
like($out, qr/"rows_committed": \d+/, 'status --json: counters are numbers');

# --- SIGINT mid-load: every row read is committed or reported, none twice -------------------
sql('TRUNCATE t');
my $big = write_file('big.csv', join('', map { "$_,n$_,x\n" } 1 .. 400_000));
my $irej = "$dir/int.rejects";
my ($iout, $ierr) = ('', '');
my $h = IPC::Run::start([ $bin, 'load', '--dsn', $dsn, '-t', 't', '--batch-rows', '2000', '--rejects', $irej, $big ],
    '<', '/dev/null', '>', \$iout, '2>', \$ierr, IPC::Run::timeout(300));
ok(poll_until(60, sub { sql("SELECT count(*) FROM t") > 0 }), 'load under way');
$h->signal('INT');
$h->finish;
is($h->result(0), 130, 'SIGINT: exit code 130') or diag($ierr);
like($ierr, qr/\(interrupted\)/, 'SIGINT: summary says interrupted');
my ($r, $c, $j) = $ierr =~ /(\d+) rows read, (\d+) committed, (\d+) rejected/;
ok(defined $r && $r < 400_000, 'SIGINT stopped reading before the end' . (defined $r ? " ($r read)" : ''));
is(sql('SELECT count(*) FROM t'), $c, 'SIGINT: the table holds exactly the rows reported committed');
is(sql('SELECT count(DISTINCT id) FROM t'), $c, 'SIGINT: no row twice');
is($c + $j, $r, 'SIGINT: every row read is committed or rejected');
is(sql('SELECT max(id) FROM t'), $r, 'SIGINT: the committed rows are the first rows read') if $j == 0;

# --- A second SIGINT stops waiting for a stuck server -----------------------------------------
# The worker is paused, so the rows already sent cannot be acknowledged: the first Ctrl-C stops
# reading and waits, the second ends the wait at once.
sql('TRUNCATE t');
sql("ALTER SYSTEM SET ingest.test_worker_delay = '1h'");
sql('SELECT pg_reload_conf()');
my $small = write_file('small.csv', join('', map { "$_,s$_,x\n" } 1 .. 5000));
($iout, $ierr) = ('', '');
$h = IPC::Run::start([ $bin, 'load', '--dsn', $dsn, '-t', 't', '--batch-rows', '1000', $small ],
    '<', '/dev/null', '>', \$iout, '2>', \$ierr, IPC::Run::timeout(120));
ok(poll_until(60, sub { sql("SELECT rows_queued FROM ingest_status WHERE relname = 't'") > 0 }),
    'rows sent while the worker is paused');
$h->signal('INT');
ok(poll_until(30, sub { $h->pump_nb; $ierr =~ /Ctrl-C again/ }), 'first SIGINT: waits, says how to stop waiting')
  or diag($ierr);
my $t0 = time;
$h->signal('INT');
$h->finish;
is($h->result(0), 130, 'second SIGINT: exit code 130') or diag($ierr);
ok(time - $t0 < 20, 'second SIGINT: exits without waiting for the server');
like($ierr, qr/stopped waiting; rows not yet acknowledged/, 'second SIGINT: says rows may still land');
($r, $c, $j) = $ierr =~ /(\d+) rows read, (\d+) committed, (\d+) rejected/;
is($c + $j, $r, 'second SIGINT: every row read is counted committed or rejected');
sql('ALTER SYSTEM RESET ingest.test_worker_delay');
sql('SELECT pg_reload_conf()');
sql("SELECT ingest_flush('60s')");
is(sql('SELECT count(*) - count(DISTINCT id) FROM t'), '0', 'second SIGINT: no row twice');
ok(sql('SELECT count(*) FROM t') >= $c, 'second SIGINT: the rows reported committed are there');

$node->stop;
done_testing();
