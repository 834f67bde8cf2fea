"""A compose app's folder on a Proxmox host (`<appRoot>/<app>/`): folders with the owner the unprivileged CT
needs, and files uploaded from the repo. Pure builders; every path part is quoted by `script.q`.

Writes never follow a link out of the folder: before each step the real path of the parent is checked
to be inside the app's folder (a CT can put symlinks into a folder it mounts), and a file is written
to a temp name and renamed over the old one (rename replaces a symlink, it does not follow it).
"""

from typing import Optional

from . import script

INSIDE = 'case "$(readlink -f -- "{d}")" in "$root"|"$root"/*) ;; *) echo "homefleet: {d} leads out of $root" >&2; exit 3;; esac'


def _inside(var: str) -> str:
    return INSIDE.replace("{d}", var)


def prepare_script(root: str, dirs: list) -> list:
    """mkdir -p the root; each folder in `dirs` ([{path, uid, gid}]) created and chowned if it is new.

    An existing folder keeps its owner and content: it may hold the user's data."""
    lines = ["set -eu", f"root={script.q([root])}", 'mkdir -p -- "$root"', 'root=$(readlink -f -- "$root")']
    for item in dirs:
        lines += [
            f"d=\"$root\"/{script.q([item['path']])}",
            'p=$(dirname -- "$d")',
            'mkdir -p -- "$p"',
            _inside("$p"),
            'if [ ! -e "$d" ]; then mkdir -- "$d" && ' + script.q(["chown", f"{int(item['uid'])}:{int(item['gid'])}"])
            + ' "$d"; fi',
            _inside("$d"),
        ]
    return script.sh(lines)


def write_script(root: str, path: str, mode: str) -> list:
    """stdin -> `<root>/<path>`, through a temp file in the same folder and a rename."""
    return script.sh([
        "set -eu",
        f"root=$(readlink -f -- {script.q([root])})",
        f"f=\"$root\"/{script.q([path])}",
        'p=$(dirname -- "$f")',
        'mkdir -p -- "$p"',
        _inside("$p"),
        't=$(mktemp "$p/.homefleet-upload.XXXXXX")',
        "trap 'rm -f \"$t\"' EXIT",
        'cat > "$t"',
        script.q(["chmod", mode]) + ' "$t"',
        'mv -f -- "$t" "$f"',
        "trap - EXIT",
    ])


def remove_script(root: str, files: list, delete_data: bool) -> list:
    """Remove what homefleet uploaded; the whole folder (the users' data too) only with `delete_data`."""
    if delete_data:
        return script.sh(["set -eu", f"root={script.q([root])}",
                          'if [ -d "$root" ]; then rm -rf --one-file-system -- "$root"; fi'])
    lines = ["set -u", f"root={script.q([root])}", '[ -d "$root" ] || exit 0', 'root=$(readlink -f -- "$root")']
    for path in files:
        lines += [f"f=\"$root\"/{script.q([path])}", 'p=$(dirname -- "$f")',
                  'case "$(readlink -f -- "$p")" in "$root"|"$root"/*) rm -f -- "$f" ;; esac']
    lines.append('echo "kept $root"')
    return script.sh(lines)


def stat_argv(root: str) -> list:
    return ["test", "-d", root]


def describe(root: str, app: Optional[str] = None) -> str:
    return f"{root}" + (f" ({app})" if app else "")
