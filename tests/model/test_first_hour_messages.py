"""Issue 19: what a new user reads in their first hour — every message in the stack file's terms."""

from pathlib import Path

import pytest

from homefleet.config import check_registries, load
from homefleet.errors import ConfigError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILk+ktnobhr5ifv5vRx9wwuL6RuRiw73LFHeYGoOLq/J"
HOSTS = {"pve1": {"kind": "proxmox", "address": "192.0.2.10", "hostKey": KEY},
         "pve1-again": {"kind": "proxmox", "address": "192.0.2.10", "hostKey": KEY},
         "pve2": {"kind": "proxmox", "address": "192.0.2.11", "hostKey": KEY}}


def problems(apps: dict) -> list:
    with pytest.raises(ConfigError) as err:
        load("home", {"hosts": HOSTS, "apps": apps})
    return err.value.problems


def test_a_package_typo_comes_with_the_other_errors_and_a_close_match():
    got = problems({"media": {"host": "pve1", "package": "jellyfn"},
                    "web": {"host": "pve1", "image": "nginx:1.27", "memory": "lots"}})
    assert len(got) == 2, got
    assert any("homefleet:apps.web.memory" in p for p in got)
    typo = next(p for p in got if "apps.media.package" in p)
    assert "no package named 'jellyfn'" in typo and "Did you mean 'jellyfin'?" in typo


def test_one_vmid_twice_on_one_machine_is_refused_at_preview_whatever_the_host_names():
    got = problems({"a": {"host": "pve1", "image": "nginx:1.27", "vmid": 300},
                    "b": {"host": "pve1-again", "image": "nginx:1.27", "vmid": 300}})
    assert got == ["stacks/Pulumi.home.yaml: homefleet:apps.b.vmid: 300 is also the vmid of app a on host pve1, "
                   "the same machine as pve1-again (192.0.2.10:22). Give each app on a host its own vmid, or "
                   "leave vmid out to allocate one"]
    load("home", {"hosts": HOSTS, "apps": {"a": {"host": "pve1", "image": "nginx:1.27", "vmid": 300},
                                           "b": {"host": "pve2", "image": "nginx:1.27", "vmid": 300}}})


def test_registries_split_at_their_dots_are_named_with_the_working_command():
    with pytest.raises(ConfigError) as err:
        check_registries("home", {"ghcr": {"io": {"password": "hunter2", "username": "me"}},
                                  "registry": {"example": {"net:5000": {"password": "pw"}}}})
    first, second = err.value.problems
    assert "holds the registry 'ghcr.io' split at its dots (ghcr -> io)" in first
    assert "pulumi config set --secret --path 'homefleet:registries[\"ghcr.io\"].password'" in first
    assert "pulumi config rm --path 'homefleet:registries.ghcr'" in first
    assert "'registry.example.net:5000'" in second
    assert "hunter2" not in str(err.value)
    check_registries("home", {"ghcr.io": {"username": "me", "password": "pw"},
                              "registry.example.net:5000": {"username": "me", "password": "pw"}})


def test_an_unpinned_image_gets_a_located_warning():
    from homefleet.config import unpinned_warnings

    stack, _ = load("home", {"hosts": HOSTS, "apps": {
        "who": {"host": "pve1", "image": "traefik/whoami:latest"},
        "bare": {"host": "pve1", "image": "nginx"},
        "ok": {"host": "pve1", "image": "docker.io/traefik/whoami:v1.10.3"}}})
    got = unpinned_warnings("home", stack)
    assert len(got) == 2
    assert got[0].startswith("stacks/Pulumi.home.yaml: homefleet:apps.who.image: 'traefik/whoami:latest' has the "
                             "moving tag 'latest'")
    assert "apps.bare.image" in got[1] and "no tag" in got[1]


def test_the_simulated_registry_holds_every_image_the_repo_stacks_name():
    """issue 19.8: a non-catalog image in the demo stack failed with `manifest unknown`."""
    import yaml

    from sim import registry
    from sim.images import normalize_ref

    seeded = {spec.ref for spec in registry.seed_specs()}
    for path in registry.STACKS_DIR.glob("Pulumi.*.yaml"):
        for app in (yaml.safe_load(path.read_text())["config"].get("homefleet:apps") or {}).values():
            if app.get("image"):
                assert normalize_ref(app["image"]) in seeded, (path.name, app["image"])


def test_outputs_the_plan_fixes_are_known_before_the_provider_runs():
    from homefleet.outputs import known_ct_outputs

    static = {"vmid": 620, "nets": [{"ip": "192.0.2.62/24"}], "ports": [{"port": 80, "scheme": "http"},
                                                                         {"port": 53, "scheme": None}]}
    assert known_ct_outputs(static) == {"vmid": 620, "ip": "192.0.2.62", "urls": ["http://192.0.2.62:80"]}
    assert known_ct_outputs({"vmid": None, "nets": [{"ip": "dhcp"}], "ports": []}) == {}


def test_host_defaults_reach_compose_services_as_they_reach_image_apps():
    """issue 19.15: `defaults: {timezone, onboot}` on the host were not applied to compose services."""
    from homefleet.plan import make_plan

    host = {**HOSTS["pve1"], "defaults": {"timezone": "Europe/Berlin", "onboot": True, "nameserver": "192.0.2.53"}}
    stack, catalog = load("home", {"hosts": {"pve1": host}, "apps": {
        "sync": {"host": "pve1", "compose": "stacks/compose/syncthing.yml"},
        "web": {"host": "pve1", "image": "nginx:1.27"}}})
    plan = make_plan("home", stack, catalog)
    for ct in plan.cts:
        assert ct.props.get("timezone") == "Europe/Berlin", (ct.name, ct.props)
        assert ct.props.get("nameserver") == "192.0.2.53", (ct.name, ct.props)
        assert ct.props.get("onboot") is True, (ct.name, ct.props)


def test_ssh_public_keys_shape_is_checked_and_documented():
    template = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
    keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILk+ktnobhr5ifv5vRx9wwuL6RuRiw73LFHeYGoOLq/J me@laptop\n" \
           "ecdsa-sha2-nistp256 AAAAE2VjZHNh other\n"
    load("home", {"hosts": HOSTS, "apps": {"shell": {"host": "pve1", "template": template, "sshPublicKeys": keys}}})
    got = problems({"a": {"host": "pve1", "template": template, "sshPublicKeys": "-----BEGIN OPENSSH PRIVATE KEY-----"},
                    "b": {"host": "pve1", "image": "nginx:1.27", "sshPublicKeys": keys}})
    assert any("apps.a.sshPublicKeys: line 1 is not a public key" in p and "never a private key" in p for p in got), got
    assert any("apps.b" in p and "`sshPublicKeys` works only with a classic `template`" in p for p in got), got
    assert "| `sshPublicKeys` |" in (Path(__file__).resolve().parents[2] / "docs" / "stacks.md").read_text()


def test_registry_and_secret_problems_come_in_the_same_round_as_the_rest():
    from homefleet.config import load_all

    with pytest.raises(ConfigError) as err:
        load_all("home", {"hosts": HOSTS, "apps": {"web": {"host": "pve1", "image": "nginx:1.27", "memory": "lots"}}},
                 registries={"ghcr": {"io": {"password": "pw"}}}, secrets={"web": {"1BAD": "x"}})
    got = err.value.problems
    assert len(got) == 3, got
    assert [p.split(": ")[1].split(".")[0].split("[")[0] for p in got] == [
        "homefleet:apps", "homefleet:registries", "homefleet:secrets"]
