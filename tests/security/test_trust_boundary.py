"""Trust boundaries of the data holder, recreate, adopt and take-over paths, through the real
Pulumi engine against simulated Proxmox hosts (issue 18 items 1, 2, 4, 6, 8; issue 13 items 2,
3, 5):

- a CT that only *looks* like this app's data holder (its description has the holder line) is
  never used, moved into, or destroyed;
- volumes come back by container path, and a holder that still holds a volume is kept;
- the holder is made from homefleet's own tiny archive, so a big image still parks;
- adopt refuses a CT it would have to recreate, and neither adopt nor a take-over puts the
  CT's env (secrets) into the state in plain text;
- a recreate at the same vmid keeps the CT in its backup jobs, and carries its firewall
  file and ACL entries over.

Each case adds to the "trust boundary" figures printed at the end of the security run.
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile

import pytest

from sim import images, registry
from sim.engine import LocalProject
from sim.testing import ssh_run

from . import figures
from .faultkit import configs, data_owner, marked, volume_dirs
from ..engine.helpers import hosts_config

pytestmark = pytest.mark.engine
STACK = "trust"
NGINX = "docker.io/library/nginx:1.27"
APP_V1 = "ghcr.io/homefleet/test-app:1.0"
APP_V2 = "ghcr.io/homefleet/test-app:2.0"
BIG = "ghcr.io/homefleet/big-app:1.0"
BIG_BYTES = 3 * 1024 ** 3  # unpacks to 3 GiB (one sparse file): more than a 1 GiB holder rootfs


def _case(name: str, refused: bool = False) -> None:
    figures.add("trust.tried")
    if refused:
        figures.add("trust.refused")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return LocalProject.create(tmp_path_factory.mktemp("trust-project"))


def _hosts(fleet) -> dict:
    return hosts_config(fleet)


def deploy(project, fleet, apps, check=True, command="up"):
    project.write_stack(STACK, {"homefleet:hosts": _hosts(fleet), "homefleet:apps": apps})
    args = ("up", "--yes") if command == "up" else ("preview",)
    return project.pulumi(*args, stack=STACK, check=check)


def _volume_dir(host, conf_value: str):
    name = conf_value.split(",", 1)[0].split(":", 1)[1]
    for path in volume_dirs(host):
        if path.name == name:
            return path
    raise AssertionError(f"no directory for {conf_value}")


def _by_path(host, vmid: int) -> dict:
    """{container path: volume dir} of a CT's storage volumes."""
    out = {}
    for key, value in configs(host)[vmid].items():
        if key.startswith("mp") and not value.startswith("/"):
            path = [p.split("=", 1)[1] for p in value.split(",") if p.startswith("mp=")][0]
            out[path] = _volume_dir(host, value)
    return out


def _foreign(host, vmid: int, template: str, description: str, tags: str = "") -> dict:
    argv = ["pct", "create", str(vmid), template, "--hostname", f"foreign{vmid}", "--rootfs", "local-zfs:1",
            "--ostype", "unmanaged", "--memory", "64", "--description", description,
            "--mp0", "local-zfs:1,mp=/data"]
    argv += ["--tags", tags] if tags else []
    rc, _, err = ssh_run(host, argv)
    assert rc == 0, err
    volume = _volume_dir(host, configs(host)[vmid]["mp0"])
    (volume / "theirs.txt").write_text("foreign data\n")
    return configs(host)[vmid]


