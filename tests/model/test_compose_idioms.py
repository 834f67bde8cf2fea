"""Compose idioms real upstream files use (issue 14 leftovers): each one that can work on a Proxmox CT plans,
with the behaviour the file asks for; each one that cannot is refused naming the file, the key and the fix."""

import textwrap

import pytest

from homefleet.compose import load_compose_text
from homefleet.compose import proxmox as cp
from homefleet.compose.files import ProjectFiles
from homefleet.stack import Host

FILE = "compose/t.yml"
NET = {"cidr": "198.18.0.0/24", "gateway": "198.18.0.1", "range": "198.18.0.10-198.18.0.250"}
HOST = Host(kind="proxmox", address="127.0.0.1", storage="local-zfs", composeNetwork=NET, appRoot="/tank/apps")


def convert(text: str, base_dir=".", **kw):
    loaded = load_compose_text(textwrap.dedent(text), FILE, base_dir=base_dir, **kw)
    addresses = {name: f"198.18.0.{10 + i}" for i, name in enumerate(loaded.services)}
    files = ProjectFiles(base_dir, False, "homefleet:apps.app")
    return cp.convert("s", "app", loaded, "pve1", HOST, addresses=addresses, files=files)


# ---------------------------------------------------------------- network_mode: host

def test_host_networking_alone_is_the_cts_own_address_with_a_note():
    plan = convert("""\
        services:
          media:
            image: jellyfin/jellyfin:10.10.7
            network_mode: host
            ports: ["8096:8096"]
        """)
    assert plan.problems == []
    spec = plan.cts[0].spec
    assert spec["nets"][0]["ip"] == "198.18.0.10/24", "the CT is on the bridge with its own address"
    assert spec["ports"] == [{"port": 8096, "protocol": "tcp", "scheme": "http"}]
    note = [w for w in plan.warnings if "services.media.network_mode" in w]
    assert note and "its own address on the host's bridge" in note[0], plan.warnings


def test_host_networking_with_peers_that_do_not_publish_ports_plans():
    plan = convert("""\
        services:
          scanner:
            image: ghcr.io/acme/scanner:1.0
            network_mode: host
            environment: {DB: db}
          db:
            image: postgres:17
        """)
    assert plan.problems == []
    assert any("services.scanner.network_mode" in w for w in plan.warnings)


def test_host_networking_that_reaches_peers_at_localhost_is_refused_naming_them():
    plan = convert("""\
        services:
          caddy:
            image: caddy:2
            network_mode: host
          search:
            image: searxng/searxng:latest
            ports: ["127.0.0.1:8080:8080"]
          cache:
            image: valkey/valkey:8
        """)
    assert len(plan.problems) == 1, plan.problems
    line = plan.problems[0]
    assert line.startswith("compose/t.yml: services.caddy.network_mode: uses the host's network")
    assert "search (8080)" in line and "localhost" in line
    assert "Remove network_mode: host and point caddy at search:8080" in line, line


def test_a_peer_that_reaches_the_host_networked_service_through_the_gateway_is_refused():
    plan = convert("""\
        services:
          hass:
            image: ghcr.io/home-assistant/home-assistant:stable
            network_mode: host
          proxy:
            image: nginx:1.27
            extra_hosts: ["host.docker.internal:host-gateway"]
        """)
    assert any("services.hass.network_mode" in p and "proxy" in p for p in plan.problems), plan.problems


def test_sharing_another_services_network_is_still_refused():
    plan = convert("""\
        services:
          vpn: {image: qmcgaw/gluetun:v3}
          torrent: {image: linuxserver/qbittorrent:5, network_mode: "service:vpn"}
        """)
    assert any("services.torrent.network_mode: shares the network of another container" in p
               for p in plan.problems), plan.problems


# ---------------------------------------------------------------- secrets: and configs: from files

def test_file_secrets_become_a_read_only_run_secrets_folder_per_service(tmp_path):
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose" / "db_password.txt").write_text("s3cret\n")
    (tmp_path / "compose" / "api_key.txt").write_text("k\n")
    plan = convert("""\
        services:
          db:
            image: postgres:17
            environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db_password}
            secrets: [db_password]
          api:
            image: ghcr.io/acme/api:1.0
            user: "1000"
            secrets:
              - db_password
              - source: api_key
                target: token
        secrets:
          db_password: {file: ./db_password.txt}
          api_key: {file: api_key.txt}
        """, base_dir=tmp_path)
    assert plan.problems == [], plan.problems
    specs = {ct.service: ct.spec for ct in plan.cts}
    assert {"source": "/tank/apps/app/secrets/db", "path": "/run/secrets", "read_only": True} in specs["db"]["mounts"]
    assert {"source": "/tank/apps/app/secrets/api", "path": "/run/secrets", "read_only": True} in specs["api"]["mounts"]
    files = {f["path"]: f for f in plan.app_dir["files"]}
    assert set(files) == {"secrets/db/db_password", "secrets/api/db_password", "secrets/api/token"}
    dirs = {d["path"]: d["uid"] for d in plan.app_dir["dirs"]}
    assert dirs["secrets/api"] == 101000 and dirs["secrets/db"] == 100000, "readable by the user the service runs as"
    assert "s3cret" not in repr({ct.service: ct.spec for ct in plan.cts}), "the content is not a CT input"


