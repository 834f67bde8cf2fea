"""A 4-service compose file deployed by the real Pulumi engine to a simulated Proxmox host:
one CT per service with its volumes, bind mounts, devices, env and static address; peers
reached by address; creation in depends_on order; an env edit touches only that CT; destroy.
"""

from pathlib import Path

import pytest
import yaml

from sim.engine import LocalProject
from sim.testing import commands, running_fleet, ssh_run

from .helpers import hosts_config, ct_config, ct_list, templates, tool_count, tools_since

pytestmark = pytest.mark.engine
STACK = "compose"
PASSWORD = "pw-Zq7-not-in-state"
NETWORK = {"cidr": "198.18.200.0/24", "gateway": "198.18.200.1", "range": "198.18.200.10-198.18.200.60"}

COMPOSE = """\
name: shop
x-common: &common
  restart: unless-stopped

services:
  web:
    image: docker.io/library/nginx:1.27
    <<: *common
    depends_on: [api]
    environment:
      UPSTREAM: api:8080
    ports: ["8081:80"]

  api:
    image: ghcr.io/homefleet/test-app:1.0
    <<: *common
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
    environment:
      - DB_HOST=db
      - DATABASE_URL=postgres://shop:${DB_PASSWORD}@db:5432/shop
      - REDIS_URL=redis://cache:6379/0
      - LOG_LEVEL=${LOG_LEVEL:-info}
      - TZ
    volumes:
      - appdata:/data
      - /srv/shop/media:/media:ro
    devices:
      - /dev/dri/renderD128
    ports: ["8080:8080"]
    x-homefleet: {memory: 256}

  db:
    image: docker.io/library/postgres:17.6
    <<: *common
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: ${DB_PASSWORD}
      POSTGRES_DB: shop
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "shop"]
    x-homefleet: {memory: 384, disk: 2}

  cache:
    image: docker.io/library/redis:8.2.1
    <<: *common
    entrypoint: [docker-entrypoint.sh]
    command: redis-server --save 60 1
    volumes:
      - type: volume
        source: cachedata
        target: /data

volumes:
  pgdata: {x-homefleet: {size: 2}}
  cachedata:
  appdata: {x-homefleet: {size: 1}}
"""


@pytest.fixture(scope="module")
def pve(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=1) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = LocalProject.create(tmp_path_factory.mktemp("project"))
    (project.workdir / "compose").mkdir()
    (project.workdir / "compose" / "shop.yml").write_text(COMPOSE)
    (project.workdir / "compose" / ".env").write_text("TZ=Europe/Berlin\n")
    return project


def write_stack(project, pve, app_env=None):
    hosts = hosts_config(pve)
    hosts["pve1"]["composeNetwork"] = NETWORK
    app = {"host": "pve1", "compose": "compose/shop.yml", "deleteData": True, **({"env": app_env} if app_env else {})}
    path = project.stack_file(STACK)
    kept = {}
    if path.exists():  # keep the encrypted secret write_stack would drop (it sits one level down)
        kept = {k: v for k, v in (yaml.safe_load(path.read_text())["config"] or {}).items() if k == "homefleet:secrets"}
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"shop": app}, **kept})


@pytest.fixture(scope="module")
def deployed(pve, project):
    # the bind source must exist on the host (preflight; PVE's start needs it too); a simulated host
    # has /dev/dri/renderD128 but no serial adapter, so the device is the GPU node
    rc, _, err = ssh_run(pve["pve1"], ["mkdir", "-p", "/srv/shop/media"])
    assert rc == 0, err
    write_stack(project, pve)
    project.set_secret(STACK, "homefleet:secrets.shop.DB_PASSWORD", PASSWORD, path=True)
    preview = project.pulumi("preview", stack=STACK, check=True)
    host = pve["pve1"]
    start = tool_count(host)
    up = project.pulumi("up", "--yes", stack=STACK, check=True)
    cts = {row["name"]: row for row in ct_list(host)}
    return {"preview": preview, "up": up, "tools": tools_since(host, start), "cts": cts}


def env_of(conf: dict) -> dict:
    return dict(entry.split("=", 1) for entry in conf.get("env", []))


def test_preview_shows_what_proxmox_cannot_do(deployed):
    out = deployed["preview"].stdout + deployed["preview"].stderr
    assert "compose/shop.yml: services.db.healthcheck: is run inside the CT with `pct exec`" in out, out
    # api's create waits for db's, which waits for db's healthcheck: service_healthy holds, nothing to warn
    assert "services.api.depends_on.db: is created" not in out, out
    assert "services.web.ports[0]: is published as 8081 on Docker" in out, out
    assert out.count("homefleet:ProxmoxCT") == 4, out


def test_each_service_is_one_running_ct_named_after_it(deployed):
    assert set(deployed["cts"]) == {"web", "api", "db", "cache"}
    assert {row["status"] for row in deployed["cts"].values()} == {"running"}


