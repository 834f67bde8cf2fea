"""The app catalog: ``packages/<name>.yml`` files, their model, loader and JSON Schema.

A package is either

* an **image package** — one OCI image run as one container (``image`` +
  ``resources`` + ``volumes`` ...), deployable as a Proxmox application
  container or a one-service compose app; or
* a **compose package** — ``compose: compose/<name>.yml``, a Docker Compose file
  (relative to ``packages/``) for multi-service apps.  Its images, volumes and
  environment live in that file; the package keeps the metadata (ports, secrets,
  GPU advice, notes).

:func:`load_catalog` validates every file and raises :class:`CatalogError`
whose lines read ``<file>: <key path>: <what is wrong> (got <value>); <fix>``.
:func:`write_schema` writes the JSON Schema that editors use through the
``# yaml-language-server: $schema=../schemas/package.schema.json`` first line.

Regenerate the committed schema with ``python -m homefleet.catalog schema``;
check the catalog with ``python -m homefleet.catalog check``.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from homefleet.imageref import PINNED_REFERENCE_PATTERN, ImageRef, ImageRefError, parse_image_ref
from homefleet.yamlkeys import construct_unique_mapping

__all__ = [
    "CATEGORIES",
    "CatalogError",
    "Features",
    "PackageSpec",
    "Port",
    "Resources",
    "Secret",
    "Volume",
    "DEFAULT_PACKAGES_DIR",
    "SCHEMA_COMMENT",
    "image_problem",
    "load_catalog",
    "load_package",
    "package_schema",
    "write_schema",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGES_DIR = REPO_ROOT / "packages"
DEFAULT_SCHEMA_PATH = REPO_ROOT / "schemas" / "package.schema.json"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/package.schema.json"

Category = Literal[
    "media",
    "photos",
    "files",
    "home-automation",
    "documents",
    "passwords",
    "monitoring",
    "network",
    "recipes",
    "rss",
    "databases",
    "other",
]
CATEGORIES = get_args(Category)

NAME_PATTERN = r"^[a-z][a-z0-9-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
ONE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]+$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
COMPOSE_PATH_PATTERN = r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9_./-]+\.ya?ml$"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class _Rule:
    """What a key must be, and how to write it; used to word validation errors."""

    requirement: str
    example: str
    fix: str | None = None

    @property
    def how(self) -> str:
        return self.fix or f"write e.g. {self.example}"


# Keyed by key path with list indices as [] and mapping keys of `env` as *.
_RULES: dict[str, _Rule] = {
    "name": _Rule(
        "must be lowercase letters, digits and '-', starting with a letter, at most 63 characters", "'my-app'"
    ),
    "description": _Rule("must be one line of text", "'Media server for films and TV'"),
    "category": _Rule("must be one of " + ", ".join(CATEGORIES), "media", "pick the closest, or 'other'"),
    "homepage": _Rule("must be an http(s) URL", "'https://jellyfin.org'"),
    "image_checked": _Rule(
        "must say where the image name and tag were confirmed, on one line",
        "'hub.docker.com/r/jellyfin/jellyfin/tags (2026-11)'",
    ),
    "compose": _Rule("must be a path relative to packages/ ending in .yml, without '..'", "compose/immich.yml"),
    "resources": _Rule(
        "must be a mapping with cores, memory, swap and disk", "{cores: 1, memory: 512, swap: 512, disk: 4}"
    ),
    "resources.cores": _Rule("must be an integer from 1 to 64", "2"),
    "resources.memory": _Rule("must be an integer number of MiB ≥ 16", "4096"),
    "resources.swap": _Rule("must be an integer number of MiB ≥ 0", "512"),
    "resources.disk": _Rule("must be an integer number of GiB ≥ 1 for the root filesystem", "8"),
    "volumes": _Rule(
        "must be a list of {path, size, description}", "[{path: /config, size: 1, description: Settings}]"
    ),
    "volumes[]": _Rule(
        "must be a mapping with path, size and description", "{path: /config, size: 1, description: Settings}"
    ),
    "volumes[].path": _Rule(
        "must be an absolute, normalised path inside the container, without spaces or commas", "'/config'"
    ),
    "volumes[].size": _Rule("must be an integer number of GiB ≥ 1", "10"),
    "volumes[].description": _Rule("must be one line of text saying what is stored there", "'Settings and database'"),
    "ports": _Rule("must be a list of {port, protocol, name, scheme}", "[{port: 8096, name: web, scheme: http}]"),
    "ports[]": _Rule("must be a mapping with port, protocol, name and scheme", "{port: 8096, name: web, scheme: http}"),
    "ports[].port": _Rule("must be an integer from 1 to 65535", "8096"),
    "ports[].protocol": _Rule("must be tcp or udp", "tcp"),
    "ports[].name": _Rule("must be lowercase letters, digits and '-', starting with a letter", "web"),
    "ports[].scheme": _Rule("must be http, https or null", "http", "write http or https for a web UI, null otherwise"),
    "gpu": _Rule("must be none, optional or recommended", "none"),
    "gpu_note": _Rule("must be one line of text", "'Intel Quick Sync or NVIDIA NVENC for transcoding'"),
    "env": _Rule('must be a mapping of NAME: "value"', "{TZ: Etc/UTC}"),
    "env.*": _Rule("must be a string without control characters", '"1000"', 'quote the value, e.g. "1000"'),
    "env.*.[key]": _Rule(
        "must be an environment variable name: letters, digits and '_', not starting with a digit", "TZ"
    ),
    "secrets": _Rule("must be a list of {name, description}", "[{name: DB_PASSWORD, description: Database password}]"),
    "secrets[]": _Rule(
        "must be a mapping with name and description", "{name: DB_PASSWORD, description: Database password}"
    ),
    "secrets[].name": _Rule(
        "must be an environment variable name: letters, digits and '_', not starting with a digit", "DB_PASSWORD"
    ),
    "secrets[].description": _Rule("must be one line of text", "'Password of the database user'"),
    "features": _Rule("must be a mapping with nesting, keyctl and fuse", "{nesting: true}"),
    "features.nesting": _Rule("must be true or false", "true"),
    "features.keyctl": _Rule("must be true or false", "false"),
    "features.fuse": _Rule("must be true or false", "false"),
    "notes": _Rule("must be text", "'Open the web UI and create the admin account.'"),
}


def _fail(loc: str, message: str) -> PydanticCustomError:
    """An error whose text is final; ``loc`` is the key path it is about."""
    return PydanticCustomError("homefleet", "{message}", {"message": message, "loc": loc})


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _loc_pattern(loc: tuple[Any, ...]) -> str:
    out: list[str] = []
    previous = None
    for part in loc:
        if isinstance(part, int):
            out[-1] += "[]"
        elif previous == "env" and part != "[key]":
            out.append("*")
        else:
            out.append(str(part))
        previous = part
    return ".".join(out)


def _did_you_mean(key: str, parent: str, allowed: list[str], value: Any = None) -> str:
    prefixed = [name for name in allowed if name.startswith(key) and len(key) >= 3]
    close = prefixed or difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"did you mean '{close[0]}'? "
    if value is None:
        # `{description: Settings, users}` parses as description='Settings', users=None.
        return "if this is text after a comma inside { }, quote the whole value; "
    for group, names in _ALLOWED_KEYS.items():
        if group != parent and (key in names or difflib.get_close_matches(key, names, n=1)):
            found = key if key in names else difflib.get_close_matches(key, names, n=1)[0]
            where = f"under {group.replace('[]', '')}" if group else "at the top level"
            return f"did you mean '{found}' ({where})? "
    return ""


class CatalogError(ValueError):
    """One or more package files are invalid; ``errors`` holds one line each."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def _format_error(error: dict[str, Any], display: str) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "homefleet":
        where = ctx.get("loc") or _loc_text(loc)
        return f"{display}: {where}: {error['msg']}" if where else f"{display}: {error['msg']}"
    where = _loc_text(loc)
    pattern = _loc_pattern(loc)
    if kind == "extra_forbidden":
        parent = _loc_pattern(loc[:-1])
        allowed = sorted(_ALLOWED_KEYS.get(parent, ()))
        hint = _did_you_mean(str(loc[-1]), parent, allowed, error.get("input"))
        return f"{display}: {where}: unknown key; {hint}allowed here: {', '.join(allowed)}"
    rule = _RULES.get(pattern)
    if kind == "missing":
        if rule is not None:
            return f"{display}: {where}: is required; add e.g. {loc[-1]}: {rule.example}"
        return f"{display}: {where}: is required"
    if rule is not None:
        return f"{display}: {where}: {rule.requirement} (got {_show(error.get('input'))}); {rule.how}"
    return f"{display}: {where}: {error['msg']} (got {_show(error.get('input'))})"