def test_file_configs_are_written_at_their_target(tmp_path):
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose" / "prometheus.yml").write_text("scrape_configs: []\n")
    plan = convert("""\
        services:
          prom:
            image: prom/prometheus:v3.5.0
            configs:
              - source: prom_config
                target: /etc/prometheus/prometheus.yml
              - plain
        configs:
          prom_config: {file: ./prometheus.yml}
          plain: {file: ./prometheus.yml}
        """, base_dir=tmp_path)
    assert plan.problems == [], plan.problems
    files = plan.cts[0].spec["files"]
    assert [f["path"] for f in files] == ["/etc/prometheus/prometheus.yml", "/plain"]
    assert all(f["source"] == "/tank/apps/app/prometheus.yml" and len(f["sha256"]) == 64 for f in files)


@pytest.mark.parametrize("body,message", [
    ("{external: true}", "secrets.s: is external (made with docker secret create)"),
    ("{environment: TOKEN}", "secrets.s.environment: "),
    ("{file: ./missing.txt}", "secrets.s.file: "),
])
def test_secrets_that_cannot_be_files_are_refused_with_a_fix(tmp_path, body, message):
    plan = convert(f"""\
        services:
          web: {{image: nginx:1.27, secrets: [s]}}
        secrets:
          s: {body}
        """, base_dir=tmp_path)
    assert any(message in p for p in plan.problems), plan.problems


def test_a_service_naming_an_undeclared_secret_is_refused(tmp_path):
    plan = convert("""\
        services:
          web: {image: nginx:1.27, secrets: [nope]}
        """, base_dir=tmp_path)
    assert any("services.web.secrets[0]: names the secret 'nope', which the file does not declare" in p
               for p in plan.problems), plan.problems


# ---------------------------------------------------------------- working_dir: and user:

def test_working_dir_becomes_the_init_cwd_with_or_without_a_user():
    plan = convert("""\
        services:
          web:
            image: node:22
            working_dir: /srv/app
            command: npm start
          worker:
            image: node:22
            user: "1000:1000"
            working_dir: ${APP_DIR:-/srv/app}/worker
        """)
    assert plan.problems == [], plan.problems
    specs = {ct.service: ct.spec for ct in plan.cts}
    assert specs["web"]["init_user"] == {"cwd": "/srv/app"}, "the image's User stays PVE's"
    assert specs["worker"]["init_user"] == {"uid": 1000, "gid": 1000, "cwd": "/srv/app/worker"}
    assert any("services.web.working_dir" in w and "must exist in the image" in w for w in plan.warnings)


@pytest.mark.parametrize("value", ["relative/dir", "./app"])
def test_a_working_dir_pve_cannot_hold_is_refused(value):
    plan = convert(f"""\
        services:
          web: {{image: node:22, working_dir: "{value}"}}
        """)
    assert any("services.web.working_dir: " in p and "absolute path" in p for p in plan.problems), plan.problems


def test_providers_init_writer_leaves_what_it_is_not_given():
    from providers.hosts import ctinit
    argv = ctinit.write_argv(101, None, None, "/srv/app")
    assert argv[:2] == ["perl", "-e"] and argv[3:] == ["101", "-", "-", "/srv/app", "-"]
    assert ctinit.write_argv(101, 1000, 0)[3:] == ["101", "1000", "0", "-", "-"]


IMAGE = {"entrypoint": ["/docker-entrypoint.sh"], "user": "",
         "users": {"root": [0, 0], "unit": [999, 998], "node": [1000, 1000]},
         "groups": {"root": 0, "unit": 998, "node": 1000, "www-data": 33}}


