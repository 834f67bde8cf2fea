"""Reading a simulated PVE host after an upgrade, as a user would over SSH (issue 15 engine tests)."""

import json
import re

import yaml

from sim.testing import ssh_run

from .helpers import ct_config

IMAGE = "ghcr.io/homefleet/test-app:{}"


def write_package(project, name: str, version: str) -> None:
    """A package of the test app whose health check is its HTTP /health (500 when unhealthy):
    the default check (the port accepts a connection) would pass 2.1-unhealthy."""
    package = {
        "name": name, "description": "homefleet's simulated test app", "category": "other",
        "homepage": "https://example.org", "image": IMAGE.format(version),
        "image_checked": "the simulator's local registry (sim/images.py)",
        "resources": {"cores": 1, "memory": 128, "swap": 128, "disk": 1},
        "volumes": [{"path": "/data", "size": 1, "description": "app data"}],
        "ports": [{"port": 8080, "name": "web", "scheme": "http"}],
        "health": {"http": "/health", "port": 8080},
    }
    (project.workdir / "packages" / f"{name}.yml").write_text(yaml.safe_dump(package, sort_keys=False))


def sh(host, command: str) -> str:
    rc, out, err = ssh_run(host, ["sh", "-c", command])
    assert rc == 0, f"{command}: {err}"
    return out


def answer(host, vmid: int, path: str = "/") -> str:
    """What the app answers on HTTP, asked from the host as a user would (curl to the CT's address)."""
    ip = addresses(host, vmid)["ip"]
    rc, out, err = ssh_run(host, ["curl", "-sS", f"http://{ip}:8080{path}"])
    assert rc == 0, err
    return out.strip()


def addresses(host, vmid: int) -> dict:
    conf = ct_config(host, vmid)
    mac = re.search(r"hwaddr=([0-9A-Fa-f:]+)", conf["net0"]).group(1)
    rc, out, err = ssh_run(host, ["pvesh", "get", f"/nodes/{host.name}/lxc/{vmid}/interfaces", "--output-format", "json"])
    assert rc == 0, err
    ip = next(i["inet"].split("/")[0] for i in json.loads(out) if i.get("name") == "eth0" and i.get("inet"))
    return {"mac": mac.upper(), "ip": ip}


def ct_file(host, vmid: int, path: str):
    """The file's text inside the CT (`pct exec cat`), None when it is not there."""
    rc, out, _ = ssh_run(host, ["pct", "exec", str(vmid), "--", "cat", path])
    return out if rc == 0 else None


def put_file(host, vmid: int, path: str, text: str) -> None:
    sh(host, f"printf '%s' '{text}' > /tmp/hu-put && pct push {vmid} /tmp/hu-put {path}")


def backups(host) -> list:
    """[{volid, vmid, notes}] on the backup storage `local`, oldest first (PVE's own listing)."""
    rc, out, err = ssh_run(host, ["pvesh", "get", f"/nodes/{host.name}/storage/local/content", "--content", "backup",
                                  "--output-format", "json"])
    assert rc == 0, err
    items = json.loads(out)
    return sorted(({"volid": i["volid"], "vmid": int(i.get("vmid") or 0), "notes": i.get("notes") or "",
                    "ctime": i.get("ctime") or 0} for i in items), key=lambda i: (i["ctime"], i["volid"]))


def ours(host, stack: str, app: str, vmid: int) -> list:
    prefix = f"homefleet {stack}/{app} vmid {vmid} before "
    return [b for b in backups(host) if b["notes"].split("\n")[0].startswith(prefix)]


def template_line(host, vmid: int) -> str:
    return next(line for line in ct_config(host, vmid)["description"].split("\n") if line.startswith("template: "))


def pending(project, stack: str) -> list:
    """(op, name) of the apps' CTs a preview would change (image archives left out: an unused one
    is deleted after the CT that used it moves on)."""
    preview = project.pulumi("preview", "--json", stack=stack, check=True).json()
    return sorted((s["op"], s["urn"].rsplit("::", 1)[-1]) for s in preview["steps"]
                  if s["op"] not in ("same", "refresh") and "ProxmoxCT" in s["urn"])
