"""Issue 18 items 3 and 5 at the model level: which local files a compose file may make homefleet read,
and the one gate for keys that reach the host. (The engine-level cases are in
tests/engine/test_compose_published.py.)"""

import os
import textwrap

import pytest

from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from homefleet.plan_truenas import plan_truenas

NET = {"cidr": "198.18.0.0/24", "gateway": "198.18.0.1", "range": "198.18.0.10-198.18.0.250"}
CANARY = "canary-Tq83-token"


def project(tmp_path, compose: str, files: dict = None) -> tuple:
    root = tmp_path / "project"
    (root / "stacks" / "compose").mkdir(parents=True)
    (root / "stacks" / "compose" / "app.yml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    outside = tmp_path / "outside.env"
    outside.write_text(f"TOKEN={CANARY}\n")
    return root, outside


def plan(root, kind="proxmox", **app_keys):
    host = {"kind": kind, "address": "127.0.0.1", **({"storage": "local-zfs", "composeNetwork": NET}
                                                     if kind == "proxmox" else {"pool": "tank"})}
    stack, catalog = load("s", {"hosts": {"h": host},
                                "apps": {"app": {"host": "h", "compose": "stacks/compose/app.yml", **app_keys}}})
    if kind == "proxmox":
        return make_plan("s", stack, catalog, project_dir=str(root))
    return plan_truenas("s", stack, {"h": {"name": "h"}}, project_dir=str(root))


def problems(root, **kw) -> list:
    with pytest.raises(ConfigError) as exc:
        plan(root, **kw)
    assert CANARY not in str(exc.value), "an error never quotes a file's content"
    return exc.value.problems


APP = "stacks/compose/app.yml"
KEY = "homefleet:apps.app"


@pytest.mark.parametrize("kind", ["proxmox", "truenas"])
def test_a_relative_env_file_cannot_leave_the_project(tmp_path, kind):
    root, _ = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, env_file: ../../../outside.env}
        """)
    assert problems(root, kind=kind) == [
        f"{APP}: services.web.env_file: '../../../outside.env' leads outside the project folder (through '..' or a "
        "symlink). Keep the file inside the project folder"]


@pytest.mark.parametrize("kind", ["proxmox", "truenas"])
def test_a_symlink_out_of_the_project_is_refused(tmp_path, kind):
    root, outside = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, env_file: app.env}
        """)
    os.symlink(outside, root / "stacks" / "compose" / "app.env")
    assert problems(root, kind=kind) == [
        f"{APP}: services.web.env_file: 'app.env' leads outside the project folder (through '..' or a symlink). "
        "Keep the file inside the project folder"]


def test_a_dotenv_beside_the_file_that_links_out_is_refused(tmp_path):
    root, outside = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, environment: [TOKEN]}
        """)
    os.symlink(outside, root / "stacks" / "compose" / ".env")
    assert problems(root) == [
        f"{APP}: .env (beside the file): '.env' leads outside the project folder (through '..' or a symlink). "
        "Keep the file inside the project folder"]


def test_an_absolute_env_file_needs_the_opt_in(tmp_path):
    root, outside = project(tmp_path, f"""\
        services:
          web: {{image: nginx:1.27, env_file: {tmp_path}/outside.env}}
        """)
    assert problems(root) == [
        f"{APP}: services.web.env_file: '{outside}' is outside the project folder; homefleet reads files outside it "
        "only when the stack allows it. Move the file into the project folder and write a path relative to the "
        f"compose file, or set allowFilesOutsideProject: true on {KEY}"]
    ct = plan(root, allowFilesOutsideProject=True).cts[0]
    assert ct.props["env"] == {"TOKEN": CANARY}


def test_a_home_path_needs_the_opt_in_too(tmp_path):
    root, _ = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, env_file: ~/.git-credentials}
        """)
    assert "is outside the project folder" in problems(root)[0]


