"""Compose conversion for TrueNAS custom apps and the TrueNAS part of the plan (pure)."""

from __future__ import annotations

import pytest
import yaml

from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from homefleet.plan_truenas import plan_truenas
from homefleet.compose.truenas import convert, dump


def write(tmp_path, text: str, name: str = "app.yml", **files) -> object:
    (tmp_path / name).write_text(text)
    for fname, body in files.items():
        (tmp_path / fname.replace("_", ".")).write_text(body)
    return tmp_path / name


def run(path, **kw):
    kw.setdefault("app", "web")
    kw.setdefault("app_key", "homefleet:apps.web")
    return convert(path, "compose/app.yml", **kw)


def problems(path, **kw) -> list:
    with pytest.raises(ConfigError) as err:
        run(path, **kw)
    return err.value.problems


IMAGE = "docker.io/library/nginx:1.27.3"


def test_a_plain_compose_passes_through_unchanged(tmp_path):
    text = (f"services:\n  web:\n    image: {IMAGE}\n    restart: unless-stopped\n    ports: ['8080:80']\n"
            "    volumes: ['/mnt/tank/web:/data']\n    labels: {a: b}\nx-notes: hi\n")
    out = run(write(tmp_path, text), pool="tank")
    assert out.config == yaml.safe_load(text)
    assert out.warnings == []
    assert out.ports == [{"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}]
    assert yaml.safe_load(dump(out.config)) == out.config


def test_interpolation_uses_app_env_then_dotenv_and_escapes_dollars_for_the_nas(tmp_path):
    text = (f"services:\n  web:\n    image: {IMAGE}\n    environment:\n      A: ${{A}}\n      B: ${{B:-dflt}}\n"
            "      C: pa$$word\n      D: $${NOT_A_VAR}\n")
    out = run(write(tmp_path, text, _env="A=from-dotenv\nB=from-dotenv\n"), variables={"A": "from-stack"})
    env = out.config["services"]["web"]["environment"]
    assert env == {"A": "from-stack", "B": "from-dotenv", "C": "pa$$word", "D": "$${NOT_A_VAR}"}


def test_local_env_file_is_inlined_with_a_warning_and_nas_env_file_kept(tmp_path):
    text = (f"services:\n  web:\n    image: {IMAGE}\n    env_file: [app.env, /mnt/tank/secrets/web.env]\n"
            "    environment: {B: override}\n")
    out = run(write(tmp_path, text, app_env="A=1\nB=2\n"), pool="tank")
    service = out.config["services"]["web"]
    assert service["environment"] == {"A": "1", "B": "override"}
    assert service["env_file"] == ["/mnt/tank/secrets/web.env"]
    assert any("services.web.env_file[0]: 'app.env' is on this machine" in w for w in out.warnings)


def test_missing_local_env_file_is_refused(tmp_path):
    found = problems(write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\n    env_file: nope.env\n"))
    assert any("services.web.env_file: file 'nope.env' not found" in p for p in found)


@pytest.mark.parametrize("source, fix", [
    ("/etc", "allowSystemPaths: true on homefleet:apps.web"),
    ("/var/run/docker.sock", "allowSystemPaths"),
    ("~/data", "is in a home folder, which means nothing on the NAS"),  # ./data: the app's folder (test_truenas_appdir)
    ("/mnt/.ix-apps/app_configs/x", "inside TrueNAS's own apps dataset"),
])
def test_bind_mounts_outside_the_pool_are_refused(tmp_path, source, fix):
    found = problems(write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['{source}:/x']\n"),
                     pool="tank")
    assert len(found) == 1 and found[0].startswith("compose/app.yml: services.web.volumes[0]: ") and fix in found[0]


def test_system_paths_are_allowed_with_a_warning_when_the_app_says_so(tmp_path):
    path = write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['/var/run/docker.sock:/s']\n")
    out = run(path, allow_system_paths=True)
    assert any("Docker socket" in w and "root on the NAS" in w for w in out.warnings)


def test_another_pool_is_a_warning(tmp_path):
    out = run(write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['/mnt/other/x:/x']\n"),
              pool="tank")
    assert any("not under the host's pool /mnt/tank/" in w for w in out.warnings)


def test_named_volumes_are_kept_with_a_deletion_warning(tmp_path):
    text = f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['data:/data']\nvolumes:\n  data:\n"
    out = run(write(tmp_path, text))
    assert out.config["services"]["web"]["volumes"] == ["data:/data"]
    assert any("named volume 'data'" in w and "deleteData: true" in w for w in out.warnings)


def test_networks_ports_and_images_are_warned_about(tmp_path):
    text = ("services:\n  web:\n    image: nginx\n    ports: ['80:80', '127.0.0.1:443:443']\n"
            "    networks: [lan]\n  dns:\n    image: docker.io/library/busybox:1.36\n    network_mode: host\n"
            "networks:\n  lan:\n    driver: macvlan\n    driver_opts: {parent: eth0}\n")
    out = run(write(tmp_path, text))
    text_w = "\n".join(out.warnings)
    assert "services.web.image: 'nginx' is not pinned" in text_w
    assert "services.web.ports[0]: host port 80 is where the TrueNAS web UI listens" in text_w
    assert "443" not in text_w                      # bound to loopback only
    assert "services.dns.network_mode: host" in text_w
    assert "networks.lan.driver: macvlan: containers get addresses on the LAN through eth0" in text_w


def test_duplicate_published_ports_are_refused(tmp_path):
    text = (f"services:\n  a:\n    image: {IMAGE}\n    ports: ['8080:80']\n"
            f"  b:\n    image: {IMAGE}\n    ports: ['8080:81']\n")
    found = problems(write(tmp_path, text))
    assert found == ["compose/app.yml: services.b.ports[0]: host port 8080/tcp is also published at "
                     "services.a.ports[0]. Publish each host port once"]


def test_secrets_and_configs_must_be_files_on_the_nas(tmp_path):
    text = (f"services:\n  web:\n    image: {IMAGE}\n    secrets: [a, b, c]\n"
            "secrets:\n  a: {file: /mnt/tank/secrets/a}\n  b: {file: ./b.txt}\n  c: {environment: C}\n"
            "configs:\n  conf: {content: 'x=1'}\n")
    found = problems(write(tmp_path, text), pool="tank")
    assert any(p.startswith("compose/app.yml: secrets.b.file: the secret file './b.txt' is relative") for p in found)
    assert any(p.startswith("compose/app.yml: secrets.c.environment: reads the environment of TrueNAS") for p in found)
    assert len(found) == 2


def test_secret_looking_values_are_warned_about(tmp_path):
    text = f"services:\n  db:\n    image: {IMAGE}\n    environment: {{POSTGRES_PASSWORD: hunter2, TZ: UTC}}\n"
    out = run(write(tmp_path, text))
    assert any("services.db.environment: POSTGRES_PASSWORD looks like a secret" in w for w in out.warnings)
    assert not any("hunter2" in w for w in out.warnings)


def test_a_homefleet_secret_is_refused_on_truenas(tmp_path):
    text = f"services:\n  db:\n    image: {IMAGE}\n    environment:\n      POSTGRES_PASSWORD: ${{DBPASS}}\n"
    found = problems(write(tmp_path, text), secrets=["DBPASS"], pool="tank")
    assert len(found) == 1
    assert found[0].startswith("compose/app.yml: services.db.environment.POSTGRES_PASSWORD: uses the secret DBPASS")
    assert "under /mnt/tank/ and name that file in env_file:" in found[0]


def test_build_marker_and_project_name(tmp_path):
    found = problems(write(tmp_path, "services:\n  web:\n    build: .\nx-homefleet: {stack: a, app: b}\n"))
    assert any("services.web.build: is not supported" in p for p in found)
    out = run(write(tmp_path, f"name: mine\nservices:\n  web:\n    image: {IMAGE}\n", name="named.yml"))
    assert any("name: is ignored on TrueNAS: the project is always named ix-web" in w for w in out.warnings)
    found = problems(write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\nx-homefleet: {{}}\n", name="m.yml"))
    assert found == ["compose/app.yml: x-homefleet: is homefleet's ownership marker and is set by homefleet. Remove it"]


# ---------------------------------------------------------------- the plan

HOSTS = {
    "pve1": {"kind": "proxmox", "address": "127.0.0.1"},
    "nas1": {"kind": "truenas", "address": "127.0.0.1", "pool": "tank", "sudo": True, "midcltGeneration": "24.10"},
}


def plan(tmp_path, apps: dict):
    stack, catalog = load("fleet", {"hosts": HOSTS, "apps": apps}, project_dir=str(tmp_path))
    return plan_truenas("fleet", stack, make_plan("fleet", stack, catalog).targets, project_dir=str(tmp_path))


def test_plan_gives_truenasapp_inputs_for_apps_on_truenas_hosts_only(tmp_path):
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose/web.yml").write_text(f"services:\n  web:\n    image: {IMAGE}\n    ports: ['8080:80']\n")
    plans = plan(tmp_path, {"web": {"host": "nas1", "compose": "compose/web.yml", "running": False,
                                    "ports": [{"port": 8080, "scheme": "https"}]},
                            "ct": {"host": "pve1", "image": IMAGE}})
    assert [p.app for p in plans] == ["web"]
    props = plans[0].props
    assert props["host"]["name"] == "nas1" and props["stack"] == "fleet"
    assert props["running"] is False and props["sudo"] is True and props["generation"] == "24.10"
    assert props["delete_data"] is False and props["ports"] == [{"port": 8080, "scheme": "https"}]
    assert yaml.safe_load(props["compose"])["services"]["web"]["image"] == IMAGE


def test_plan_refuses_proxmox_keys_and_non_compose_apps_on_truenas(tmp_path):
    (tmp_path / "c.yml").write_text(f"services:\n  web:\n    image: {IMAGE}\n")
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, {"a": {"host": "nas1", "compose": "c.yml", "memory": 512, "vmid": 200},
                        "b": {"host": "nas1", "image": IMAGE},
                        "c": {"host": "nas1", "compose": "missing.yml"}})
    assert err.value.problems == [
        "stacks/Pulumi.fleet.yaml: homefleet:apps.a.memory: is not used on the TrueNAS host nas1. "
        "Remove it (TrueNAS apps are configured in their compose file)",
        "stacks/Pulumi.fleet.yaml: homefleet:apps.a.vmid: is not used on the TrueNAS host nas1. "
        "Remove it (TrueNAS apps are configured in their compose file)",
        "stacks/Pulumi.fleet.yaml: homefleet:apps.b.image: host nas1 is a TrueNAS host, where apps are Docker "
        "Compose files. Set compose: <file> for this app, or place it on a Proxmox host",
        "stacks/Pulumi.fleet.yaml: homefleet:apps.c.compose: file 'missing.yml' not found. "
        "Write the path relative to the project folder (where Pulumi.yaml is), e.g. stacks/compose/<app>.yml",
    ]


@pytest.mark.parametrize("value, misread", [("1e3", True), ("8E1", True), ("0o17", True), ("1.5e3", True),
                                            ("0x1F", False), (".inf", False), ("1.0", False), ("8080", False),
                                            ("yes", False), ("v1e3", False), ("1e", False), ("", False)])
def test_strings_truenas_2410_turns_into_numbers(value, misread):
    from homefleet.compose.truenas import misread_after_redump
    assert misread_after_redump(value) is misread


def test_number_like_env_and_labels_become_lists_and_the_rest_is_warned(tmp_path):
    text = (f"services:\n  web:\n    image: {IMAGE}\n    restart: always\n"
            "    environment: {A: '1e3', B: plain, C: 8080, D: true}\n    labels: {l: '0o17'}\n"
            "    command: ['x', '8E1']\n")
    out = run(write(tmp_path, text))
    web = out.config["services"]["web"]
    assert web["environment"] == ["A=1e3", "B=plain", "C=8080", "D=true"] and web["labels"] == ["l=0o17"]
    assert [w for w in out.warnings if "reaches the container as a number" in w] == [
        "compose/app.yml: services.web.command[1]: '8E1' reaches the container as a number on TrueNAS 24.10 "
        "and 25.04 (TrueNAS re-writes the compose with PyYAML, which leaves it unquoted, and compose reads "
        "YAML 1.2). Write it so it is not a number, e.g. with a unit or a prefix, or use TrueNAS 25.10+"]
    plain = run(write(tmp_path, text.replace("'1e3'", "x").replace("'0o17'", "y"), "b.yml"))
    assert plain.config["services"]["web"]["environment"] == {"A": "x", "B": "plain", "C": 8080, "D": True}


def test_a_service_without_restart_is_warned(tmp_path):
    out = run(write(tmp_path, f"services:\n  web:\n    image: {IMAGE}\n"))
    assert any("services.web.restart: is not set" in w and "restart: unless-stopped" in w for w in out.warnings)
