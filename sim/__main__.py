"""Command line: python -m sim up|down|retag (see docs/dev/simulator.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sim import launcher, registry


def _up(args) -> int:
    t0 = time.monotonic()
    try:
        data = launcher.up(args.dir, hosts=args.hosts, truenas=args.truenas,
                           latency_ms=args.latency_ms, truenas_version=args.truenas_version)
    except launcher.AlreadyUp as exc:
        print(f"sim up: {exc}", file=sys.stderr)
        return 1
    for host in data["hosts"]:
        print(f"{host['name']:6} {host['kind']:8} {host['address']}:{host['port']}  "
              f"state {host['state']}")
    print(f"registry {data['registry']['address']}")
    print(f"wrote {Path(args.dir).resolve() / 'hosts.json'} in {time.monotonic() - t0:.1f}s")
    return 0


def _down(args) -> int:
    launcher.down(args.dir)
    return 0


def _retag(args) -> int:
    if not launcher.is_up(args.dir):
        print(f"sim retag: {args.dir} is not up", file=sys.stderr)
        return 1
    print(f"{args.ref} {registry.retag(Path(args.dir).resolve(), args.ref)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim", description="simulated homefleet hosts")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start simulated hosts and the registry")
    p.add_argument("--hosts", type=int, default=1, help="Proxmox hosts pve1..pveN")
    p.add_argument("--truenas", type=int, default=0, help="TrueNAS hosts nas1..nasM")
    p.add_argument("--latency-ms", type=float, default=0, help="delay per SSH command")
    p.add_argument("--truenas-version", default=None,
                   help="TrueNAS version per host: 24.10, 25.04, 25.10 or a full version; "
                        "comma-separated for nas1,nas2,... (the last repeats)")
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=_up)

    p = sub.add_parser("down", help="stop everything `up` started in DIR")
    p.add_argument("--dir", type=Path, required=True)
    p.set_defaults(func=_down)

    p = sub.add_parser("retag", help="push new content under REF so its digest changes")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("ref")
    p.set_defaults(func=_retag)

    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