# --------------------------------------------------------------------------- image check


def image_problem(text: Any, example: str = "docker.io/jellyfin/jellyfin:10.11.11") -> str | None:
    """Why ``text`` is not a fully-qualified, pinned image reference, or ``None``.

    The answer is worded for an error line: ``<problem> (got ...); <fix>``.
    """
    try:
        ref = parse_image_ref(text)
    except ImageRefError as exc:
        return f"is not a valid image reference: {exc} (got {_show(text)}); write e.g. '{example}'"
    qualified = ImageRef(ref.normalized.registry, ref.normalized.repository, ref.tag, ref.digest)
    moving = ref.tag is not None and (ref.tag.lower() == "latest" or (ref.digest is None and not ref.is_pinned))
    if ref.tag is None and ref.digest is None:
        what = "must be fully qualified and pin a version tag" if not ref.is_qualified else "must pin a version tag"
        return f"{what} (got {_show(text)}); write e.g. '{qualified.name}:1.2.3' with the tag you checked"
    if moving:
        what = "must be fully qualified and pin" if not ref.is_qualified else "must pin"
        return (
            f"{what} a version tag, not the moving tag '{ref.tag}' (got {_show(text)}); "
            f"write e.g. '{qualified.name}:1.2.3' with the tag you checked"
        )
    if not ref.is_qualified:
        return f"must name its registry (got {_show(text)}); write '{qualified}'"
    return None


