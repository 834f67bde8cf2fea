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
