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
