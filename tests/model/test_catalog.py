"""The app catalog: every package validates (model and committed JSON Schema), images
are pinned, the named apps are all there, and bad files get precise error lines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from homefleet.catalog import (
    CATEGORIES,
    DEFAULT_PACKAGES_DIR,
    DEFAULT_SCHEMA_PATH,
    SCHEMA_COMMENT,
    CatalogError,
    PackageSpec,
    load_catalog,
    load_package,
    package_schema,
    write_schema,
)
from homefleet.imageref import parse_image_ref

PACKAGE_FILES = sorted(DEFAULT_PACKAGES_DIR.glob("*.yml"))

# The apps the catalog promises, by category.
EXPECTED = {
    "media": {"jellyfin", "plex", "emby", "navidrome", "audiobookshelf"},
    "photos": {"immich", "photoprism"},
    "files": {"nextcloud", "seafile", "filebrowser", "syncthing"},
    "home-automation": {"home-assistant", "mosquitto", "zigbee2mqtt", "node-red"},
    "documents": {"paperless-ngx", "calibre-web", "bookstack", "wikijs", "stirling-pdf"},
    "passwords": {"vaultwarden"},
    "monitoring": {"uptime-kuma", "grafana", "prometheus"},
    "network": {"adguardhome", "pihole", "traefik", "nginx"},
    "recipes": {"mealie", "tandoor"},
    "rss": {"freshrss", "miniflux"},
    "databases": {"postgres", "mariadb", "redis"},
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, PackageSpec]:
    return load_catalog()


# --------------------------------------------------------------------------- a small JSON Schema checker
#
# `jsonschema` is not a dependency, so this checks the keywords the generated
# schema uses (draft 2020-12 subset).  Unknown keywords fail loudly, so a schema
# that grows a keyword this does not understand cannot pass silently.

_ANNOTATIONS = {"title", "description", "default", "$schema", "examples"}
_KNOWN = _ANNOTATIONS | {
    "$ref", "$defs", "type", "enum", "const", "pattern", "minimum", "maximum", "minLength", "maxLength",
    "properties", "patternProperties", "additionalProperties", "required", "propertyNames", "items",
    "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
}  # fmt: skip


def _ecma(pattern: str) -> str:
    # ECMAScript '$' (no multiline flag) matches only at the very end.
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


def _type_ok(value: Any, kind: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    unknown = set(schema) - _KNOWN
    assert not unknown, f"schema keyword(s) the test checker does not know: {unknown}"
    errors: list[str] = []
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        errors += schema_errors(value, root["$defs"][name], root, path)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, kind) for kind in kinds):
            return errors + [f"{path}: not of type {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: not {schema['const']!r}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(_ecma(schema["pattern"]), value):
            errors.append(f"{path}: does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: bad length")
    in_range = not _type_ok(value, "number") or schema.get("minimum", value) <= value <= schema.get("maximum", value)
    if not in_range:
        errors.append(f"{path}: out of range")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key}")
        properties = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                errors += schema_errors(key, schema["propertyNames"], root, f"{path}.{key}(name)")
            matched = False
            if key in properties:
                matched = True
                errors += schema_errors(item, properties[key], root, f"{path}.{key}")
            for pattern, subschema in patterns.items():
                if re.search(_ecma(pattern), key):
                    matched = True
                    errors += schema_errors(item, subschema, root, f"{path}.{key}")
            if not matched and schema.get("additionalProperties") is False:
                errors.append(f"{path}.{key}: additional property")
            elif not matched and isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], root, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], root, f"{path}[{i}]")
    for sub in schema.get("allOf", []):
        errors += schema_errors(value, sub, root, path)
    if "anyOf" in schema and all(schema_errors(value, sub, root, path) for sub in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema:
        passing = sum(not schema_errors(value, sub, root, path) for sub in schema["oneOf"])
        if passing != 1:
            errors.append(f"{path}: matches {passing} of oneOf, not exactly 1")
    if "not" in schema and not schema_errors(value, schema["not"], root, path):
        errors.append(f"{path}: matches a 'not' schema")
    if "if" in schema:
        branch = "then" if not schema_errors(value, schema["if"], root, path) else "else"
        if branch in schema:
            errors += schema_errors(value, schema[branch], root, path)
    return errors


def committed_schema() -> dict[str, Any]:
    return json.loads(DEFAULT_SCHEMA_PATH.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the catalog itself


def test_catalog_loads(catalog: dict[str, PackageSpec]) -> None:
    assert len(catalog) >= 35
    assert list(catalog) == sorted(catalog)
    assert len(PACKAGE_FILES) == len(catalog)


def test_catalog_covers_every_named_app(catalog: dict[str, PackageSpec]) -> None:
    for category, names in EXPECTED.items():
        missing = names - set(catalog)
        assert not missing, f"{category}: missing {missing}"
        for name in names:
            assert catalog[name].category == category, name
    assert {spec.category for spec in catalog.values()} <= set(CATEGORIES)


def test_committed_schema_is_fresh() -> None:
    assert committed_schema() == package_schema(), "run: python -m homefleet.catalog schema"


def test_write_schema_round_trips(tmp_path: Path) -> None:
    path = write_schema(tmp_path / "s" / "package.schema.json")
    assert path.read_text(encoding="utf-8") == DEFAULT_SCHEMA_PATH.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: p.stem)
def test_package_validates_against_model_and_committed_schema(path: Path) -> None:
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_COMMENT
    spec = load_package(path)
    assert spec.name == path.stem
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    schema = committed_schema()
    assert schema_errors(data, schema, schema) == []


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: p.stem)
def test_every_image_is_qualified_and_pinned(path: Path) -> None:
    spec = load_package(path)
    if spec.compose is not None:
        compose = yaml.safe_load(spec.compose_path(DEFAULT_PACKAGES_DIR).read_text(encoding="utf-8"))
        images = [service["image"] for service in compose["services"].values()]
    else:
        images = [spec.image]
    assert images
    for image in images:
        ref = parse_image_ref(image)
        assert ref.is_qualified, image
        assert ref.tag is not None or ref.digest is not None, image
        assert ref.tag != "latest" and not ref.is_latest, image
        assert ref.is_pinned, image
        assert str(ref) == image


def test_image_packages_are_complete(catalog: dict[str, PackageSpec]) -> None:
    for name, spec in catalog.items():
        assert spec.notes, f"{name}: no post-deploy notes"
        assert spec.ports, f"{name}: no ports"
        if spec.compose is None:
            assert spec.resources is not None and spec.volumes, name
            assert spec.image_ref is not None
            for volume in spec.volumes:
                assert volume.path.startswith("/") and volume.size >= 1


def test_gpu_advice(catalog: dict[str, PackageSpec]) -> None:
    for name in ("jellyfin", "plex", "emby", "immich"):
        assert catalog[name].gpu in ("optional", "recommended"), name
        assert catalog[name].gpu_note
    assert catalog["postgres"].gpu == "none"


def test_linuxserver_images_get_puid_pgid(catalog: dict[str, PackageSpec]) -> None:
    for name, spec in catalog.items():
        if spec.image and spec.image.startswith("lscr.io/linuxserver/"):
            assert {"PUID", "PGID", "TZ"} <= set(spec.env), name


def test_well_known_data_paths(catalog: dict[str, PackageSpec]) -> None:
    paths = {name: {v.path for v in spec.volumes} for name, spec in catalog.items()}
    assert {"/config", "/cache"} <= paths["jellyfin"]
    assert "/data" in paths["vaultwarden"]
    assert "/var/lib/postgresql/data" in paths["postgres"]
    assert "/var/lib/mysql" in paths["mariadb"]
    assert "/config" in paths["home-assistant"]


def test_immich_compose_follows_the_release_file(catalog: dict[str, PackageSpec]) -> None:
    spec = catalog["immich"]
    assert spec.compose == "compose/immich.yml"
    compose = yaml.safe_load(spec.compose_path().read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"immich-server", "immich-machine-learning", "redis", "database"}
    server = parse_image_ref(services["immich-server"]["image"])
    ml = parse_image_ref(services["immich-machine-learning"]["image"])
    assert (server.registry, server.repository) == ("ghcr.io", "immich-app/immich-server")
    assert (ml.registry, ml.repository) == ("ghcr.io", "immich-app/immich-machine-learning")
    assert server.tag == ml.tag and server.tag.startswith("v")
    # postgres and valkey are pinned by tag: the digests once pinned here could not be confirmed
    # from immich's own repository (issue 20), and an unconfirmed digest is worse than none.
    # A digest may come back, but only copied from upstream's release compose file.
    database = parse_image_ref(services["database"]["image"])
    assert database.repository == "immich-app/postgres" and "vectorchord" in database.tag
    redis = parse_image_ref(services["redis"]["image"])
    assert redis.repository == "valkey/valkey" and redis.tag == "9"
    assert {s.name for s in spec.secrets} == {"DB_PASSWORD"}


@pytest.mark.parametrize("name", ["immich", "paperless-ngx", "seafile", "bookstack", "miniflux", "tandoor"])
def test_compose_packages_parse(catalog: dict[str, PackageSpec], name: str) -> None:
    spec = catalog[name]
    assert spec.is_compose and spec.image is None and spec.image_ref is None
    compose = yaml.safe_load(spec.compose_path().read_text(encoding="utf-8"))
    assert isinstance(compose["services"], dict) and len(compose["services"]) >= 2


def test_env_values_are_strings_without_control_characters(catalog: dict[str, PackageSpec]) -> None:
    for spec in catalog.values():
        for key, value in spec.env.items():
            assert isinstance(value, str) and not re.search(r"[\x00-\x1f\x7f]", value), (spec.name, key)


# --------------------------------------------------------------------------- error messages

BASE = """\
name: demo
description: Demo app
category: other
homepage: https://example.org
image: docker.io/library/nginx:1.28.0
image_checked: test
resources: {memory: 512, disk: 2}
"""

TOP_KEYS = (
    "category, compose, description, env, features, gpu, gpu_note, health, homepage, image, image_checked, "
    "name, notes, ports, resources, secrets, volumes"
)


def write(tmp_path: Path, text: str, stem: str = "demo") -> Path:
    packages = tmp_path / "packages"
    packages.mkdir(exist_ok=True)
    path = packages / f"{stem}.yml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(CatalogError) as excinfo:
        load_package(path)
    return str(excinfo.value)


def test_base_document_is_valid(tmp_path: Path) -> None:
    spec = load_package(write(tmp_path, BASE))
    assert spec.resources is not None
    assert (spec.resources.cores, spec.resources.memory, spec.resources.swap, spec.resources.disk) == (1, 512, 512, 2)
    assert spec.gpu == "none" and spec.volumes == [] and spec.env == {}
    assert not (spec.features.nesting or spec.features.keyctl or spec.features.fuse)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BASE + "homepag2: https://example.org\n",
            "packages/demo.yml: homepag2: unknown key; did you mean 'homepage'? allowed here: " + TOP_KEYS,
            id="unknown-key",
        ),
        pytest.param(
            BASE + "memroy: 4096\n",
            "packages/demo.yml: memroy: unknown key; did you mean 'memory' (under resources)? allowed here: "
            + TOP_KEYS,
            id="unknown-key-belongs-elsewhere",
        ),
        pytest.param(
            BASE.replace("disk: 2}", "disk: 2, cpus: 2}"),
            "packages/demo.yml: resources.cpus: unknown key; allowed here: cores, disk, memory, swap",
            id="unknown-nested-key",
        ),
        pytest.param(
            BASE.replace("memory: 512", "memory: 4G"),
            "packages/demo.yml: resources.memory: must be an integer number of MiB ≥ 16 (got '4G'); write e.g. 4096",
            id="memory-4G",
        ),
        pytest.param(
            BASE.replace("memory: 512", "memory: 8"),
            "packages/demo.yml: resources.memory: must be an integer number of MiB ≥ 16 (got 8); write e.g. 4096",
            id="memory-too-small",
        ),
        pytest.param(
            BASE.replace("memory: 512, ", ""),
            "packages/demo.yml: resources.memory: is required; add e.g. memory: 4096",
            id="memory-missing",
        ),
        pytest.param(
            BASE + "volumes:\n  - {path: config, size: 1, description: Settings}\n",
            "packages/demo.yml: volumes[0].path: must be an absolute, normalised path inside the container, "
            "without spaces or commas (got 'config'); write e.g. '/config'",
            id="relative-volume-path",
        ),
        pytest.param(
            BASE + "volumes:\n  - {path: /a/../config, size: 1, description: Settings}\n",
            "packages/demo.yml: volumes[0].path: must be an absolute, normalised path inside the container, "
            "without spaces or commas (got '/a/../config'); write e.g. '/config'",
            id="unnormalised-volume-path",
        ),
        pytest.param(
            BASE + "volumes:\n  - {path: /config, size: 1, description: Settings, users}\n",
            "packages/demo.yml: volumes[0].users: unknown key; if this is text after a comma inside { }, "
            "quote the whole value; allowed here: description, path, size",
            id="unquoted-comma",
        ),
        pytest.param(
            BASE.replace("nginx:1.28.0", "nginx"),
            "packages/demo.yml: image: must pin a version tag (got 'docker.io/library/nginx'); "
            "write e.g. 'docker.io/library/nginx:1.2.3' with the tag you checked",
            id="image-without-tag",
        ),
        pytest.param(
            BASE.replace("nginx:1.28.0", "nginx:latest"),
            "packages/demo.yml: image: must pin a version tag, not the moving tag 'latest' "
            "(got 'docker.io/library/nginx:latest'); "
            "write e.g. 'docker.io/library/nginx:1.2.3' with the tag you checked",
            id="image-latest",
        ),
        pytest.param(
            BASE.replace("docker.io/library/nginx:1.28.0", "nginx:1.28.0"),
            "packages/demo.yml: image: must name its registry (got 'nginx:1.28.0'); write 'docker.io/library/nginx:1.28.0'",
            id="image-without-registry",
        ),
        pytest.param(
            BASE.replace("library/nginx", "library/Nginx"),
            "packages/demo.yml: image: is not a valid image reference: repository name must be lowercase "
            "(got 'docker.io/library/Nginx:1.28.0'); write e.g. 'docker.io/jellyfin/jellyfin:10.11.11'",
            id="image-uppercase",
        ),
        pytest.param(
            BASE.replace("category: other", "category: video"),
            "packages/demo.yml: category: must be one of media, photos, files, home-automation, documents, "
            "passwords, monitoring, network, recipes, rss, databases, other (got 'video'); pick the closest, or 'other'",
            id="category",
        ),
        pytest.param(
            BASE + "env: {PUID: 1000}\n",
            "packages/demo.yml: env.PUID: must be a string without control characters (got 1000); "
            'quote the value, e.g. "1000"',
            id="env-number",
        ),
        pytest.param(
            BASE + "ports:\n  - {port: 80, name: web}\n  - {port: 80, name: web2}\n",
            "packages/demo.yml: ports[1].port: repeats 80/tcp; list each port once",
            id="duplicate-port",
        ),
        pytest.param(
            BASE + "gpu: recommended\n",
            "packages/demo.yml: gpu_note: is required when gpu is recommended; say what the GPU is used for",
            id="gpu-without-note",
        ),
        pytest.param(
            BASE + "compose: compose/demo.yml\n",
            "packages/demo.yml: image: is not allowed together with compose; put it in the compose file instead",
            id="image-and-compose",
        ),
        pytest.param(
            BASE.replace("resources: {memory: 512, disk: 2}\n", ""),
            "packages/demo.yml: resources: is required for an image package; add e.g. resources: {memory: 512, disk: 4}",
            id="no-resources",
        ),
        pytest.param(
            BASE + "name: other\n",
            "packages/demo.yml: is not valid YAML: duplicate key 'name' at line 8, column 1; fix the syntax",
            id="duplicate-yaml-key",
        ),
        pytest.param(
            "- just\n- a list\n",
            "packages/demo.yml: must be a mapping of keys (got ['just', 'a list']); start with name: demo",
            id="not-a-mapping",
        ),
    ],
)
def test_error_messages(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(write(tmp_path, text)) == expected


def test_bad_name(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("name: demo", "name: Bad_Name"), stem="Bad_Name")
    assert error_of(path) == (
        "packages/Bad_Name.yml: name: must be lowercase letters, digits and '-', starting with a letter, "
        "at most 63 characters (got 'Bad_Name'); write e.g. 'my-app'"
    )


def test_name_must_match_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE, stem="other")
    assert error_of(path) == (
        "packages/other.yml: name: must equal the file name 'other' (got 'demo'); rename the file or the package"
    )


COMPOSE_BASE = """\
name: demo
description: Demo app
category: other
homepage: https://example.org
compose: compose/demo.yml
image_checked: test
ports: [{port: 8080, name: web, scheme: http}]
secrets: [{name: DB_PASSWORD, description: Database password}]
"""


def write_compose(tmp_path: Path, text: str) -> None:
    (tmp_path / "packages" / "compose").mkdir(parents=True, exist_ok=True)
    (tmp_path / "packages" / "compose" / "demo.yml").write_text(text, encoding="utf-8")


def test_compose_package_is_valid(tmp_path: Path) -> None:
    write_compose(
        tmp_path,
        "services:\n  app:\n    image: ghcr.io/a/app:1.0\n    environment:\n"
        "      PASSWORD: ${DB_PASSWORD}\n      TZ: ${TZ:-Etc/UTC}\n      ESCAPED: $$HOME\n",
    )
    spec = load_package(write(tmp_path, COMPOSE_BASE))
    assert spec.is_compose and spec.resources is None
    assert spec.compose_path(tmp_path / "packages") == tmp_path / "packages" / "compose" / "demo.yml"


@pytest.mark.parametrize(
    ("compose", "expected"),
    [
        pytest.param(
            None,
            "packages/demo.yml: compose: file 'compose/demo.yml' not found in packages/; create it or fix the path",
            id="missing-file",
        ),
        pytest.param(
            "services: {}\n",
            "packages/compose/demo.yml: services: must be a non-empty mapping of services; add at least one service",
            id="no-services",
        ),
        pytest.param(
            "services:\n  app:\n    image: ghcr.io/a/app:latest\n    environment: {P: '${DB_PASSWORD}'}\n",
            "packages/compose/demo.yml: services.app.image: must pin a version tag, not the moving tag 'latest' "
            "(got 'ghcr.io/a/app:latest'); write e.g. 'ghcr.io/a/app:1.2.3' with the tag you checked",
            id="latest-in-compose",
        ),
        pytest.param(
            "services:\n  app:\n    image: ghcr.io/a/app:1\n    environment: {P: '${DB_PASSWORD}', Q: '${OTHER}'}\n",
            "packages/compose/demo.yml: uses ${OTHER} without a default; list it under secrets: in "
            "packages/demo.yml or write ${OTHER:-default}",
            id="undeclared-variable",
        ),
        pytest.param(
            "services:\n  app:\n    image: ghcr.io/a/app:1\n",
            "packages/demo.yml: secrets[0].name: 'DB_PASSWORD' is not used by compose/demo.yml; remove it",
            id="unused-secret",
        ),
        pytest.param(
            "services:\n  app:\n    build: .\n    image: ghcr.io/a/app:1\n    environment: {P: '${DB_PASSWORD}'}\n",
            "packages/compose/demo.yml: services.app.build: is not supported; use a published image",
            id="build",
        ),
    ],
)
def test_compose_errors(tmp_path: Path, compose: str | None, expected: str) -> None:
    if compose is not None:
        write_compose(tmp_path, compose)
    assert error_of(write(tmp_path, COMPOSE_BASE)) == expected


@pytest.mark.parametrize(("key", "value"), [("volumes", "[]"), ("env", "{A: b}"), ("features", "{nesting: true}")])
def test_compose_packages_refuse_container_keys(tmp_path: Path, key: str, value: str) -> None:
    write_compose(tmp_path, "services:\n  app:\n    image: ghcr.io/a/app:1\n    environment: {P: '${DB_PASSWORD}'}\n")
    assert error_of(write(tmp_path, COMPOSE_BASE + f"{key}: {value}\n")) == (
        f"packages/demo.yml: {key}: is not allowed together with compose; put it in the compose file instead"
    )


def test_load_catalog_reports_every_bad_file(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    write(tmp_path, BASE.replace("name: demo", "name: two").replace("memory: 512", "memory: 4G"), stem="two")
    write(tmp_path, BASE.replace("name: demo", "name: three").replace("nginx:1.28.0", "nginx"), stem="three")
    (tmp_path / "packages" / "four.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "packages" / "README.md").write_text("not a package", encoding="utf-8")
    with pytest.raises(CatalogError) as excinfo:
        load_catalog(tmp_path / "packages")
    assert [line.split(":")[0] for line in excinfo.value.errors] == [
        "packages/four.yaml",
        "packages/three.yml",
        "packages/two.yml",
    ]
    assert excinfo.value.errors[0] == "packages/four.yaml: package files end in .yml; rename it to four.yml"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, BASE + "ports: [\n")) == (
        "packages/demo.yml: is not valid YAML: expected the node content, but found '<stream end>' "
        "at line 9, column 1; fix the syntax"
    )


# --------------------------------------------------------------------------- model and schema agree

AGREEMENT_CASES = [
    BASE,
    BASE + "memroy: 1\n",
    BASE.replace("memory: 512", "memory: 4G"),
    BASE.replace("memory: 512", "memory: 8"),
    BASE.replace("disk: 2", "disk: 0"),
    BASE.replace("disk: 2}", "disk: 2, cores: 65}"),
    BASE.replace("nginx:1.28.0", "nginx:latest"),
    BASE.replace("nginx:1.28.0", "nginx"),
    BASE.replace("docker.io/library/nginx:1.28.0", "nginx:1.28.0"),
    BASE.replace("name: demo", "name: Demo"),
    BASE.replace("homepage: https://example.org", "homepage: example.org"),
    BASE.replace("category: other", "category: video"),
    BASE.replace("image: docker.io/library/nginx:1.28.0\n", ""),
    BASE.replace("resources: {memory: 512, disk: 2}\n", ""),
    BASE + "compose: compose/demo.yml\n",
    BASE + "gpu: optional\n",
    BASE + "gpu: optional\ngpu_note: Transcoding\n",
    BASE + "gpu: maybe\n",
    BASE + "volumes:\n  - {path: config, size: 1, description: Settings}\n",
    BASE + "volumes:\n  - {path: /config, size: 0, description: Settings}\n",
    BASE + "volumes:\n  - {path: /config, size: 1, description: Settings}\n",
    BASE + "ports:\n  - {port: 0, name: web}\n",
    BASE + "ports:\n  - {port: 80, protocol: sctp, name: web}\n",
    BASE + "ports:\n  - {port: 80, name: web, scheme: ftp}\n",
    BASE + "ports:\n  - {port: 80, name: web, scheme: null}\n",
    BASE + "env: {TZ: Etc/UTC}\n",
    BASE + "env: {PUID: 1000}\n",
    BASE + "env: {bad-name: x}\n",
    BASE + 'env: {A: "x\\ny"}\n',
    BASE + "secrets: [{name: DB_PASSWORD, description: Password}]\n",
    BASE + "secrets: [{name: 9BAD, description: Password}]\n",
    BASE + "features: {nesting: true}\n",
    BASE + "features: {nesting: 'yes'}\n",
    BASE + "features: {gpu: true}\n",
    BASE + "notes: |\n  line one\n  line two\n",
    BASE.replace("description: Demo app", "description: ''"),
    COMPOSE_BASE,
    COMPOSE_BASE + "volumes: []\n",
    COMPOSE_BASE + "resources: {memory: 512, disk: 2}\n",
    COMPOSE_BASE.replace("compose/demo.yml", "../demo.yml"),
    COMPOSE_BASE.replace("compose/demo.yml", "/abs/demo.yml"),
]


@pytest.mark.parametrize("text", AGREEMENT_CASES)
def test_schema_and_model_agree(text: str) -> None:
    """Editors (schema) and homefleet (model) accept and refuse the same documents.

    Only checks that need the file system (file name, compose file) are left out.
    """
    data = yaml.safe_load(text)
    schema = committed_schema()
    schema_ok = not schema_errors(data, schema, schema)
    try:
        PackageSpec.model_validate(data)
        model_ok = True
    except Exception:  # noqa: BLE001 - any validation failure counts as "refused"
        model_ok = False
    assert schema_ok == model_ok, (schema_ok, model_ok, schema_errors(data, schema, schema))


@pytest.mark.parametrize(("health", "check"), [
    ("{http: /health, port: 8080}", {"kind": "http", "port": 8080, "path": "/health"}),
    ("{tcp: 5432}", {"kind": "tcp", "port": 5432}),
])
def test_package_health_is_planned_as_the_ct_check(tmp_path: Path, health: str, check: dict) -> None:
    text = ("name: demo\ndescription: Demo\ncategory: media\nhomepage: https://example.org\n"
            "image: docker.io/library/nginx:1.27.3\nimage_checked: x\nresources: {cores: 1, memory: 128, swap: 0, disk: 1}\n"
            f"health: {health}\n")
    assert load_package(write(tmp_path, text)).health.as_check() == check


@pytest.mark.parametrize(("health", "message"), [
    ("{http: /health}", "needs the port it is served on"),
    ("{tcp: 1, http: /x, port: 2}", "needs exactly one of http (with port) or tcp"),
    ("{tcp: 70000}", "less than or equal to 65535"),
])
def test_package_health_errors_name_the_fix(tmp_path: Path, health: str, message: str) -> None:
    text = ("name: demo\ndescription: Demo\ncategory: media\nhomepage: https://example.org\n"
            "image: docker.io/library/nginx:1.27.3\nimage_checked: x\nresources: {cores: 1, memory: 128, swap: 0, disk: 1}\n"
            f"health: {health}\n")
    assert message in error_of(write(tmp_path, text))
