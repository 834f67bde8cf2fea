"""OciTemplate: an OCI image pulled into a Proxmox host's template storage.

Identity: host + storage + archive file name (registry, repository, tag, digest).
create: resolve the tag to a digest, `skopeo copy` to a temp file, rename.
read: the archive is still there, and what the tag points to now (`latest_digest`): one exec.
image_config: the image's Entrypoint, Cmd, Env, ExposedPorts, User and WorkingDir, read by
digest during the pull (`skopeo inspect --config`), so a compose service's `command:` can run
behind the image's ENTRYPOINT as Docker runs it; and its `users`/`groups` (from the archive's
/etc/passwd and /etc/group, hosts/image_users.py), so a compose `user:` by name gets its uid.
Templates made before these outputs existed get them on their next update or refresh.
delete: remove the archive unless a CT on the host still records it as its template.
"""

import secrets
from typing import Optional

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from . import credentials, log
from .base import HomefleetProvider, diff_changes, same_host, target_of
from .errors import HostCommandError
from .hosts import image_users, preflight, script, skopeo
from homefleet.imageref import parse_image_ref
from .transport import put, run

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _auth_upload(props: dict, registry: str) -> Optional[str]:
    body = credentials.auth_file_for(registry)
    if body is None:
        return None
    path = f".homefleet-auth-{secrets.token_hex(8)}.json"
    put(target_of(props), body, path, 0o600)
    return path


def read_image_config(props: dict, digest: str) -> dict:
    target = target_of(props)
    ref = parse_image_ref(props["pull_ref"]).normalized
    authfile = _auth_upload(props, ref.registry)
    argv = skopeo.config_argv(f"{ref.name}@{digest}", authfile)
    if authfile:
        argv = script.sh([script.q(argv) + "; rc=$?", script.q(["rm", "-f", authfile]), "exit $rc"])
    result = run(target, argv, timeout=300)
    if not result.ok:
        raise HostCommandError(target.name, f"reading the config of {props['image']} (skopeo inspect)",
                               result.stderr)
    return skopeo.parse_image_config(result.stdout)


def read_image_users(props: dict) -> dict:
    """users/groups of an archive already in template storage."""
    target = target_of(props)
    result = run(target, image_users.read_script(props["path"]), timeout=600)
    if not result.ok:
        raise HostCommandError(target.name, f"reading the users of {props['image']} ({props['volid']})",
                               result.stderr)
    return image_users.from_sections(script.split_sections(result.stdout))


def _complete(outs: dict, props: dict, digest: str) -> dict:
    """image_config with every part this version reads (templates made by older versions lack some)."""
    config = dict(outs.get("image_config") or {})
    if not config:
        config = read_image_config(props, digest)
    if "users" not in config:
        config.update(read_image_users(props))
    return {**outs, "image_config": config}


def resolve_digest(props: dict) -> str:
    target = target_of(props)
    ref = parse_image_ref(props["pull_ref"]).normalized
    authfile = _auth_upload(props, ref.registry)
    lines = [script.on_exit(["rm", "-f", authfile])] if authfile else []
    lines += [*preflight.begin(), *preflight.skopeo(), *preflight.end(),
              script.q(skopeo.inspect_argv(props["pull_ref"], authfile))]
    result = run(target, script.sh(lines), timeout=300)
    if not result.ok:
        raise HostCommandError(target.name, f"resolving {props['image']} (skopeo inspect)", result.stderr)
    return skopeo.parse_digest(result.stdout)


