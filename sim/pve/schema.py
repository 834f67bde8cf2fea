"""A small copy of pve-common's JSONSchema checks: types, formats, property strings.

Messages and the order of checks follow `PVE/JSONSchema.pm` (`check_prop`: type, then
format, then pattern, maxLength, minLength, maximum, minimum, enum). Format errors keep
their trailing newline, as PVE does, which prints a blank line after them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable


class FormatError(Exception):
    """A format check `die`d; `str()` is the message including its trailing newline."""


class PropertyStringError(FormatError):
    """`raise "format error\\n", errors => {...}` from parse_property_string."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        text = "format error\n" + "".join(f"{k}: {errors[k]}\n" for k in sorted(errors))
        super().__init__(text)


@dataclass
class Prop:
    type: str = "string"
    optional: bool = True
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: list[str] | None = None
    format: "str | dict[str, Prop] | None" = None
    default_key: bool = False
    default: object = None
    alias: str | None = None
    requires: str | None = None
    extra: dict = field(default_factory=dict)


# --- scalar helpers ---------------------------------------------------------------------

def parse_boolean(value: str) -> int | None:
    if re.fullmatch(r"(?i)1|on|yes|true", value):
        return 1
    if re.fullmatch(r"(?i)0|off|no|false", value):
        return 0
    return None


def is_number(value: str) -> bool:
    return re.fullmatch(r"[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?", value) is not None


def is_integer(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value) is not None


def parse_size(value: str) -> int | None:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])?", value)
    if not m:
        return None
    size = float(m.group(1))
    unit = m.group(2)
    factor = {None: 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[unit]
    return int(size * factor)


def format_size(size: int) -> str:
    size = int(size)
    kb = size // 1024
    if kb * 1024 != size:
        return str(size)
    mb = kb // 1024
    if mb * 1024 != kb:
        return f"{kb}K"
    gb = mb // 1024
    if gb * 1024 != mb:
        return f"{mb}M"
    tb = gb // 1024
    if tb * 1024 != gb:
        return f"{gb}G"
    return f"{tb}T"


def split_list(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,;\0]+", text or "") if part != ""]


# --- registered formats --------------------------------------------------------------------

IPV4_RE = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV6_RE = r"[0-9a-fA-F:]*:[0-9a-fA-F:.]*"

FormatFn = Callable[[str], None]
_FORMATS: dict[str, FormatFn] = {}


def register(name: str):
    def wrap(fn: FormatFn) -> FormatFn:
        _FORMATS[name] = fn
        return fn
    return wrap


def _fail(message: str) -> None:
    raise FormatError(message + "\n")


@register("string")
def _fmt_string(value: str) -> None:
    return None


@register("pve-vmid")
def _fmt_vmid(value: str) -> None:
    if not re.fullmatch(r"[1-9][0-9]{2,8}", value):
        _fail("value does not look like a valid VM ID")


@register("pve-storage-id")
def _fmt_storage_id(value: str) -> None:
    if not re.fullmatch(r"(?i)[a-z][a-z0-9\-_.]*[a-z0-9]", value):
        _fail(f"storage ID '{value}' contains illegal characters")


@register("pve-configid")
def _fmt_configid(value: str) -> None:
    if not re.fullmatch(r"(?i)[a-z][a-z0-9_-]+", value):
        _fail(f"invalid configuration ID '{value}'")


@register("pve-poolid")
def _fmt_poolid(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+){0,2}", value):
        _fail(f"pool name '{value}' contains illegal characters")


@register("dns-name")
def _fmt_dns_name(value: str) -> None:
    name = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
    if not re.fullmatch(rf"(?:{name}\.)*{name}", value):
        _fail("value does not look like a valid DNS name")


@register("ipv4")
def _fmt_ipv4(value: str) -> None:
    if not re.fullmatch(IPV4_RE, value):
        _fail("value does not look like a valid IPv4 address")


def _is_ipv6(value: str) -> bool:
    import ipaddress
    try:
        ipaddress.IPv6Address(value)
        return True
    except ValueError:
        return False


@register("ipv6")
def _fmt_ipv6(value: str) -> None:
    if not _is_ipv6(value):
        _fail("value does not look like a valid IPv6 address")


def _cidr4(value: str) -> bool:
    m = re.fullmatch(rf"({IPV4_RE})/(\d+)", value)
    return bool(m) and 7 < int(m.group(2)) <= 32


def _cidr6(value: str) -> bool:
    m = re.fullmatch(r"(.+)/(\d+)", value)
    return bool(m) and _is_ipv6(m.group(1)) and 7 < int(m.group(2)) <= 128


@register("pve-ipv4-config")
def _fmt_ip4_config(value: str) -> None:
    if value in ("dhcp", "manual") or _cidr4(value):
        return
    _fail("value does not look like a valid ipv4 network configuration")


@register("pve-ipv6-config")
def _fmt_ip6_config(value: str) -> None:
    if value in ("auto", "dhcp", "manual") or _cidr6(value):
        return
    _fail("value does not look like a valid ipv6 network configuration")


@register("lxc-ip-with-ll-iface")
def _fmt_ip_ll(value: str) -> None:
    if re.fullmatch(IPV4_RE, value) or _is_ipv6(value.split("%", 1)[0]):
        return
    _fail("value does not look like a valid IP address")


@register("mac-addr")
def _fmt_mac(value: str) -> None:
    if not re.fullmatch(r"(?i)[a-f0-9][02468ace](?::[a-f0-9]{2}){5}", value):
        _fail("value does not look like a valid unicast MAC address")


@register("disk-size")
def _fmt_disk_size(value: str) -> None:
    if parse_size(value) is None:
        _fail(f"value does not look like a valid disk size: {value}")


@register("pve-lxc-mp-string")
def _fmt_mp_string(value: str) -> None:
    if re.search(r"/\.\.?/", value) or re.search(r"/\.\.?$", value) or value.startswith("../"):
        _fail(f"{value} contains illegal character sequences")


@register("pve-lxc-dev-string")
def _fmt_dev_string(value: str) -> None:
    if re.search(r"/\.\.?(?:/|$)", value) or not value.startswith("/dev/"):
        _fail(f"{value} is not a valid device path")


@register("pve-volume-id")
def _fmt_volume_id(value: str) -> None:
    if not re.fullmatch(r"(?i)([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)", value):
        _fail(f"unable to parse volume ID '{value}'")


@register("pve-tag")
def _fmt_tag(value: str) -> None:
    if not re.fullmatch(r"(?i)[a-z0-9_][a-z0-9_\-+.]*", value):
        _fail(f"invalid characters in tag '{value}'")


@register("pve-startup-order")
def _fmt_startup(value: str) -> None:
    if parse_startup(value) is None:
        _fail("unable to parse startup options")


@register("pve-ct-timezone")
def _fmt_timezone(value: str) -> None:
    if value == "host":
        return
    zoneinfo = "/usr/share/zoneinfo"
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*", value) or (
        os.path.isdir(zoneinfo) and not os.path.isfile(os.path.join(zoneinfo, value))
    ):
        _fail(f"invalid time zone '{value}'")


