r"""The user an app container's entrypoint runs as, and where it starts: `lxc.init.uid` / `lxc.init.gid` /
`lxc.init.cwd` in the CT's config.

PVE writes these two raw LXC keys itself when it creates a CT from an OCI image whose config names a
User (pve-container src/PVE/LXC/Create.pm pushes `lxc.init.uid`); `pct set` cannot change them.
A compose service's `user:` replaces them, as Docker's `--user` replaces the image's USER; its
`working_dir:` replaces `lxc.init.cwd`, which PVE writes from the image's WorkingDir (Create.pm, same
function; `lxc.init.cwd` is in Config.pm's `$valid_lxc_conf_keys`). Each is replaced only when given.

Environment variables whose names PVE's `env` cannot hold (`discovery.type`, `node-name`: Config.pm's `env`
pattern is `\w+=...`, and `pct config` checks its output against it — pve-common RESTHandler.pm `handle`
with the result verification `cli_handler` turns on — so such a name in `lxc.environment.runtime` breaks
`pct config`) go in raw `lxc.environment:` lines instead: a valid raw key (`$valid_lxc_conf_keys`), kept in
`$conf->{lxc}` whose schema is a list of strings, passed by LXC to the init like the runtime env. They come
on stdin (NUL-separated `KEY=VALUE`), and replace every `lxc.environment:` line (PVE writes none itself). A small
Perl program — Perl is on every PVE host — rewrites only those two lines of /etc/pve/lxc/VMID.conf,
under PVE's config lock, via a temp file and rename (as ctenv.py does for the env). The CT must be
stopped: LXC reads them at start.
"""

_PERL = r"""
use strict; use warnings; use Fcntl qw(:flock);
my ($vmid, $uid, $gid, $cwd, $envmode) = @ARGV;
$envmode = "-" unless defined $envmode;
die "bad arguments\n" unless defined $cwd && $vmid =~ /^\d+$/ && $uid =~ /^(\d+|-)$/ && $gid =~ /^(\d+|-)$/
    && $cwd =~ m{^(-|/[^\x00-\x1f\x7f]*)$} && $envmode =~ /^(-|set)$/;
my @env;
if ($envmode eq "set") {
    my $data = do { local $/; binmode STDIN; <STDIN> };
    @env = grep { length } split /\0/, (defined $data ? $data : "");
    for my $kv (@env) {
        die "invalid environment entry\n" unless $kv =~ /^[A-Za-z0-9_.-]+=[^\x00-\x1f\x7f]*$/;
    }
}
my %set;
$set{uid} = $uid if $uid ne "-";
$set{gid} = $gid if $gid ne "-";
$set{cwd} = $cwd if $cwd ne "-";
my $lockfile = "/run/lock/lxc/pve-config-$vmid.lock";
open(my $lock, ">>", $lockfile) or die "cannot open $lockfile - $!\n";
flock($lock, LOCK_EX) or die "cannot lock $lockfile - $!\n";
my $path = "/etc/pve/lxc/$vmid.conf";
open(my $in, "<", $path) or die "Configuration file $path does not exist\n";
my @lines = <$in>;
close($in);
my (@main, @rest);
my $in_main = 1;
for my $line (@lines) {
    $in_main = 0 if $in_main && $line =~ /^\[/;
    if (!$in_main) { push @rest, $line; next; }
    next if $line =~ /^lxc\.init\.(uid|gid|cwd)\s*[:=]/ && exists $set{$1};
    next if $envmode eq "set" && $line =~ /^lxc\.environment\s*[:=]/;
    push @main, $line;
}
my $pos = scalar(@main);
$pos-- while $pos > 0 && $main[$pos - 1] =~ /^\s*$/;
splice(@main, $pos, 0, (map { "lxc.init.$_: $set{$_}\n" } grep { exists $set{$_} } qw(uid gid cwd)),
    map { "lxc.environment: $_\n" } @env);
my $tmp = "$path.tmp.$$";
open(my $out, ">", $tmp) or die "cannot write $tmp - $!\n";
print $out @main, @rest;
close($out) or die "cannot write $tmp - $!\n";
rename($tmp, $path) or die "cannot rename $tmp - $!\n";
"""


def write_argv(vmid: int, uid=None, gid=None, cwd=None, env: bool = False) -> list:
    """Replace the given ones of lxc.init.uid/gid/cwd ("-": keep what PVE wrote from the image); with `env`,
    the raw `lxc.environment:` lines by what comes on stdin (`env_stdin`)."""
    return ["perl", "-e", _PERL, str(vmid), "-" if uid is None else str(int(uid)), "-" if gid is None else str(int(gid)),
            "-" if cwd is None else str(cwd), "set" if env else "-"]


def env_stdin(env: dict) -> bytes:
    return "\0".join(f"{k}={v}" for k, v in env.items()).encode()
