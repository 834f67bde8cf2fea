"""`skopeo` (and the few shell steps around it) for pulling an OCI image into template storage."""

import re
from typing import Optional

from . import pct, preflight, script

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def inspect_argv(ref: str, authfile: Optional[str] = None) -> list:
    argv = ["skopeo", "inspect", "--no-tags", "--format", "{{.Digest}}"]
    if authfile:
        argv += ["--authfile", authfile]
    return argv + [f"docker://{ref}"]


def parse_digest(stdout: str) -> str:
    digest = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
    if not _DIGEST.match(digest):
        raise ValueError(f"skopeo inspect printed no digest: {stdout[:200]!r}")
    return digest


def archive_name(registry: str, repository: str, tag: str, digest: str) -> str:
    """Collision-free and content-addressed: registry, repository, tag and digest."""
    raw = f"{registry}_{repository}_{tag or 'untagged'}_{digest.split(':', 1)[1][:12]}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw.replace("/", "_")) + ".tar"


def pull_script(ref_with_digest: str, volid: str, authfile: Optional[str] = None) -> list:
    """Resolve the storage path, copy to a temp name, rename: a failed pull leaves no archive.

    Prints the final path and size; an archive already there (same digest) is reused.
    """
    copy = ["skopeo", "copy", "--quiet"]
    if authfile:
        copy += ["--src-authfile", authfile]
    copy += [f"docker://{ref_with_digest}"]
    lines = [
        "set -eu",
        *preflight.template_checks(volid.split(":", 1)[0]),
        f"path=$({script.q(['pvesm', 'path', volid])})",
    ]
    if authfile:
        lines.append(script.on_exit(["rm", "-f", authfile]))
    lines += [
        'if [ ! -s "$path" ]; then',
        '  tmp="$path.tmp.$$"',
        '  trap \'rm -f "$tmp"' + (f'; rm -f {script.q([authfile])}' if authfile else "") + '\' EXIT',
        f'  {script.q(copy)} "oci-archive:$tmp"',
        '  mv -f "$tmp" "$path"',
        "fi",
        script.section("archive"),
        'stat -c "%s %n" "$path"',
    ]
    return script.sh(lines)


def parse_archive(section_text: str) -> tuple:
    """(size in bytes, path) from the `archive` section."""
    line = section_text.strip().splitlines()[-1]
    size, _, path = line.partition(" ")
    return int(size), path


def stat_argv(path: str) -> list:
    return ["stat", "-c", "%s %n", path]


def remove_script(path: str, volid: str) -> list:
    """Remove the archive unless a CT on this host still records it as its template."""
    return script.sh([
        "set -eu",
        f"if grep -lsF -e {script.q(['#' + pct.encode_text(pct.template_line(volid))])} /etc/pve/lxc/*.conf >/dev/null 2>&1; then",
        f"  echo {script.q(['in use: ' + volid])}",
        "else",
        f"  rm -f {script.q([path])}",
        "fi",
    ])