@register("pve-lxc-env")
def _fmt_env(value: str) -> None:
    for var in value.split("\0"):
        if not re.fullmatch(r"\w+=[^\x00-\x08\x0a-\x1f\x7f]*", var):
            _fail(f"invalid environment variable '{var}'")


def parse_startup(value: str) -> dict | None:
    if not value:
        return None
    res: dict[str, str] = {}
    for part in value.split(","):
        if re.fullmatch(r"\s*", part):
            continue
        if m := re.fullmatch(r"(?:order=)?(\d+)", part):
            res["order"] = m.group(1)
        elif m := re.fullmatch(r"up=(\d+)", part):
            res["up"] = m.group(1)
        elif m := re.fullmatch(r"down=(\d+)", part):
            res["down"] = m.group(1)
        else:
            return None
    return res


def check_format(fmt: "str | dict[str, Prop]", value: str, path: str) -> dict | None:
    if isinstance(fmt, dict):
        return parse_property_string(fmt, value, path)
    m = re.fullmatch(r"(.*)-a?list", fmt)
    if m:
        fn = _FORMATS[m.group(1)]
        for item in split_list(value):
            fn(item)
        return None
    _FORMATS[fmt](value)
    return None


# --- property strings ----------------------------------------------------------------------

def parse_property_string(desc: dict[str, Prop], data: str, path: str = "") -> dict[str, str]:
    res: dict[str, str] = {}
    default_key: str | None = None
    for part in data.split(","):
        if re.fullmatch(r"\s*", part):
            continue
        m = re.fullmatch(r"([^=]+)=(.+)", part, re.S)
        if m:
            key, value = m.group(1), m.group(2)
            if key in res:
                raise FormatError(f"duplicate key in comma-separated list property: {key}\n")
            schema = desc.get(key)
            if schema is not None and schema.alias:
                key = schema.alias
                schema = desc.get(key)
            if schema is None:
                raise FormatError(f"invalid key in comma-separated list property: {key}\n")
            if schema.type == "boolean":
                b = parse_boolean(value)
                value = str(b) if b is not None else value
            res[key] = value
        elif "=" not in part:
            if default_key:
                raise FormatError(f"duplicate key in comma-separated list property: {default_key}\n")
            for key, schema in desc.items():
                if schema.default_key:
                    default_key = key
                    if key in res:
                        raise FormatError(
                            f"duplicate key in comma-separated list property: {default_key}\n")
                    res[key] = part
                    break
            if not default_key:
                raise FormatError("value without key, but schema does not define a default key\n")
        else:
            raise FormatError("missing key in comma-separated list property\n")
    errors: dict[str, str] = {}
    check_object(path, desc, res, errors)
    if errors:
        raise PropertyStringError(errors)
    return res