def test_a_holder_look_alike_is_never_moved_into_or_destroyed(security_fleet, project):
    """Issue 18 item 1: a foreign CT (untagged, or tagged but not shaped like a holder) whose
    description has this app's holder line survives a delete (park) and a re-add untouched."""
    pve1 = security_fleet["pve1"]
    app = {"host": "pve1", "image": NGINX, "memory": 64, "volumes": [{"path": "/data", "size": 1}]}
    deploy(project, security_fleet, {"web": app})
    vmid = marked(pve1, STACK, "web")["cts"][0]
    (_by_path(pve1, vmid)["/data"] / "ours.txt").write_text("our data\n")
    line = f"managed-by: homefleet stack={STACK} app=web role=data"
    note = "holds the data volumes of this app while its CT is replaced or after it was destroyed"
    template = _nginx_volid_or_pull(project, security_fleet, pve1)
    before = {
        7601: _foreign(pve1, 7601, template, f"{line}\n{note}"),                      # untagged
        7602: _foreign(pve1, 7602, template, f"notes\n{line}\n{note}", "homefleet;homefleet-data"),
        7603: _foreign(pve1, 7603, template, f"{line}\n{note}\nmy own words", "homefleet;homefleet-data"),
    }
    parked = deploy(project, security_fleet, {})             # delete: parks /data
    back = deploy(project, security_fleet, {"web": app})     # re-add: takes /data back
    for vmid_, conf in before.items():
        _case(f"look-alike {vmid_}", refused=True)
        assert configs(pve1).get(vmid_) == conf, f"the look-alike CT {vmid_} was touched"
        assert (_volume_dir(pve1, conf["mp0"]) / "theirs.txt").exists(), "the look-alike's data is gone"
    figures.add("trust.foreign_touched", 0)
    vmid = marked(pve1, STACK, "web")["cts"][0]
    assert (_by_path(pve1, vmid)["/data"] / "ours.txt").exists(), ("the app's own data did not come back", parked, back)
    assert set(marked(pve1, STACK, "web")["holders"]) == set(before), "our (real) holder is gone once emptied"
    for vmid_ in before:
        ssh_run(pve1, ["pct", "destroy", str(vmid_), "--purge", "1"])
    deploy(project, security_fleet, {"web": {**app, "deleteData": True}})
    deploy(project, security_fleet, {})


def test_volumes_come_back_by_path_and_a_holder_with_data_is_kept(security_fleet, project):
    """Issue 18 item 2: upgraded with one of its two volumes, the app gets the right data at
    /data, and /config's volume stays on the holder, which is kept and named in the output."""
    pve1 = security_fleet["pve1"]
    app = {"host": "pve1", "image": APP_V1, "memory": 64,
           "volumes": [{"path": "/config", "size": 1}, {"path": "/data", "size": 1}]}
    deploy(project, security_fleet, {"two": app})
    vmid = marked(pve1, STACK, "two")["cts"][0]
    volumes = _by_path(pve1, vmid)
    (volumes["/config"] / "config-token").write_text("config\n")
    (volumes["/data"] / "data-token").write_text("data\n")
    run = deploy(project, security_fleet, {"two": {**app, "image": APP_V2, "volumes": [{"path": "/data", "size": 1}]}})
    _case("upgrade with one of two volumes")
    now = _by_path(pve1, vmid)
    assert list(now) == ["/data"] and (now["/data"] / "data-token").exists(), "the wrong data is at /data"
    holders = marked(pve1, STACK, "two")["holders"]
    assert len(holders) == 1, "the holder that still holds /config must be kept"
    kept = _by_path(pve1, holders[0])
    assert (kept["/config"] / "config-token").exists(), "the /config volume was lost"
    figures.add("trust.volumes_lost", 0)
    assert f"holder CT {holders[0]} is kept" in run.stdout + run.stderr
    outputs = json.loads(project.pulumi("stack", "export", stack=STACK, check=True).stdout)
    ct = [r for r in outputs["deployment"]["resources"] if r["type"].endswith("ProxmoxCT")][0]
    assert ct["outputs"]["kept_on_holder"] == {"vmid": holders[0], "paths": ["/config"]}
    # adding /config back takes it from the holder, which is then gone
    deploy(project, security_fleet, {"two": {**app, "image": APP_V2}})
    now = _by_path(pve1, vmid)
    assert (now["/config"] / "config-token").exists() and (now["/data"] / "data-token").exists()
    assert marked(pve1, STACK, "two")["holders"] == []
    deploy(project, security_fleet, {"two": {**app, "image": APP_V2, "deleteData": True}})
    deploy(project, security_fleet, {})