@pytest.mark.parametrize("user,expected", [
    ("unit:root", {"uid": 999, "gid": 0}),
    ("unit", {"uid": 999, "gid": 998}),
    ("node:www-data", {"uid": 1000, "gid": 33}),
    ("unit:5", {"uid": 999, "gid": 5}),
])
def test_a_user_by_name_is_planned_and_resolved_from_the_images_passwd(user, expected):
    from homefleet.compose.users import resolve
    plan = convert(f"""\
        services:
          netbox: {{image: netboxcommunity/netbox:v4.3, user: "{user}", working_dir: /opt/netbox}}
        """)
    assert plan.problems == [], plan.problems
    init = plan.cts[0].spec["init_user"]
    assert init["name"] == user.split(":")[0] and init["at"] == "compose/t.yml: services.netbox.user"
    assert resolve(init, IMAGE) == {**expected, "cwd": "/opt/netbox"}


def test_a_user_the_image_does_not_have_is_an_error_naming_the_file_and_key():
    from homefleet.compose.users import resolve
    plan = convert("""\
        services:
          netbox: {image: netboxcommunity/netbox:v4.3, user: "nobody:staff"}
        """)
    found = resolve(plan.cts[0].spec["init_user"], IMAGE)
    assert found == {"error": "compose/t.yml: services.netbox.user: the image netboxcommunity/netbox:v4.3 has no user "
                              "'nobody' in its /etc/passwd (Docker would not start it either). Use a user the image "
                              "has (node, unit, root) or a numeric uid[:gid]"}, found


def test_a_user_name_docker_could_not_read_is_refused():
    plan = convert("""\
        services:
          web: {image: nginx:1.27, user: "a:b:c"}
        """)
    assert any("services.web.user: " in p for p in plan.problems), plan.problems


# ---------------------------------------------------------------- dotted environment keys

def test_dotted_env_keys_go_to_raw_lxc_environment_lines():
    plan = convert("""\
        services:
          search:
            image: elasticsearch:8.18.0
            environment:
              discovery.type: single-node
              xpack.security.enabled: 'false'
              ES_JAVA_OPTS: -Xms1g -Xmx1g
              node-name: es1
        """)
    assert plan.problems == [], plan.problems
    spec = plan.cts[0].spec
    assert spec["env"] == {"ES_JAVA_OPTS": "-Xms1g -Xmx1g"}
    assert spec["init_user"] == {"env": {"discovery.type": "single-node", "xpack.security.enabled": "false",
                                         "node-name": "es1"}}


def test_a_dotted_env_key_holding_a_secret_or_odd_characters_is_refused():
    plan = convert("""\
        services:
          search:
            image: elasticsearch:8.18.0
            environment:
              elastic.password: ${ELASTIC_PASSWORD}
              "bad/key": x
        """, secrets=["ELASTIC_PASSWORD"])
    text = "\n".join(plan.problems)
    assert "services.search.environment.elastic.password: " in text and "secret" in text, text
    assert "services.search.environment.bad/key: " in text, text


def test_the_init_writer_takes_raw_environment_on_stdin():
    from providers.hosts import ctinit
    assert ctinit.write_argv(101, None, None, None, env=True)[3:] == ["101", "-", "-", "-", "set"]
    assert ctinit.env_stdin({"discovery.type": "single-node", "a-b": "1"}) == b"discovery.type=single-node\0a-b=1"


def test_folders_of_a_service_running_as_a_named_user_belong_to_that_user_once_the_image_is_read(tmp_path):
    from homefleet.compose.users import resolve_dirs
    plan = convert("""\
        services:
          wiki:
            image: outlinewiki/outline:0.86.1
            user: node
            volumes: ["./storage:/var/lib/outline/data"]
          db:
            image: postgres:17
            volumes: ["./pgdata:/var/lib/postgresql/data"]
        """, base_dir=tmp_path)
    assert plan.problems == [], plan.problems
    dirs = {d["path"]: d for d in plan.app_dir["dirs"]}
    assert dirs["storage"] == {"path": "storage", "uid": 100000, "gid": 100000, "user": "node",
                               "image": "outlinewiki/outline:0.86.1"}
    assert dirs["pgdata"] == {"path": "pgdata", "uid": 100000, "gid": 100000}
    configs = {"outlinewiki/outline:0.86.1": IMAGE}
    assert resolve_dirs(plan.app_dir["dirs"], configs) == [
        {"path": "pgdata", "uid": 100000, "gid": 100000}, {"path": "storage", "uid": 101000, "gid": 101000}]
    assert resolve_dirs(plan.app_dir["dirs"], {})[1] == {"path": "storage", "uid": 100000, "gid": 100000}, \
        "an image not read yet (or a name it lacks): the CT's root, as before"


def test_user_from_unset_variables_runs_as_root_as_docker_does():
    plan = convert("""\
        services:
          app: {image: linuxserver/sonarr:4, user: "${PUID}:${PGID}"}
        """)
    assert plan.problems == [] and plan.cts[0].spec["init_user"] == {"uid": 0, "gid": 0}
