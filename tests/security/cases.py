"""One injection case, the pure way: a stack dict -> validation -> plan -> provider check ->
create, update (from a clean app) and delete through the real providers, with a FakeHost
recording every argv they send. The argvs are then run through a real shell (shellsim.py).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml

from homefleet.config import load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from homefleet.plan_truenas import plan_truenas
from providers import credentials
from providers import log as provider_log
from providers.errors import HostCommandError
from providers.hosts import midclt
from providers.oci_template import OciTemplateProvider
from providers.proxmox_ct import ProxmoxCTProvider
from providers.transport import to_command_line
from providers.truenas_app import TrueNASAppProvider, desired_config

from .fakehost import FakeHost, installed

REPO = Path(__file__).resolve().parents[2]
STACK = "inj"
STACK_FILE = f"stacks/Pulumi.{STACK}.yaml"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILk+ktnobhr5ifv5vRx9wwuL6RuRiw73LFHeYGoOLq/J"
BASE_COMPOSE = {"services": {"web": {"image": "docker.io/library/nginx:1.27",
                                     "environment": {"GREETING": "hello"}, "ports": ["8080:80"]}}}


def base_stack() -> dict:
    return {
        "hosts": {
            "pve1": {"kind": "proxmox", "address": "127.0.0.1", "port": 22, "hostKey": HOST_KEY,
                     "storage": "local-zfs", "templateStorage": "local",
                     "composeNetwork": {"cidr": "198.18.200.0/24", "gateway": "198.18.200.1"}},
            "nas1": {"kind": "truenas", "address": "127.0.0.1", "port": 22, "hostKey": HOST_KEY,
                     "pool": "tank", "midcltGeneration": "24.10"},
        },
        "apps": {
            "app": {"host": "pve1", "image": "docker.io/library/nginx:1.27", "env": {"HF_BASE": "1"},
                    "volumes": [{"path": "/data", "size": 1}], "description": "base"},
        },
    }


@dataclass
class Case:
    what: str
    value: str
    rejected: Optional[str] = None          # the located message (or check failure) when refused
    sent: list = field(default_factory=list)  # fakehost.Sent, in order
    uploads: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    secrets: list = field(default_factory=list)  # values that must never be on a command line
    hidden: list = field(default_factory=list)   # secrets: not in logs or outputs either


class Rejected(Exception):
    pass


def _clear_message(text: str, files: tuple) -> str:
    """A refusal must say where: every line names the file (and so the key) it is about."""
    assert text.strip(), "an empty error message"
    for line in text.splitlines():
        assert line.startswith(files), f"a message line that names no file: {line[:300]!r}"
        assert len(line) <= 2000, f"a message line of {len(line)} characters: {line[:200]!r}..."
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), f"a raw control character in {line[:300]!r}"
    assert "Traceback" not in text
    return text


def _check_failures(result, what: str) -> None:
    if result.failures:
        reasons = "; ".join(f"{f.property}: {f.reason}" for f in result.failures)
        assert all(f.reason and len(f.reason) <= 2000 for f in result.failures), reasons[:500]
        raise Rejected(f"{what}: {reasons}")


def _base_outs(app_props: dict, host: FakeHost) -> dict:
    """The outputs of a clean CT for the same app: what an update starts from."""
    host.props = app_props
    return ProxmoxCTProvider().create(app_props).outs


_clean: dict = {}


def _clean_ct(project: Path) -> tuple:
    """(props, outs) of the base stack's app, made once."""
    if "ct" not in _clean:
        host = FakeHost()
        with pytest.MonkeyPatch.context() as mp, installed(host, mp):
            stack, catalog = load(STACK, base_stack(), project_dir=str(project), catalog_dir=str(REPO / "packages"))
            plan = make_plan(STACK, stack, catalog, project_dir=str(project))
            ct = plan.cts[0]
            props = {**ct.props, "template": "local:vztmpl/docker.io_library_nginx_1.27_abababababab.tar",
                     "secret_env": {}}
            _clean["ct"] = (props, _base_outs(props, host))
    return _clean["ct"]


