"""What an operation needs from a Proxmox host, checked on the host before anything changes.

Real hosts differ from a fresh install: skopeo is only a *recommended* package, a storage may
lack a content type, a bridge or a GPU node may be missing, a bind source may not exist or
belong to a uid the unprivileged CT cannot write. PVE finds most of these only half-way (a
CT created, then `startup for container 'N' failed`), so the scripts that change a host start
with these checks, in the same SSH exec: each failed check prints one line `<what> — <fix>` on
stderr, and the script exits 1 before its first change. Pure builders; nothing here connects.

The sources of each rule are in docs/proxmox.md ("Preflight"). The checks use `test`, `command`,
`awk` and `stat` by name (never `[`), so tests/security/shellsim.py can stand in for all of them.
"""

from typing import Iterable, Optional

from . import pct
from .script import q

# An unprivileged CT's default id map (pve-container LXC.pm parse_id_maps): CT id N is host id
# 100000+N, for N below 65536.
MAP_FIRST, MAP_LAST = 100000, 165535
_FAIL = "bad=1"


def _fail_line(condition: str, message: str) -> str:
    """`condition || { echo message >&2; bad=1; }`: every check runs, all failures are told."""
    return f"{condition} || {{ echo {q([message])} >&2; {_FAIL}; }}"


def begin() -> list:
    return ["bad=0"]


def end() -> list:
    return ['test "$bad" = 0 || exit 1']


def skopeo() -> list:
    return [_fail_line("command -v skopeo >/dev/null 2>&1",
                       "skopeo is not installed (PVE only recommends it) — apt install skopeo")]


def storage_content(storage: str, content: str, what: str, key: str) -> list:
    """The storage exists in /etc/pve/storage.cfg and allows `content` (pve-storage: a section
    `<type>: <id>` with a `content` line; without one, dir and zfspool storages allow
    images,rootdir only)."""
    awk = ("$0 ~ /^[a-z0-9]+: / { cur = ($2 == id); if (cur) found = 1; next } "
           "cur && $1 == \"content\" { content = $2 } "
           "END { if (!found) print \"-\"; else if (content == \"\") print \"images,rootdir\"; else print content }")
    var = "c_" + "".join(ch if ch.isalnum() else "_" for ch in f"{storage}_{content}")
    return [
        f"{var}=$({q(['awk', '-v', f'id={storage}', awk, '/etc/pve/storage.cfg'])} 2>/dev/null || echo -)",
        _fail_line(f'test "${var}" != -',
                   f"storage '{storage}' ({key}) does not exist on this host — `pvesm status` lists the storages; "
                   f"set {key} to one of them"),
        f'case ",${var}," in *,-,*|*,{content},*) ;; *) echo '
        + q([f"storage '{storage}' ({key}) does not allow {what} (content type '{content}') — "
             f"add it: pvesm set {storage} --content <its current types>,{content}; or set {key} to a storage that has it"])
        + f" >&2; {_FAIL} ;; esac",
    ]


def bridge(name: str, key: str) -> list:
    """PVE plugs a CT's NIC into /sys/class/net/<bridge> (pve-common Network.pm read_bridge_mtu)."""
    return [_fail_line(f"test -r {q(['/sys/class/net/' + name + '/mtu'])}",
                       f"bridge '{name}' ({key}) does not exist on this host — create it (System > Network, "
                       f"or /etc/network/interfaces and ifreload -a) or use an existing one, e.g. vmbr0")]


def _say(fmt: str, *args: str) -> str:
    """printf of a fixed text with shell words (`"$src"`) in it: a long value is written once."""
    return f"printf {q([fmt + chr(92) + 'n'])} {' '.join(args)} >&2; {_FAIL}"


def device(path: str) -> list:
    """pve-container LXC/Tools.pm get_device_mode_and_rdev: a character or block device."""
    return [
        f"dev={q([path])}",
        'test -c "$dev" || test -b "$dev" || { '
        + _say("device %s (devices: %s) does not exist on this host — check the GPU/driver (ls -l %s) "
               "or remove it from the app", '"$dev"', '"$dev"', '"$dev"') + "; }",
    ]


def bind_source(source: str, path: str, read_only: bool) -> list:
    """A bind source must be a directory (LXC.pm __mountpoint_mount); one the CT writes to must
    belong to a uid of the CT's map, or the app sees it as nobody's and cannot write."""
    where = "mounts: %s:%s"
    lines = [
        f"src={q([source])}; dst={q([path])}",
        'test -d "$src" || { '
        + _say(f"bind mount source %s ({where}) does not exist on this host — create it (mkdir -p %s, "
               "or a dataset) or fix the path", '"$src"', '"$src"', '"$dst"', '"$src"') + "; }",
    ]
    if not read_only:
        lines.append(
            'if test -d "$src"; then owner=$(stat -c \'%u %a\' "$src"); '
            'case "${owner#* }" in *[2367]) ;; *) '
            f'test "${{owner%% *}}" -ge {MAP_FIRST} && test "${{owner%% *}}" -le {MAP_LAST} || {{ '
            + _say(f"bind mount source %s ({where}) is owned by a uid the unprivileged CT cannot write "
                   f"(CT uid N is host uid {MAP_FIRST}+N) — chown {MAP_FIRST}:{MAP_FIRST} %s "
                   f"(or {MAP_FIRST}+<the app's uid>), or mount it read-only", '"$src"', '"$src"', '"$dst"', '"$src"')
            + "; } ;; esac; fi")
    return lines


def ct_checks(spec: dict, keys: Optional[Iterable[str]] = None) -> list:
    """The checks for a CT spec; with `keys` (pct option names), only those options'."""
    wanted = None if keys is None else set(keys)
    lines = []

    def want(key: str) -> bool:
        return wanted is None or key in wanted

    storages = {}
    if want("rootfs"):
        storages.setdefault(spec["rootfs_storage"], "rootfs")
    slots = pct.mount_slots(spec)
    volumes = [(key, item) for key, kind, item in slots if kind == "volume"]
    for index, (key, item) in enumerate(volumes):
        if want(key):
            storages.setdefault(item["storage"], f"volumes[{index}].storage")
    for storage, key in storages.items():
        lines += storage_content(storage, "rootdir", "container disks", "storage" if key == "rootfs" else key)
    for index, net in enumerate(spec.get("nets") or [{"bridge": "vmbr0"}]):
        if net.get("bridge") and want(f"net{index}"):
            lines += bridge(net["bridge"], f"networks[{index}].bridge")
    for index, dev in enumerate(spec.get("devices") or []):
        if want(f"dev{index}"):
            lines += device(dev["path"])
    for key, kind, item in slots:
        if kind == "bind" and want(key) and not item["source"].startswith("/dev/"):
            lines += bind_source(item["source"], item["path"], bool(item.get("read_only")))
    return begin() + lines + end() if lines else []


def template_checks(storage: str) -> list:
    """Pulling an OCI image: skopeo, and a storage that holds templates (as pve-storage's own
    oci-registry-pull refuses: storage 'S' is not configured for content-type 'vztmpl')."""
    return begin() + skopeo() + storage_content(storage, "vztmpl", "templates", "templateStorage") + end()
