"""Every catalog package deployed by the real engine to two simulated Proxmox hosts, one
storing volumes on a `dir` storage (raw images: ext4 with lost+found at the top, as on
dir/LVM/LVM-thin) and one on a ZFS pool (subvolumes, empty), in one `pulumi up`.

The simulated images carry their upstream USER, directory owners and entrypoint start-up
(sim/image_facts.py): a package whose image cannot write its volumes, needs an empty data
directory on ext4, or binds a low port as non-root stops after start, and the create fails.
Each CT must be running and must have written to every volume.

The immich compose file pins postgres and valkey by digest; the simulated registry holds
locally built images whose digests cannot match, so the copy deployed here drops those two.
"""

import json
import re

import pytest

from homefleet.catalog import load_catalog
from sim.engine import LocalProject, host_entries
from sim.testing import running_fleet, ssh_run

from .helpers import ct_config, ct_list

pytestmark = pytest.mark.engine
STACK = "catalog"
HOSTS = {"pve1": ("local", "198.18.220"), "pve2": ("local-zfs", "198.18.221")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=2) as fleet:
        yield fleet


def _volume_mounts(conf: dict) -> list:
    mounts = []
    for key, value in conf.items():
        if re.fullmatch(r"mp\d+", key):
            volume, _, rest = value.partition(",")
            opts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
            if not volume.startswith("/"):
                mounts.append((key, volume, opts["mp"]))
    return mounts


def _wrote(host, vmid: int, path: str) -> bool:
    rc, _out, _err = ssh_run(host, ["pct", "exec", str(vmid), "--", "cat", f"{path}/.homefleet-sim-wrote"])
    return rc == 0


def test_every_package_starts_and_writes_its_volumes_on_dir_and_zfs_storage(fleet, tmp_path):
    project = LocalProject.create(tmp_path / "p")
    compose = project.workdir / "packages" / "compose" / "immich.yml"
    compose.write_text(re.sub(r"@sha256:[0-9a-f]{64}", "", compose.read_text()))
    catalog = load_catalog(project.workdir / "packages")
    hosts = host_entries(json.loads(fleet.hosts_json.read_text())["hosts"])
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
    problems = []
    for host in HOSTS:
        sim_host = fleet[host]
        logs = sorted((sim_host.state / "sim" / "lxc-log").glob("*.log"))
        problems += [f"{host}: {line}" for log in logs for line in log.read_text().splitlines()]
        for row in ct_list(sim_host):
            if row["status"] != "running":
                problems.append(f"{host}: CT {row['vmid']} {row['name']} is {row['status']}")
                continue
            conf = ct_config(sim_host, row["vmid"])
            for key, volume, path in _volume_mounts(conf):
                # the entrypoint writes the volume itself or, for PGDATA, a folder in it
                if not any(_wrote(sim_host, row["vmid"], f"{path}{sub}") for sub in ("", "/pgdata")):
                    problems.append(f"{host}: {row['name']} {key} {volume} at {path} was not written")
    assert up.ok and not problems, "\n".join(problems) + "\n" + up.stderr[-3000:] + up.stdout[-3000:]
    counts = {host: len(ct_list(fleet[host])) for host in HOSTS}
    assert counts["pve1"] == counts["pve2"] >= len(catalog), counts
    # No `destroy` here: the fleet goes with the module. (Destroying ~50 data-holding CTs per
    # host at once currently fails in the holder vmid allocation: see the h4 report.)
