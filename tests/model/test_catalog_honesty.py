"""Each catalog package against the image the simulator builds for it (sim/image_facts.py holds
the upstream USER, directory owners and entrypoint start-up):

* every volume is writable by the image's user once PVE has made it (a new volume is the CT
  root's, 0755; homefleet asks for `keepattrs`, which copies the image directory's owner);
* no path the entrypoint needs empty is the top of a volume (ext4 volumes hold lost+found);
* every port named in `notes` or in env values is a declared container port, and every URL's
  scheme is the one that port declares (a URL without a port means 80/http or 443/https).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from homefleet.catalog import DEFAULT_PACKAGES_DIR, load_catalog
from sim import images
from sim.pve.appstart import may_write
from sim.pve.volattrs import ROOT_DIR

CATALOG = load_catalog()
URL = re.compile(r"\b(https?)://([^\s/:\"'}]+)(?::(\d+))?")
PORT_WORD = re.compile(r"\bport (\d+)\b")


def _services(package) -> list[dict]:
    """[{image, volumes, env, ports}] for the package's container(s)."""
    if package.image:
        return [{"image": package.image, "volumes": [v.path for v in package.volumes],
                 "env": dict(package.env or {}), "ports": []}]
    doc = yaml.safe_load((DEFAULT_PACKAGES_DIR / package.compose).read_text())
    out = []
    for name, svc in (doc.get("services") or {}).items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        out.append({"name": name, "image": svc["image"],
                    "volumes": [images._container_path(v) for v in svc.get("volumes") or []],
                    "env": {k: str(v) for k, v in env.items()},
                    "ports": [images._container_port(p) for p in svc.get("ports") or []]})
    return out


def _spec(service) -> images.ImageSpec:
    return images.with_facts(images.generic_spec(service["image"]), service["volumes"])


def _ids(spec: images.ImageSpec) -> tuple[int, set[int]]:
    name, _, group = (spec.user or "0").partition(":")
    known = {"root": (0, 0), "nobody": (65534, 65534), **{k: tuple(v) for k, v in spec.users.items()}}
    uid, gid = known.get(name, (int(name), 0) if name.isdigit() else (1000, 1000))
    return uid, {int(group) if group.isdigit() else gid}


def _writer(spec, item, uid, gids):
    """Who writes: a root entrypoint drops to `as`; otherwise the image user."""
    if uid == 0 and item.get("as"):
        return item["as"][0], {item["as"][1]}
    return uid, gids


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_volumes_are_writable_by_the_image_user(name):
    for service in _services(CATALOG[name]):
        spec = _spec(service)
        uid, gids = _ids(spec)
        env = service["env"]
        prepared = {}
        for item in spec.behaviour.get("prepare", []) if uid == 0 else []:
            path = env.get(item.get("env") or "", item["path"])
            # a chown that is skipped when the directory holds anything never runs on ext4
            if not item.get("only_if_empty"):
                prepared[path] = (item["chown"][0], item["chown"][1], item.get("mode", 0o755))
        writes = {env.get(i.get("env") or "", i["path"]): i for i in spec.behaviour.get("writes", [])}
        for path in service["volumes"]:
            attrs = prepared.get(path) or tuple(spec.dirs.get(path, ROOT_DIR))  # keepattrs: the image's dir
            who, groups = _writer(spec, writes.get(path, {}), uid, gids)
            assert may_write(attrs, who, groups), (
                f"{name}: {spec.ref} writes {path} as uid {who} but that volume would be {attrs} "
                f"(owner, group, mode); give the image's directory that owner or pick another path")


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_no_volume_top_where_the_image_needs_an_empty_directory(name):
    for service in _services(CATALOG[name]):
        spec = _spec(service)
        for item in spec.behaviour.get("empty", []):
            path = service["env"].get(item.get("env") or "", item["path"])
            assert path.rstrip("/") not in {v.rstrip("/") for v in service["volumes"]}, (
                f"{name}: {spec.ref} needs {path} empty, but it is the top of a volume, which holds "
                f"lost+found on ext4; set {item.get('env') or 'its data path'} to a subdirectory")


def _texts(package) -> list[str]:
    texts = [package.notes or ""]
    for service in _services(package):
        texts += list(service["env"].values())
    return texts


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_ports_and_urls_in_notes_and_env_are_declared(name):
    package = CATALOG[name]
    declared = {p.port: p.scheme for p in package.ports if p.protocol == "tcp"}
    services = _services(package)
    internal = {s.get("name") for s in services} | {f"{name}-{s.get('name')}" for s in services}
    internal |= {"immich-machine-learning", "db", "redis", "broker"}
    if package.compose:
        published = {int(p.split("/")[0]) for svc in services for p in svc["ports"] if p}
        for number in declared:
            assert number in published, (
                f"{name}: port {number} is not a container port of the compose file (it publishes "
                f"{sorted(published)}); on Proxmox the container port is the URL")
    for service in services:
        spec = _spec(service)
        uid, gids = _ids(spec)
        for item in spec.behaviour.get("listen", []):
            port = int(service["env"].get(item.get("env") or "", item["port"]))
            who, _ = _writer(spec, item, uid, gids)
            assert port >= 1024 or who == 0, (
                f"{name}: {spec.ref} binds port {port} as uid {who}, which a Proxmox CT refuses "
                f"(net.ipv4.ip_unprivileged_port_start is 1024); move it to a port >= 1024")
    for text in _texts(package):
        for scheme, host, port in URL.findall(text):
            if host in internal or host.startswith("${"):
                continue          # a peer service inside the app, not the app's URL
            number = int(port) if port else (443 if scheme == "https" else 80)
            if not port and host not in ("<address>", "localhost"):
                continue          # an external site (the user's own domain)
            assert number in declared, f"{name}: {scheme}://{host}:{number} names an undeclared port"
            assert declared[number] == scheme, (
                f"{name}: {scheme}://{host}:{number} but port {number} is declared {declared[number]}")
        for number in PORT_WORD.findall(text):
            assert int(number) in declared, f"{name}: 'port {number}' is not a declared port"