# --------------------------------------------------------------------------- model

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

OneLine = Annotated[str, Field(pattern=ONE_LINE_PATTERN, max_length=300)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=128)]
EnvValue = Annotated[str, Field(pattern=NO_CONTROL_PATTERN)]


class Resources(BaseModel):
    """CPU, memory and root-filesystem size of the container."""

    model_config = _STRICT

    cores: Annotated[int, Field(ge=1, le=64, description="CPU cores (1-64).")] = 1
    memory: Annotated[int, Field(ge=16, description="Memory in MiB (≥ 16).")]
    swap: Annotated[int, Field(ge=0, description="Swap in MiB (≥ 0).")] = 512
    disk: Annotated[int, Field(ge=1, description="Root filesystem size in GiB (≥ 1).")]


class Volume(BaseModel):
    """A container path whose data must survive upgrades (the CT is re-created)."""

    model_config = _STRICT

    path: Annotated[
        str,
        Field(
            pattern=r"^/[^\s,=]*$",
            description="Absolute container path, e.g. /config.",
        ),
    ]
    size: Annotated[int, Field(ge=1, description="Suggested size in GiB.")]
    description: Annotated[OneLine, Field(description="What is stored there.")]

    @field_validator("path")
    @classmethod
    def _normalised_path(cls, value: str) -> str:
        if value == "/" or posixpath.normpath(value) != value or value.startswith("//"):
            raise PydanticCustomError("container_path", "not a normalised absolute path")
        return value


class Port(BaseModel):
    """A port the app listens on; web ports (scheme set) become URLs."""

    model_config = _STRICT

    port: Annotated[int, Field(ge=1, le=65535, description="Port number inside the container.")]
    protocol: Annotated[Literal["tcp", "udp"], Field(description="tcp or udp.")] = "tcp"
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=63, description="Short name, e.g. web, dns, mqtt.")]
    scheme: Annotated[
        Literal["http", "https"] | None, Field(description="http/https for a web UI (shown as a URL), null otherwise.")
    ] = None


class Health(BaseModel):
    """How homefleet tells the app is up after a create, a restart or an upgrade: an HTTP path
    (`{http: /health, port: 8080}`, passes on a status below 400) or a TCP port (`{tcp: 5432}`),
    probed from the host. Without it: the first published TCP port accepts a connection."""

    model_config = _STRICT

    http: Annotated[str | None, Field(pattern=r"^/[\x21-\x7e]*$", max_length=255,
                                      description="HTTP path to GET, e.g. /health; needs port.")] = None
    port: Annotated[int | None, Field(ge=1, le=65535, description="Port of the HTTP check.")] = None
    tcp: Annotated[int | None, Field(ge=1, le=65535, description="TCP port that must accept a connection.")] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Health":
        if (self.http is None) == (self.tcp is None):
            raise _fail("health", "needs exactly one of http (with port) or tcp, e.g. {http: /health, port: 8080} "
                                  "or {tcp: 5432}")
        if self.http is not None and self.port is None:
            raise _fail("health", f"http: {self.http} needs the port it is served on, e.g. port: 8080")
        if self.tcp is not None and self.port is not None:
            raise _fail("health", "port belongs to an http check; a tcp check names its port itself: {tcp: N}")
        return self

    def as_check(self) -> dict:
        """The ProxmoxCT `health` input (providers/health.py)."""
        if self.http is not None:
            return {"kind": "http", "port": self.port, "path": self.http}
        return {"kind": "tcp", "port": self.tcp}


