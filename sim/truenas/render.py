"""The compose file TrueNAS writes and what docker compose then reads from it.

TrueNAS never runs the text it was given: `update_app_config` (ix_apps/lifecycle.py) parses
it with PyYAML and writes `templates/rendered/docker-compose.yaml` again, with
`yaml.safe_dump` on 24.10/25.04 and, from 25.10.0, with a dumper that writes every string
double-quoted (a `|` block when it holds a newline; ix_apps/utils.py `dump_yaml`).
PyYAML resolves YAML 1.1, so strings such as `1e3`, `8E1` or `0o17` are plain scalars to
it and `safe_dump` leaves them unquoted; docker compose reads YAML 1.2 (go-yaml v3),
where those are numbers, and hands a number in `environment:` to the container as Go
formats it (`1e3` -> `1000`, `0o17` -> `15`).

`rendered(config, version)` is the stored text; `container_view(text)` is what each
service's container gets (environment, labels, command) after compose reads that text.
"""

from __future__ import annotations

import re

import yaml


class _QuotedDumper(yaml.SafeDumper):
    """25.10+: every string quoted (block style when it holds a newline)."""


def _quoted_str(dumper, data: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else '"')


_QuotedDumper.add_representer(str, _quoted_str)


def rendered(config, version: tuple) -> str:
    if version >= (25, 10):
        return yaml.dump(config, Dumper=_QuotedDumper)
    return yaml.safe_dump(config)


# ---------------------------------------------------------------- YAML 1.2 (core schema) as compose reads it

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")


class _Yaml12Loader(yaml.SafeLoader):
    """Plain scalars resolved by the YAML 1.2 core schema (what go-yaml v3 does)."""


_Yaml12Loader.yaml_implicit_resolvers = {}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(~|null|Null|NULL|)$"),
                                    ["~", "n", "N", ""])
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^([-+]?(0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                    list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$"),
    list("-+.0123456789"))


def _int12(loader, node):
    text = loader.construct_scalar(node)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    return int(text)


def _float12(loader, node):
    text = loader.construct_scalar(node)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return float(text)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int12)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float12)


def _go_text(value) -> str:
    """A scalar as compose turns it into a string (Go's %v)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def _pairs(raw) -> dict:
    if isinstance(raw, dict):
        return {str(k): _go_text(v) for k, v in raw.items()}
    out = {}
    for item in raw or []:
        text = _go_text(item)
        key, _, value = text.partition("=")
        out[key] = value
    return out


def container_view(text: str) -> dict:
    """{service: {"environment", "labels", "command"}} as the containers get them."""
    data = yaml.load(text, Loader=_Yaml12Loader) or {}
    out = {}
    for name, service in (data.get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        command = service.get("command")
        out[str(name)] = {
            "environment": _pairs(service.get("environment")),
            "labels": _pairs(service.get("labels")),
            "command": [_go_text(c) for c in command] if isinstance(command, list)
            else (None if command is None else _go_text(command)),
        }
    return out