def test_volumes_mounts_devices_and_addresses(pve, deployed):
    host = pve["pve1"]
    confs = {name: ct_config(host, row["vmid"]) for name, row in deployed["cts"].items()}
    api, db, cache, web = confs["api"], confs["db"], confs["cache"], confs["web"]
    # named volumes: storage-backed, one per CT, sized from x-homefleet
    assert api["mp0"].startswith("local-zfs:subvol-") and "mp=/data" in api["mp0"] and "size=1G" in api["mp0"]
    assert db["mp0"].startswith("local-zfs:subvol-") and "mp=/var/lib/postgresql/data" in db["mp0"] \
        and "size=2G" in db["mp0"]
    assert "mp=/data" in cache["mp0"] and "size=8G" in cache["mp0"], "an unsized volume gets 8 GiB"
    # the absolute bind path is a bind mount, read-only as written
    assert api["mp1"] == "/srv/shop/media,mp=/media,ro=1"
    assert api["dev0"] == "/dev/dri/renderD128"
    assert "mp0" not in web and "dev0" not in db
    # static addresses from composeNetwork, the service name as hostname
    addresses = {}
    for name, conf in confs.items():
        assert conf["hostname"] == name
        net = dict(pair.split("=", 1) for pair in conf["net0"].split(","))
        assert net["ip"].startswith("198.18.200.") and net["ip"].endswith("/24") and net["gw"] == "198.18.200.1"
        addresses[name] = net["ip"].split("/")[0]
    assert len(set(addresses.values())) == 4
    assert api["memory"] == "256" and db["memory"] == "384" and db["rootfs"].endswith("size=2G")
    assert cache["entrypoint"] == "docker-entrypoint.sh redis-server --save 60 1"
    deployed["addresses"] = addresses
    deployed["confs"] = confs


def test_env_reaches_peers_by_address_and_carries_the_secret(project, deployed):
    addresses, confs = deployed["addresses"], deployed["confs"]
    api = env_of(confs["api"])
    assert api["DB_HOST"] == addresses["db"]
    assert api["DATABASE_URL"] == f"postgres://shop:{PASSWORD}@{addresses['db']}:5432/shop"
    assert api["REDIS_URL"] == f"redis://{addresses['cache']}:6379/0"
    assert api["LOG_LEVEL"] == "info" and api["TZ"] == "Europe/Berlin", "defaults and the .env beside the file"
    assert "PATH" in api, "the image's env is kept"
    assert env_of(confs["web"])["UPSTREAM"] == f"{addresses['api']}:8080"
    assert env_of(confs["db"])["POSTGRES_PASSWORD"] == PASSWORD
    assert "DB_PASSWORD" not in api, "a service gets only the variables it names"
    assert PASSWORD not in project.state_file(STACK).read_text(), "the secret must not be in the state in plain text"
    outputs = project.pulumi("stack", "output", "--json", stack=STACK, check=True).json()
    shop = outputs["apps"]["shop"]
    assert shop["services"]["api"]["ip"] == addresses["api"]
    assert shop["services"]["web"]["urls"] == [f"http://{addresses['web']}:80"]


def test_secret_never_on_a_command_line(pve, deployed):
    assert not any(PASSWORD in c["command"] for c in commands(pve["pve1"]))


def test_creation_follows_depends_on(deployed):
    vmids = {name: str(row["vmid"]) for name, row in deployed["cts"].items()}
    ran = deployed["tools"]

    def first(verb, name):
        return next(i for i, argv in enumerate(ran) if argv[:3] == ["pct", verb, vmids[name]])

    assert first("create", "api") > first("start", "db")
    assert first("create", "api") > first("start", "cache")
    assert first("create", "web") > first("start", "api")


def test_editing_one_services_env_updates_only_that_ct(pve, project, deployed):
    host = pve["pve1"]
    before = {name: ct_config(host, row["vmid"]) for name, row in deployed["cts"].items()}
    write_stack(project, pve, app_env={"LOG_LEVEL": "debug"})
    preview = project.pulumi("preview", "--json", stack=STACK, check=True).json()
    changed = [(s["op"], s["urn"].split("::")[-1]) for s in preview["steps"] if s["op"] != "same"]
    assert changed == [("update", "shop-api")], changed
    start = tool_count(host)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    api_vmid = str(deployed["cts"]["api"]["vmid"])
    touched = {argv[2] for argv in tools_since(host, start)
               if argv[0] == "pct" and argv[1] in ("set", "start", "shutdown", "stop", "create", "destroy")}
    assert touched == {api_vmid}, touched
    after = {name: ct_config(host, row["vmid"]) for name, row in deployed["cts"].items()}
    assert env_of(after["api"])["LOG_LEVEL"] == "debug"
    for name in ("web", "db", "cache"):
        assert after[name] == before[name], f"{name} changed"
    assert project.pulumi("preview", "--expect-no-changes", stack=STACK).ok


def test_destroy_removes_every_ct(pve, project, deployed):
    run = project.pulumi("destroy", "--yes", stack=STACK)
    assert run.ok, run
    host = pve["pve1"]
    assert ct_list(host) == []
    assert templates(host) == []
    rc, out, _ = ssh_run(host, ["ls", "/etc/pve/lxc"])
    assert out.strip() == "", out
    assert Path(project.state_file(STACK)).exists()
