"""The stack config contract (`stacks/Pulumi.<stack>.yaml`), validated with pydantic.

Keys are camelCase as users write them; every model forbids unknown keys, so a typo is
an error that names the file and key instead of a silently ignored setting.
"""

import ipaddress
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from .imageref import parse_image_ref
from .sizes import to_gib, to_mib

NAME = r"^[a-z][a-z0-9-]{0,39}$"
_HOSTNAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Line breaks beyond \n that str.splitlines() honours: a value holding one could read as a line
# of its own in `pct config` output (issue 18 item 8).
_LINE_BREAKS = re.compile(r"[\x80-\x9f\u2028\u2029]")
# homefleet's ownership marker (providers/hosts/pct.py MARKER_PREFIX): no user line may start with it.
_MARKER = "managed-by: homefleet"
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_+.-]*$", re.I)
_STORAGE = re.compile(r"^[a-zA-Z][a-zA-Z0-9._-]*$")
_BRIDGE = r"^[a-zA-Z][a-zA-Z0-9_.-]{0,15}$"
_REGISTRY_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# What PVE keeps (`description` maxLength 8192) minus room for homefleet's marker lines.
DESCRIPTION_MAX = 7680
PATH_MAX = 4095  # Linux PATH_MAX, without the NUL
TEXT_MAX = 1024  # entrypoint, timezone, DNS settings, tags: one command-line option each


def _mib(value):
    return to_mib(value, "M")


def _gib(value):
    return to_gib(value)


_SIZE_TEXT = {"type": "string", "pattern": r"^\s*\d+\s*[KMGTkmgt]?(i?B)?\s*$"}


def _size_schema(minimum: int, unit: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "integer", "minimum": minimum}, _SIZE_TEXT],
                           "description": f"a whole number of {unit}, or a size with a unit such as '4G' or '512M'"})


