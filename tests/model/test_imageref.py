"""The image reference grammar (distribution/reference) and docker's normalisation."""

from __future__ import annotations

import re

import pytest

from homefleet.imageref import (
    PINNED_REFERENCE_PATTERN,
    ImageRef,
    ImageRefError,
    parse_image_ref,
)

SHA = "sha256:" + "0123456789abcdef" * 4
TAG_RULE = "use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"
REPO_RULE = "use lowercase letters and digits, separated by '.', '_', '__' or '-', in '/'-separated parts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageRef(None, "nginx", None, None)),
        ("nginx:1.28.0", ImageRef(None, "nginx", "1.28.0", None)),
        ("library/nginx:1.28", ImageRef(None, "library/nginx", "1.28", None)),
        ("docker.io/jellyfin/jellyfin:10.11.11", ImageRef("docker.io", "jellyfin/jellyfin", "10.11.11", None)),
        ("ghcr.io/immich-app/immich-server:v3.2.2", ImageRef("ghcr.io", "immich-app/immich-server", "v3.2.2", None)),
        # registry with a port; the ':' before the last '/' is the port, not a tag
        ("localhost:5000/app", ImageRef("localhost:5000", "app", None, None)),
        ("registry.lan:5000/team/app:2.0", ImageRef("registry.lan:5000", "team/app", "2.0", None)),
        ("registry:5000/app:1", ImageRef("registry:5000", "app", "1", None)),
        ("localhost/app:1", ImageRef("localhost", "app", "1", None)),
        ("[::1]:5000/app:1", ImageRef("[::1]:5000", "app", "1", None)),
        ("192.168.1.10:5000/app:1", ImageRef("192.168.1.10:5000", "app", "1", None)),
        # nested paths and separators
        ("quay.io/a/b/c/d:1", ImageRef("quay.io", "a/b/c/d", "1", None)),
        ("ghcr.io/a_b/c__d/e.f/g-h/i---j:1", ImageRef("ghcr.io", "a_b/c__d/e.f/g-h/i---j", "1", None)),
        # digests, with and without a tag
        (f"docker.io/valkey/valkey:9@{SHA}", ImageRef("docker.io", "valkey/valkey", "9", SHA)),
        (f"ghcr.io/a/b@{SHA}", ImageRef("ghcr.io", "a/b", None, SHA)),
        (f"nginx@{SHA}", ImageRef(None, "nginx", None, SHA)),
        # tags: word characters, dots and dashes, up to 128
        ("a:_x", ImageRef(None, "a", "_x", None)),
        ("a:V1.2-Beta_3", ImageRef(None, "a", "V1.2-Beta_3", None)),
        ("a:" + "x" * 128, ImageRef(None, "a", "x" * 128, None)),
        # uppercase is fine in the registry host (hosts are case-insensitive)
        ("Registry.Example.COM/app:1", ImageRef("Registry.Example.COM", "app", "1", None)),
    ],
)
def test_parses(text: str, expected: ImageRef) -> None:
    ref = parse_image_ref(text)
    assert ref == expected
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty reference"),
        (" nginx", "contains whitespace"),
        ("ngi nx", "contains whitespace"),
        ("Nginx", "repository name must be lowercase"),
        ("docker.io/Jellyfin/jellyfin:1", "repository name must be lowercase"),
        ("MyOrg/app:1", "repository name must be lowercase"),
        ("ghcr.io/a/b@sha256:" + "A" * 64, "digest hex must be lowercase"),
        ("ghcr.io/a/b@sha256:abc", "digest must be sha256: followed by 64 hex digits"),
        ("ghcr.io/a/b@sha512:" + "a" * 128, "digest must be sha256: followed by 64 hex digits"),
        ("a@" + SHA + "@" + SHA, "more than one '@'"),
        ("a:.bad", f"invalid tag '.bad': {TAG_RULE}"),
        ("a:-bad", f"invalid tag '-bad': {TAG_RULE}"),
        (
            "a:" + "x" * 129,
            f"invalid tag '{'x' * 129}': {TAG_RULE}",
        ),
        (":1", "missing repository name"),
        ("ghcr.io/", "missing repository name after the registry"),
        ("foo:bar/baz", "invalid registry host 'foo:bar'"),
        ("-bad.io/a", "invalid registry host '-bad.io'"),
        ("ghcr.io/a//b", f"invalid repository name 'a//b': {REPO_RULE}"),
        ("ghcr.io/a___b", f"invalid repository name 'a___b': {REPO_RULE}"),
        ("ghcr.io/-a", f"invalid repository name '-a': {REPO_RULE}"),
        ("a\x00b", "contains a control character"),
        ("ghcr.io/" + "a" * 250, "repository name longer than 255 characters"),
    ],
)
def test_refuses(text: str, reason: str) -> None:
    with pytest.raises(ImageRefError) as excinfo:
        parse_image_ref(text)
    assert str(excinfo.value) == reason


