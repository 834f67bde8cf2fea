"""The NAS's Docker image store: `app.image.pull` (a job) and `app.image.query`, and what
`compose up` runs.

Real sources (truenas/middleware, src/middlewared/middlewared/plugins/):
* `apps_images/images.py` `AppImageService.pull` (24.10; 25.10: `apps_images/pull.py`
  `pull_image_action`): a job taking `{"image": "registry/repo:tag", "auth_config": ...}`,
  handing the name to docker (`apps/ix_apps/docker/images.py` `pull_image`, docker-py
  `client.api.pull`); a failure is `Failed to pull 'IMAGE' image: ...`.
* `apps_images/images.py` `AppImageService.query` (25.10: `apps_images/query.py`
  `query_images`): one entry per local image, `id`, `repo_tags`, `repo_digests`, `size`,
  `created`, `author`, `comment`, `dangling`, `update_available` — Docker's own
  `RepoTags`/`RepoDigests`, in Docker's familiar form (`nginx:1.27.3`,
  `nginx@sha256:...`; `ghcr.io/x/y:1`).
* `compose up` pulls only images that are missing locally (reference §9): a tag that
  moved in the registry keeps running the old content until something pulls it.

The registry is the simulator's real one: a manifest digest is read over HTTP from the
registry's real host name, which the NAS's /etc/hosts sends to sim/regproxy.py. An image the
local registry does not hold (the tests use names nobody pushed) gets a digest made from its
name, so apps with made-up images still deploy (a real NAS would fail the pull); so does
every image on a NAS folder the launcher did not prepare (no `files/hosts`: the unit tests).
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request

from . import paths

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
REGISTRY_HOSTS = {"docker.io": "registry-1.docker.io"}


def split(ref: str) -> tuple[str, str, str | None, str | None]:
    """`nginx:1.27` -> ("docker.io", "library/nginx", "1.27", None), as docker reads a name."""
    name, digest = (ref.split("@", 1) + [None])[:2] if "@" in ref else (ref, None)
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        registry, repo = name.split("/", 1)
    else:
        registry, repo = "docker.io", name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and "/" not in repo:
        repo = f"library/{repo}"
    if tag is None and digest is None:
        tag = "latest"
    return registry, repo, tag, digest


def familiar(registry: str, repo: str) -> str:
    """Docker's short form of a repository name (`docker.io/library/nginx` -> `nginx`)."""
    if registry == "docker.io":
        return repo[len("library/"):] if repo.startswith("library/") else repo
    return f"{registry}/{repo}"


def remote_digest(registry: str, repo: str, reference: str) -> str | None:
    """The manifest digest the registry serves for a tag or digest; None when it has none."""
    if not (paths.state_dir() / "files" / "hosts").exists():
        return None                    # no name resolution to the simulator's registry
    host = REGISTRY_HOSTS.get(registry, registry)
    request = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{reference}",
                                     headers={"Accept": ACCEPT})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=20) as resp:
            return resp.headers.get("Docker-Content-Digest") or \
                "sha256:" + hashlib.sha256(resp.read()).hexdigest()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RuntimeError(f"Error response from daemon: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"Error response from daemon: Get \"https://{host}/v2/\": {exc}") from None


def pull(state, ref: str) -> dict:
    """`docker pull REF`: the local image entry after pulling (the tag moves to it)."""
    registry, repo, tag, digest = split(ref)
    found = remote_digest(registry, repo, digest or tag)
    if found is None:                  # not in the local registry: a stable made-up digest
        found = digest or "sha256:" + hashlib.sha256(f"{registry}/{repo}:{tag}".encode()).hexdigest()
    short = familiar(registry, repo)
    image_id = "sha256:" + hashlib.sha256(found.encode()).hexdigest()
    images = state.images
    entry = next((i for i in images if i["id"] == image_id), None)
    if entry is None:
        entry = {"id": image_id, "repo_tags": [], "repo_digests": [], "size": 1024,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "author": "", "comment": ""}
        images.append(entry)
    if f"{short}@{found}" not in entry["repo_digests"]:
        entry["repo_digests"].append(f"{short}@{found}")
    if tag and not digest:
        name = f"{short}:{tag}"
        for other in images:           # a tag names one image: it leaves the old one
            if other is not entry and name in other["repo_tags"]:
                other["repo_tags"].remove(name)
        if name not in entry["repo_tags"]:
            entry["repo_tags"].append(name)
    return entry


def local(state, ref: str) -> dict | None:
    """The local image a reference names (by digest if it has one, else by tag), or None."""
    registry, repo, tag, digest = split(ref)
    short = familiar(registry, repo)
    for entry in state.images:
        if digest and f"{short}@{digest}" in entry["repo_digests"]:
            return entry
        if not digest and f"{short}:{tag}" in entry["repo_tags"]:
            return entry
    return None


def ensure(state, ref: str) -> dict:
    """What `compose up` does for a service's image: pull only when it is missing."""
    return local(state, ref) or pull(state, ref)


def view(entry: dict) -> dict:
    """An `app.image.query` entry (an untagged image is `<none>:<none>`, dangling)."""
    tags = entry["repo_tags"] or ["<none>:<none>"]
    return {**entry, "repo_tags": tags, "dangling": tags == ["<none>:<none>"], "update_available": False}