class Secret(BaseModel):
    """An environment variable the user must set as a secret (``pulumi config set --secret``)."""

    model_config = _STRICT

    name: Annotated[EnvName, Field(description="Environment variable name, e.g. DB_PASSWORD.")]
    description: Annotated[OneLine, Field(description="What it is and how to choose it.")]


class Features(BaseModel):
    """LXC features the container needs (pct --features)."""

    model_config = _STRICT

    nesting: Annotated[bool, Field(description="Allow nested namespaces (some apps need it).")] = False
    keyctl: Annotated[bool, Field(description="Allow the keyctl() system call.")] = False
    fuse: Annotated[bool, Field(description="Allow FUSE mounts.")] = False


_COMPOSE_ONLY_FORBIDDEN = ("image", "volumes", "env", "features")
_EXAMPLE_PACKAGE = "docker.io/jellyfin/jellyfin:10.11.11"


def _schema_extra(schema: dict[str, Any]) -> None:
    # Environment names that do not match the key pattern are errors, not "anything goes".
    schema["properties"]["env"]["additionalProperties"] = False
    schema["allOf"] = [
        {  # exactly one of image / compose
            "oneOf": [
                {"required": ["image"], "not": {"required": ["compose"]}},
                {"required": ["compose"], "not": {"anyOf": [{"required": [k]} for k in _COMPOSE_ONLY_FORBIDDEN]}},
            ]
        },
        {"if": {"required": ["image"]}, "then": {"required": ["resources"]}},
        {
            "if": {"required": ["gpu"], "properties": {"gpu": {"enum": ["optional", "recommended"]}}},
            "then": {"required": ["gpu_note"], "properties": {"gpu_note": {"type": "string"}}},
        },
    ]


