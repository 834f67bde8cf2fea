"""OCI images for the simulated registry: reference names, package catalog, layouts (pure)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from sim import images


@pytest.mark.parametrize("ref, expected", [
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("nginx", "docker.io/library/nginx:latest"),
    ("jellyfin/jellyfin:10.10.3", "docker.io/jellyfin/jellyfin:10.10.3"),
    ("docker.io/nginx:1", "docker.io/library/nginx:1"),
    ("index.docker.io/library/redis:7", "docker.io/library/redis:7"),
    ("ghcr.io/Home/App:2.0", "ghcr.io/home/app:2.0"),
    ("localhost:5000/x/y", "localhost:5000/x/y:latest"),
    ("lscr.io/linuxserver/sonarr:4@sha256:" + "a" * 64, "lscr.io/linuxserver/sonarr:4"),
])
def test_normalize_ref(ref, expected):
    assert images.normalize_ref(ref) == expected


def test_package_catalog_is_read_tolerantly(tmp_path):
    (tmp_path / "jelly.yml").write_text(
        "image: jellyfin/jellyfin:10.10.3\nports: ['8096:8096', {container: 7359, protocol: udp}]\n"
        "volumes: [/config, 'cache:/cache:rw', {path: /media}]\nenv: {TZ: UTC}\nfuture_field: 1\n")
    (tmp_path / "stack.yml").write_text(
        "compose:\n  services:\n    db: {image: 'postgres:16'}\n    app: {build: .}\n")
    (tmp_path / "broken.yml").write_text("image: [unclosed\n")
    (tmp_path / "list.yml").write_text("- not a mapping\n")
    specs = {s.ref: s for s in images.package_images(tmp_path)}
    assert set(specs) == {"docker.io/jellyfin/jellyfin:10.10.3", "docker.io/library/postgres:16"}
    jelly = specs["docker.io/jellyfin/jellyfin:10.10.3"]
    assert jelly.exposed_ports == ["8096/tcp", "7359/udp"]
    assert jelly.volumes == ["/config", "/cache", "/media"]


def test_seed_images_include_fixed_test_images(tmp_path):
    refs = [s.ref for s in images.seed_images(tmp_path)]
    for ref in ("docker.io/library/alpine:3.20", "docker.io/library/nginx:1.27",
                "docker.io/jellyfin/jellyfin:10.10.3", "ghcr.io/homefleet/test-app:1.0",
                "ghcr.io/homefleet/test-app:2.0", "docker.io/library/busybox:1.36"):
        assert ref in refs
    assert len(refs) == len(set(refs))


def _layout_contents(layout):
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    blob = lambda d: (layout / "blobs/sha256" / d["digest"].split(":")[1]).read_bytes()  # noqa: E731
    manifest = json.loads(blob(desc))
    config = json.loads(blob(manifest["config"]))
    layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(manifest["layers"][0]))))
    return desc, manifest, config, layer


def test_layout_is_a_valid_deterministic_oci_image(tmp_path):
    spec = next(s for s in images.fixed_test_images() if s.ref.endswith("jellyfin:10.10.3"))
    d1 = images.build_layout(spec, tmp_path / "a")
    d2 = images.build_layout(spec, tmp_path / "b")
    assert d1 == d2
    desc, manifest, config, layer = _layout_contents(tmp_path / "a")
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "10.10.3"
    assert manifest["mediaType"] == images.MT_MANIFEST
    assert manifest["layers"][0]["mediaType"] == images.MT_LAYER
    assert config["config"]["Volumes"] == {"/config": {}, "/cache": {}}
    names = set(layer.getnames())
    assert {"etc/os-release", "etc/passwd", "etc/group", "jellyfin/jellyfin", "config",
            "cache"} <= names
    assert b"ID=debian" in layer.extractfile("etc/os-release").read()
    assert json.loads((tmp_path / "a/oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"


def test_test_app_versions_and_busybox_differ_as_tests_need(tmp_path):
    fixed = {s.ref: s for s in images.fixed_test_images()}
    v1 = images.build_layout(fixed["ghcr.io/homefleet/test-app:1.0"], tmp_path / "1")
    v2 = images.build_layout(fixed["ghcr.io/homefleet/test-app:2.0"], tmp_path / "2")
    assert v1 != v2
    busybox = fixed["docker.io/library/busybox:1.36"]
    assert "ID=busybox" in images.os_release(busybox.os_id)
    retagged = busybox.with_overrides(revision="x")
    assert retagged.key() != busybox.key()


def test_invalid_package_references_are_skipped(tmp_path):
    (tmp_path / "bad.yml").write_text("image: 'not a valid ref!'\n")
    (tmp_path / "good.yml").write_text("image: ghcr.io/x/y:1\n")
    assert [s.ref for s in images.package_images(tmp_path)] == ["ghcr.io/x/y:1"]


def test_compose_file_services_are_seeded(tmp_path):
    (tmp_path / "compose").mkdir()
    (tmp_path / "compose/app.yml").write_text(
        "services:\n  web: {image: 'ghcr.io/x/web:1'}\n  db: {image: 'mariadb:11'}\n")
    (tmp_path / "app.yml").write_text("name: app\ncompose: compose/app.yml\n")
    (tmp_path / "gone.yml").write_text("compose: compose/missing.yml\n")
    assert sorted(s.ref for s in images.package_images(tmp_path)) == [
        "docker.io/library/mariadb:11", "ghcr.io/x/web:1"]
