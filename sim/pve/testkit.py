"""Helpers for tests of the fake tools: run a tool in a throw-away host, build OCI archives.

`ToolHost(tmp_path).run("pct", "config", "100")` runs `python -m sim.pve pct config 100` with
`SIM_ROOT`/`SIM_STATE`/`SIM_NODE` pointing into `tmp_path`.

`build_oci_archive(path, files=..., config=...)` writes an `oci-archive:` tar the way
`skopeo copy ... oci-archive:` does: `oci-layout`, `index.json` and `blobs/sha256/*`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


class ToolHost:
    def __init__(self, base: Path, node: str = "pve"):
        self.root = base / "root"
        self.state = base / "state"
        self.node = node
        self.root.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        for bridge in ("vmbr0", "vmbr1"):  # what lxc-start needs for a netN (see pct_power)
            mtu = self.path(f"/sys/class/net/{bridge}/mtu")
            mtu.parent.mkdir(parents=True, exist_ok=True)
            mtu.write_text("1500\n")

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(SIM_ROOT=str(self.root), SIM_STATE=str(self.state), SIM_NODE=self.node,
                   PYTHONPATH=str(REPO))
        return env

    def run(self, tool: str, *args: str, timeout: float = 30, env: dict | None = None) -> Result:
        proc = subprocess.run([sys.executable, "-m", "sim.pve", tool, *args], env={**self.env, **(env or {})},
                              capture_output=True, timeout=timeout, cwd=REPO)
        return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                      proc.stderr.decode("utf-8", "replace"), proc.stdout)

    def popen(self, tool: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sim.pve", tool, *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)

    def path(self, real: str) -> Path:
        return self.root / real.lstrip("/")

    @property
    def template_cache(self) -> Path:
        return self.path("/var/lib/vz/template/cache")

    @property
    def conf_dir(self) -> Path:
        return self.path(f"/etc/pve/nodes/{self.node}/lxc")

    def conf_text(self, vmid: int) -> str:
        return (self.conf_dir / f"{vmid}.conf").read_text()


# --- OCI archives ------------------------------------------------------------------------------

MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def layer_tar(files: dict[str, bytes | str | None], symlinks: dict[str, str] | None = None) -> bytes:
    """A layer: path -> content (`None` = directory, `str` ending in '/' also a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            content = files[path]
            name = path.strip("/")
            if content is None:
                if name not in dirs:
                    dirs.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                continue
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.startswith(("bin/", "usr/bin/")) else 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name.strip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def build_oci_archive(path: Path, layers: list[bytes], config: dict,
                      layer_media_type: str = MT_LAYER_GZIP,
                      config_media_type: str = "application/vnd.oci.image.config.v1+json",
                      architecture: str = "amd64") -> Path:
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_descs, diff_ids = [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        data = gzip.compress(raw, mtime=0) if layer_media_type.endswith("gzip") else raw
        layer_descs.append({"mediaType": layer_media_type, "digest": add(data), "size": len(data)})
    image_config = {"architecture": architecture, "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_bytes = json.dumps(image_config).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": config_media_type, "digest": add(config_bytes),
                           "size": len(config_bytes)},
                "layers": layer_descs}
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = add(manifest_bytes)
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
         "size": len(manifest_bytes)}]}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        def put(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for digest, data in blobs.items():
            put("blobs/sha256/" + digest.split(":", 1)[1], data)
        put("index.json", json.dumps(index).encode())
        put("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return path