def test_refuses_non_strings() -> None:
    with pytest.raises(ImageRefError, match="must be a string, not int"):
        parse_image_ref(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.28.0", "docker.io/library/nginx:1.28.0"),
        ("jellyfin/jellyfin", "docker.io/jellyfin/jellyfin:latest"),
        ("docker.io/nginx:1", "docker.io/library/nginx:1"),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/a/b:1", "docker.io/a/b:1"),
        ("docker.io/library/nginx:1.28.0", "docker.io/library/nginx:1.28.0"),
        ("ghcr.io/a/b", "ghcr.io/a/b:latest"),
        ("ghcr.io/nginx", "ghcr.io/nginx:latest"),  # library/ is only a Docker Hub default
        ("localhost:5000/app", "localhost:5000/app:latest"),
        (f"nginx@{SHA}", f"docker.io/library/nginx@{SHA}"),  # no tag added next to a digest
        (f"nginx:1@{SHA}", f"docker.io/library/nginx:1@{SHA}"),
    ],
)
def test_normalized_like_docker(text: str, normalized: str) -> None:
    ref = parse_image_ref(text).normalized
    assert str(ref) == normalized
    assert ref.normalized == ref  # idempotent


def test_normalized_fields() -> None:
    ref = parse_image_ref("nginx").normalized
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("docker.io", "library/nginx", "latest", None)
    assert ref.name == "docker.io/library/nginx"


@pytest.mark.parametrize(
    ("text", "is_latest", "is_pinned"),
    [
        ("nginx", True, False),
        ("nginx:latest", True, False),
        ("docker.io/library/nginx:latest", True, False),
        ("ghcr.io/a/b:release", False, False),
        ("ghcr.io/a/b:stable", False, False),
        ("ghcr.io/a/b:13.0-latest", False, False),
        ("ghcr.io/a/b:Nightly", False, False),
        ("ghcr.io/a/b:1.2.3", False, True),
        ("ghcr.io/a/b:v3.2.2", False, True),
        ("ghcr.io/a/b:latest-1.2", False, True),  # only an exact moving word or a -latest suffix
        (f"ghcr.io/a/b@{SHA}", False, True),
        (f"ghcr.io/a/b:9@{SHA}", False, True),
        (f"ghcr.io/a/b:latest@{SHA}", True, True),  # the digest pins it, though the tag says latest
    ],
)
def test_latest_and_pinned(text: str, is_latest: bool, is_pinned: bool) -> None:
    ref = parse_image_ref(text)
    assert ref.is_latest is is_latest
    assert ref.is_pinned is is_pinned


def test_is_qualified() -> None:
    assert parse_image_ref("docker.io/library/nginx:1").is_qualified
    assert parse_image_ref("localhost/app:1").is_qualified
    assert not parse_image_ref("library/nginx:1").is_qualified
    assert not parse_image_ref("nginx:1").is_qualified


def test_frozen_and_hashable() -> None:
    ref = parse_image_ref("ghcr.io/a/b:1")
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
    assert {ref, parse_image_ref("ghcr.io/a/b:1")} == {ref}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("docker.io/library/nginx:1.28.0", True),
        ("ghcr.io/a/b/c:v1", True),
        (f"docker.io/valkey/valkey:9@{SHA}", True),
        (f"ghcr.io/a/b@{SHA}", True),
        ("registry:5000/app:1", True),
        ("localhost/app:1", True),
        ("[::1]:5000/app:1", True),
        ("nginx:1.28.0", False),  # no registry
        ("library/nginx:1.28.0", False),  # 'library' is not a registry
        ("docker.io/library/nginx", False),  # no tag or digest
        ("docker.io/library/nginx:latest", False),
        (f"docker.io/library/nginx:latest@{SHA}", False),
        ("docker.io/library/nginx:latest-alpine", True),
        ("docker.io/Library/nginx:1", False),
    ],
)
def test_schema_pattern(text: str, matches: bool) -> None:
    """The JSON Schema pattern accepts exactly the qualified, tagged/digested references."""
    assert bool(re.search(PINNED_REFERENCE_PATTERN, text)) is matches
