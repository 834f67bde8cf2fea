"""`midclt call` on TrueNAS SCALE 24.10+: builders (spec -> argv) and parsers (output -> data).

Facts this module relies on (../shared/reference/truenas-apps.md):

* Every JSON argument is one argv element; the transport quotes it for the remote shell.
* A job method called *without* `-j` prints its job id and exits 0 whatever the job's fate;
  `core.get_jobs [["id","=",ID]]` then reports `state`, `result`, `error`, `exc_info`.
  homefleet always takes this path (no `-j`): it is the same on 24.10 (where `-j` takes a
  value) and 25.04+ (where it is a flag), it never waits without limit, and a failure comes
  back structured instead of as a traceback on stderr.
* A result that is an int or a str is printed raw, anything else as one line of JSON on
  stdout; errors go to stderr with exit 1, as `[EINVAL] attribute: message` lines for
  validation errors. A login failure prints `Failed to login:` on *stdout* and exits 0.
* midclt 24.10–25.10 takes a payload only as an argument, which every local user can see
  in the process list and which sudo logs (TrueNAS's sudoers: `log_format=json`,
  `log_subcmds`; its audit database keeps those events). So a payload (the compose) never
  travels in an argv: from 26.0 a final `-` makes midclt read it from stdin (truenas/api_client
  `main`, `from_json`), before that `python3 -c HELPER METHOD` runs midclt's own `main()`
  (`/usr/bin/midclt` is truenas_api_client's console script) in-process with the arguments
  read from stdin. Either way the logged command line is fixed text; sudo does not log stdin.
"""

import hashlib
import json
import re
from typing import Optional, Sequence

import yaml

from homefleet.imageref import ImageRefError, parse_image_ref

from . import script

APP_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
APP_NAME_MAX = 40
MARKER_KEY = "x-homefleet"
STDIN_SINCE = (26, 0)
OLDEST = (24, 10)
LIFECYCLE_LOG = "/var/log/app_lifecycle.log"
SETTLED = ("RUNNING", "STOPPED", "CRASHED")
JOB_DONE = ("SUCCESS", "FAILED", "ABORTED")
LOGIN_FAILED = "Failed to login:"


class MidcltError(Exception):
    """A midclt call failed. `errors` holds (errname, attribute, message) when the middleware said why."""

    def __init__(self, message: str, errors: Sequence[tuple] = (), errno_name: str = ""):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)
        self.errno_name = errno_name or (self.errors[0][0] if self.errors else "")


# ---------------------------------------------------------------- names and payloads

def app_name_problem(name: str) -> Optional[str]:
    """Why TrueNAS would refuse `name` as an app name, or None."""
    if not 1 <= len(name) <= APP_NAME_MAX:
        return f"must be 1 to {APP_NAME_MAX} characters long (got {len(name)})"
    if not APP_NAME.match(name):
        return ("must be lowercase letters, digits and '-', start with a letter and not end with '-' "
                "(TrueNAS app names match ^[a-z]([-a-z0-9]*[a-z0-9])?$)")
    return None


