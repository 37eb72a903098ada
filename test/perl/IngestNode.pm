# IngestNode.pm — shared helpers for pg_ingest's TAP tests.
package IngestNode;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes ();
use Exporter 'import';
our @EXPORT = qw(ingest_node start_with_retry);

# A fresh cluster with pg_ingest preloaded and the extension created in "postgres".
# Crash tests need restart_after_crash = on (Cluster->init turns it off).
# init => { allows_streaming => 1 } is passed to Cluster->init (for a primary with standbys).
sub ingest_node {
    my ($name, %opts) = @_;
    my $node = PostgreSQL::Test::Cluster->new($name);
    $node->init(%{ $opts{init} // {} });
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
    for my $i (1 .. 300) {
        return 1 if $node->start(fail_ok => 1);
        Time::HiRes::usleep(100_000);
        # A failed start leaves the node believing the old postmaster's pid: reset it.
        $node->stop('fast', fail_ok => 1);
    }
    return $node->start;
}

# ---------------------------------------------------------------------------------------------
# Helpers for the delivery-guarantee tests (002-008).
use IPC::Run ();
use POSIX ();
use Time::HiRes ();
push @EXPORT, qw(psql_scripts timed_psql worker_pids wait_for_worker_change postmaster_pid
  postmaster_children wait_for_server start_ack_clients ack_count stop_ack_clients poll_until
  process_gone restart_after_kill9 ack_ledger ack_errors);

# Runs several psql scripts concurrently (one session each) and waits for all of them.
# Returns a list of { rc, out, err } (rc: psql's exit code, -1 on timeout).
# on_error_stop => 1 makes each psql stop at its first error.
sub psql_scripts {
    my ($node, $db, $scripts, %opt) = @_;
    my $stop = $opt{on_error_stop} ? 1 : 0;
    my $timeout = $opt{timeout} // 300;
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my (@h, @files);
    for my $i (0 .. $#$scripts) {
        my $base = "$dir/s$i";
        open my $fh, '>', "$base.sql" or die "$base.sql: $!";
        print $fh $scripts->[$i];
        close $fh;
        push @files, $base;
        push @h, IPC::Run::start(
            [ $node->installed_command('psql'), '-X', '-A', '-t', '-q', '-v', "ON_ERROR_STOP=$stop",
              '-d', $node->connstr($db), '-f', "$base.sql" ],
            '<', '/dev/null', '>', "$base.out", '2>', "$base.err", IPC::Run::timeout($timeout));
    }
    my @res;
    for my $i (0 .. $#h) {
        my $rc = eval { $h[$i]->finish; $h[$i]->result(0) };
        if (!defined $rc) {
            eval { $h[$i]->kill_kill };
            $rc = -1;
        }
        push @res, { rc => $rc, out => PostgreSQL::Test::Utils::slurp_file("$files[$i].out"),
                     err => PostgreSQL::Test::Utils::slurp_file("$files[$i].err") };
    }
    return @res;
}

# Runs $sql in one psql session (no ON_ERROR_STOP unless given); returns (rc, stdout, stderr,
# seconds taken).
sub timed_psql {
    my ($node, $db, $sql, %opt) = @_;
    my ($out, $err) = ('', '');
    my $t0 = Time::HiRes::time();
    my $rc = $node->psql($db, $sql, stdout => \$out, stderr => \$err,
        on_error_stop => $opt{on_error_stop} // 0, timeout => $opt{timeout} // 120);
    return ($rc, $out, $err, Time::HiRes::time() - $t0);
}

# Polls $cond (a sub) every 0.1 s until it returns true or $timeout seconds pass.
sub poll_until {
    my ($timeout, $cond) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    while (Time::HiRes::time() < $deadline) {
        return 1 if $cond->();
        Time::HiRes::sleep(0.1);
    }
    return $cond->() ? 1 : 0;
}

# Pids of the running pg_ingest workers (any database), sorted.
sub worker_pids {
    my ($node) = @_;
    my ($rc, $out) = $node->psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_ingest worker' ORDER BY pid});
    return () if $rc != 0;
    return grep { /^\d+$/ } split /\n/, $out;
}

# Waits until exactly one pg_ingest worker runs and its pid differs from $old; returns the new
# pid or undef on timeout.
sub wait_for_worker_change {
    my ($node, $old, $timeout) = @_;
    my $new;
    poll_until($timeout // 30, sub {
        my @p = worker_pids($node);
        $new = (@p == 1 && $p[0] != ($old // 0)) ? $p[0] : undef;
        return defined $new;
    });
    return $new;
}

sub postmaster_pid {
    my ($node) = @_;
    open my $fh, '<', $node->data_dir . '/postmaster.pid' or return undef;
    my $pid = <$fh>;
    close $fh;
    chomp $pid if defined $pid;
    return $pid;
}

# Pids whose parent is $ppid (from /proc).
sub postmaster_children {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh>;
        close $fh;
        next unless defined $stat;
        my $rest = substr($stat, rindex($stat, ')') + 2);
        my (undef, $parent) = split / /, $rest;
        push @kids, $p if defined $parent && $parent == $ppid;
    }
    closedir $d;
    return @kids;
}

# Waits until the server accepts queries again.
sub wait_for_server {
    my ($node, $timeout) = @_;
    return poll_until($timeout // 60, sub {
        my ($rc) = $node->psql('postgres', 'SELECT 1', timeout => 10);
        return defined $rc && $rc == 0;
    });
}

# Starts $o{clients} forked clients that enqueue one row per autocommit transaction into
# $o{table} (columns id bigint, client int) with ingest.wait_for_commit = on, each id used once
# (client c uses ids from c * 100,000,000 + 1; ids of failed runs are skipped, never reused).
# A row's id is written to the client's .out file only after its COMMIT returned. Runs psql
# again after every run of $o{per_run} statements or failure, until stop_ack_clients.
# Options (all optional; without them the clients behave as described above):
#   ack   => 'committed' | 'logged' | 'queued': each run starts with SET ingest.ack = ... instead
#            of SET ingest.wait_for_commit = on;
#   user  => a role: the clients log in as it (it needs LOGIN, and INSERT on the table);
#   flush => 1: psql flushes its output after every statement (a no-op \set after each one), so
#            the .out files are current (ack_ledger reads them while the clients run);
#   tag   => an SQL expression: its value is a fourth field of every ack line (evaluated in the
#            acknowledged statement, e.g. the server's start time; ack_ledger returns it);
#   stmt  => sub ($id, $c) returning the SQL of one acknowledged unit: it must print the line
#            ack|$id|<number> (e.g. SELECT 'ack', $id, $c;) only after its COMMIT returned.
#   setup => SQL run at the start of every psql run, after the SET above.
sub start_ack_clients {
    my ($node, %o) = @_;
    my $clients = $o{clients} // 4;
    my $table = $o{table} // die 'table required';
    my $per_run = $o{per_run} // 50;
    my $setup = $o{setup} // '';
    my $mode = defined $o{ack} ? "SET ingest.ack = $o{ack};" : 'SET ingest.wait_for_commit = on;';
    my $tag = defined $o{tag} ? ", $o{tag}" : '';
    my $flush = $o{flush} ? "\\set pgi_flush 1\n" : '';
    my $stmt = $o{stmt} // sub {
        my ($id, $c) = @_;
        return "SELECT 'ack', $id, ingest_enqueue('$table', ROW($id, $c)::$table)$tag;";
    };
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my $psql = $node->installed_command('psql');
    my $connstr = $node->connstr('postgres') . (defined $o{user} ? " user=$o{user}" : '');
    my @pids;
    my $parent = $$;
    for my $c (1 .. $clients) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            # Do not hold the test's output pipes open; stop when the test process is gone.
            open STDOUT, '>>', "$dir/c$c.log";
            open STDERR, '>>', "$dir/c$c.log";
            my $next = $c * 100_000_000 + 1;
            my $runs = 0;
            until (-e "$dir/stop" || getppid() != $parent) {
                my $file = "$dir/c$c.sql";
                open my $fh, '>', $file or POSIX::_exit(2);
                print $fh "$mode\n$setup\n";
                for my $id ($next .. $next + $per_run - 1) {
                    print $fh $stmt->($id, $c), "\n", $flush;
                }
                close $fh;
                $next += $per_run;
                $runs++;
                my $ok = eval {
                    IPC::Run::run([ $psql, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $connstr,
                                    '-f', $file ],
                        '<', '/dev/null', '>>', "$dir/c$c.out", '2>>', "$dir/c$c.err",
                        IPC::Run::timeout(120));
                };
                Time::HiRes::sleep(0.2) unless $ok;
            }
            open my $fh, '>', "$dir/c$c.runs";
            print $fh "$runs\n";
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return { dir => $dir, pids => \@pids, clients => $clients };
}

# Number of acknowledged rows so far (psql writes its output at latest when it exits).
sub ack_count {
    my ($h) = @_;
    my $n = 0;
    for my $c (1 .. $h->{clients}) {
        open my $fh, '<', "$h->{dir}/c$c.out" or next;
        while (<$fh>) { $n++ if /^ack\|\d+\|/; }
        close $fh;
    }
    return $n;
}

# The acknowledged ids so far, as { id => tag } (tag: the fourth field of start_ack_clients'
# tag option, else ''). Only complete lines count (psql may be writing the last one). With
# flush => 1 this is every id whose COMMIT had returned shortly before the call.
sub ack_ledger {
    my ($h) = @_;
    my %ids;
    for my $c (1 .. $h->{clients}) {
        open my $fh, '<', "$h->{dir}/c$c.out" or next;
        while (<$fh>) { $ids{$1} = $2 // '' if /^ack\|(\d+)\|-?\d+(?:\|(-?[\d.]+))?\n\z/; }
        close $fh;
    }
    return \%ids;
}

# The end of the clients' stderr so far (the last $max characters of each client's, default
# 1000), for diagnostics.
sub ack_errors {
    my ($h, $max) = @_;
    my $text = '';
    for my $c (1 .. $h->{clients}) {
        next unless -e "$h->{dir}/c$c.err";
        my $e = PostgreSQL::Test::Utils::slurp_file("$h->{dir}/c$c.err");
        $text .= "client $c: " . (length($e) > ($max // 1000) ? '...' . substr($e, -($max // 1000)) : $e) . "\n"
          if $e ne '';
    }
    return $text;
}

# Stops the clients (they finish their current run) and returns { acked => [ids], errors => text }.
sub stop_ack_clients {
    my ($h, $timeout) = @_;
    open my $fh, '>', "$h->{dir}/stop" or die "stop file: $!";
    close $fh;
    my $deadline = Time::HiRes::time() + ($timeout // 150);
    my %left = map { $_ => 1 } @{ $h->{pids} };
    while (%left && Time::HiRes::time() < $deadline) {
        for my $p (keys %left) {
            delete $left{$p} if waitpid($p, POSIX::WNOHANG()) != 0;
        }
        Time::HiRes::sleep(0.1);
    }
    for my $p (keys %left) { kill 'KILL', $p; waitpid($p, 0); }
    my (@acked, $errors);
    $errors = '';
    for my $c (1 .. $h->{clients}) {
        if (open my $o, '<', "$h->{dir}/c$c.out") {
            while (<$o>) { push @acked, $1 if /^ack\|(\d+)\|-?\d+(?:\|-?[\d.]+)?$/; }
            close $o;
        }
        $errors .= PostgreSQL::Test::Utils::slurp_file("$h->{dir}/c$c.err") if -e "$h->{dir}/c$c.err";
    }
    return { acked => \@acked, errors => $errors, hung => scalar(keys %left) };
}

# True when pid $p no longer runs (absent, or a zombie nobody reaped yet).
sub process_gone {
    my ($p) = @_;
    return 1 unless kill(0, $p);
    open my $fh, '<', "/proc/$p/stat" or return 1;
    my $stat = <$fh>;
    close $fh;
    return 1 unless defined $stat;
    my ($state) = split / /, substr($stat, rindex($stat, ')') + 2);
    return $state eq 'Z' || $state eq 'X';
}

# Start again after kill -9 of postmaster $pm whose children were @$kids: wait until they are all
# gone (the new postmaster would refuse to start while one still holds the shared memory, and
# Cluster::start() mistakes a dying postmaster for a running one), then start with retries.
sub restart_after_kill9 {
    my ($node, $pm, $kids) = @_;
    # The postmaster must be reaped, not just dead: a zombie still passes kill(0) (both here and
    # in the new postmaster's lock-file check).
    poll_until(60, sub { kill(0, $pm) == 0 && !grep { !process_gone($_) } @$kids });
    $node->_update_pid(-1);    # forget the dead postmaster (its postmaster.pid is stale)
    for my $i (1 .. 30) {
        return 1 if $node->start(fail_ok => 1);
        $node->_update_pid(-1);
        sleep 1;
    }
    return 0;
}


# ---------------------------------------------------------------------------------------------
# Helpers for the logged-queue crash and failover tests (026-030): the envelopes a transaction
# hands over are also rows of the extension's table ingest_queue (in the extension's schema,
# public here), deleted by the worker in the transaction that inserts them.
push @EXPORT, qw(queue_depth scalar_sql kill9_server hold_share_lock release_lock crash_rounds
  wait_until_drained check_exactly_once first_n incarnation_sql ingest_messages);

our $QUEUE_TABLE = 'ingest_queue';

# An SQL expression for the server's current incarnation (its postmaster's start time, in µs):
# a new postmaster after kill -9 has another one.
sub incarnation_sql { return '(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint'; }

# What $sql prints on $node (as the bootstrap superuser), or undef if it fails or takes more than
# 30 s.
sub scalar_sql {
    my ($node, $sql, $db) = @_;
    my $timed_out;
    my ($rc, $out, $err) = $node->psql($db // 'postgres', $sql, timeout => 30, timed_out => \$timed_out);
    return (defined $rc && $rc == 0 && !$timed_out) ? $out : undef;
}

# Committed rows in ingest_queue (envelopes not inserted yet), or undef if it cannot be read.
sub queue_depth {
    my ($node, $db) = @_;
    return scalar_sql($node, "SELECT count(*) FROM $QUEUE_TABLE", $db);
}

# The first $n elements of a list, as a string (for diagnostics).
sub first_n {
    my ($n, @l) = @_;
    return join(' ', @l[ 0 .. ($#l < $n - 1 ? $#l : $n - 1) ]);
}

# SIGKILL to the postmaster; with $children also to every child, right after it (a machine crash
# that keeps the OS page cache). Returns ($postmaster_pid, [children]) for restart_after_kill9.
sub kill9_server {
    my ($node, $children) = @_;
    my $pm = postmaster_pid($node);
    # With every child: stop the postmaster first, so that it forks nobody between the listing
    # and the kill. A child it forked after the listing would survive the kill, and could then
    # wait forever for an LWLock a killed child held (LWLock waits do not watch the postmaster),
    # keeping the shared memory attached so the server cannot start again.
    kill 'STOP', $pm if $children;
    my @kids = postmaster_children($pm);
    $node->kill9;
    kill 'KILL', @kids if $children && @kids;
    return ($pm, \@kids);
}

# Takes SHARE LOCK on $table in a separate session and keeps it: the worker's insert into $table
# (ROW EXCLUSIVE) waits for it, while enqueues (ACCESS SHARE) and reads go on. Returns the psql
# harness once the lock is granted (undef after $timeout seconds).
sub hold_share_lock {
    my ($node, $table, $timeout) = @_;
    my ($in, $out, $err) = ('', '', '');
    my $h = IPC::Run::start(
        [ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres') . ' application_name=pgi_locker',
          '-c', "BEGIN; LOCK TABLE $table IN SHARE MODE; SELECT pg_sleep(3600); COMMIT;" ],
        '<', \$in, '>', \$out, '2>', \$err);
    my $granted = poll_until($timeout // 60, sub {
        my $n = scalar_sql($node, qq{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE a.application_name = 'pgi_locker' AND l.relation = '$table'::regclass
              AND l.mode = 'ShareLock' AND l.granted});
        return defined $n && $n eq '1';
    });
    if (!$granted) {
        release_lock($h);
        return undef;
    }
    return $h;
}

# Ends the lock holder's psql (its server may be gone already).
sub release_lock {
    my ($h) = @_;
    eval { $h->kill_kill(grace => 2); 1 } if $h;
    return;
}

# Kill -9 rounds under the load of ack clients $h (start_ack_clients) against $node.
#   rounds      => number of kills in all (at least 2);
#   settle      => seconds of load before each kill (default 1.5);
#   resume_acks => acknowledgements that must follow a restart before the next round (default 50);
#   lock_table  => the clients' target table.
# Rounds 1 .. rounds-1: take a snapshot of the ledger (ack_ledger) and of the server's
# incarnation, let the load run for `settle` seconds, read ingest_queue's depth, then SIGKILL the
# postmaster (odd rounds) or the postmaster and all its children (even rounds); start the server
# again (retrying while old children hold the shared memory) and wait until the load resumed.
# The last round first holds SHARE LOCK on lock_table, so the worker inserts nothing while the
# load goes on: rows acknowledged meanwhile are only queued. Then the snapshot, the settle time,
# the queue depth and $o{at_kill_sql} (its output is returned) are taken with the lock still held,
# the postmaster and all children are killed, the clients are stopped, $o{final_conf} is appended
# to postgresql.conf, and the server is started again: nobody enqueues after that restart.
# Returns { ok => rounds completed, rounds => [ { snapshot => {id => tag}, incarnation, queued,
# killed_children } ], at_kill => text, clients => stop_ack_clients result, restarted => 0/1,
# lock_ok => 0/1 }.
sub crash_rounds {
    my ($node, $h, %o) = @_;
    my $rounds = $o{rounds} // 4;
    my $settle = $o{settle} // 1.5;
    my $resume = $o{resume_acks} // 50;
    my %r = (ok => 0, rounds => [], lock_ok => 0, restarted => 0);
    for my $i (1 .. $rounds) {
        my $last = $i == $rounds;
        my $lock;
        if ($last) {
            $lock = hold_share_lock($node, $o{lock_table}, 60);
            $r{lock_ok} = $lock ? 1 : 0;
            Time::HiRes::sleep(0.5);    # rows acknowledged from now on are only queued
        }
        my %round = (incarnation => scalar_sql($node, 'SELECT ' . incarnation_sql()),
                     snapshot => ack_ledger($h), killed_children => ($last || $i % 2 == 0) ? 1 : 0);
        Time::HiRes::sleep($settle);
        $round{queued} = queue_depth($node);
        $r{at_kill} = scalar_sql($node, $o{at_kill_sql}) if $last && defined $o{at_kill_sql};
        my ($pm, $kids) = kill9_server($node, $round{killed_children});
        push @{ $r{rounds} }, \%round;
        if ($last) {
            release_lock($lock);
            $r{clients} = stop_ack_clients($h);
            $node->append_conf('postgresql.conf', $o{final_conf}) if defined $o{final_conf};
            $r{restarted} = restart_after_kill9($node, $pm, $kids) ? 1 : 0;
            $r{ok}++ if $r{restarted};
            last;
        }
        my $acks = ack_count($h);
        my $started = restart_after_kill9($node, $pm, $kids);
        my $resumed = $started && poll_until(90, sub { ack_count($h) >= $acks + $resume });
        if (!$started || !$resumed) {
            Test::More::diag("round $i: killed postmaster $pm" . ($round{killed_children} ? ' and ' . scalar(@$kids) . ' children' : '')
                  . "; restarted: " . ($started ? 1 : 0) . "; load resumed: " . ($resumed ? 1 : 0)
                  . "; end of the clients' errors:\n" . ack_errors($h, 300));
            $r{clients} = stop_ack_clients($h);
            return \%r;
        }
        $r{ok}++;
    }
    return \%r;
}

# Waits (without enqueueing anything) until ingest_queue is empty and $count_sql's value has not
# changed for 3 s. Returns (1, text) or (0, text describing the last state).
sub wait_until_drained {
    my ($node, $count_sql, $timeout, $db) = @_;
    my ($last, $since, $queued) = (undef, 0, undef);
    my $ok = poll_until($timeout // 120, sub {
        $queued = queue_depth($node, $db);
        my $n = scalar_sql($node, $count_sql, $db);
        return 0 unless defined $queued && defined $n;
        my $now = Time::HiRes::time();
        if (!defined $last || $n ne $last) { ($last, $since) = ($n, $now); }
        return $queued eq '0' && $now - $since >= 3;
    });
    return ($ok, 'queued: ' . ($queued // 'unreadable') . ', count: ' . ($last // 'unreadable')
        . ', pg_ingest workers: ' . scalar(worker_pids($node)));
}

# The messages of level $levels (a regex, e.g. 'ERROR|FATAL') in $text (psql's stderr or a server
# log) that mention pg_ingest or its objects, at most 10, one a line. Messages with a path are left
# out: the checkout's path may contain "pg_ingest".
sub ingest_messages {
    my ($text, $levels) = @_;
    my @m = grep { /ingest/i && !m{/} } ($text =~ /(?:$levels):  ([^\n]*)/g);
    return join("\n", @m[ 0 .. ($#m < 9 ? $#m : 9) ]);
}

# Asserts that no id of $table (column $col, default id) is there twice and that every id of
# @$acked is there; $label prefixes the test names. Returns the ids present as { id => 1 }.
sub check_exactly_once {
    my ($node, $table, $acked, $label, %o) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my $col = $o{col} // 'id';
    my $db = $o{db} // 'postgres';
    my $dups = $node->safe_psql($db, "SELECT $col || ' x' || count(*) FROM $table GROUP BY $col HAVING count(*) > 1 ORDER BY $col LIMIT 20");
    Test::More::is($dups, '', "$label: no row landed twice")
      or Test::More::diag("doubled ids (first 20, with their counts): " . join(' ', split /\n/, $dups));
    my %present = map { $_ => 1 } split /\n/, $node->safe_psql($db, "SELECT $col FROM $table");
    my @missing = sort { $a <=> $b } grep { !$present{$_} } @$acked;
    Test::More::is(scalar(@missing), 0, "$label: every one of the " . scalar(@$acked) . ' acknowledged rows is present')
      or Test::More::diag(scalar(@missing) . ' missing; first 20: ' . first_n(20, @missing));
    return \%present;
}

# The common part of the ack-mode crash tests (026-028): 8 clients as $o{user} enqueue one row
# per transaction into $table with ingest.ack = $o{ack} (ledger tag $o{tag}), crash_rounds (4
# rounds; the last under SHARE LOCK), then the common checks: every round came back, the lock
# held the worker, the clients stopped, at least $o{min_acked} rows were acknowledged, no client
# got a pg_ingest warning or error, and after the last restart, with nothing enqueued, the queue
# drains. $o{check_queued}: also that rows were in ingest_queue at the kills. Returns
# (crash_rounds result, [acknowledged ids]).
sub ack_crash_load {
    my ($node, $table, %o) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my $clients = start_ack_clients($node, clients => 8, table => $table, per_run => $o{per_run} // 1000,
        ack => $o{ack}, user => $o{user}, flush => 1, ($o{tag} ? (tag => $o{tag}) : ()));
    Test::More::ok(poll_until(60, sub { ack_count($clients) >= ($o{min_running} // 500) }), 'load is running')
      or Test::More::diag('client errors: ' . ack_errors($clients));
    my $t0 = Time::HiRes::time();
    my $r = crash_rounds($node, $clients, rounds => 4, settle => 1.5, lock_table => $table,
        ($o{resume_acks} ? (resume_acks => $o{resume_acks}) : ()),
        at_kill_sql => "SELECT id FROM $table", final_conf => "ingest.test_worker_delay = 0\n");
    Test::More::is($r->{ok}, 4,
        '4 postmaster kills (2 with every child): the server came back each time, the load resumed');
    Test::More::ok($r->{lock_ok}, 'last round: SHARE LOCK on the table held the worker back');
    my @queued = map { $_->{queued} // 'unreadable' } @{ $r->{rounds} };
    Test::More::note('ingest_queue rows just before each kill: ' . join(', ', @queued));
    if ($o{check_queued}) {
        Test::More::cmp_ok(scalar(grep { /^\d+$/ && $_ > 0 } @queued[ 0 .. $#queued - 1 ]), '>=', 1,
            'the throttled worker left rows queued at the unlocked kills');
        Test::More::like($queued[-1], qr/^[1-9]\d*$/, "last kill: $queued[-1] rows were in ingest_queue");
    }
    Test::More::ok($r->{restarted}, 'server started after the last kill');
    my $res = $r->{clients};
    Test::More::is($res->{hung}, 0, 'clients stopped');
    my @acked = @{ $res->{acked} };
    Test::More::cmp_ok(scalar(@acked), '>', $o{min_acked} // 2000, scalar(@acked) . ' rows acknowledged');
    Test::More::is(ingest_messages($res->{errors}, 'WARNING'), '', 'no client got a pg_ingest warning');
    Test::More::is(ingest_messages($res->{errors}, 'ERROR'), '', 'no client got an error about pg_ingest or its queue');
    # Nothing is enqueued after the last restart: the launcher must start a worker for the queue.
    my ($drained, $state) = wait_until_drained($node, "SELECT count(*) FROM $table", 120);
    Test::More::ok($drained, 'after the restart, with nothing enqueued, ingest_queue drains to empty')
      or Test::More::diag($state);
    Test::More::note(sprintf('crash rounds and drain took %.0f s', Time::HiRes::time() - $t0));
    return ($r, \@acked);
}
push @EXPORT, qw(ack_crash_load);

1;
