"""Writing a CT's environment: several variables, which `pct set --env` cannot carry.

PVE stores `env` NUL-separated, a command line cannot hold NUL, and PVE replaces the
create-time env with the image's Env (oci-on-proxmox.md §4). So the variables are sent on
the command's stdin (never on a command line: they may hold secrets) and a small Perl
program — Perl is on every PVE host — rewrites only the `lxc.environment.runtime:` lines
of /etc/pve/lxc/VMID.conf under PVE's own config lock (the flock PVE::LXC::Config uses),
via a temp file and rename. The CT must be stopped: PVE reads the env at start.
Before writing, it prints the env it found, so a create learns the image's Env.

As PVE's own writers do (pve-common Tools.pm lock_file_full, AbstractConfig.pm check_lock):
it waits at most 10 s for the flock (`can't lock file '...' - got timeout`) and refuses a
config that carries a `lock:` (`CT is locked (backup)`). An env under `[pve:pending]` (a
`pct set --env` on a running CT, not yet started) would replace ours at the next start
(Config.pm vmconfig_apply_pending): the pending env is the one merged over, and it is
removed along with a pending `delete: env`.
"""

from typing import Mapping

ENV_MARKER = "@@homefleet:previous-env@@"

_PERL = r"""
use strict; use warnings; use Fcntl qw(:flock);
my ($vmid, $mode) = @ARGV;
die "bad vmid\n" unless defined $vmid && $vmid =~ /^\d+$/;
die "bad mode\n" unless defined $mode && ($mode eq "merge" || $mode eq "replace");
my $lockfile = "/run/lock/lxc/pve-config-$vmid.lock";
open(my $lock, ">>", $lockfile) or die "cannot open $lockfile - $!\n";
my $waited = 0;
until (flock($lock, LOCK_EX | LOCK_NB)) {
    die "can\x27t lock file \x27$lockfile\x27 - got timeout\n" if $waited >= 100;
    select(undef, undef, undef, 0.1);
    $waited++;
}
my $path = "/etc/pve/lxc/$vmid.conf";
open(my $in, "<", $path) or die "Configuration file $path does not exist\n";
my @lines = <$in>;
close($in);
my $data = do { local $/; binmode STDIN; <STDIN> };
$data = "" unless defined $data;
my @want = grep { length } split /\0/, $data;
for my $kv (@want) {
    die "invalid environment entry\n" unless $kv =~ /^\w+=[^\n\r\0]*$/;
}
my (@main, @rest, @found, @pending_env);
my ($section, $pos, $pending_env) = ("main", undef, 0);
for my $line (@lines) {
    if ($line =~ /^\[([^\]]*)\]\s*$/) { $section = lc($1) eq "pve:pending" ? "pending" : "snapshot"; }
    if ($section eq "pending" && $line =~ /^lxc\.environment\.runtime\s*[:=]\s*(.*?)\r?\n?$/) {
        push @pending_env, $1;
        $pending_env = 1;
        next;
    }
    if ($section eq "pending" && $line =~ /^delete:\s*(.*?)\s*$/) {
        my @keep = grep { length && $_ ne "env" } split /[,;\s]+/, $1;
        $line = @keep ? "delete: " . join(",", @keep) . "\n" : "";
    }
    if ($section ne "main") { push @rest, $line; next; }
    if ($line =~ /^lock:\s*(\S+)/) {
        die "CT is locked ($1)\n";
    }
    if ($line =~ /^lxc\.environment\.runtime\s*[:=]\s*(.*?)\r?\n?$/) {
        push @found, $1;
        $pos = scalar(@main) unless defined $pos;
        next;
    }
    push @main, $line;
}
@found = @pending_env if $pending_env;
# a [pve:pending] section left with nothing under it goes
my @kept;
for my $i (0 .. $#rest) {
    if ($rest[$i] =~ /^\[pve:pending\]\s*$/i) {
        my $j = $i + 1;
        $j++ while $j <= $#rest && $rest[$j] =~ /^\s*$/;
        next if $j > $#rest || $rest[$j] =~ /^\[/;
    }
    push @kept, $rest[$i];
}
@rest = @kept;
unless (defined $pos) {
    $pos = scalar(@main);
    for my $i (0 .. $#main) { if ($main[$i] =~ /^lxc\./) { $pos = $i; last; } }
    $pos-- while $pos > 0 && $main[$pos - 1] =~ /^\s*$/;
}
my (%env, @order);
for my $kv (($mode eq "merge" ? @found : ()), @want) {
    my ($key) = split /=/, $kv, 2;
    push @order, $key unless exists $env{$key};
    $env{$key} = $kv;
}
splice(@main, $pos, 0, map { "lxc.environment.runtime: $env{$_}\n" } @order);
my $tmp = "$path.tmp.$$";
open(my $out, ">", $tmp) or die "cannot write $tmp - $!\n";
print $out @main, @rest;
close($out) or die "cannot write $tmp - $!\n";
rename($tmp, $path) or die "cannot rename $tmp - $!\n";
print "MARKER\n", join("\0", @found), "\n";
""".replace("MARKER", ENV_MARKER.replace("@", "\\@"))


def write_argv(vmid: int, mode: str) -> list:
    """`merge`: the given variables over those already there (the image's); `replace`: exactly these."""
    return ["perl", "-e", _PERL, str(vmid), mode]


def stdin_data(env: Mapping[str, str]) -> bytes:
    return "\0".join(f"{k}={v}" for k, v in env.items()).encode()


def parse_previous(stdout: str) -> list:
    """The env entries the writer found before writing (the image's Env on a fresh CT)."""
    marker = stdout.rfind(ENV_MARKER + "\n")
    if marker < 0:
        return []
    line = stdout[marker + len(ENV_MARKER) + 1:].split("\n", 1)[0]
    return [entry for entry in line.split("\0") if entry]
