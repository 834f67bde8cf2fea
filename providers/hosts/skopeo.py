"""`skopeo` (and the few shell steps around it) for pulling an OCI image into template storage."""

import hashlib
import json
import re
from typing import Optional

from . import image_users, pct, preflight, script

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def inspect_argv(ref: str, authfile: Optional[str] = None) -> list:
    argv = ["skopeo", "inspect", "--no-tags", "--format", "{{.Digest}}"]
    if authfile:
        argv += ["--authfile", authfile]
    return argv + [f"docker://{ref}"]


def parse_digest(stdout: str) -> str:
    digest = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
    if not _DIGEST.match(digest):
        raise ValueError(f"skopeo inspect printed no digest: {stdout[:200]!r}")
    return digest


def archive_name(registry: str, repository: str, tag: str, digest: str) -> str:
    """Collision-free and content-addressed: registry, repository, tag and digest.

    The readable part folds `/` and other characters into `_`, so on its own it is ambiguous
    (`acme/web_app` and `acme_web/app` read the same); the `_<id>` after it is the first 16 hex
    digits of the SHA-256 of the exact (registry, repository, tag), which tells them apart.
    The readable part is cut at 120 characters (the id and digest keep the name unique)."""
    tag = tag or "untagged"
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{registry}_{repository}_{tag}".replace("/", "_"))[:120]
    ident = hashlib.sha256("\0".join((registry, repository, tag)).encode()).hexdigest()[:16]
    return f"{readable}_{ident}_{digest.split(':', 1)[1][:12]}.tar"


def pull_script(ref_with_digest: str, volid: str, authfile: Optional[str] = None) -> list:
    """Resolve the storage path, copy to a temp name, rename: a failed pull leaves no archive.

    Prints the final path and size. An archive already there is reused only when its
    `index.json` names the manifest digest asked for; otherwise it is pulled again over it
    (a name is a claim, not a proof: a file under that name may hold anything).
    """
    copy = ["skopeo", "copy", "--quiet"]
    if authfile:
        copy += ["--src-authfile", authfile]
    copy += [f"docker://{ref_with_digest}"]
    lines = ["set -eu"]
    if authfile:  # before anything that can fail: a failed storage lookup must not leave the 0600 file
        lines.append(script.on_exit(["rm", "-f", authfile]))
    lines += [
        *preflight.template_checks(volid.split(":", 1)[0]),
        f"path=$({script.q(['pvesm', 'path', volid])})",
        'if [ ! -s "$path" ] || ! tar -xOf "$path" index.json 2>/dev/null | grep -qF '
        + script.q([f'"digest":"{ref_with_digest.rsplit("@", 1)[-1]}"']) + '; then',
        '  tmp="$path.tmp.$$"',
        '  trap \'rm -f "$tmp"' + (f'; rm -f {script.q([authfile])}' if authfile else "") + '\' EXIT',
        f'  {script.q(copy)} "oci-archive:$tmp"',
        '  mv -f "$tmp" "$path"',
        "fi",
        script.section("archive"),
        'stat -c "%s %n" "$path"',
        script.section("config"),
        script.q(config_argv(ref_with_digest, authfile)),
        *image_users.lines(),  # sections passwd and group: a compose `user:` by name (image_users.py)
    ]
    return script.sh(lines)


def config_argv(ref_with_digest: str, authfile: Optional[str] = None) -> list:
    """The image's config blob (Entrypoint, Cmd, Env, ...): one small registry read, by digest."""
    argv = ["skopeo", "inspect", "--config", "--no-tags"]
    if authfile:
        argv += ["--authfile", authfile]
    return argv + [f"docker://{ref_with_digest}"]


def parse_image_config(text: str) -> dict:
    """`skopeo inspect --config` output -> what a CT takes from its image, in plain keys.

    entrypoint/cmd: argv lists; env: {NAME: value}; exposed_ports: ["80/tcp", ...] sorted;
    user, working_dir: strings ("" when the image sets none). Raises ValueError on other text.
    """
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("skopeo inspect --config printed no JSON") from None
    config = (body.get("config") if isinstance(body, dict) else None) or {}
    if not isinstance(config, dict):
        raise ValueError("the image config has no config object")

    def words(key: str) -> list:
        value = config.get(key) or []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    env = {}
    for entry in words("Env"):
        name, _, value = entry.partition("=")
        env[name] = value
    return {
        "entrypoint": words("Entrypoint"),
        "cmd": words("Cmd"),
        "env": env,
        "exposed_ports": sorted(str(p) for p in (config.get("ExposedPorts") or {})),
        "user": str(config.get("User") or ""),
        "working_dir": str(config.get("WorkingDir") or ""),
    }


def parse_archive(section_text: str) -> tuple:
    """(size in bytes, path) from the `archive` section."""
    line = section_text.strip().splitlines()[-1]
    size, _, path = line.partition(" ")
    return int(size), path


def stat_argv(path: str) -> list:
    return ["stat", "-c", "%s %n", path]


def read_script(path: str, ref: Optional[str] = None, authfile: Optional[str] = None) -> list:
    """The archive's size (section `archive`) and, given a tag's `ref`, the digest it points to
    now (section `digest`), in one exec. No archive: stat's error, and the registry is not asked."""
    lines = ["set -eu"]
    if authfile:
        lines.append(script.on_exit(["rm", "-f", authfile]))
    lines += [script.section("archive"), script.q(stat_argv(path))]
    if ref:
        lines += [script.section("digest"), script.q(inspect_argv(ref, authfile))]
    return script.sh(lines)


def remove_script(path: str, volid: str) -> list:
    """Remove the archive unless a CT on this host still records it as its template."""
    return script.sh([
        "set -eu",
        f"if grep -lsF -e {script.q(['#' + pct.encode_text(pct.template_line(volid))])} /etc/pve/lxc/*.conf >/dev/null 2>&1; then",
        f"  echo {script.q(['in use: ' + volid])}",
        "else",
        f"  rm -f {script.q([path])}",
        "fi",
    ])


def image_config_script(volid: str) -> list:
    """The OCI image config of an archive in template storage (`skopeo inspect --config`):
    what the image itself sets (Env, Entrypoint, ...), never what a CT made from it holds now."""
    return script.sh([
        "set -eu",
        f"path=$({script.q(['pvesm', 'path', volid])})",
        'skopeo inspect --config "oci-archive:$path"',
    ])


def parse_image_env(stdout: str) -> dict:
    """{KEY: value} of the image config's Env."""
    import json

    config = json.loads(stdout)
    env = {}
    for entry in (config.get("config") or {}).get("Env") or []:
        key, _, value = str(entry).partition("=")
        env[key] = value
    return env
