"""The user an app container's entrypoint runs as, and where it starts: `lxc.init.uid` / `lxc.init.gid` /
`lxc.init.cwd` in the CT's config.

PVE writes these two raw LXC keys itself when it creates a CT from an OCI image whose config names a
User (pve-container src/PVE/LXC/Create.pm pushes `lxc.init.uid`); `pct set` cannot change them.
A compose service's `user:` replaces them, as Docker's `--user` replaces the image's USER; its
`working_dir:` replaces `lxc.init.cwd`, which PVE writes from the image's WorkingDir (Create.pm, same
function; `lxc.init.cwd` is in Config.pm's `$valid_lxc_conf_keys`). Each is replaced only when given. A small
Perl program — Perl is on every PVE host — rewrites only those two lines of /etc/pve/lxc/VMID.conf,
under PVE's config lock, via a temp file and rename (as ctenv.py does for the env). The CT must be
stopped: LXC reads them at start.
"""

_PERL = r"""
use strict; use warnings; use Fcntl qw(:flock);
my ($vmid, $uid, $gid, $cwd) = @ARGV;
die "bad arguments\n" unless defined $cwd && $vmid =~ /^\d+$/ && $uid =~ /^(\d+|-)$/ && $gid =~ /^(\d+|-)$/
    && $cwd =~ m{^(-|/[^\x00-\x1f\x7f]*)$};
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
    push @main, $line;
}
my $pos = scalar(@main);
$pos-- while $pos > 0 && $main[$pos - 1] =~ /^\s*$/;
splice(@main, $pos, 0, map { "lxc.init.$_: $set{$_}\n" } grep { exists $set{$_} } qw(uid gid cwd));
my $tmp = "$path.tmp.$$";
open(my $out, ">", $tmp) or die "cannot write $tmp - $!\n";
print $out @main, @rest;
close($out) or die "cannot write $tmp - $!\n";
rename($tmp, $path) or die "cannot rename $tmp - $!\n";
"""


def write_argv(vmid: int, uid=None, gid=None, cwd=None) -> list:
    """Replace the given ones of lxc.init.uid/gid/cwd ("-": keep what PVE wrote from the image)."""
    return ["perl", "-e", _PERL, str(vmid), "-" if uid is None else str(int(uid)), "-" if gid is None else str(int(gid)),
            "-" if cwd is None else str(cwd)]