def encode(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def call_argv(method: str, *args, sudo: bool = False, stdin: bool = False) -> list:
    """`midclt call METHOD ARG...`; with `stdin` the last argument is `-` (send it with stdin_payload)."""
    words = [encode(a) for a in args]
    if stdin and words:
        words[-1] = "-"
    return (["sudo", "-n"] if sudo else []) + ["midclt", "call", method, *words]


def stdin_payload(*args) -> bytes:
    """The bytes a `-` argument reads: the last argument's JSON."""
    return encode(args[-1]).encode()


# Runs midclt's own entry point with the arguments from stdin (a JSON list of the words that
# would follow `midclt call`), so no payload is ever part of a command line.
HELPER = ("import json,sys;a=json.load(sys.stdin);sys.argv=['midclt','call',*a];"
          "from truenas_api_client import main;sys.exit(main())")


def payload_call(method: str, *args, sudo: bool, version: tuple) -> tuple:
    """(argv, stdin bytes) of a call whose last argument carries a payload: the argv is the
    same fixed text whatever the payload (the method name is its only variable word)."""
    if version >= STDIN_SINCE:
        return call_argv(method, *args, sudo=sudo, stdin=True), stdin_payload(*args)
    return helper_call(method, *args, sudo=sudo)


def helper_call(method: str, *args, sudo: bool) -> tuple:
    """(argv, stdin bytes) running midclt's main with every argument from stdin, on any version:
    for a payload that is not the last argument (`-` only replaces the last one)."""
    prefix = ["sudo", "-n"] if sudo else []
    return prefix + ["python3", "-c", HELPER, method], encode([method, *[encode(a) for a in args]]).encode()


def with_marker(config: dict, stack: str, app: str) -> dict:
    """The compose mapping with homefleet's ownership marker as a top-level extension key."""
    return {**config, MARKER_KEY: {"stack": stack, "app": app}}


def owner_of(config) -> Optional[tuple]:
    marker = config.get(MARKER_KEY) if isinstance(config, dict) else None
    if isinstance(marker, dict) and isinstance(marker.get("stack"), str) and isinstance(marker.get("app"), str):
        return marker["stack"], marker["app"]
    return None


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted (a `|` block when it holds a newline), so no reader can
    take a string for a number or a boolean, whatever YAML version it speaks."""


def _quoted(dumper, data: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data,
                                   style="|" if "\n" in data and data == data.rstrip(" ") else '"')


_QuotedDumper.add_representer(str, _quoted)


def compose_text(config: dict) -> str:
    return yaml.dump(config, Dumper=_QuotedDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=4096)


def canonical(config) -> str:
    """The compose as the middleware hands it back (JSON of the mapping), order-independent."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def digest(config) -> str:
    return "sha256:" + hashlib.sha256(canonical(config).encode()).hexdigest()


def changed_paths(want, have, where: str = "") -> list:
    """Dotted keys (`services.web.environment.GREETING`) where two compose mappings differ."""
    if isinstance(want, dict) and isinstance(have, dict):
        out = []
        for key in list(want) + [k for k in have if k not in want]:
            out += changed_paths(want.get(key), have.get(key), f"{where}.{key}" if where else str(key))
        return out
    return [] if want == have else [where or "(the whole file)"]


# ---------------------------------------------------------------- image digests
#
# TrueNAS pulls a service's image only when it is missing (create/update/start run `compose
# up`, which never re-pulls a tag), so homefleet sends every image as `name:tag@sha256:...`,
# resolved on the NAS: `app.image.pull {"image": "name:tag"}` (a job), then `app.image.query`,
# whose entries carry Docker's `repo_tags` and `repo_digests` (familiar names: `nginx:1.27.3`,
# `nginx@sha256:...`). Docker uses the digest and ignores the tag; the tag stays for people.

IMAGE_FIELDS = {"select": ["repo_tags", "repo_digests"]}


def _services(config) -> dict:
    found = config.get("services") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else {}


def unpinned_images(config) -> dict:
    """{service: image} of the services whose image names no digest (what to resolve)."""
    return {name: body["image"] for name, body in _services(config).items()
            if isinstance(body, dict) and isinstance(body.get("image"), str) and "@" not in body["image"]}


def _key(text: str):
    try:
        ref = parse_image_ref(text).normalized
    except ImageRefError:
        return None
    return ref.registry, ref.repository, ref.tag, ref.digest


def pinned_ref(image: str, entries) -> Optional[str]:
    """`image@sha256:...` from `app.image.query` entries: the digest of the local image the
    tag names, under the same repository; None when no local image carries the tag."""
    want = _key(image)
    if want is None:
        return None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if not any(_key(tag) == want for tag in entry.get("repo_tags") or []):
            continue
        for text in entry.get("repo_digests") or []:
            have = _key(text)
            if have and have[:2] == want[:2] and have[3]:
                return f"{image}@{have[3]}"
    return None


def with_images(config: dict, images: dict) -> dict:
    """The compose with each named service's image replaced."""
    services = {name: ({**body, "image": images[name]} if name in images and isinstance(body, dict) else body)
                for name, body in _services(config).items()}
    return {**config, "services": services} if services else config


def stored_pins(stored, wanted) -> dict:
    """{service: `name:tag@sha256:...`} where the NAS runs the pinned form of the wanted image."""
    out = {}
    have = _services(stored)
    for name, image in unpinned_images(wanted).items():
        body = have.get(name)
        image_there = body.get("image") if isinstance(body, dict) else None
        if isinstance(image_there, str) and image_there.startswith(image + "@sha256:"):
            out[name] = image_there
    return out


def unpinned(stored, wanted):
    """The stored compose with homefleet's pins taken off again (to compare with the stack's)."""
    pins = stored_pins(stored, wanted)
    if not pins or not isinstance(stored, dict):
        return stored
    return with_images(stored, {name: pin.split("@", 1)[0] for name, pin in pins.items()})


def create_payload(name: str, config: dict) -> dict:
    return {"app_name": name, "custom_app": True, "custom_compose_config_string": compose_text(config)}


def update_payload(config: dict) -> dict:
    return {"custom_compose_config_string": compose_text(config)}


def delete_options(delete_data: bool) -> dict:
    return {"remove_images": True, "remove_ix_volumes": bool(delete_data)}


def name_filter(name: str) -> list:
    return [["name", "=", name]]


def job_filter(job_id: int) -> list:
    return [["id", "=", int(job_id)]]


# ---------------------------------------------------------------- output

_ERROR_LINE = re.compile(r"^\[(E[A-Z0-9_]+)\] (\S+): (.*)$")
_CALL_ERROR = re.compile(r"^\[(E[A-Z0-9_]+)\] (.*)$")


def parse_errors(text: str) -> list:
    """`[EINVAL] attr: message` lines -> [(errname, attribute or None, message)]."""
    found = []
    for line in text.splitlines():
        match = _ERROR_LINE.match(line.strip())
        if match:
            # `ALL` when midclt formats it; a job's `error` is the middleware's own text, `None`.
            attr = None if match.group(2) in ("ALL", "None") else match.group(2)
            found.append((match.group(1), attr, match.group(3)))
        else:
            match = _CALL_ERROR.match(line.strip())
            if match:
                found.append((match.group(1), None, match.group(2)))
    return found


def _error_summary(stderr: str) -> str:
    """The error text midclt printed before the server traceback."""
    lines = []
    for line in stderr.strip().splitlines():
        if line.startswith("Traceback (most recent call last)"):
            break
        lines.append(line)
    return "\n".join(lines).strip() or stderr.strip()[-500:] or "(no error output)"


def parse_output(stdout: str, stderr: str, exit_code: int):
    """A finished `midclt call`'s result, or MidcltError with the middleware's reason."""
    if stdout.startswith(LOGIN_FAILED):
        reason = stdout[len(LOGIN_FAILED):].strip() or "unknown reason"
        raise MidcltError(f"midclt could not log in to the middleware: {reason}")
    if exit_code != 0:
        summary = _error_summary(stderr)
        if "a password is required" in stderr or "a terminal is required" in stderr:
            summary += " (sudo needs a NOPASSWD rule for midclt for this user: `sudo -n midclt` must not prompt)"
        elif "Daemon not running" in stderr:
            summary += " (the TrueNAS middleware is not running)"
        return _raise(summary, parse_errors(summary))
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _raise(summary: str, errors: list):
    raise MidcltError(summary, errors)


def parse_version(text: str) -> tuple:
    """`24.10.2.4`, `TrueNAS-SCALE-24.10.2.4`, `TrueNAS-25.04.0` -> (24, 10, 2, 4) ..."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not match:
        raise ValueError(f"not a TrueNAS version: {text!r}")
    return tuple(int(g) for g in match.groups() if g is not None)


def version_text(version: tuple) -> str:
    """(25, 4, 2) -> '25.04.2' (TrueNAS versions are YY.MM[.x[.y]])."""
    head = [str(version[0]), f"{version[1]:02d}"] if len(version) > 1 else [str(p) for p in version]
    return ".".join(head + [str(p) for p in version[2:]])


def parse_job_id(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MidcltError(f"expected a job id from midclt, got {str(value)[:200]!r}")


def job_from(value) -> Optional[dict]:
    """The one job `core.get_jobs [["id","=",ID]]` returned, or None."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return None


def job_failure(job: dict) -> MidcltError:
    """A failed job's reason, from `error` and `exc_info` (`VALIDATION` errors keep their attributes)."""
    info = job.get("exc_info") or {}
    error = (job.get("error") or "").strip()
    errors = []
    if info.get("type") == "VALIDATION" and isinstance(info.get("extra"), list):
        import errno as errno_mod
        for item in info["extra"]:
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                code = item[2] if len(item) > 2 else 22
                errors.append((errno_mod.errorcode.get(code, "EINVAL"), item[0], str(item[1])))
    if not errors:
        errors = parse_errors(error)
    message = error or f"job {job.get('id')} ended {job.get('state')}"
    return MidcltError(message, errors)


# ---------------------------------------------------------------- app entries

def app_from(value) -> Optional[dict]:
    """The one entry `app.query [["name","=",NAME]]` returned, or None for []."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    if value == [] or value is None:
        return None
    raise MidcltError(f"unexpected app.query output: {str(value)[:200]!r}")


def published_ports(entry: dict) -> list:
    """[{"port", "protocol", "host_ip"}] the app publishes on the NAS, from active_workloads."""
    out = []
    for used in ((entry or {}).get("active_workloads") or {}).get("used_ports") or []:
        for host in used.get("host_ports") or []:
            item = {"port": int(host.get("host_port")), "protocol": used.get("protocol", "tcp"),
                    "host_ip": host.get("host_ip") or "0.0.0.0"}
            if item not in out:
                out.append(item)
    # Docker lists a port published on every address twice, for 0.0.0.0 and for ::.
    everywhere = {(p["port"], p["protocol"]) for p in out if p["host_ip"] == "0.0.0.0"}
    out = [p for p in out if not (p["host_ip"] == "::" and (p["port"], p["protocol"]) in everywhere)]
    return sorted(out, key=lambda p: (p["port"], p["protocol"]))


def container_states(entry: dict) -> list:
    """["service: state (image)"] for an error message."""
    details = ((entry or {}).get("active_workloads") or {}).get("container_details") or []
    return [f"{c.get('service_name')}: {c.get('state')} ({c.get('image')})" for c in details]


def lifecycle_tail(text: str, app: str, lines: int = 8) -> list:
    """The last lines of app_lifecycle.log that name the app (`'web'` or `ix-web`)."""
    keys = (f"'{app}'", f"ix-{app}-", f"ix-{app}_", f" {app} ")
    return [line for line in text.splitlines() if any(k in line for k in keys)][-lines:]


def lifecycle_argv(sudo: bool, lines: int = 400) -> list:
    return (["sudo", "-n"] if sudo else []) + ["tail", "-n", str(lines), LIFECYCLE_LOG]


# ---------------------------------------------------------------- read in one exec

def read_script(name: str, sudo: bool, preflight: bool = False, pool: Optional[str] = None) -> list:
    """app.query, then app.config (when the app exists) and docker.status (when it does not,
    or always with `preflight`), and with `preflight` and a `pool` also pool.query: one exec.

    Sections: `query`/`query-rc`, then `config`/`config-rc`, `docker`/`docker-rc`,
    `pool`/`pool-rc`. A failing app.query ends the script (its stderr is the exec's stderr);
    docker.status and pool.query keep their error text in their own section.
    """
    query = script.q(call_argv("app.query", name_filter(name), sudo=sudo))
    config = script.q(call_argv("app.config", name, sudo=sudo))
    docker = script.q(call_argv("docker.status", sudo=sudo))
    lines = [
        f"q=$({query}); rc=$?",
        script.section("query"), 'printf "%s\\n" "$q"',
        script.section("query-rc"), 'echo "$rc"',
        '[ "$rc" -eq 0 ] || exit 0',
        'case "$q" in "Failed to login:"*) exit 0;; esac',
        'if [ "$q" != "[]" ]; then',
        "  " + script.section("config"), f"  {config}; rc=$?", "  " + script.section("config-rc"), '  echo "$rc"',
        "fi",
        ('if true; then' if preflight else 'if [ "$q" = "[]" ]; then'),
        "  " + script.section("docker"), f"  {docker} 2>&1; rc=$?", "  " + script.section("docker-rc"), '  echo "$rc"',
        "fi",
    ]
    if preflight and pool:
        pools = script.q(call_argv("pool.query", [], {"select": ["name"]}, sudo=sudo))
        lines += [script.section("pool"), f"{pools} 2>&1; rc=$?", script.section("pool-rc"), 'echo "$rc"']
    return script.sh(lines)


def _step(sections: dict, step: str):
    """(ok, parsed output or error text) of a step whose stderr went to its own section."""
    rc = int(sections[f"{step}-rc"].strip() or 1)
    text = sections.get(step, "")
    if rc != 0:
        return False, _error_summary(text)
    try:
        return True, json.loads(text.strip())
    except ValueError:
        return True, text.strip()


def parse_read(stdout: str, stderr: str) -> dict:
    """-> {"entry": app entry or None, "config": compose mapping or None,
    "docker": docker.status or None, "docker_error": its error text, "pools": pool names or None,
    "pool_error": its error text}."""
    sections = script.split_sections(stdout)
    out = {"entry": None, "config": None, "docker": None, "docker_error": None, "pools": None, "pool_error": None}
    if "query-rc" not in sections:
        if sections.get("query", "").startswith(LOGIN_FAILED):
            parse_output(sections["query"], stderr, 0)
        raise MidcltError(_error_summary(stderr) if stderr.strip() else "app.query printed nothing")
    rc = int(sections["query-rc"].strip() or 1)
    out["entry"] = app_from(parse_output(sections.get("query", ""), stderr, rc))
    if "config-rc" in sections:
        rc = int(sections["config-rc"].strip() or 1)
        out["config"] = parse_output(sections.get("config", ""), stderr, rc)
    if "docker-rc" in sections:
        ok, value = _step(sections, "docker")
        out["docker" if ok else "docker_error"] = value
    if "pool-rc" in sections:
        ok, value = _step(sections, "pool")
        if ok:
            out["pools"] = sorted(p.get("name") for p in value if isinstance(p, dict)) if isinstance(value, list) else []
        else:
            out["pool_error"] = value
    return out
