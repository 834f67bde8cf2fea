"""Issue 14 item 2 on TrueNAS: relative bind mounts and shipped files under `<appRoot>/<app>/` (pure)."""

from __future__ import annotations

import base64

import pytest
import yaml

from homefleet.compose.truenas import convert
from homefleet.errors import ConfigError

# In the style of a published paperless/n8n-like file: a data folder, a config file shipped beside it,
# a folder chosen by a variable with a relative default, and a service that runs as a numeric user.
PUBLISHED = """\
services:
  app:
    image: docker.io/library/nginx:1.27.3
    restart: unless-stopped
    ports: ["8080:80"]
    volumes:
      - ./data:/data
      - ./config/app.conf:/etc/app.conf:ro
      - ${MEDIA_DIR:-./media}:/media
  worker:
    image: docker.io/library/redis:7.4.1
    restart: unless-stopped
    user: "999:999"
    labels: ["tier=back"]
    volumes:
      - type: bind
        source: ./worker
        target: /work
"""


def project(tmp_path, conf: str = "listen 80;\n"):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "app.conf").write_text(conf)
    (tmp_path / "app.yml").write_text(PUBLISHED)
    return tmp_path / "app.yml"


def run(path, **kw):
    kw.setdefault("pool", "tank")
    return convert(path, "compose/app.yml", app="paper", app_key="homefleet:apps.paper",
                   host_key="homefleet:hosts.nas1", **kw)


def test_relative_binds_resolve_under_the_pools_apps_folder(tmp_path):
    out = run(project(tmp_path))
    app = out.config["services"]["app"]
    assert app["volumes"] == ["/mnt/tank/apps/paper/data:/data", "/mnt/tank/apps/paper/config/app.conf:/etc/app.conf:ro",
                              "/mnt/tank/apps/paper/media:/media"]
    assert out.config["services"]["worker"]["volumes"][0]["source"] == "/mnt/tank/apps/paper/worker"
    assert not any("relative" in w for w in out.warnings)


def test_folders_belong_to_apps_568_or_the_services_numeric_user_and_files_are_uploaded(tmp_path):
    plan = run(project(tmp_path)).app_dir
    assert plan["root"] == "/mnt/tank/apps/paper" and (plan["uid"], plan["gid"]) == (568, 568)
    assert {d["path"]: d["uid"] for d in plan["dirs"]} == {"config": 568, "data": 568, "media": 568, "worker": 999}
    [conf] = plan["files"]
    assert conf["path"] == "config/app.conf" and conf["mode"] == "0644" and conf["uid"] == 568
    assert base64.b64decode(conf["content"]) == b"listen 80;\n"


def test_an_edit_to_a_shipped_file_changes_only_the_label_of_the_services_mounting_it(tmp_path):
    first = run(project(tmp_path)).config["services"]
    (tmp_path / "config" / "app.conf").write_text("listen 81;\n")
    second = run(tmp_path / "app.yml").config["services"]
    assert first["app"]["labels"]["io.homefleet.files"].startswith("sha256:")
    assert first["app"]["labels"] != second["app"]["labels"]
    assert first["worker"] == second["worker"] and first["worker"]["labels"] == ["tier=back"]


def test_app_root_overrides_the_pool_default(tmp_path):
    out = run(project(tmp_path), app_root="/mnt/fast/stacks")
    assert out.config["services"]["app"]["volumes"][0] == "/mnt/fast/stacks/paper/data:/data"
    assert out.app_dir["root"] == "/mnt/fast/stacks/paper"


def test_without_pool_or_app_root_a_relative_bind_names_file_key_and_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        run(project(tmp_path), pool=None)
    found = [p for p in err.value.problems if "services.app.volumes[0]" in p]
    assert found and found[0].startswith("compose/app.yml: services.app.volumes[0]: needs a folder for the app")
    assert "appRoot: /mnt/<pool>/apps on homefleet:hosts.nas1" in found[0]


def test_a_path_leaving_the_compose_folder_is_refused(tmp_path):
    path = project(tmp_path)
    path.write_text(PUBLISHED.replace("./data:/data", "../elsewhere:/data"))
    with pytest.raises(ConfigError) as err:
        run(path)
    assert any("services.app.volumes[0]: the relative host path '../elsewhere'" in p for p in err.value.problems)


def test_the_converted_file_survives_the_dump(tmp_path):
    from homefleet.compose.truenas import dump
    out = run(project(tmp_path))
    assert yaml.safe_load(dump(out.config)) == out.config


# ---------------------------------------------------------------- the plan

def plan(tmp_path, host: dict):
    from homefleet.config import load
    from homefleet.plan import make_plan
    from homefleet.plan_truenas import plan_truenas
    hosts = {"nas1": {"kind": "truenas", "address": "127.0.0.1", **host}}
    apps = {"paper": {"host": "nas1", "compose": "app.yml"}}
    stack, catalog = load("fleet", {"hosts": hosts, "apps": apps}, project_dir=str(tmp_path))
    return plan_truenas("fleet", stack, make_plan("fleet", stack, catalog).targets, project_dir=str(tmp_path))


def test_the_plan_carries_the_folder_for_the_files_resource(tmp_path):
    project(tmp_path)
    [app] = plan(tmp_path, {"pool": "tank", "sudo": True})
    assert app.files["root"] == "/mnt/tank/apps/paper" and app.files["app"] == "paper" and app.files["sudo"] is True
    assert app.files["delete_data"] is False and "/mnt/tank/apps/paper/data:/data" in app.props["compose"]


def test_an_app_root_outside_mnt_is_refused_naming_the_host_key(tmp_path):
    project(tmp_path)
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, {"pool": "tank", "appRoot": "/srv/apps"})
    assert err.value.problems == [
        "stacks/Pulumi.fleet.yaml: homefleet:hosts.nas1.appRoot: '/srv/apps' is not under /mnt/: TrueNAS creates "
        "folders only in a pool (filesystem.mkdir: path not permitted). Write a folder in a pool, e.g. appRoot: "
        "/mnt/tank/apps"]


def test_an_app_without_relative_binds_has_no_folder(tmp_path):
    (tmp_path / "app.yml").write_text("services:\n  web:\n    image: docker.io/library/nginx:1.27.3\n"
                                      "    restart: always\n")
    [app] = plan(tmp_path, {"pool": "tank"})
    assert app.files is None
