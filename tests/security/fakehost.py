"""A stand-in for `transport.run`/`put` inside the providers, for the fast injection path.

It records every argv (with its stdin) a provider sends and answers as a host would, just
enough for the provider to go on: a vmid, a digest, a read-back with our marker, a job id.
What the argv would do on a host is checked separately by running it through a real shell
(shellsim.py). The real transport's quoting runs on every argv, so what it refuses (NUL, a
lone surrogate) is refused here too.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from dataclasses import dataclass, field

from providers import backups, ct_create, ct_data, ct_update, health, hostcache, oci_template, proxmox_ct, truenas_app, upgrade
from providers.hosts import pct, script
from providers.transport import Result, to_command_line

DIGEST = "sha256:" + "ab" * 32
SECTION = script.SECTION.format


def config_text(props: dict) -> str:
    """`pct config` output for a CT made from `props` (its description carries our marker)."""
    opts = pct.spec_options(props)
    lines = []
    for key, value in opts.items():
        if key == "description":
            lines.append(f"description: {urllib.parse.quote(value)}")
        elif key == "rootfs":
            lines.append(f"rootfs: {value.split(':')[0]}:subvol-100-disk-0,size=4G")
        elif key.startswith("mp") and not value.startswith("/"):
            storage, _, rest = value.partition(",")
            lines.append(f"{key}: {storage.split(':')[0]}:subvol-100-disk-1,{rest},size=1G")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


@dataclass
class Sent:
    argv: list
    stdin: bytes


IMAGE_CONFIG = '{"config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx"], "Env": ["PATH=/usr/bin"]}}'


@dataclass
class FakeHost:
    props: dict = field(default_factory=dict)   # the CT the host "has" (for reads)
    app_compose: dict = field(default_factory=dict)  # TrueNAS: the app's stored compose
    app_exists: bool = False                          # TrueNAS: between app.create and app.delete
    sent: list = field(default_factory=list)
    uploads: list = field(default_factory=list)
    pulled: list = field(default_factory=list)        # TrueNAS: images app.image.pull was given

    # ---------------------------------------------------------------- transport API
    def run(self, target, argv, stdin=None, timeout=None) -> Result:
        to_command_line(argv)  # the one quoting step: refuses what no command line can carry
        self.sent.append(Sent(list(argv), bytes(stdin or b"")))
        return Result(self._answer(list(argv)), "", 0)

    def put(self, target, data, remote_path, mode=0o600, timeout=None) -> None:
        self.uploads.append((remote_path, bytes(data), mode))

    # ---------------------------------------------------------------- answers
    def _readback(self, created: bool) -> str:
        head = SECTION("created") + "\n@@homefleet:previous-env@@\nPATH=/usr/bin\n" if created else ""
        return (head + SECTION("config") + "\n" + config_text(self.props) + SECTION("status") + "\nstatus: running\n"
                + SECTION("ip") + "\n198.18.0.5\n")

    def _answer(self, argv: list) -> str:
        if argv == pct.nextid_argv():
            return "100\n"
        if argv[:3] == ["skopeo", "inspect", "--config"]:
            return IMAGE_CONFIG + "\n"
        if argv[:2] == ["skopeo", "inspect"]:
            return DIGEST + "\n"
        if argv[:2] == ["pct", "config"]:
            return config_text(self.props)
        if "midclt" in argv[:3]:
            return self._midclt(argv[argv.index("midclt") + 2:])
        if "python3" in argv[:3]:          # midclt's main() in-process, the payload on stdin
            if argv[-1] == "app.image.pull":
                words = json.loads(self.sent[-1].stdin or b"[]")
                self.pulled.append(json.loads(words[1])["image"])
            return self._midclt(argv[-1:])
        if argv[:2] != ["sh", "-c"]:
            return ""
        text = argv[2]
        # providers/hosts/health.py: the gate after a start, known by how it begins (a hostile value
        # such as '/dev/homefleet-health' appears later in other scripts, quoted)
        if text.startswith(("set -u\ndeadline=", 'set -u\nout=""; rc=1')):
            return "homefleet-health: healthy\n"
        if "skopeo copy" in text:
            return (SECTION("archive") + "\n1234 /var/lib/vz/template/cache/x.tar\n" + SECTION("config") + "\n"
                    + IMAGE_CONFIG + "\n")
        if "skopeo inspect" in text:
            return DIGEST + "\n"
        if "move-volume" in text and SECTION("parked") in text:
            return SECTION("parked") + "\n101\n"
        if "pct create" in text:
            return self._readback(created=True)
        if "--notes-template" in text:     # providers/hosts/vzdump.py: the backup before a recreate
            return "INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-lxc-100-2026_01_01-00_00_00.tar.zst'\n"
        if SECTION("storages") in text:    # what the backup is planned from
            return (SECTION("config") + "\n" + config_text(self.props) + SECTION("status") + "\nstatus: running\n"
                    + SECTION("storages") + "\n" + SECTION("backups") + "\n[]\n")
        if "--content" in text and "backup" in text:   # the app's backups, for pruning
            return "[]\n"
        # after the Proxmox scripts: their text carries config values, and a hostile value may read
        # `app.query`; the TrueNAS read carries none (the compose goes on stdin)
        if "app.query" in text:
            found = (SECTION("query") + "\n" + json.dumps([self._app_entry()]) + "\n" + SECTION("query-rc") + "\n0\n"
                     + SECTION("config") + "\n" + json.dumps(self.app_compose) + "\n" + SECTION("config-rc") + "\n0\n"
                     if self.app_exists else SECTION("query") + "\n[]\n" + SECTION("query-rc") + "\n0\n")
            return (found + SECTION("docker") + '\n{"status": "RUNNING", "description": ""}\n'
                    + SECTION("docker-rc") + "\n0\n" + SECTION("pool") + '\n[{"name": "tank"}]\n'
                    + SECTION("pool-rc") + "\n0\n")
        if SECTION("config") in text:
            return self._readback(created=False)
        return ""

    def _app_entry(self) -> dict:
        return {"name": "app", "state": "RUNNING", "active_workloads": {
            "used_ports": [], "container_details": [{"service_name": "web", "state": "running"}]}}

    def _midclt(self, call: list) -> str:
        method = call[0] if call else ""
        if method == "system.version_short":
            return "24.10.2.4\n"
        if method == "app.image.query":        # every pulled tag carries DIGEST
            return json.dumps([{"repo_tags": [image], "repo_digests": [image.rsplit(":", 1)[0] + "@" + DIGEST]}
                               for image in self.pulled]) + "\n"
        if method in ("app.create", "app.update", "app.delete", "app.start", "app.stop", "app.image.pull"):
            if method == "app.image.pull":
                return "7\n"
            self.app_exists = method != "app.delete"
            return "7\n"
        if method == "core.get_jobs":
            return json.dumps([{"id": 7, "state": "SUCCESS", "result": None}]) + "\n"
        if method == "app.query":
            return json.dumps([self._app_entry()]) + "\n"
        return "null\n"


@contextlib.contextmanager
def installed(host: FakeHost, monkeypatch):
    """Route every provider's host calls to `host` for the block."""
    with monkeypatch.context() as patch:
        for module in (ct_create, ct_update, ct_data, oci_template, truenas_app, hostcache, health, backups, upgrade):
            patch.setattr(module, "run", host.run)
            if hasattr(module, "put"):
                patch.setattr(module, "put", host.put)
        patch.setattr(proxmox_ct.log, "info", lambda *a, **k: None)
        patch.setattr(truenas_app, "stable_seconds", lambda props=None: 0.0)    # one healthy look settles
        yield host