MiB = Annotated[int, BeforeValidator(_mib), Field(ge=16), _size_schema(16, "MiB")]
SwapMiB = Annotated[int, BeforeValidator(_mib), Field(ge=0), _size_schema(0, "MiB")]
GiB = Annotated[int, BeforeValidator(_gib), Field(ge=1), _size_schema(1, "GiB")]
StorageId = Annotated[str, Field(pattern=_STORAGE.pattern, max_length=64)]
# A storage ID exactly as PVE takes it (pve-common src/PVE/JSONSchema.pm parse_id: at least 2
# characters, /^[a-z][a-z0-9\-\_\.]*[a-z0-9]$/i); `vzdump --storage` refuses anything else.
_PVE_STORAGE_ID = r"^[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]$"
BackupStorageId = Annotated[str, Field(pattern=_PVE_STORAGE_ID, max_length=64)]
KEEP_BACKUPS_DEFAULT = 3
HEALTH_SETTLE_DEFAULT = 5
HealthSettle = Annotated[int, Field(ge=0, le=3600)]
KeepBackups = Annotated[int, Field(ge=1, le=1000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _absolute(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{what} must be an absolute path (start with '/'), got {path!r}")
    if "\x00" in path or "\n" in path or "," in path or "=" in path:
        raise ValueError(f"{what} cannot contain NUL, newline, ',' or '='")
    if _CONTROL.search(path):
        raise ValueError(f"{what} cannot contain control characters")
    if len(path) > PATH_MAX:
        raise ValueError(f"{what} is {len(path)} characters long; a path has at most {PATH_MAX}")
    if any(part == ".." for part in path.split("/")):
        raise ValueError(f"{what} cannot contain '..'")
    return path.rstrip("/") or "/"


def registry_host(text: str) -> bool:
    """Whether `text` (host[:port][/path]) stands as the registry of an image reference."""
    if len(text) > 255 or not _REGISTRY_HOST.match(text):
        return False
    try:
        ref = parse_image_ref(f"{text}/homefleet/probe:1")
    except ValueError:
        return False
    return ref.registry == text.split("/", 1)[0]


def _one_line(value):
    """One command-line option value: no control characters but TAB (as PVE's entrypoint), bounded."""
    if value is None:
        return value
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        raise ValueError("cannot contain newlines or control characters")
    if len(value) > TEXT_MAX:
        raise ValueError(f"is {len(value)} characters long; write at most {TEXT_MAX}")
    return value


def _check_tags(tags):
    for tag in tags:
        if len(tag) > 128:
            raise ValueError(f"a tag is {len(tag)} characters long; write at most 128")
        if not _TAG.match(tag):
            raise ValueError(f"tag {tag!r}: letters, digits and '_+.-', not starting with '+', '.' or '-'")
    return tags


class GpuGids(Strict):
    video: int = 44
    render: int = 104


class AppDefaults(Strict):
    cores: Optional[int] = Field(None, ge=1, le=8192)
    memory: Optional[MiB] = None
    swap: Optional[SwapMiB] = None
    onboot: Optional[bool] = None
    timezone: Optional[str] = None
    nameserver: Optional[str] = None
    tags: list[str] = []

    @field_validator("timezone", "nameserver")
    @classmethod
    def _line(cls, value):
        return _one_line(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value):
        return _check_tags(value)


class ComposeNetwork(Strict):
    """Where compose services on a Proxmox host get their static addresses (docs/compose.md)."""

    cidr: str  # the LAN the bridge is on, e.g. 192.0.2.0/24: gives the prefix length
    gateway: Optional[str] = None
    range: Optional[str] = None  # "FIRST-LAST": the addresses homefleet may give out (default: the whole cidr)
    bridge: Optional[str] = Field(None, pattern=r"^[a-zA-Z][a-zA-Z0-9_.-]{0,15}$")

    @model_validator(mode="after")
    def _addresses(self):
        try:
            net = ipaddress.IPv4Network(self.cidr, strict=False)
        except ValueError:
            raise ValueError(f"cidr: {self.cidr!r} is not an IPv4 network; write e.g. '192.0.2.0/24'") from None
        if not 16 <= net.prefixlen <= 30:
            raise ValueError(f"cidr: the prefix length must be 16 to 30 (got /{net.prefixlen})")
        ends = [t.strip() for t in self.range.split("-")] if self.range else []
        if self.range and len(ends) != 2:
            raise ValueError(f"range: write 'FIRST-LAST' (got {self.range!r})")
        checked = []
        for key, text in [("gateway", self.gateway)] * bool(self.gateway) + [("range", t) for t in ends]:
            try:
                address = ipaddress.IPv4Address(text)
            except ValueError:
                raise ValueError(f"{key}: {text!r} is not an IPv4 address") from None
            if address not in net:
                raise ValueError(f"{key}: {text} is outside cidr {net}")
            checked.append(address)
        if ends and checked[-2] > checked[-1]:
            raise ValueError(f"range: FIRST must not be after LAST (got {self.range!r})")
        return self

    def bounds(self) -> tuple:
        """(first, last) of the range, or (None, None) for the whole cidr."""
        if not self.range:
            return None, None
        first, last = (t.strip() for t in self.range.split("-"))
        return first, last


class Host(Strict):
    kind: Literal["proxmox", "truenas"]
    address: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    user: str = Field("root", pattern=r"^[a-z_][a-z0-9_.-]*$")
    hostKey: Optional[str] = None
    keyFile: Optional[str] = None
    node: Optional[str] = None
    storage: StorageId = "local-lvm"
    templateStorage: StorageId = "local"
    bridge: str = Field("vmbr0", pattern=_BRIDGE)
    registryMirror: dict[str, str] = {}
    gpuGids: GpuGids = GpuGids()
    defaults: AppDefaults = AppDefaults()
    sudo: bool = False
    pool: Optional[str] = None  # TrueNAS: the pool apps' host paths live under
    midcltGeneration: Optional[Literal["24.10", "25.04"]] = None
    composeNetwork: Optional[ComposeNetwork] = None  # proxmox: static addresses for compose services
    appRoot: Optional[str] = Field(None, pattern=r"^/[A-Za-z0-9._+@/-]*[A-Za-z0-9._+@-]$")  # compose apps' folders
    # Safe upgrades (docs/proxmox.md): where the backup before a recreate goes, and how many of
    # each app's backups homefleet keeps there (an app's own `keepBackups` wins).
    backupStorage: BackupStorageId = Field("local", description=(
        "Proxmox: the PVE storage (content type 'backup') that holds the backup homefleet takes before "
        "an image upgrade, an `unprivileged` change or a `deleteData` delete"))
    keepBackups: KeepBackups = Field(KEEP_BACKUPS_DEFAULT, description=(
        "how many of each app's homefleet backups (Proxmox) or snapshots per dataset (TrueNAS, "
        "snapshotDatasets) to keep: the default for this host's apps"))
    healthSettle: HealthSettle = Field(HEALTH_SETTLE_DEFAULT, description=(
        "seconds an app on this host must have stayed up, its check passing, before it counts as healthy "
        "(catches an entrypoint that exits right after its start); the default for this host's apps"))

    @model_validator(mode="after")
    def _proxmox_only(self):
        if self.kind != "proxmox":
            if "backupStorage" in self.model_fields_set:
                raise ValueError("`backupStorage` is for Proxmox hosts (where homefleet backs CTs up with vzdump); "
                                 "remove it from this TrueNAS host (TrueNAS apps: `snapshotDatasets`, whose "
                                 "snapshots `keepBackups` counts, docs/truenas.md)")
        return self

    @field_validator("registryMirror")
    @classmethod
    def _mirrors(cls, value):
        for registry, mirror in value.items():
            for what, text in (("registry", registry), ("mirror", mirror)):
                if not registry_host(text):
                    raise ValueError(f"the {what} {text!r} is not a registry host[:port][/path] "
                                     "such as 'registry.example.net:5000/mirror'")
        return value

    @field_validator("hostKey")
    @classmethod
    def _host_key(cls, value):
        if value is None:
            return value
        parts = value.split()
        if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
            raise ValueError("must look like 'ssh-ed25519 AAAA...' (the host's public key line)")
        return f"{parts[0]} {parts[1]}"


class Network(Strict):
    bridge: Optional[str] = Field(None, pattern=_BRIDGE)
    ip: str = "dhcp"
    gw: Optional[str] = None
    ip6: Optional[str] = None
    tag: Optional[int] = Field(None, ge=1, le=4094)
    firewall: Optional[bool] = None
    hwaddr: Optional[str] = Field(None, pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    mtu: Optional[int] = Field(None, ge=64, le=65535)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value):
        if value in ("dhcp", "manual") or re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}", value):
            return value
        raise ValueError("must be 'dhcp', 'manual' or an address with prefix like '192.0.2.10/24'")

    @field_validator("gw")
    @classmethod
    def _gw(cls, value):
        try:
            return str(ipaddress.IPv4Address(value)) if value is not None else None
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address; write e.g. '192.0.2.1'") from None

    @field_validator("ip6")
    @classmethod
    def _ip6(cls, value):
        if value is None or value in ("dhcp", "auto", "manual"):
            return value
        try:
            ipaddress.IPv6Interface(value)
        except ValueError:
            raise ValueError(f"{value!r}: write 'dhcp', 'auto', 'manual' or an address with prefix "
                             "like '2001:db8::10/64'") from None
        if "/" not in value:
            raise ValueError(f"{value!r}: give the prefix length too, e.g. '2001:db8::10/64'")
        return value


class Mount(Strict):
    source: str
    path: str
    readOnly: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value):
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ValueError(f"{value!r}: write 'HOST_PATH:CONTAINER_PATH' or 'HOST_PATH:CONTAINER_PATH:ro'")
            return {"source": parts[0], "path": parts[1], "readOnly": len(parts) == 3 and parts[2] == "ro"}
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value):
        return _absolute(value, "the host path")

    @field_validator("path")
    @classmethod
    def _path(cls, value):
        return _absolute(value, "the container path")


