"""Every catalog package deployed by the real engine to two simulated Proxmox hosts, one
storing volumes on a `dir` storage (raw images: ext4 with lost+found at the top, as on
dir/LVM/LVM-thin) and one on a ZFS pool (subvolumes, empty), in one `pulumi up`.

The simulated images carry their upstream USER, directory owners and entrypoint start-up
(sim/image_facts.py): a package whose image cannot write its volumes, needs an empty data
directory on ext4, or binds a low port as non-root stops after start, and the create fails.
Each CT must be running and must have written to every volume.

The immich compose file may pin postgres and valkey by digest (by tag for now: issue 20);
the simulated registry holds locally built images whose digests cannot match, so the copy
deployed here drops any digest.
"""

import re

import pytest

from homefleet.catalog import load_catalog
from sim.engine import LocalProject
from sim.testing import running_fleet

from .helpers import hosts_config, ct_list

pytestmark = pytest.mark.engine
STACK = "catalog"
HOSTS = {"pve1": ("local", "198.18.220"), "pve2": ("local-zfs", "198.18.221")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=2) as fleet:
        yield fleet


def _cts(host) -> dict:
    """{vmid: (hostname, status, [(mpN, volid, path)])} read from the host's state folder (one
    SSH round trip per volume would take minutes for ~100 CTs)."""
    out = {}
    for conf in sorted((host.state / "etc-pve" / "nodes").glob("*/lxc/*.conf")):
        main = conf.read_text().split("\n[", 1)[0]
        values = dict(line.split(": ", 1) for line in main.splitlines() if ": " in line)
        vmid = int(conf.stem)
        mounts = []
        for key, value in values.items():
            if re.fullmatch(r"mp\d+", key):
                volume, _, rest = value.partition(",")
                opts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
                if not volume.startswith("/"):
                    mounts.append((key, volume, opts["mp"]))
        running = (host.state / "sim" / "run" / f"{vmid}.json").exists()
        out[vmid] = (values.get("hostname"), "running" if running else "stopped", mounts)
    return out


def _volume_dir(host, volid: str):
    store, name = volid.split(":", 1)
    if store == "local":
        return host.state / "vz" / "images" / name
    return host.state / "sim" / "zfs" / "rpool" / "data" / name


def test_every_package_starts_and_writes_its_volumes_on_dir_and_zfs_storage(fleet, tmp_path):
    project = LocalProject.create(tmp_path / "p")
    compose = project.workdir / "packages" / "compose" / "immich.yml"
    compose.write_text(re.sub(r"@sha256:[0-9a-f]{64}", "", compose.read_text()))
    catalog = load_catalog(project.workdir / "packages")
    hosts = hosts_config(fleet)
    apps, secrets = {}, []
    for host, (storage, net) in HOSTS.items():
        hosts[host]["storage"] = storage
        hosts[host]["composeNetwork"] = {"cidr": f"{net}.0/24", "gateway": f"{net}.1",
                                         "range": f"{net}.10-{net}.250"}
        for name, package in catalog.items():
            app = f"{name}-{host}"
            apps[app] = {"package": name, "host": host}
            secrets += [f"--secret=secrets.{app}.{s.name}=Pw{len(secrets)}x{s.name[:3]}"
                        for s in package.secrets]
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": apps})
    project.pulumi("config", "set-all", "--path", *secrets, stack=STACK, check=True)

    up = project.pulumi("up", "--yes", "--parallel", "16", "--continue-on-error", stack=STACK)
    problems, checked = [], 0
    for host in HOSTS:
        sim_host = fleet[host]
        logs = sorted((sim_host.state / "run-pve").glob("ct-*.stderr"))
        problems += [f"{host}: {line}" for log in logs for line in log.read_text().splitlines()]
        for vmid, (name, status, mounts) in _cts(sim_host).items():
            if status != "running":
                problems.append(f"{host}: CT {vmid} {name} is {status}")
                continue
            for key, volume, path in mounts:
                checked += 1
                # the entrypoint writes the volume itself or, for PGDATA, a folder in it
                top = _volume_dir(sim_host, volume)
                if not any((top / sub / ".homefleet-sim-wrote").is_file() for sub in ("", "pgdata")):
                    problems.append(f"{host}: {name} {key} {volume} at {path} was not written")
    errors = [line for line in up.stdout.splitlines() if "error" in line.lower() or "failed" in line.lower()]
    assert up.ok and not problems, "\n".join(problems + errors[:60]) + "\n" + up.stderr[-3000:]
    counts = {host: len(ct_list(fleet[host])) for host in HOSTS}
    assert counts["pve1"] == counts["pve2"] >= len(catalog), counts
    assert checked >= 2 * 40, f"only {checked} volumes found"
    # No `destroy` here: the fleet goes with the module. (Destroying ~50 data-holding CTs per
    # host at once currently fails in the holder vmid allocation: see the h4 report.)
