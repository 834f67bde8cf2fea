"""Container image references: parse, check and normalise them like docker does.

The grammar is the one of distribution/reference (``reference.go``)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [ domain "/" ] path
    domain           := host [ ":" port ]
    host             := domain-name | IPv4 | "[" IPv6 "]"
    domain-name      := component ( "." component )*
    component        := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
    path             := path-component ( "/" path-component )*
    path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
    separator        := [_.] | "__" | "-"+
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := "sha256:" [a-f0-9]{64}          (the only algorithm accepted here)

Like docker, the first ``/``-separated part is a registry only if it contains a
``.`` or a ``:``, or is ``localhost``; otherwise the whole name is a repository
on Docker Hub.  :attr:`ImageRef.normalized` fills in what docker fills in:
``docker.io``, ``library/`` for one-part Hub names and ``:latest`` when there is
neither tag nor digest.

This module is standalone (stdlib only) so every layer can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "MOVING_TAGS",
    "ImageRef",
    "ImageRefError",
    "parse_image_ref",
    "PINNED_REFERENCE_PATTERN",
]

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

#: Tags that name a moving target rather than a release.  A reference with one
#: of these (and no digest) is not pinned.
MOVING_TAGS = frozenset(
    {"latest", "stable", "release", "edge", "nightly", "main", "master", "develop", "dev", "beta", "rolling", "public"}
)

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_TAG_RULE = "use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"

#: An ECMAScript/Python regular expression for a *fully-qualified, pinned*
#: reference: an explicit registry, then a tag other than ``latest`` and/or a
#: digest.  It is used in
#: the JSON Schema so editors can flag bad references; the parser below gives
#: the precise reason.
PINNED_REFERENCE_PATTERN = (
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})+(?::[0-9]+)?"  # a dotted host, e.g. ghcr.io
    rf"|{_DOMAIN_COMPONENT}:[0-9]+"  # host:port, e.g. registry:5000
    rf"|localhost(?::[0-9]+)?"
    rf"|{_IPV6}(?::[0-9]+)?)"
    rf"/{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    rf"(?::(?!latest(?:@|$)){_TAG}(?:@{_DIGEST})?|@{_DIGEST})$"
)


class ImageRefError(ValueError):
    """The string is not a valid image reference; the message says why."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference, exactly as written (see :attr:`normalized`).

    ``registry`` is ``None`` when the reference names none (docker then uses
    Docker Hub); ``tag`` and ``digest`` are ``None`` when absent.
    """

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def name(self) -> str:
        """``registry/repository`` as written (no tag, no digest)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def normalized(self) -> ImageRef:
        """The reference as docker resolves it.

        ``nginx`` -> ``docker.io/library/nginx:latest``;
        ``index.docker.io/x/y`` -> ``docker.io/x/y:latest``;
        a digest-only reference gets no tag.
        """
        registry = self.registry or DEFAULT_REGISTRY
        if registry == "index.docker.io":
            registry = DEFAULT_REGISTRY
        repository = self.repository
        if registry == DEFAULT_REGISTRY and "/" not in repository:
            repository = f"library/{repository}"
        tag = self.tag
        if tag is None and self.digest is None:
            tag = DEFAULT_TAG
        return ImageRef(registry, repository, tag, self.digest)

    @property
    def is_qualified(self) -> bool:
        """True when the reference names its registry explicitly."""
        return self.registry is not None

    @property
    def is_latest(self) -> bool:
        """True when docker would pull ``:latest`` (written or implied)."""
        return self.normalized.tag == DEFAULT_TAG

    @property
    def is_pinned(self) -> bool:
        """True when the reference names a release: a digest, or a tag that is
        not a moving one (``latest``, ``stable``, ``nightly``, ``*-latest`` ...)."""
        if self.digest is not None:
            return True
        if self.tag is None:
            return False
        tag = self.tag.lower()
        return tag not in MOVING_TAGS and not tag.endswith("-latest")


def parse_image_ref(text: str) -> ImageRef:
    """Parse ``text`` per the distribution/reference grammar.

    Raises :class:`ImageRefError` with a one-line reason when it is invalid.
    """
    if not isinstance(text, str):
        raise ImageRefError(f"must be a string, not {type(text).__name__}")
    if text == "":
        raise ImageRefError("empty reference")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise ImageRefError("contains whitespace")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ImageRefError("contains a control character")

    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if "@" in digest:
            raise ImageRefError("more than one '@'")
        if not _DIGEST_RE.fullmatch(digest):
            if digest.lower() != digest and _DIGEST_RE.fullmatch(digest.lower()):
                raise ImageRefError("digest hex must be lowercase")
            raise ImageRefError("digest must be sha256: followed by 64 hex digits")

    # A tag follows the last ':' that comes after the last '/'; a ':' before
    # that belongs to a registry port.
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ImageRefError(f"invalid tag {tag!r}: {_TAG_RULE}")

    if rest == "":
        raise ImageRefError("missing repository name")

    registry, repository = None, rest
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
        if not _DOMAIN_RE.fullmatch(registry):
            raise ImageRefError(f"invalid registry host {registry!r}")
        if repository == "":
            raise ImageRefError("missing repository name after the registry")

    if not _PATH_RE.fullmatch(repository):
        if repository.lower() != repository and _PATH_RE.fullmatch(repository.lower()):
            raise ImageRefError("repository name must be lowercase")
        raise ImageRefError(
            f"invalid repository name {repository!r}: use lowercase letters and digits, "
            "separated by '.', '_', '__' or '-', in '/'-separated parts"
        )

    name = f"{registry}/{repository}" if registry else repository
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise ImageRefError(f"repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    return ImageRef(registry, repository, tag, digest)