def run_case(field_name: str, value: str, raw: dict, project: Path, secrets: Optional[dict] = None,
             registries: Optional[dict] = None, off_command_line: tuple = (), hidden: tuple = ()) -> Case:
    """Validate and plan `raw`, then create/update/delete each planned object on a FakeHost."""
    case = Case(field_name, value, secrets=list(off_command_line) + list(hidden), hidden=list(hidden))
    host = FakeHost()
    try:
        stack, catalog = load(STACK, raw, project_dir=str(project), catalog_dir=str(REPO / "packages"))
        secret_names = {app: sorted(v) for app, v in (secrets or {}).items()}
        plan = make_plan(STACK, stack, catalog, project_dir=str(project), secret_names=secret_names)
        nas_apps = plan_truenas(STACK, stack, plan.targets, project_dir=str(project))
    except ConfigError as exc:
        case.rejected = _clear_message(str(exc), ("stacks/", "compose/"))
        return case
    clean_props, clean_outs = _clean_ct(project)
    with pytest.MonkeyPatch.context() as mp, installed(host, mp):
        mp.setattr(provider_log, "info", lambda host_name, subject, message: case.logs.append(message))
        credentials.load_from_config({"registries": json.dumps(registries)} if registries else {})
        try:
            _drive(plan, nas_apps, secrets or {}, host, case, clean_props, clean_outs)
        except Rejected as exc:
            case.rejected = str(exc)
        except HostCommandError as exc:
            # Refused before anything was sent: a compose too large for one midclt argument.
            if "bytes as JSON" not in str(exc) or host.sent and "app.create" in str(host.sent[-1].argv[:4]):
                raise
            case.rejected = str(exc)
        except ValueError as exc:
            # The transport's quoting refuses NUL and lone surrogates before anything is sent.
            if "NUL" not in str(exc) and "UTF-8" not in str(exc):
                raise
            assert not host.sent or all("\x00" not in to_command_line(s.argv) for s in host.sent)
            case.rejected = f"transport: {exc}"
        finally:
            credentials.load_from_config({})
    case.sent, case.uploads = host.sent, host.uploads
    return case


def _drive(plan, nas_apps, secrets: dict, host: FakeHost, case: Case, clean_props: dict, clean_outs: dict) -> None:
    volids = {}
    for name, tp in plan.templates.items():
        provider = OciTemplateProvider()
        _check_failures(provider.check({}, tp.props), f"template {name}")
        outs = provider.create(dict(tp.props)).outs
        case.outputs.append(outs)
        volids[name] = outs["volid"]
        provider.delete(f"pve1/{outs['volid']}", outs)
    for ct in plan.cts:
        props = dict(ct.props)
        if ct.template:
            props["template"] = volids[ct.template]
        app_secrets = secrets.get(ct.app, {})
        props["secret_env"] = ({k: t.render(app_secrets) for k, t in ct.secret_env.items()}
                               if ct.secret_env is not None else dict(app_secrets))
        provider = ProxmoxCTProvider()
        checked = provider.check({}, props)
        _check_failures(checked, f"CT {ct.name}")
        props = checked.inputs
        host.props = props
        created = provider.create(copy.deepcopy(props))
        case.outputs.append({k: v for k, v in created.outs.items() if k != "secret_env"})
        if props.get("app") == clean_props["app"] and props.get("template_kind") == "oci":
            host.props = clean_props
            provider.update(created.id, copy.deepcopy(clean_outs), copy.deepcopy(props))
        host.props = props
        provider.delete(created.id, copy.deepcopy(created.outs))
    for na in nas_apps:
        provider = TrueNASAppProvider()
        _check_failures(provider.check({}, na.props), f"TrueNAS app {na.name}")
        created = provider.create(copy.deepcopy(na.props))
        case.outputs.append(created.outs)
        host.app_compose = midclt.with_marker(yaml.safe_load(yaml.safe_dump(BASE_COMPOSE)), STACK, na.app)
        provider.update(created.id, {**created.outs, "compose_digest": "sha256:old"}, copy.deepcopy(na.props))
        host.app_compose = desired_config(na.props)
        provider.delete(created.id, created.outs)


def mutate(change: Callable[[dict], None]) -> dict:
    raw = base_stack()
    change(raw)
    return raw