class PackageSpec(BaseModel):
    """One ``packages/<name>.yml``: an app homefleet can deploy.

    Exactly one of ``image`` (one container) or ``compose`` (a compose file for
    a multi-service app) is set.  Image packages also need ``resources``.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        title="homefleet package",
        json_schema_extra=_schema_extra,
    )

    name: Annotated[
        str,
        Field(pattern=NAME_PATTERN, max_length=63, description="Package name; must equal the file name without .yml."),
    ]
    description: Annotated[OneLine, Field(description="One line saying what the app is.")]
    category: Annotated[Category, Field(description="Catalog category.")]
    homepage: Annotated[str, Field(pattern=URL_PATTERN, description="Project homepage (http/https URL).")]
    image: Annotated[
        str | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": PINNED_REFERENCE_PATTERN,
                "description": "Fully-qualified image reference registry/repo:tag[@sha256:...]; pin the tag, never latest.",
            }
        ),
    ] = None
    compose: Annotated[
        str | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": COMPOSE_PATH_PATTERN,
                "description": "Compose file relative to packages/, e.g. compose/immich.yml, for multi-service apps.",
            }
        ),
    ] = None
    image_checked: Annotated[
        OneLine,
        Field(
            description="Where the image name(s) and tag(s) were confirmed, e.g. 'hub.docker.com/r/x/y/tags (2026-11)'."
        ),
    ]
    resources: Annotated[Resources | None, Field(description="Container size; required for image packages.")] = None
    volumes: Annotated[list[Volume], Field(description="Container paths whose data must survive upgrades.")] = []
    ports: Annotated[list[Port], Field(description="Ports the app listens on.")] = []
    gpu: Annotated[
        Literal["none", "optional", "recommended"], Field(description="Whether a GPU helps (transcoding, ML).")
    ] = "none"
    gpu_note: Annotated[OneLine | None, Field(description="What the GPU is used for; required unless gpu is none.")] = (
        None
    )
    env: Annotated[
        dict[EnvName, EnvValue], Field(description="Non-secret environment defaults (strings; quote numbers).")
    ] = {}
    secrets: Annotated[list[Secret], Field(description="Environment variables the user must set as secrets.")] = []
    features: Annotated[Features, Field(description="LXC features the container needs.")] = Features()
    health: Annotated[Health | None, Field(description=(
        "How to tell the app is up: {http: /path, port: N} or {tcp: N}; default: the first TCP port accepts a "
        "connection."))] = None
    notes: Annotated[
        str | None, Field(description="Post-deploy notes: first login, where the admin password is, next steps.")
    ] = None

    # ----------------------------------------------------------------- checks

    @model_validator(mode="before")
    @classmethod
    def _image_or_compose(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "compose" in data:
            for key in _COMPOSE_ONLY_FORBIDDEN:
                if key in data:
                    raise _fail(key, "is not allowed together with compose; put it in the compose file instead")
        elif "image" not in data:
            raise _fail(
                "image",
                f"is required; add e.g. image: {_EXAMPLE_PACKAGE} "
                "(or compose: compose/<name>.yml for a multi-service app)",
            )
        return data

    @field_validator("name")
    @classmethod
    def _name_matches_file(cls, value: str, info: ValidationInfo) -> str:
        stem = (info.context or {}).get("file_stem")
        if stem is not None and value != stem:
            raise _fail("name", f"must equal the file name '{stem}' (got {value!r}); rename the file or the package")
        return value

    @field_validator("image")
    @classmethod
    def _pinned_image(cls, value: str | None) -> str | None:
        if value is not None:
            problem = image_problem(value)
            if problem:
                raise _fail("image", problem)
        return value

    @field_validator("compose")
    @classmethod
    def _compose_path(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(COMPOSE_PATH_PATTERN, value):
            raise PydanticCustomError("compose_path", "not a relative .yml path")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PackageSpec:
        if self.image is not None and self.resources is None:
            raise _fail("resources", "is required for an image package; add e.g. resources: {memory: 512, disk: 4}")
        if self.gpu != "none" and not self.gpu_note:
            raise _fail("gpu_note", f"is required when gpu is {self.gpu}; say what the GPU is used for")
        seen_paths: set[str] = set()
        for i, volume in enumerate(self.volumes):
            if volume.path in seen_paths:
                raise _fail(f"volumes[{i}].path", f"repeats {volume.path!r}; list each path once")
            seen_paths.add(volume.path)
        seen_ports: set[tuple[int, str]] = set()
        seen_names: set[str] = set()
        for i, port in enumerate(self.ports):
            if (port.port, port.protocol) in seen_ports:
                raise _fail(f"ports[{i}].port", f"repeats {port.port}/{port.protocol}; list each port once")
            if port.name in seen_names:
                raise _fail(f"ports[{i}].name", f"repeats {port.name!r}; give each port its own name")
            if port.protocol == "udp" and port.scheme is not None:
                raise _fail(f"ports[{i}].scheme", "must be null for a udp port")
            seen_ports.add((port.port, port.protocol))
            seen_names.add(port.name)
        seen_secrets: set[str] = set()
        for i, secret in enumerate(self.secrets):
            if secret.name in seen_secrets:
                raise _fail(f"secrets[{i}].name", f"repeats {secret.name!r}; list each secret once")
            if secret.name in self.env:
                raise _fail(
                    f"secrets[{i}].name", f"{secret.name!r} is also in env; a secret must not have a plain default"
                )
            seen_secrets.add(secret.name)
        return self

    # ----------------------------------------------------------------- helpers

    @property
    def is_compose(self) -> bool:
        return self.compose is not None

    @property
    def image_ref(self) -> ImageRef | None:
        """The parsed image reference of an image package (``None`` for compose)."""
        return parse_image_ref(self.image) if self.image is not None else None

    def compose_path(self, packages_dir: str | Path = DEFAULT_PACKAGES_DIR) -> Path | None:
        """Where the compose file of a compose package is."""
        return Path(packages_dir) / self.compose if self.compose is not None else None


_ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(PackageSpec.model_fields),
    "resources": tuple(Resources.model_fields),
    "volumes[]": tuple(Volume.model_fields),
    "ports[]": tuple(Port.model_fields),
    "secrets[]": tuple(Secret.model_fields),
    "features": tuple(Features.model_fields),
}


# --------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys instead of keeping the last."""


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_unique_mapping)