def test_an_env_file_that_is_not_dotenv_is_not_quoted(tmp_path):
    root, _ = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, env_file: creds.txt}
        """, {"stacks/compose/creds.txt": f"https://user:{CANARY}@github.com\n"})
    assert problems(root) == [
        f"{APP}: services.web.env_file: creds.txt: line 1 is not NAME=value (a name is letters, digits and _)"]


def test_env_files_inside_the_project_still_work(tmp_path):
    root, _ = project(tmp_path, """\
        services:
          web: {image: nginx:1.27, env_file: [../common.env, app.env]}
        """, {"stacks/common.env": "A=1\n", "stacks/compose/app.env": "B=2\n"})
    assert plan(root).cts[0].props["env"] == {"A": "1", "B": "2"}


# ---------------------------------------------------------------- 18.5: one gate for host access

FIX = f"Remove it, or set allowSystemPaths: true on {KEY} if the app really needs it"


def test_proxmox_binds_of_the_host_and_disk_devices_need_the_opt_in(tmp_path):
    root, _ = project(tmp_path, """\
        services:
          web:
            image: nginx:1.27
            volumes: ["/:/host:ro", "/etc/pve:/pve", "/tank/media:/media"]
            devices: [/dev/sda, /dev/dri, /dev/ttyUSB0]
        """)
    assert problems(root) == [
        f"{APP}: services.web.devices[0]: passes the host device /dev/sda into the app (a disk, memory or a device "
        f"tree gives the app the host's data), which reaches the host. {FIX}",
        f"{APP}: services.web.volumes[0]: bind-mounts the host's /, which reaches the host. {FIX}",
        f"{APP}: services.web.volumes[1]: bind-mounts the host's /etc/pve, which reaches the host. {FIX}",
    ], "GPU and serial devices and data folders need no opt-in"
    planned = plan(root, allowSystemPaths=True)
    assert any("services.web.volumes[0]: bind-mounts the host's /; allowed by allowSystemPaths" in w
               for w in planned.warnings)


def test_proxmox_refuses_the_docker_socket_whatever_the_opt_in(tmp_path):
    root, _ = project(tmp_path, """\
        services:
          agent:
            image: portainer/agent:2.21.0
            volumes: [/var/run/docker.sock:/var/run/docker.sock]
        """)
    expected = [f"{APP}: services.agent.volumes[0]: bind-mounts Docker's API socket /var/run/docker.sock; a Proxmox "
                "host runs no Docker daemon (each service is its own CT), so there is no socket to give the app. "
                "Remove it; an app that manages Docker containers needs a Docker host (a VM, or a TrueNAS host)"]
    assert problems(root) == expected
    assert problems(root, allowSystemPaths=True) == expected


@pytest.mark.parametrize("lines,where,what", [
    ("devices: [/dev/sda]", "services.web.devices[0]", "passes the host device /dev/sda into the app"),
    ("pid: host", "services.web.pid", "shares the host's pid namespace"),
    ("use_api_socket: true", "services.web.use_api_socket", "gives the app Docker's API socket"),
    ("volumes_from: [other]", "services.web.volumes_from", "mounts the volumes of other containers"),
    ("privileged: true", "services.web.privileged", "gives the container every privilege on the host"),
    ("cap_add: [SYS_ADMIN]", "services.web.cap_add", "adds the capability SYS_ADMIN"),
    ("volumes: [raw:/raw]\nvolumes:\n  raw: {driver_opts: {type: ext4, device: /dev/sdb1}}",
     "volumes.raw.driver_opts.device", "binds the host's /dev/sdb1 as a volume"),
])
def test_truenas_host_access_keys_need_the_opt_in(tmp_path, lines, where, what):
    service, _, top = lines.partition("\nvolumes:\n")
    body = textwrap.indent(service, "    ")
    text = f"services:\n  web:\n    image: nginx:1.27\n{body}\n" + (f"volumes:\n{top}\n" if top else "")
    if "volumes_from" in lines:
        text += "  other:\n    image: busybox:1.36\n"
    root, _ = project(tmp_path, "")
    (root / "stacks" / "compose" / "app.yml").write_text(text)
    found = problems(root, kind="truenas")
    assert [p for p in found if p.startswith(f"{APP}: {where}: ")] == [
        next(p for p in found if p.startswith(f"{APP}: {where}: {what}"))], found
    assert any(p.endswith(FIX) for p in found if p.startswith(f"{APP}: {where}: "))
    planned = plan(root, kind="truenas", allowSystemPaths=True)
    assert any(w.startswith(f"{APP}: {where}: {what}") and "allowed by allowSystemPaths" in w
               for w in planned[0].warnings)
