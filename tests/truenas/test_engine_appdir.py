"""Issue 14 item 2 on TrueNAS through the real Pulumi engine: a compose file in the style of a published
one (a paperless/n8n-like app: `./data`, a shipped `./config/app.conf` mounted read-only, a folder chosen
by `${MEDIA_DIR:-./media}`, a worker running as uid 999) deploys unchanged on both simulated
generations (nas1: 24.10 as root, nas2: 25.04 behind sudo). Its folders are created under
`/mnt/tank/apps/<app>/` owned by 568 (`apps`) or the service's user, the file's content arrives, an
edit shows in the preview and is applied, and removing the app keeps the folder and the data.
"""

from __future__ import annotations

import json

import pytest

from sim.engine import LocalProject
from sim.testing import commands
from sim.truenas import datasets, files

from .test_engine import Env

pytestmark = pytest.mark.engine

PUBLISHED = """\
services:
  app:
    image: docker.io/library/nginx:1.27.3
    restart: unless-stopped
    ports: ["8090:80"]
    volumes:
      - ./data:/data
      - ./config/app.conf:/etc/app.conf:ro
      - ${MEDIA_DIR:-./media}:/media
  worker:
    image: docker.io/library/nginx:1.27.3
    restart: unless-stopped
    user: "999:999"
    volumes:
      - type: bind
        source: ./worker
        target: /work
"""
CONF = "listen 80;\nserver_name paper;\n"


class AppDirEnv(Env):
    def write(self, name: str, text: str) -> None:      # nested paths (compose/paper/config/app.conf)
        path = self.project.workdir / "compose" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture(scope="module")
def env(nas_fleet, tmp_path_factory):
    e = AppDirEnv(nas_fleet, LocalProject.create(tmp_path_factory.mktemp("truenas-appdir")))
    e.write("paper/compose.yml", PUBLISHED)
    e.write("paper/config/app.conf", CONF)
    return e


APPS = {"paper24": {"host": "nas1", "compose": "compose/paper/compose.yml"},
        "paper25": {"host": "nas2", "compose": "compose/paper/compose.yml"}}


def nas_file(host, path: str):
    return datasets.folder(host.state, path)


def test_a_published_compose_with_relative_binds_deploys_unchanged(env):
    env.stack(APPS)
    run = env.pulumi("up", "--yes")
    assert "relative" not in run.stdout
    for host, app in ((env.nas1, "paper24"), (env.nas2, "paper25")):
        root = f"/mnt/tank/apps/{app}"
        config = env.midclt(host, "app.config", app)
        assert config["services"]["app"]["volumes"] == [f"{root}/data:/data", f"{root}/config/app.conf:/etc/app.conf:ro",
                                                        f"{root}/media:/media"]
        assert config["services"]["worker"]["volumes"][0]["source"] == f"{root}/worker"
        for rel, uid in (("", 568), ("/data", 568), ("/media", 568), ("/config", 568), ("/worker", 999),
                         ("/config/app.conf", 568)):
            assert nas_file(host, root + rel).exists(), root + rel
            assert files.owner(host.state, root + rel) == (uid, uid), root + rel
        assert nas_file(host, f"{root}/config/app.conf").read_text() == CONF
        assert env.app(host, app)["state"] == "RUNNING"
    # the file's content never travels in a command line (sudo logs argv on TrueNAS)
    assert not any("server_name" in c["command"] for h in (env.nas1, env.nas2) for c in commands(h))


def test_no_change_preview_makes_no_host_call(env):
    before = {h.name: len(commands(h)) for h in (env.nas1, env.nas2)}
    env.pulumi("preview", "--expect-no-changes")
    assert {h.name: len(commands(h)) for h in (env.nas1, env.nas2)} == before


def test_an_edit_to_the_shipped_file_shows_in_the_preview_and_is_applied(env):
    env.write("paper/config/app.conf", CONF.replace("listen 80", "listen 8081"))
    preview = env.pulumi("preview", "--diff")
    assert "paper24-files" in preview.stdout and "paper25-files" in preview.stdout
    assert "io.homefleet.files" in preview.stdout          # the app's compose changes: its label
    before = env.midclt(env.nas1, "app.config", "paper24")["services"]
    mark = env.mark()
    env.pulumi("up", "--yes")
    after = env.midclt(env.nas1, "app.config", "paper24")["services"]
    assert after["app"]["labels"] != before["app"]["labels"]     # compose up recreates this container ...
    assert after["worker"] == before["worker"]                   # ... and leaves the worker alone
    for host, app in ((env.nas1, "paper24"), (env.nas2, "paper25")):
        assert nas_file(host, f"/mnt/tank/apps/{app}/config/app.conf").read_text().startswith("listen 8081;")
        assert "app.update" in env.methods(host, mark[host.name])
        assert "filesystem.mkdir" not in env.methods(host, mark[host.name])   # folders exist: made once
        assert env.app(host, app)["state"] == "RUNNING"


def test_a_folder_a_container_replaced_by_a_symlink_is_not_written_through(env):
    """24.10/25.04's file_receive follows symlinks: homefleet checks the folder first."""
    config = nas_file(env.nas1, "/mnt/tank/apps/paper24/config")
    elsewhere = nas_file(env.nas1, "/mnt/tank/elsewhere")
    elsewhere.mkdir(parents=True)
    config.rename(config.with_name("config.moved"))
    config.symlink_to(elsewhere)
    env.write("paper/config/app.conf", CONF.replace("listen 80", "listen 8082"))
    run = env.pulumi("up", "--yes", ok=False)
    assert not run.ok and "/mnt/tank/apps/paper24/config is not a folder of the app's own" in run.stdout + run.stderr
    assert list(elsewhere.iterdir()) == []
    config.unlink()
    config.with_name("config.moved").rename(config)
    env.pulumi("up", "--yes")
    assert nas_file(env.nas1, "/mnt/tank/apps/paper24/config/app.conf").read_text().startswith("listen 8082;")


def test_removing_the_app_keeps_its_folder_and_data(env):
    data = nas_file(env.nas2, "/mnt/tank/apps/paper25/data")
    (data / "db.sqlite").write_text("user data")
    env.stack({"paper24": APPS["paper24"]})
    run = env.pulumi("up", "--yes")
    assert env.app(env.nas2, "paper25") is None
    assert (data / "db.sqlite").read_text() == "user data"
    assert nas_file(env.nas2, "/mnt/tank/apps/paper25/config/app.conf").exists()
    assert "kept /mnt/tank/apps/paper25" in run.stdout + run.stderr
    env.pulumi("destroy", "--yes")
    assert nas_file(env.nas1, "/mnt/tank/apps/paper24/data").is_dir()