def print_property_string(data: dict[str, str], desc: dict[str, Prop],
                          skip: tuple[str, ...] = ()) -> str:
    """Default key first (bare value), then required keys, then the rest, each sorted."""
    keys = [k for k in data if k not in skip]
    default = [k for k in keys if desc.get(k) is not None and desc[k].default_key]
    required = sorted(k for k in keys if k not in default and desc.get(k) is not None
                      and not desc[k].optional)
    rest = sorted(k for k in keys if k not in default and k not in required)
    parts = [str(data[k]) for k in default]
    parts += [f"{k}={data[k]}" for k in required + rest]
    return ",".join(parts)


# --- checks --------------------------------------------------------------------------------

def add_error(errors: dict[str, str], path: str, message: str) -> None:
    path = path or "_root"
    if path in errors:
        errors[path] = errors[path] + "\\n" + message
    else:
        errors[path] = message


def check_type(path: str, typ: str, value: str, errors: dict[str, str]) -> bool:
    if typ == "boolean" and value not in ("0", "1"):
        add_error(errors, path, f"type check ('boolean') failed - got '{value}'")
        return False
    if typ == "integer" and not is_integer(value):
        add_error(errors, path, f"type check ('integer') failed - got '{value}'")
        return False
    if typ == "number" and not is_number(value):
        add_error(errors, path, f"type check ('number') failed - got '{value}'")
        return False
    return True


def _fmt_num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


def check_prop(value: str | None, prop: Prop, path: str, errors: dict[str, str]) -> None:
    if value is None:
        if not prop.optional and not prop.alias:
            add_error(errors, path, "property is missing and it is not optional")
        return
    if not check_type(path, prop.type, value, errors):
        return
    if prop.format is not None:
        try:
            check_format(prop.format, value, path)
        except FormatError as err:
            add_error(errors, path, f"invalid format - {err}")
            return
    if prop.pattern is not None and not re.fullmatch(prop.pattern, value, re.S):
        add_error(errors, path, "value does not match the regex pattern")
        return
    if prop.max_length is not None and len(value) > prop.max_length:
        add_error(errors, path, f"value may only be {prop.max_length} characters long")
        return
    if prop.min_length is not None and len(value) < prop.min_length:
        add_error(errors, path, f"value must be at least {prop.min_length} characters long")
        return
    if is_number(value):
        if prop.maximum is not None and float(value) > prop.maximum:
            add_error(errors, path, f"value must have a maximum value of {_fmt_num(prop.maximum)}")
            return
        if prop.minimum is not None and float(value) < prop.minimum:
            add_error(errors, path, f"value must have a minimum value of {_fmt_num(prop.minimum)}")
            return
    if prop.enum is not None and value not in prop.enum:
        add_error(errors, path,
                  f"value '{value}' does not have a value in the enumeration '{', '.join(prop.enum)}'")


def check_object(path: str, desc: dict[str, Prop], value: dict[str, str],
                 errors: dict[str, str]) -> None:
    for key, prop in desc.items():
        check_prop(value.get(key), prop, f"{path}.{key}" if path else key, errors)
    for key in value:
        if key not in desc:
            add_error(errors, f"{path}.{key}" if path else key,
                      "property is not defined in schema and the schema does not allow "
                      "additional properties")
        elif desc[key].requires and value.get(desc[key].requires) is None:
            req = desc[key].requires
            add_error(errors, f"{path}.{req}" if path else req,
                      f"missing property - '{path + '.' + key if path else key}' requires this property")
