"""Writing a file into a running CT (`pct push`): the text is uploaded first (never on a command line).

`pct push` opens the destination inside the CT's mount (and user) namespace, so a symlink the
image put at that path cannot lead out of the CT (pve-container src/PVE/CLI/pct.pm, `push`).
It only works on a running CT ("can only push files to a running CT").
"""

from . import script

HOSTS = "/etc/hosts"


def push_script(vmid: int, source: str, destination: str, perms: str = "0644") -> list:
    """`pct push` of an uploaded file (`source`, a temp file on the host), which is removed either way."""
    return script.sh([
        script.q(["pct", "push", str(vmid), source, destination, "--perms", perms]) + " </dev/null; rc=$?",
        script.q(["rm", "-f", source]),
        "exit $rc",
    ])


def hosts_text(entries: list) -> str:
    """[[address, name, ...], ...] -> /etc/hosts text: loopback first, then one line per address."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += ["\t".join([entry[0], " ".join(entry[1:])]) for entry in entries if len(entry) >= 2]
    return "\n".join(lines) + "\n"


def push_files_script(vmid: int, files: list, restart: bool) -> list:
    """Host files into the running CT (`files`: [{path, source}]), then a restart so the app reads them."""
    lines = ["set -eu"]
    for item in files:
        lines.append(script.q(["pct", "push", str(vmid), item["source"], item["path"], "--perms", "0644"])
                     + " </dev/null")
    if restart:
        lines.append(script.q(["pct", "shutdown", str(vmid)]) + " </dev/null")
        lines.append(script.q(["pct", "start", str(vmid)]) + " </dev/null")
    return script.sh(lines)