class Volume(Strict):
    path: str
    size: GiB = 8
    storage: Optional[StorageId] = None
    backup: Optional[bool] = None

    @field_validator("path")
    @classmethod
    def _path(cls, value):
        return _absolute(value, "the volume's container path")


class Device(Strict):
    path: str
    gid: Optional[int] = Field(None, ge=0)
    uid: Optional[int] = Field(None, ge=0)
    mode: Optional[str] = Field(None, pattern=r"^0[0-7]{3}$")

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value):
        return {"path": value} if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _dev(cls, value):
        if not value.startswith("/dev/"):
            raise ValueError(f"a device path starts with /dev/, got {value!r}")
        return _absolute(value, "the device path")


class Features(Strict):
    nesting: bool = False
    keyctl: bool = False
    fuse: bool = False


class Port(Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    name: Optional[str] = None
    scheme: Optional[Literal["http", "https"]] = None


class App(Strict):
    host: str
    package: Optional[str] = None
    image: Optional[str] = None
    compose: Optional[str] = None
    template: Optional[str] = Field(None, pattern=r"^[a-zA-Z][a-zA-Z0-9._-]*:vztmpl/[A-Za-z0-9._+-]+\.tar(\.(gz|xz|zst|bz2))?$")
    sshPublicKeys: Optional[str] = None
    vmid: Optional[int] = Field(None, ge=100, le=999999999)
    hostname: Optional[str] = None
    cores: Optional[int] = Field(None, ge=1, le=8192)
    memory: Optional[MiB] = None
    swap: Optional[SwapMiB] = None
    disk: Optional[GiB] = None
    storage: Optional[StorageId] = None
    networks: Optional[list[Network]] = None
    mounts: list[Mount] = []
    volumes: Optional[list[Volume]] = None
    gpu: Optional[Union[str, list[str]]] = None
    devices: list[Device] = []
    env: dict[str, str] = {}
    features: Optional[Features] = None
    onboot: Optional[bool] = None
    startup: Optional[str] = Field(None, pattern=r"^(order=)?\d+(,up=\d+)?(,down=\d+)?$")
    tags: list[str] = []
    description: Optional[str] = None
    entrypoint: Optional[str] = None
    timezone: Optional[str] = None
    nameserver: Optional[str] = None
    searchdomain: Optional[str] = None
    unprivileged: bool = True
    running: bool = True
    adopt: bool = False
    deleteData: bool = False
    allowSystemPaths: bool = False  # TrueNAS compose apps: bind mounts outside /mnt/<pool>/
    healthTimeout: int = Field(300, ge=1, le=86400, description=(
        "seconds the app has to become healthy after a create, start, restart or upgrade (its compose "
        "healthcheck, its package's health, else its first published port); then the `up` fails with the "
        "check's output and the app's log"))
    healthSettle: Optional[HealthSettle] = Field(None, description=(
        "seconds the app must have stayed up, its check passing, before it counts as healthy "
        "(default: the host's healthSettle, 5)"))
    snapshotDatasets: bool = False  # TrueNAS: ZFS snapshot of the app's host-path datasets before an upgrade
    allowFilesOutsideProject: bool = False  # compose apps: env_file/.env outside the project folder
    acknowledge: list[str] = []  # compose apps: warnings read (key paths of the compose file, * wildcards)
    ports: Optional[list[Port]] = None
    keepBackups: Optional[KeepBackups] = Field(None, description=(
        "how many of this app's homefleet backups to keep (default: the host's keepBackups, 3)"))
    rollback: bool = Field(True, description=(
        "restore the previous version automatically when an upgrade does not become healthy in time"))

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("package", "image", "compose", "template") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("set exactly one of `package` (from packages/), `image`, `compose` or a classic `template`"
                             + (f"; got {', '.join(given)}" if given else ""))
        if self.adopt and self.vmid is None:
            raise ValueError("`adopt: true` needs the `vmid` of the existing CT")
        if self.sshPublicKeys is not None and not self.template:
            raise ValueError("`sshPublicKeys` works only with a classic `template` (PVE installs them into its "
                             "root account); an OCI image has no SSH server or accounts set up for them: remove it")
        return self

    @field_validator("sshPublicKeys")
    @classmethod
    def _ssh_keys(cls, value):
        if value is None:
            return value
        lines = [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]
        if not lines:
            raise ValueError("holds no key; write one public key per line, e.g. 'ssh-ed25519 AAAA... me@laptop'")
        for number, line in enumerate(lines, 1):
            parts = line.split()
            if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
                raise ValueError(f"line {number} is not a public key: write one per line as in "
                                 "~/.ssh/id_ed25519.pub ('ssh-ed25519 AAAA... me@laptop'), never a private key")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value):
        if value is not None:
            parse_image_ref(value)
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value):
        if value is not None and not _HOSTNAME.match(value):
            raise ValueError("must be a DNS label: letters, digits and '-', at most 63 characters")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value):
        for key, val in value.items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"env key {key!r} must be letters, digits and '_', not starting with a digit")
            if _CONTROL.search(val) or _LINE_BREAKS.search(val):
                raise ValueError(f"env {key}: a value cannot hold newlines, control characters or line "
                                 "separators (U+0085, U+2028, U+2029)")
            if val != val.rstrip(" \t"):
                raise ValueError(f"env {key}: the value ends in whitespace, which PVE drops when it reads the "
                                 "CT config; remove it")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value):
        return _check_tags(value)

    @field_validator("description")
    @classmethod
    def _description(cls, value):
        if value is not None and "\x00" in value:
            raise ValueError("cannot contain a NUL byte")
        if value is not None and _CONTROL.search(value.replace("\n", "")):
            raise ValueError("cannot contain control characters (newlines are fine)")
        if value is not None and any(line.startswith(_MARKER) for line in value.split("\n")):
            raise ValueError(f"a line may not begin with {_MARKER!r}: that is homefleet's ownership marker "
                             "(it decides which CTs homefleet may change); reword that line")
        if value is not None and len(value) > DESCRIPTION_MAX:
            raise ValueError(f"is {len(value)} characters long; PVE keeps at most 8192 with homefleet's "
                             f"marker lines, so write at most {DESCRIPTION_MAX}")
        return value

    @field_validator("entrypoint", "timezone", "nameserver", "searchdomain")
    @classmethod
    def _no_control(cls, value):
        return _one_line(value)

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value):
        if isinstance(value, str) and value not in ("intel", "amd", "nvidia"):
            raise ValueError(f"{value!r} is not a GPU preset; write intel, amd, nvidia or a list of /dev paths")
        if isinstance(value, list):
            for path in value:
                if not path.startswith("/dev/"):
                    raise ValueError(f"a GPU device path starts with /dev/, got {path!r}")
                _absolute(path, "a GPU device path")
        return value


class Stack(Strict):
    hosts: dict[Annotated[str, Field(pattern=NAME)], Host]
    apps: dict[Annotated[str, Field(pattern=NAME)], App] = {}