def _read_yaml(path: Path, display: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError([f"{display}: is not UTF-8 text; save it as UTF-8"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line: a message names its file
        raise CatalogError([f"{display}: is not valid YAML: {problem}{where}; fix the syntax"]) from None


# --------------------------------------------------------------------------- compose files

_COMPOSE_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _compose_variables(text: str) -> tuple[set[str], set[str]]:
    """(all variables, variables without a default) referenced in compose text."""
    text = text.replace("$$", "")
    used: set[str] = set()
    required: set[str] = set()
    for match in _COMPOSE_VAR_RE.finditer(text):
        name = match.group(1) or match.group(3)
        modifier = match.group(2) or ""
        used.add(name)
        if modifier == "" or modifier.startswith(("?", ":?")):
            required.add(name)
    return used, required


def _check_compose(spec: PackageSpec, packages_dir: Path, display: str) -> list[str]:
    assert spec.compose is not None
    path = packages_dir / spec.compose
    cdisplay = f"{packages_dir.name}/{spec.compose}"
    if not path.is_file():
        return [
            f"{display}: compose: file {spec.compose!r} not found in {packages_dir.name}/; create it or fix the path"
        ]
    data = _read_yaml(path, cdisplay)
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        return [f"{cdisplay}: services: must be a non-empty mapping of services; add at least one service"]
    errors: list[str] = []
    for service_name, service in services.items():
        where = f"services.{service_name}"
        if not isinstance(service, dict):
            errors.append(f"{cdisplay}: {where}: must be a mapping (got {_show(service)}); add image: and the rest")
            continue
        if "build" in service:
            errors.append(f"{cdisplay}: {where}.build: is not supported; use a published image")
        image = service.get("image")
        if image is None:
            errors.append(f"{cdisplay}: {where}.image: is required; add e.g. image: {_EXAMPLE_PACKAGE}")
            continue
        problem = image_problem(image)
        if problem:
            errors.append(f"{cdisplay}: {where}.image: {problem}")
    used, required = _compose_variables(path.read_text(encoding="utf-8"))
    declared = {secret.name for secret in spec.secrets}
    for name in sorted(required - declared):
        errors.append(
            f"{cdisplay}: uses ${{{name}}} without a default; list it under secrets: in {display} "
            f"or write ${{{name}:-default}}"
        )
    for i, secret in enumerate(spec.secrets):
        if secret.name not in used:
            errors.append(f"{display}: secrets[{i}].name: {secret.name!r} is not used by {spec.compose}; remove it")
    return errors


# --------------------------------------------------------------------------- loading


def _display(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_package(path: str | Path, packages_dir: str | Path | None = None) -> PackageSpec:
    """Load and validate one package file (and its compose file, if any)."""
    path = Path(path)
    packages_dir = Path(packages_dir) if packages_dir is not None else path.parent
    display = _display(path)
    if path.suffix != ".yml":
        raise CatalogError([f"{display}: package files end in .yml; rename it to {path.stem}.yml"])
    data = _read_yaml(path, display)
    if not isinstance(data, dict):
        raise CatalogError([f"{display}: must be a mapping of keys (got {_show(data)}); start with name: {path.stem}"])
    try:
        spec = PackageSpec.model_validate(data, context={"file_stem": path.stem})
    except ValidationError as exc:
        raise CatalogError([_format_error(error, display) for error in exc.errors()]) from None
    if spec.compose is not None:
        errors = _check_compose(spec, packages_dir, display)
        if errors:
            raise CatalogError(errors)
    return spec


def load_catalog(directory: str | Path = DEFAULT_PACKAGES_DIR) -> dict[str, PackageSpec]:
    """Load every ``*.yml`` package in ``directory``, sorted by name.

    All files are checked before failing; :class:`CatalogError` lists every
    problem found, one line each.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError([f"{directory}: is not a directory of package files"])
    catalog: dict[str, PackageSpec] = {}
    errors: list[str] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".yaml":
            errors.append(f"{_display(path)}: package files end in .yml; rename it to {path.stem}.yml")
            continue
        if path.suffix != ".yml":
            continue
        try:
            spec = load_package(path, directory)
        except CatalogError as exc:
            errors.extend(exc.errors)
            continue
        catalog[spec.name] = spec
    if errors:
        raise CatalogError(errors)
    return catalog


# --------------------------------------------------------------------------- schema


def package_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a package file."""
    schema = PackageSpec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def write_schema(path: str | Path = DEFAULT_SCHEMA_PATH) -> Path:
    """Write :func:`package_schema` as pretty JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(package_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv else "check"
    if command == "schema":
        print(write_schema(argv[0] if argv else DEFAULT_SCHEMA_PATH))
        return 0
    if command == "check":
        try:
            catalog = load_catalog(argv[0] if argv else DEFAULT_PACKAGES_DIR)
        except CatalogError as exc:
            print(exc, file=sys.stderr)
            return 1
        for name, spec in catalog.items():
            print(f"{name:20} {spec.compose or spec.image}")
        return 0
    print("usage: python -m homefleet.catalog [check [DIR] | schema [PATH]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
