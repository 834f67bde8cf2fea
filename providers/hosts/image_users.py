"""The image's own users and groups (`/etc/passwd`, `/etc/group`), read from the OCI archive in template storage.

A compose `user: unit:root` names a user of the image; Docker looks it up in the container's passwd file,
and PVE does the same for an image's `User` when it creates the CT (pve-container src/PVE/LXC/Create.pm
`resolve_oci_user`: uid by name from /etc/passwd, gid from its primary group or /etc/group by name). To
know the uid before the CT exists (and show it in the preview), the template pull reads both files from
the archive it just wrote: a small Perl program (Perl and JSON::PP are on every PVE host) reads
`index.json`, the manifest and then the layers from the last one down until both files are found,
extracting only those two paths into a temporary folder (a symlink or anything but a plain file is not
read). It prints them in two sections, at most 256 KiB each.
"""

from . import script

MAX_BYTES = 256 * 1024

_PERL = r"""
use strict; use warnings; use JSON::PP; use File::Temp qw(tempdir);
my $archive = $ENV{HOMEFLEET_ARCHIVE} // die "no archive\n";
my ($max) = @ARGV;
sub member {
    my ($name) = @_;
    open(my $fh, "-|", "tar", "-xOf", $archive, $name) or return undef;
    local $/; my $data = <$fh>; close($fh);
    return $? == 0 ? $data : undef;
}
sub blob { my ($digest) = @_; return "blobs/" . ($digest =~ s/:/\//r); }
my $index = decode_json(member("index.json") // die "no index.json in $archive\n");
my $manifest = decode_json(member(blob($index->{manifests}[0]{digest} // die "no manifest in index.json\n"))
    // die "no manifest blob in $archive\n");
my %found;
for my $layer (reverse @{ $manifest->{layers} || [] }) {
    last if defined $found{passwd} && defined $found{group};
    my $type = $layer->{mediaType} // "";
    my $unpack = $type =~ /gzip/ ? "-z" : $type =~ /zstd/ ? "--zstd" : "";
    my $dir = tempdir(CLEANUP => 1);
    system("sh", "-c", 'tar -xOf "$1" "$2" | tar -x ' . $unpack . ' -C "$3" --no-same-owner --no-same-permissions '
        . '-f - etc/passwd etc/group ./etc/passwd ./etc/group >/dev/null 2>&1', "sh", $archive, blob($layer->{digest}),
        $dir);
    for my $name ("passwd", "group") {
        next if defined $found{$name};
        my $path = "$dir/etc/$name";
        next if -l $path || !-f $path;
        open(my $fh, "<", $path) or next;
        local $/; my $text = <$fh> // ""; close($fh);
        $found{$name} = substr($text, 0, $max);
    }
}
for my $name ("passwd", "group") {
    print "\n\@\@homefleet:section:$name\@\@\n", ($found{$name} // "");
}
print "\n";
"""


def lines(path_expr: str = '"$path"') -> list:
    """Shell lines printing sections `passwd` and `group` of the archive at `path_expr` (a shell word, passed in
    the environment so the program's own command line is a fixed, quoted one)."""
    return [f"HOMEFLEET_ARCHIVE={path_expr} " + script.q(["perl", "-e", _PERL, str(MAX_BYTES)])]


def read_script(path: str) -> list:
    """The same for an archive already in template storage (a template made before this was read)."""
    return script.sh(["set -eu", f"path={script.q([path])}", *lines()])


def parse(passwd: str, group: str) -> dict:
    """{"users": {name: [uid, gid]}, "groups": {name: gid}} from the two files (malformed lines skipped)."""
    users, groups = {}, {}
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and fields[2].isdigit() and fields[3].isdigit():
            users.setdefault(fields[0], [int(fields[2]), int(fields[3])])
    for line in group.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit():
            groups.setdefault(fields[0], int(fields[2]))
    return {"users": users, "groups": groups}


def from_sections(sections: dict) -> dict:
    return parse(sections.get("passwd", ""), sections.get("group", ""))
