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
  process_gone restart_after_kill9);

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
sub start_ack_clients {
    my ($node, %o) = @_;
    my $clients = $o{clients} // 4;
    my $table = $o{table} // die 'table required';
    my $per_run = $o{per_run} // 50;
    my $setup = $o{setup} // '';
    my $dir = PostgreSQL::Test::Utils::tempdir();
    my $psql = $node->installed_command('psql');
    my $connstr = $node->connstr('postgres');
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
                print $fh "SET ingest.wait_for_commit = on;\n$setup\n";
                for my $id ($next .. $next + $per_run - 1) {
                    print $fh "SELECT 'ack', $id, ingest_enqueue('$table', ROW($id, $c)::$table);\n";
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
            while (<$o>) { push @acked, $1 if /^ack\|(\d+)\|\d+$/; }
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

1;