def _sparse_layer(name: str, realsize: int) -> bytes:
    """A layer tar with one PAX (GNU 1.0) sparse file of `realsize` bytes, all hole but the last."""
    tail = b"x"
    sparse_map = f"1\n{realsize - len(tail)}\n{len(tail)}\n".encode()
    data = sparse_map + b"\0" * (-len(sparse_map) % 512) + tail
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("GNUSparseFile.0/" + name.rsplit("/", 1)[-1])
        info.size, info.mode, info.mtime = len(data), 0o644, images.EPOCH
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
                            "GNU.sparse.realsize": str(realsize)}
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_image(security_fleet, tmp_path_factory):
    """BIG: the test app's image plus a second layer that unpacks to 3 GiB."""
    import gzip

    spec = images.ImageSpec(ref=BIG, entrypoint=["/app/run.sh"], cmd=["--listen", ":8080"], workdir="/app")
    layout = tmp_path_factory.mktemp("big-image")
    images.build_layout(spec, layout)
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_text())
    config_path = layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]
    config = json.loads(config_path.read_text())
    layer = _sparse_layer("opt/big/blob.bin", BIG_BYTES)
    config["rootfs"]["diff_ids"].append(images._sha256(layer))
    manifest["layers"].append({"mediaType": images.MT_LAYER,
                               **images._write_blob(layout, gzip.compress(layer, mtime=0))})
    manifest["config"] = {"mediaType": images.MT_CONFIG, **images._write_blob(layout, images._canonical(config))}
    desc = images._write_blob(layout, images._canonical(manifest))
    index["manifests"] = [{"mediaType": images.MT_MANIFEST, **desc,
                           "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]
    (layout / "index.json").write_bytes(images._canonical(index))
    registry.push_layout(layout, BIG, security_fleet.registry_address)
    return BIG


def test_a_big_image_does_not_fit_a_small_rootfs_on_the_simulated_host(security_fleet, project, big_image):
    """Issue 13 item 2, the simulator: PVE extracts the whole image; 3 GiB do not fit 1 GiB."""
    pve2 = security_fleet["pve2"]
    deploy(project, security_fleet, {"big": {"host": "pve2", "image": BIG, "memory": 64, "disk": 4,
                                             "volumes": [{"path": "/data", "size": 1}]}})
    template = [n for n in _templates(pve2) if "big-app" in n][0]
    rc, _, err = ssh_run(pve2, ["pct", "create", "7701", f"local:vztmpl/{template}", "--rootfs", "local-zfs:1",
                                "--ostype", "unmanaged"])
    assert rc != 0 and "unable to create CT 7701" in err and "No space left on device" in err, err
    assert 7701 not in configs(pve2), "a failed create leaves nothing"


def _templates(host) -> list:
    rc, out, err = ssh_run(host, ["pvesm", "list", "local", "--content", "vztmpl"])
    assert rc == 0, err
    return [line.split()[0].split("/", 1)[1] for line in out.splitlines()[1:] if line.strip()]


def test_a_big_app_parks_its_data_on_a_tiny_holder(security_fleet, project, big_image):
    """Issue 13 item 2: deleting (and upgrading) an app whose image is larger than the holder's
    rootfs works: the holder is made from homefleet's own tiny archive, uploaded once."""
    pve2 = security_fleet["pve2"]
    app = {"host": "pve2", "image": BIG, "memory": 64, "disk": 4, "volumes": [{"path": "/data", "size": 1}]}
    deploy(project, security_fleet, {"big": app})
    vmid = marked(pve2, STACK, "big")["cts"][0]
    (_by_path(pve2, vmid)["/data"] / "big-token").write_text("big\n")
    deploy(project, security_fleet, {})
    holders = marked(pve2, STACK, "big")["holders"]
    assert len(holders) == 1 and data_owner(pve2, "big-token"), "the data must wait on a holder"
    holder = configs(pve2)[holders[0]]
    assert holder["hostname"] == "big-data" and holder["rootfs"].endswith("size=1G")
    tiny = [n for n in _templates(pve2) if n.startswith("homefleet-holder-")]
    assert len(tiny) == 1, _templates(pve2)
    deploy(project, security_fleet, {"big": app})
    assert (_by_path(pve2, vmid)["/data"] / "big-token").exists()
    assert marked(pve2, STACK, "big")["holders"] == []
    deploy(project, security_fleet, {"big": {**app, "deleteData": True}})
    deploy(project, security_fleet, {})


def test_adopt_refuses_a_ct_it_would_have_to_recreate(security_fleet, project):
    """Issue 18 item 6: a CT on another rootfs storage is refused at preview, and untouched."""
    pve2 = security_fleet["pve2"]
    template = _nginx_volid_or_pull(project, security_fleet, pve2)
    rc, _, err = ssh_run(pve2, ["pct", "create", "7801", template, "--hostname", "legacy", "--rootfs", "local:1",
                                "--ostype", "unmanaged", "--memory", "64"])
    assert rc == 0, err
    before = configs(pve2)[7801]
    apps = {"legacy": {"host": "pve2", "image": NGINX, "vmid": 7801, "adopt": True, "hostname": "legacy",
                       "memory": 64}}
    run = deploy(project, security_fleet, apps, check=False, command="preview")
    _case("adopt a CT on another rootfs storage", refused=not run.ok)
    assert not run.ok and "refusing to adopt CT 7801" in run.stdout + run.stderr, run
    assert "rootfs is on storage 'local'" in run.stdout + run.stderr
    run = deploy(project, security_fleet, apps, check=False)
    assert not run.ok and configs(pve2)[7801] == before, "the adopted CT changed"
    ssh_run(pve2, ["pct", "destroy", "7801", "--purge", "1"])
    deploy(project, security_fleet, {})


def _nginx_volid_or_pull(project, fleet, host) -> str:
    """An nginx archive made by hand on the host (not homefleet's: no OciTemplate removes it)."""
    name = "hand-nginx_1.27.tar"
    if name not in _templates(host):
        rc, _, err = ssh_run(host, ["skopeo", "copy", "--quiet", f"docker://{NGINX}",
                                    f"oci-archive:/var/lib/vz/template/cache/{name}"])
        assert rc == 0, err
    return f"local:vztmpl/{name}"


def test_adopt_and_take_over_keep_the_cts_env_out_of_the_state(security_fleet, project):
    """Issue 18 item 4: the image's env comes from the image; the CT's env (with a secret in it)
    never becomes a plain output."""
    pve2 = security_fleet["pve2"]
    canary = f"hfAdoptCanary{secrets.token_hex(6)}"
    template = _nginx_volid_or_pull(project, security_fleet, pve2)
    rc, _, err = ssh_run(pve2, ["pct", "create", "7802", template, "--hostname", "old", "--rootfs", "local-zfs:1",
                                "--ostype", "unmanaged", "--memory", "64"])
    assert rc == 0, err
    rc, _, err = ssh_run(pve2, ["pct", "set", "7802", "--env", f"API_TOKEN={canary}"])
    assert rc == 0, err
    apps = {"old": {"host": "pve2", "image": NGINX, "vmid": 7802, "adopt": True, "hostname": "old", "memory": 64}}
    deploy(project, security_fleet, apps)
    _case("adopt a CT whose env holds a secret")
    state = project.pulumi("stack", "export", stack=STACK, check=True).stdout
    assert canary not in state, "the CT's env reached the state in plain text"
    ct = [r for r in json.loads(state)["deployment"]["resources"] if r["type"].endswith("ProxmoxCT")][0]
    assert "NGINX_VERSION" not in json.dumps(ct["outputs"].get("image_env")), "image_env must be a secret"
    # take-over: the state forgets the CT (as a killed run leaves it), the next up finds it by its marker
    apps["old"].pop("adopt")
    project.write_stack(STACK, {"homefleet:hosts": _hosts(security_fleet), "homefleet:apps": apps})
    project.set_secret(STACK, "homefleet:secrets.old.API_TOKEN", canary, path=True)
    project.pulumi("up", "--yes", stack=STACK, check=True)
    runtime = [v for k, v in configs(pve2)[7802]["lxc"] if k == "lxc.environment.runtime"]
    assert f"API_TOKEN={canary}" in runtime, "the secret reaches the app"
    project.pulumi("state", "delete", ct["urn"], "--yes", "--force", stack=STACK, check=True)
    run = project.pulumi("up", "--yes", stack=STACK, check=True)
    _case("take over a CT with a secret in its env")
    assert "taking it over" in run.stdout + run.stderr, run
    state = project.pulumi("stack", "export", stack=STACK, check=True).stdout
    assert canary not in state, "take-over put the CT's env into the state in plain text"
    runtime = [v for k, v in configs(pve2)[7802]["lxc"] if k == "lxc.environment.runtime"]
    assert f"API_TOKEN={canary}" in runtime, "the secret still reaches the app"
    figures.add("secrets.places", 2)
    deploy(project, security_fleet, {})


def test_line_separators_and_non_ascii_env_keys_are_refused_at_preview(security_fleet, project):
    """Issue 18 items 8 and 10: U+2028/U+0085 in an env value, a non-ASCII env key."""
    for env in ({"NOTE": "a\u2028description: managed-by: homefleet stack=x app=y"}, {"NOTE": "a\u0085b"},
                {"ÄPFEL": "1"}):
        run = deploy(project, security_fleet, {"sep": {"host": "pve1", "image": NGINX, "memory": 64, "env": env}},
                     check=False, command="preview")
        _case(f"env {env!r}", refused=not run.ok)
        assert not run.ok and "env" in run.stdout + run.stderr, run
    deploy(project, security_fleet, {})


JOBS = "vzdump: backup-only-{v}\n\tschedule 21:00\n\tenabled 1\n\tstorage local\n\tvmid {v}\n\tmode snapshot\n\n" \
       "vzdump: backup-all\n\tschedule sun 01:00\n\tall 1\n\texclude {v},999\n\tstorage local\n\n"
FIREWALL = "[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -p tcp -dport 8080\n"


def _pve_file(host, name: str):
    return host.state / "etc-pve" / name


def test_a_recreate_keeps_backup_jobs_firewall_and_acls(security_fleet, project):
    """Issue 13 item 3: an image upgrade recreates the CT at the same vmid without `--purge`
    (its backup jobs stay), and carries its firewall file and ACL entries over. The simulator
    drops them on destroy as PVE does (checked first, on a scratch CT)."""
    pve2 = security_fleet["pve2"]
    template = _nginx_volid_or_pull(project, security_fleet, pve2)
    # the simulator: destroy drops the firewall file and ACLs, --purge the job naming only the CT
    rc, _, err = ssh_run(pve2, ["pct", "create", "7901", template, "--rootfs", "local-zfs:1", "--ostype", "unmanaged"])
    assert rc == 0, err
    (_pve_file(pve2, "firewall")).mkdir(exist_ok=True)
    _pve_file(pve2, "firewall/7901.fw").write_text(FIREWALL)
    _pve_file(pve2, "jobs.cfg").write_text(JOBS.format(v=7901))
    _pve_file(pve2, "user.cfg").write_text("user:alice@pve:1:0::::::\npool:lab::7901:::\n"
                                           "acl:1:/vms/7901:alice@pve:PVEVMUser:\n")
    _pve_file(pve2, "replication.cfg").write_text("local: 7901-0\n\ttarget pve9\n")
    rc, _, err = ssh_run(pve2, ["pct", "destroy", "7901"])
    assert rc != 0 and "There is a replication job '7901-0' for guest '7901'" in err, err
    _pve_file(pve2, "replication.cfg").write_text("")
    ssh_run(pve2, ["pct", "destroy", "7901", "--purge", "1"])
    assert not _pve_file(pve2, "firewall/7901.fw").exists()
    assert "7901" not in _pve_file(pve2, "user.cfg").read_text()
    jobs = _pve_file(pve2, "jobs.cfg").read_text()
    assert "backup-only-7901" not in jobs and "exclude 999" in jobs, jobs

    app = {"host": "pve2", "image": APP_V1, "memory": 64, "volumes": [{"path": "/data", "size": 1}]}
    deploy(project, security_fleet, {"kept": app})
    vmid = marked(pve2, STACK, "kept")["cts"][0]
    _pve_file(pve2, f"firewall/{vmid}.fw").write_text(FIREWALL)
    _pve_file(pve2, "jobs.cfg").write_text(JOBS.format(v=vmid))
    acl = f"acl:1:/vms/{vmid}:alice@pve:PVEVMUser:"
    _pve_file(pve2, "user.cfg").write_text(f"user:alice@pve:1:0::::::\npool:lab::{vmid}:::\n{acl}\n")
    run = deploy(project, security_fleet, {"kept": {**app, "image": APP_V2}})
    _case("recreate keeps backup jobs, firewall, ACLs")
    assert "test-app_2.0" in configs(pve2)[vmid]["description"]
    assert _pve_file(pve2, "jobs.cfg").read_text() == JOBS.format(v=vmid).rstrip("\n") + "\n" or \
        f"backup-only-{vmid}" in _pve_file(pve2, "jobs.cfg").read_text(), "the CT left its backup job"
    assert f"exclude {vmid},999" in _pve_file(pve2, "jobs.cfg").read_text()
    assert _pve_file(pve2, f"firewall/{vmid}.fw").read_text() == FIREWALL, "the firewall rules were lost"
    assert acl in _pve_file(pve2, "user.cfg").read_text().splitlines(), "the ACL entry was lost"
    assert f"pool:lab::{vmid}:::" in _pve_file(pve2, "user.cfg").read_text().splitlines(), "the pool lost the CT"
    assert "firewall file and 1 ACL entries carried over" in run.stdout + run.stderr
    # a replicated CT cannot be destroyed without --purge: refused before anything changes
    _pve_file(pve2, "replication.cfg").write_text(f"local: {vmid}-0\n\ttarget pve9\n")
    before = configs(pve2)[vmid]
    run = deploy(project, security_fleet, {"kept": app}, check=False)
    _pve_file(pve2, "replication.cfg").write_text("")
    _case("recreate of a replicated CT", refused=not run.ok)
    assert not run.ok and f"CT {vmid} has replication jobs" in run.stdout + run.stderr, run
    assert configs(pve2)[vmid] == before and marked(pve2, STACK, "kept")["holders"] == []
    deploy(project, security_fleet, {"kept": {**app, "image": APP_V2}})
    deploy(project, security_fleet, {"kept": {**app, "image": APP_V2, "deleteData": True}})
    deploy(project, security_fleet, {})


def test_parking_retries_when_a_vm_took_the_holders_vmid(security_fleet, project):
    """Issue 13 item 5: nextid reserves nothing; a VM created meanwhile makes the holder's
    `pct create` fail with `VM N already exists on node` (not `CT N ...`): park with another id."""
    pve1 = security_fleet["pve1"]
    app = {"host": "pve1", "image": NGINX, "memory": 64, "volumes": [{"path": "/data", "size": 1}]}
    deploy(project, security_fleet, {"race": app})
    vmid = marked(pve1, STACK, "race")["cts"][0]
    (_by_path(pve1, vmid)["/data"] / "race-token").write_text("race\n")
    rc, out, err = ssh_run(pve1, ["pvesh", "get", "/cluster/nextid"])
    assert rc == 0, err
    taken = int(out.strip())
    (pve1.state / "tool-faults").write_text(
        f"pct create {taken} *\t255\tunable to create CT {taken} - VM {taken} already exists on node '{pve1.name}'\n")
    try:
        run = deploy(project, security_fleet, {})
    finally:
        (pve1.state / "tool-faults").write_text("")
    holders = marked(pve1, STACK, "race")["holders"]
    assert len(holders) == 1 and holders[0] != taken and data_owner(pve1, "race-token"), (holders, run)
    assert f"vmid {taken} was taken meanwhile" in run.stdout + run.stderr
    assert configs(pve1)[holders[0]]["hostname"] == "race-data"
    deploy(project, security_fleet, {"race": app})
    deploy(project, security_fleet, {"race": {**app, "deleteData": True}})
    deploy(project, security_fleet, {})
