"""Small OCI images for the simulated registry, built in pure Python.

Each image is one gzip'd tar layer (os-release, passwd, group, an entrypoint
script, volume and working directories, extra files) plus an OCI image config
with a realistic shape. Builds are deterministic: the same spec always gives
the same digests, and `revision` is the knob that changes them.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import image_facts

# Fixed mtime for every tar member and the gzip header, so builds are reproducible.
EPOCH = 1700000000
CREATED = "2024-01-01T00:00:00Z"
BEHAVIOUR_FILE = "/etc/homefleet-sim/entrypoint.json"   # read by sim/pve/appstart.py
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

OS_RELEASE = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
              'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
    "alpine": 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'
              'PRETTY_NAME="Alpine Linux v3.20"\n',
}


def os_release(os_id: str) -> str:
    return OS_RELEASE.get(os_id, f'NAME="{os_id}"\nID={os_id}\nPRETTY_NAME="{os_id}"\n')


# ---------------------------------------------------------------- references

def normalize_ref(ref: str) -> str:
    """`nginx:1.27` -> `docker.io/library/nginx:1.27`, as docker and skopeo read it.

    A digest (`@sha256:...`) is dropped: the simulator cannot make content with
    a given digest, so it seeds the tag (or `latest`) instead.
    """
    ref = ref.strip()
    if ref.startswith("docker://"):
        ref = ref[len("docker://"):]
    name = ref.split("@", 1)[0]
    tag = "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    return f"{domain}/{path.lower()}:{tag}"


def split_ref(ref: str) -> tuple[str, str, str]:
    """A normalized ref -> (registry domain, repository path, tag)."""
    name, tag = ref.rsplit(":", 1)
    domain, path = name.split("/", 1)
    return domain, path, tag


# ---------------------------------------------------------------- specs

# Bump when layer_files/build_layer change what a spec builds: the layout cache is keyed by
# content and shared by every simulator run on the machine.
LAYER_BUILD = "3: entrypoint.json of every image with an entrypoint names image, version, ports"


@dataclass
class ImageSpec:
    ref: str                                  # normalized, with tag
    os_id: str = "debian"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    exposed_ports: list[str] = field(default_factory=list)   # "8096/tcp"
    volumes: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    stop_signal: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)       # path -> text
    revision: str = ""                        # bump to change the digest
    users: dict[str, list[int]] = field(default_factory=dict)  # name -> [uid, gid] in passwd
    dirs: dict[str, list[int]] = field(default_factory=dict)   # path -> [uid, gid, mode]
    behaviour: dict = field(default_factory=dict)             # the entrypoint's, see image_facts

    def __post_init__(self) -> None:
        self.ref = normalize_ref(self.ref)
        if not any(e.startswith("PATH=") for e in self.env):
            self.env = [f"PATH={DEFAULT_PATH}"] + list(self.env)

    def key(self) -> str:
        """Content key: equal keys build byte-identical layouts."""
        blob = json.dumps({**dataclasses.asdict(self), "build": LAYER_BUILD}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def with_overrides(self, **changes) -> "ImageSpec":
        return dataclasses.replace(self, **changes)


def _app_name(ref: str) -> str:
    return split_ref(ref)[1].rsplit("/", 1)[-1]


def generic_spec(ref: str, ports=None, volumes=None) -> ImageSpec:
    """A plausible app image for a reference we know nothing else about."""
    ref = normalize_ref(ref)
    name = _app_name(ref)
    tag = split_ref(ref)[2]
    var = re.sub(r"[^A-Z0-9]", "_", name.upper())
    return ImageSpec(
        ref=ref,
        entrypoint=["/usr/local/bin/docker-entrypoint.sh"],
        cmd=[name],
        env=[f"PATH={DEFAULT_PATH}", f"{var}_VERSION={tag}", "LANG=C.UTF-8"],
        exposed_ports=list(ports or []),
        volumes=list(volumes or []),
        workdir="/app",
        # the commands its healthchecks run (pg_isready, redis-cli...) whatever its tag
        behaviour=_commands_of(split_ref(ref)[1]),
    )


def _commands_of(repository: str) -> dict:
    commands = ((image_facts.facts_for(repository) or {}).get("behaviour") or {}).get("commands")
    return {"commands": dict(commands)} if commands else {}


def fixed_test_images() -> list[ImageSpec]:
    return [
        ImageSpec(ref="docker.io/library/alpine:3.20", os_id="alpine", cmd=["/bin/sh"]),
        ImageSpec(
            ref="docker.io/library/nginx:1.27",
            entrypoint=["/docker-entrypoint.sh"],
            cmd=["nginx", "-g", "daemon off;"],
            env=[f"PATH={DEFAULT_PATH}", "NGINX_VERSION=1.27.3", "NJS_VERSION=0.8.7"],
            exposed_ports=["80/tcp"],
            stop_signal="SIGQUIT",
        ),
        ImageSpec(
            ref="docker.io/jellyfin/jellyfin:10.10.3",
            entrypoint=["/jellyfin/jellyfin", "--datadir", "/config", "--cachedir", "/cache",
                        "--ffmpeg", "/usr/lib/jellyfin-ffmpeg/ffmpeg"],
            env=[f"PATH={DEFAULT_PATH}", "HEALTHCHECK_URL=http://localhost:8096/health",
                 "DEBIAN_FRONTEND=noninteractive", "LC_ALL=en_US.UTF-8", "LANG=en_US.UTF-8",
                 "LANGUAGE=en_US:en", "JELLYFIN_DATA_DIR=/config", "JELLYFIN_CACHE_DIR=/cache"],
            exposed_ports=["8096/tcp"],
            volumes=["/config", "/cache"],
        ),
        _test_app("1.0"),
        _test_app("2.0"),
        # issue 15's upgrade cases: each new version migrates /data at start (as root, then as
        # the app user, the gosu pattern), then serves; see sim/pve/appstart.py and sim/pve/probe.py
        _test_app_migrating("2.1-unhealthy", http={"/health": 500}),
        _test_app_migrating("2.2-crash", exit_after={
            "seconds": 3, "status": 1, "error": "panic: migration 2.2 failed: no such column"}),
        _test_app_migrating("2.3"),
        # PVE dies with 'unable to detect OS distribution' on an unknown os-release ID.
        ImageSpec(ref="docker.io/library/busybox:1.36", os_id="busybox", cmd=["sh"]),
    ]


def _test_app(version: str) -> ImageSpec:
    return ImageSpec(
        ref=f"ghcr.io/homefleet/test-app:{version}",
        entrypoint=["/app/run.sh"],
        cmd=["--listen", ":8080"],
        env=[f"PATH={DEFAULT_PATH}", f"APP_VERSION={version}", "APP_DATA=/data"],
        exposed_ports=["8080/tcp"],
        volumes=["/data"],
        workdir="/app",
        user="app",
        labels={"org.opencontainers.image.version": version},
    )


def _test_app_migrating(tag: str, **behaviour) -> ImageSpec:
    """`test-app:<tag>`: starts as root, chowns /data to the app user (1000) and writes
    `/data/migrated-by-<version>` as that user, listens on 8080; `behaviour` adds `http`
    (path -> status) or `exit_after` ({seconds, status, error})."""
    version = tag.split("-", 1)[0]
    return _test_app(tag).with_overrides(
        user=None, users={"app": [1000, 1000]},
        behaviour={"prepare": [{"path": "/data", "env": "APP_DATA", "chown": [1000, 1000]}],
                   "writes": [{"path": "/data", "env": "APP_DATA", "as": [1000, 1000],
                               "file": f"migrated-by-{version}"}],
                   "listen": [{"port": 8080, "as": [1000, 1000]}], **behaviour})


# ---------------------------------------------------------------- package catalog

def _container_port(item) -> str | None:
    """Container side of a port in any of the usual spellings."""
    proto = "tcp"
    if isinstance(item, dict):
        for k in ("container", "containerPort", "target", "port", "internal"):
            if k in item:
                proto = str(item.get("protocol", item.get("proto", "tcp")))
                item = item[k]
                break
        else:
            return None
    text = str(item)
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    text = text.rsplit(":", 1)[-1]
    return f"{int(text)}/{proto}" if text.isdigit() else None


def _container_path(item) -> str | None:
    if isinstance(item, dict):
        for k in ("path", "target", "container", "mountPath", "mp", "mount"):
            if isinstance(item.get(k), str):
                item = item[k]
                break
        else:
            return None
    parts = [p for p in str(item).split(":") if p.startswith("/")]
    # "src:/dst[:ro]" -> the last absolute part is the container path
    return parts[-1] if parts else None


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


def with_facts(spec: ImageSpec, volumes: list[str]) -> ImageSpec:
    """The upstream image's user, directory owners and entrypoint (sim/image_facts.py); the
    entrypoint also writes each of `volumes` it does not already name."""
    facts = image_facts.facts_for(split_ref(spec.ref)[1]) or {}
    behaviour = {k: [dict(i) for i in v] if isinstance(v, list) else dict(v)
                 for k, v in (facts.get("behaviour") or {}).items()}
    named = {i["path"] for items in behaviour.values() if isinstance(items, list) for i in items if "path" in i}
    extra = [{"path": v} for v in volumes if v not in named]
    if extra:
        behaviour["writes"] = behaviour.get("writes", []) + extra
    return spec.with_overrides(user=facts.get("user", spec.user), users=dict(facts.get("users") or {}),
                               dirs=dict(facts.get("dirs") or {}), behaviour=behaviour)


def spec_from_package(doc: dict) -> ImageSpec | None:
    image = doc.get("image")
    if isinstance(image, dict):            # image: {ref: ..., ...}
        image = image.get("ref") or image.get("name")
    if not isinstance(image, str) or not image.strip():
        return None
    ports = [p for p in map(_container_port, _as_list(doc.get("ports"))) if p]
    volumes = [v for v in map(_container_path, _as_list(doc.get("volumes"))) if v]
    return with_facts(generic_spec(image, ports=ports, volumes=volumes), volumes)


def _service_images(doc: dict, packages_dir: Path) -> list[tuple[str, list[str], list[str]]]:
    """(`image:`, container paths of `volumes:`, container ports of `ports:`) of each service of a
    compose-style package (the ports are what the image listens on: the health gate connects there).

    The services are inline (`services:`, `compose: {services: ...}`) or in the
    compose file that `compose:` names, relative to the packages folder.
    """
    compose = doc.get("compose")
    if isinstance(compose, str):
        try:
            compose = yaml.load((packages_dir / compose).read_text(), Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError):
            return []
    services = doc.get("services")
    if services is None and isinstance(compose, dict):
        services = compose.get("services")
    return [(s["image"], [v for v in map(_container_path, _as_list(s.get("volumes"))) if v],
             [p for p in map(_container_port, _as_list(s.get("ports"))) if p])
            for s in _as_list(services) if isinstance(s, dict) and isinstance(s.get("image"), str)]


# A normalized reference the registry accepts: domain[:port]/path:tag
VALID_REF = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def package_images(packages_dir: Path) -> list[ImageSpec]:
    """One spec per `image:` in packages/*.yml; tolerant of anything else.

    A compose-style package contributes the `image:` of each of its services.
    """
    specs = []
    for path in sorted(Path(packages_dir).glob("*.y*ml")):
        try:
            doc = yaml.load(path.read_text(), Loader=_YAML_LOADER)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        try:
            found = [spec_from_package(doc)] + [
                with_facts(generic_spec(ref, ports=ports), vols)
                for ref, vols, ports in _service_images(doc, Path(packages_dir))]
        except (ValueError, TypeError, AttributeError):
            continue
        specs += [s for s in found if s is not None and VALID_REF.match(s.ref)]
    return specs


def seed_images(packages_dir: Path) -> list[ImageSpec]:
    """Fixed test images plus the catalog's, one spec per reference (fixed win)."""
    fixed = fixed_test_images()
    by_ref: dict[str, ImageSpec] = {spec.ref: spec for spec in fixed}
    for spec in package_images(packages_dir):
        first = by_ref.setdefault(spec.ref, spec)
        if first is not spec and first not in fixed:
            # one image, several packages (redis alone and in a compose app): it listens on every
            # port any of them names
            ports = first.exposed_ports + [p for p in spec.exposed_ports if p not in first.exposed_ports]
            by_ref[spec.ref] = first.with_overrides(exposed_ports=ports)
    return list(by_ref.values())


# ---------------------------------------------------------------- layout

def _passwd(user: str | None, users: dict | None = None) -> tuple[str, str]:
    passwd = ("root:x:0:0:root:/root:/bin/sh\n"
              "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    group = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
    for uname, (uid, gid) in sorted((users or {}).items()):
        passwd += f"{uname}:x:{uid}:{gid}:{uname}:/home/{uname}:/bin/sh\n"
        if gid not in (0, 1, 65534):
            group += f"{uname}:x:{gid}:\n"
    name = (user or "").split(":", 1)[0]
    if name and not name.isdigit() and name not in ("root", "daemon", "nobody", *(users or {})):
        passwd += f"{name}:x:1000:1000:{name}:/home/{name}:/bin/sh\n"
        group += f"{name}:x:1000:\n"
    return passwd, group


def _entrypoint_script(spec: ImageSpec) -> tuple[str, str] | None:
    argv = spec.entrypoint or spec.cmd or []
    if not argv or not argv[0].startswith("/"):
        return None
    return argv[0], (f"#!/bin/sh\n# simulated {spec.ref}\n"
                     f"echo \"starting {_app_name(spec.ref)}\" \"$@\"\nexec sleep infinity\n")


def _behaviour_file(spec: ImageSpec) -> dict | None:
    """What sim/pve/appstart.py and sim/pve/probe.py read: the behaviour, plus the image's name,
    version and ExposedPorts (what its simulated process answers on, unless `listen` says)."""
    if not spec.behaviour and not (spec.entrypoint or spec.cmd):
        return None
    ports = [int(p.split("/")[0]) for p in spec.exposed_ports if p.endswith("/tcp")]
    return {**spec.behaviour, "image": _app_name(spec.ref), "version": split_ref(spec.ref)[2],
            "exposed": ports}


def layer_files(spec: ImageSpec) -> tuple[set[str], dict[str, tuple[str, int]]]:
    """(directories, {path: (text, mode)}) of the image's single layer."""
    passwd, group = _passwd(spec.user, spec.users)
    files: dict[str, tuple[str, int]] = {
        "/etc/os-release": (os_release(spec.os_id), 0o644),
        "/etc/passwd": (passwd, 0o644),
        "/etc/group": (group, 0o644),
    }
    script = _entrypoint_script(spec)
    if script:
        files[script[0]] = (script[1], 0o755)
    if spec.revision:
        files["/etc/homefleet-sim-revision"] = (spec.revision + "\n", 0o644)
    for path, text in spec.files.items():
        files["/" + path.lstrip("/")] = (text, 0o644)
    behaviour = _behaviour_file(spec)
    if behaviour:
        files[BEHAVIOUR_FILE] = (json.dumps(behaviour, sort_keys=True) + "\n", 0o644)
    # Base images (debian, ubuntu, alpine) ship these empty: where a user bind-mounts media.
    dirs = {"/tmp", "/root", "/media", "/mnt", "/opt", "/srv", *spec.volumes, *spec.dirs}
    if spec.workdir:
        dirs.add(spec.workdir)
    for path in list(files) + list(dirs):
        parent = Path(path).parent
        while str(parent) != "/":
            dirs.add(str(parent))
            parent = parent.parent
    return dirs, files


def build_layer(spec: ImageSpec) -> bytes:
    """Uncompressed tar of the layer, deterministic."""
    dirs, files = layer_files(spec)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = [(d, None) for d in dirs] + [(f, files[f]) for f in files]
        for path, content in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mtime = EPOCH
            info.uname = info.gname = "root"
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if path == "/tmp" else 0o755
                if path in spec.dirs:
                    info.uid, info.gid, info.mode = spec.dirs[path]
                    info.uname = info.gname = ""
                tar.addfile(info)
            else:
                data = content[0].encode()
                info.mode, info.size = content[1], len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_config(spec: ImageSpec, diff_id: str) -> dict:
    cfg: dict = {"Env": spec.env}
    if spec.entrypoint:
        cfg["Entrypoint"] = spec.entrypoint
    if spec.cmd:
        cfg["Cmd"] = spec.cmd
    if spec.exposed_ports:
        cfg["ExposedPorts"] = {p: {} for p in spec.exposed_ports}
    if spec.volumes:
        cfg["Volumes"] = {v: {} for v in spec.volumes}
    if spec.workdir:
        cfg["WorkingDir"] = spec.workdir
    if spec.user:
        cfg["User"] = spec.user
    if spec.stop_signal:
        cfg["StopSignal"] = spec.stop_signal
    if spec.labels:
        cfg["Labels"] = spec.labels
    return {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": f"homefleet sim: {spec.ref}"}],
    }


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> dict:
    digest = _sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _canonical(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def build_layout(spec: ImageSpec, layout: Path) -> str:
    """Write an OCI image layout holding `spec` under its tag; returns the manifest digest."""
    layout.mkdir(parents=True, exist_ok=True)
    tar = build_layer(spec)
    layer = _write_blob(layout, gzip.compress(tar, compresslevel=6, mtime=0))
    config = _write_blob(layout, _canonical(image_config(spec, _sha256(tar))))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, **config},
        "layers": [{"mediaType": MT_LAYER, **layer}],
    }
    manifest_desc = _write_blob(layout, _canonical(manifest))
    tag = split_ref(spec.ref)[2]
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{"mediaType": MT_MANIFEST, **manifest_desc,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }
    (layout / "index.json").write_bytes(_canonical(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return manifest_desc["digest"]


def cached_layout(spec: ImageSpec, cache_dir: Path) -> tuple[Path, str]:
    """Build `spec` once per content key under `cache_dir`; returns (layout, digest)."""
    layout = Path(cache_dir) / spec.key()
    digest_file = layout / "digest"
    if digest_file.is_file():
        return layout, digest_file.read_text().strip()
    tmp = layout.with_name(f"{layout.name}.tmp{os.getpid()}")
    digest = build_layout(spec, tmp)
    (tmp / "digest").write_text(digest)
    try:
        tmp.rename(layout)
    except OSError:            # built concurrently by someone else: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return layout, digest
