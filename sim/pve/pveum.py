"""`pveum acl modify <path> --roles R [--users U] [--groups G] [--tokens T] [--propagate 0|1]`
(pve-access-control `PVE/API2/ACL.pm` update_acl): adds each user, group and token the roles
on the path, in `/etc/pve/user.cfg` as `acl:<propagate>:<path>:<ugt>:<roles>:` lines (one
line per propagate/path/roles combination here; PVE writes the same shape).

Only what homefleet uses is simulated; anything else fails as an unknown command would.
"""

from __future__ import annotations

import sys

from . import paths


def _usage(message: str) -> int:
    sys.stderr.write(message.rstrip("\n") + "\n")
    return 255


def main(argv: list) -> int:
    if argv[:2] != ["acl", "modify"] or len(argv) < 3:
        return _usage("400 unable to parse command (the simulator knows only `pveum acl modify`)")
    path, opts, rest = argv[2], {}, argv[3:]
    while rest:
        key = rest.pop(0)
        if not key.startswith("--") or not rest:
            return _usage(f"400 unable to parse option: {key}")
        opts[key[2:]] = rest.pop(0)
    unknown = set(opts) - {"roles", "users", "groups", "tokens", "propagate", "delete"}
    if unknown:
        return _usage(f"Unknown option: {sorted(unknown)[0]}\n400 unable to parse option")
    if "roles" not in opts:
        return _usage("400 Parameter verification failed.\nroles: property is missing and it is not optional")
    if not path.startswith("/"):
        return _usage(f"400 Parameter verification failed.\npath: invalid ACL path '{path}'")
    who = [u for u in opts.get("users", "").split(",") if u]
    who += ["@" + g for g in opts.get("groups", "").split(",") if g]
    who += [t for t in opts.get("tokens", "").split(",") if t]
    if not who:
        return _usage("400 Parameter verification failed.\nusers: no user, group or token given")
    line = f"acl:{opts.get('propagate', '1')}:{path}:{','.join(who)}:{opts['roles']}:"
    cfg = paths.etc_pve() / "user.cfg"
    lines = cfg.read_text().splitlines() if cfg.exists() else []
    if line not in lines:
        lines.append(line)
    cfg.write_text("\n".join(lines) + "\n")
    return 0
