"""The local OCI registry: start Debian's docker-registry, seed it, push and retag images.

A real name `docker.io/library/nginx:1.27` is stored as
`127.0.0.1:PORT/docker.io/library/nginx:1.27`; each host's registries.conf
rewrites the real registries to that location.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from sim import images, procs, regproxy

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
PUSH_PARALLEL = 4

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = REPO_ROOT / "packages"
STACKS_DIR = REPO_ROOT / "stacks"


@dataclass
class Registry:
    address: str          # 127.0.0.1:PORT
    pid: int
    started: int | None   # /proc start time, to recognise the pid later


@dataclass
class Proxy:
    address: str          # 127.A.B.C (port 80), where hosts resolve the real registry names
    pid: int
    started: int | None


def cache_dir() -> Path:
    """Built layouts, keyed by content, shared by every simulator run on the machine."""
    base = os.environ.get("SIM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "homefleet-sim")
    return Path(base) / "layouts"


# ---------------------------------------------------------------- process

def write_config(sim_dir: Path, port: int) -> Path:
    root = sim_dir / "registry"
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {json.dumps(str(root))}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return config


def start(sim_dir: Path, attempts: int = 3) -> Registry:
    """Start the registry on a free loopback port and wait until /v2/ answers."""
    last_error = ""
    for _ in range(attempts):
        port = procs.free_port()
        config = write_config(sim_dir, port)
        with open(sim_dir / "registry.log", "ab") as log:
            proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        address = f"127.0.0.1:{port}"
        if _wait_ready(address, proc, timeout=10):
            return Registry(address, proc.pid, procs.start_time(proc.pid))
        procs.stop([proc.pid])
        last_error = (sim_dir / "registry.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"docker-registry did not start:\n{last_error}")


def _wait_ready(address: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False


def start_proxy(sim_dir: Path, upstream: str, attempts: int = 5) -> Proxy:
    """Start sim.regproxy on a fleet-private loopback address (see its docstring)."""
    for attempt in range(attempts):
        address = regproxy.listen_address(str(sim_dir), attempt)
        with open(sim_dir / "regproxy.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sim.regproxy", "--listen", address, "--upstream", upstream],
                cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((address, 80), timeout=1).close()
                return Proxy(address, proc.pid, procs.start_time(proc.pid))
            except OSError:
                time.sleep(0.02)
        procs.stop([proc.pid])
    raise RuntimeError(f"sim.regproxy did not start; see {sim_dir / 'regproxy.log'}")


# ---------------------------------------------------------------- pushing

def local_ref(address: str, ref: str) -> str:
    """`docker.io/library/nginx:1.27` -> `127.0.0.1:PORT/docker.io/library/nginx:1.27`."""
    return f"{address}/{images.normalize_ref(ref)}"


def push_layout(layout: Path, ref: str, address: str) -> str:
    """skopeo copy an OCI layout into the registry; returns the pushed manifest digest."""
    tag = images.split_ref(images.normalize_ref(ref))[2]
    with tempfile.NamedTemporaryFile(prefix="sim-digest-") as digest_file:
        argv = [SKOPEO, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                "--digestfile", digest_file.name,
                f"oci:{layout}:{tag}", f"docker://{local_ref(address, ref)}"]
        result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"push of {ref} failed: {result.stderr.strip()}")
        return Path(digest_file.name).read_text().strip()


def push_spec(spec: images.ImageSpec, address: str, cache: bool = True) -> str:
    """Push one image; one-off images (cache=False) are built in a temporary folder."""
    if cache:
        layout, _ = images.cached_layout(spec, cache_dir())
        return push_layout(layout, spec.ref, address)
    with tempfile.TemporaryDirectory(prefix="sim-image-") as tmp:
        images.build_layout(spec, Path(tmp))
        return push_layout(Path(tmp), spec.ref, address)


def seed(address: str, specs: list[images.ImageSpec]) -> dict[str, str]:
    """Build every layout, then push them a few at a time; returns {ref: digest}."""
    for spec in specs:
        images.cached_layout(spec, cache_dir())
    with ThreadPoolExecutor(max_workers=PUSH_PARALLEL) as pool:
        digests = list(pool.map(lambda s: push_spec(s, address), specs))
    return {spec.ref: digest for spec, digest in zip(specs, digests)}


def stack_images(stacks_dir: Path) -> list[images.ImageSpec]:
    """An image for every `image:` the repo's stack files name (the demo, the examples), built
    like the catalog's generic ones: so a non-catalog app in the demo stack pulls, as it would
    from its real registry, instead of failing with `manifest unknown`."""
    specs = []
    for path in sorted(Path(stacks_dir).glob("Pulumi.*.yaml")):
        try:
            apps = (yaml.safe_load(path.read_text()) or {}).get("config", {}).get("homefleet:apps") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        for app in apps.values() if isinstance(apps, dict) else []:
            ref = app.get("image") if isinstance(app, dict) else None
            if isinstance(ref, str) and "@" not in ref and images.VALID_REF.match(images.normalize_ref(ref)):
                ports = [p["port"] for p in app.get("ports") or [] if isinstance(p, dict) and isinstance(p.get("port"), int)]
                specs.append(images.generic_spec(ref, ports=[f"{p}/tcp" for p in ports]))
    return specs


def seed_specs() -> list[images.ImageSpec]:
    specs = {spec.ref: spec for spec in images.seed_images(PACKAGES_DIR)}
    for spec in stack_images(STACKS_DIR):
        specs.setdefault(spec.ref, spec)
    return list(specs.values())


# ---------------------------------------------------------------- for tests

# OCI config names accepted in `config_overrides`, mapped to ImageSpec fields.
_CONFIG_FIELDS = {
    "Entrypoint": "entrypoint", "Cmd": "cmd", "Env": "env", "ExposedPorts": "exposed_ports",
    "Volumes": "volumes", "WorkingDir": "workdir", "User": "user",
    "StopSignal": "stop_signal", "Labels": "labels",
}


def registry_address(sim_dir: Path) -> str:
    return json.loads((Path(sim_dir) / "hosts.json").read_text())["registry"]["address"]


def base_spec(ref: str) -> images.ImageSpec:
    ref = images.normalize_ref(ref)
    for spec in seed_specs():
        if spec.ref == ref:
            return spec
    return images.generic_spec(ref)


def push_image(sim_dir: Path, ref: str, config_overrides: dict | None = None,
               files: dict[str, str] | None = None, revision: str | None = None) -> str:
    """Push `ref` (the seeded content, or a generic image) with changes; returns its digest.

    `config_overrides` takes OCI config names (`Entrypoint`, `Env`, `ExposedPorts`
    as a list or dict, ...) or ImageSpec field names; `files` adds {path: text}.
    """
    changes: dict = {}
    valid = {f.name for f in fields(images.ImageSpec)}
    for key, value in (config_overrides or {}).items():
        name = _CONFIG_FIELDS.get(key, key)
        if name not in valid:
            raise ValueError(f"unknown image config field: {key}")
        if name in ("exposed_ports", "volumes") and isinstance(value, dict):
            value = list(value)
        changes[name] = value
    spec = base_spec(ref)
    if files:
        changes["files"] = {**spec.files, **files}
    if revision is not None:
        changes["revision"] = revision
    spec = spec.with_overrides(**changes)
    return push_spec(spec, registry_address(sim_dir), cache=False)


def retag(sim_dir: Path, ref: str) -> str:
    """Re-point `ref` at new content (a new revision file), so its digest changes."""
    return push_image(sim_dir, ref, revision=f"retag-{time.time_ns()}")