class OciTemplateProvider(HomefleetProvider):
    def check(self, olds: dict, news: dict) -> CheckResult:
        failures = []
        image = news.get("image")
        if image != UNKNOWN:
            try:
                parse_image_ref(image)
            except ValueError as exc:
                failures.append(CheckFailure("image", str(exc)))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        replaces = []
        if not same_host(olds.get("host", {}), news.get("host", {})):
            replaces.append("host")
        for key in ("image", "storage"):
            if olds.get(key) != news.get(key):
                replaces.append(key)
        if olds.get("latest_digest") and olds.get("latest_digest") != olds.get("digest"):
            replaces.append("digest")
        moved = olds.get("pull_ref") != news.get("pull_ref") or olds.get("host") != news.get("host")
        if "users" not in (olds.get("image_config") or {}):  # made before the output existed: the update reads it
            moved = True
        return DiffResult(changes=diff_changes(["inputs"] if moved else [], replaces, moved), replaces=replaces,
                          delete_before_replace=False)

    def create(self, props: dict) -> CreateResult:
        target = target_of(props)
        ref = parse_image_ref(props["pull_ref"]).normalized
        image = parse_image_ref(props["image"]).normalized
        digest = image.digest or resolve_digest(props)
        name = skopeo.archive_name(image.registry, image.repository, image.tag, digest)
        volid = f"{props['storage']}:vztmpl/{name}"
        authfile = _auth_upload(props, ref.registry)
        log.info(target.name, props["image"], f"pulling {digest[:19]} into {volid}")
        result = run(target, skopeo.pull_script(f"{ref.name}@{digest}", volid, authfile), timeout=3600)
        if not result.ok:
            raise HostCommandError(target.name, f"pulling {props['image']} into {props['storage']}", result.stderr)
        sections = script.split_sections(result.stdout)
        size, path = skopeo.parse_archive(sections["archive"])
        try:
            image_config = {**skopeo.parse_image_config(sections.get("config", "")),
                            **image_users.from_sections(sections)}
        except ValueError as exc:
            raise HostCommandError(target.name, f"reading the config of {props['image']}", str(exc)) from None
        outs = {**props, "digest": digest, "latest_digest": digest, "volid": volid, "path": path, "size": size,
                "image_config": image_config}
        return CreateResult(id_=f"{target.name}/{volid}", outs=outs)

    def read(self, id_: str, props: dict) -> ReadResult:
        target = target_of(props)
        pinned = bool(parse_image_ref(props["image"]).digest)
        ref = None if pinned else props["pull_ref"]
        authfile = None if pinned else _auth_upload(props, parse_image_ref(props["pull_ref"]).normalized.registry)
        result = run(target, skopeo.read_script(props["path"], ref, authfile), timeout=300)
        sections = script.split_sections(result.stdout)
        archive = sections.get("archive", "").strip()
        if not archive:
            if "No such file" in result.stderr:
                return ReadResult("", {})
            raise HostCommandError(target.name, f"checking {props['volid']}", result.stderr)
        if not result.ok:
            raise HostCommandError(target.name, f"resolving {props['image']} (skopeo inspect)", result.stderr)
        size, _ = skopeo.parse_archive(archive)
        latest = props.get("digest")
        if not pinned:
            latest = skopeo.parse_digest(sections.get("digest", ""))
            if latest != props.get("digest"):
                log.info(target.name, props["image"], f"the tag now points to {latest[:19]}; the next up pulls it")
        outs = _complete({**props, "size": size, "latest_digest": latest}, props, props["digest"])
        return ReadResult(id_, outs)

    def update(self, _id: str, olds: dict, news: dict) -> UpdateResult:
        outs = {**olds, "pull_ref": news["pull_ref"], "host": news["host"]}
        return UpdateResult(_complete(outs, outs, olds["digest"]))

    def delete(self, _id: str, props: dict) -> None:
        target = target_of(props)
        result = run(target, skopeo.remove_script(props["path"], props["volid"]))
        if not result.ok:
            raise HostCommandError(target.name, f"removing {props['volid']}", result.stderr)
        if result.stdout.startswith("in use"):
            log.info(target.name, props["image"], f"{props['volid']} is still used by a CT; kept")


class OciTemplate(Resource, module="homefleet", name="OciTemplate"):
    volid: pulumi.Output[str]
    digest: pulumi.Output[str]
    size: pulumi.Output[int]
    image_config: pulumi.Output[dict]

    def __init__(self, name: str, props: dict, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(
            OciTemplateProvider(),
            name,
            {**props, "volid": None, "digest": None, "size": None, "latest_digest": None, "path": None,
             "image_config": None},
            opts,
        )
