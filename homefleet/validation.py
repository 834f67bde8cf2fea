"""Pydantic errors -> one located message per problem: file, key path, what, the fix."""

import re
from typing import Type

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, located

_UNION_BRANCH = re.compile(r"^(literal|list|dict|function|union|tagged-union|json-or-python)\[|^(str|int|bool)$")


def _key_path(prefix: str, loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _UNION_BRANCH.match(str(part)) or part == "[key]":
            continue
        else:
            path += ("." if path else "") + str(part)
    return prefix + path


def _allowed_keys(model: Type[BaseModel], loc: tuple) -> list:
    """The keys allowed where an unknown key was found (walks the model along loc)."""
    current = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            continue
        current = _inner_model(field.annotation)
    return sorted(current.model_fields) if current is not None else []


def _inner_model(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: dict, model: Type[BaseModel]) -> tuple:
    kind, msg = error["type"], error["msg"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"])
        return "unknown key", f"Remove it or fix its spelling; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing", "Add it"
    if kind.startswith("bool_"):
        return f"{msg.lower()} (got {value!r})", "Write true or false"
    if kind.startswith(("int_", "string_type", "float_", "dict_type", "list_type", "model_type")):
        return f"{msg.lower()} (got {value!r})", ""
    if kind == "literal_error":
        return f"{msg.lower()} (got {value!r})", ""
    if kind == "string_pattern_mismatch":
        return f"{value!r} has the wrong form", _pattern_hint(error["loc"])
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{msg.lower()} (got {value!r})", _RANGE_HINTS.get(_last_key(error["loc"]), "")
    text = msg.removeprefix("Value error, ")
    return text, ""


_RANGE_HINTS = {
    "keepBackups": "Write how many of the app's homefleet backups to keep, from 1 (only the newest) to 1000",
}


def _last_key(loc: tuple) -> str:
    return str([p for p in loc if isinstance(p, str)][-1]) if loc else ""


def _pattern_hint(loc: tuple) -> str:
    last = _last_key(loc)
    hints = {
        "hosts": "Host names are lowercase letters, digits and '-', starting with a letter (max 40)",
        "apps": "App names are lowercase letters, digits and '-', starting with a letter (max 40)",
        "storage": "Write a PVE storage ID such as local-lvm or local-zfs",
        "templateStorage": "Write a PVE storage ID such as local",
        "backupStorage": "Write the ID of a PVE storage with content type 'backup', such as local "
                         "(2 or more letters, digits, '-', '_' and '.', starting with a letter, ending with a letter or digit)",
        "startup": "Write e.g. 'order=2,up=30'",
        "hwaddr": "Write a MAC such as BC:24:11:00:00:01",
        "bridge": "Write a bridge name such as vmbr0",
        "user": "Write a Unix user name such as root",
        "mode": "Write an octal mode such as 0660",
        "template": "Write STORAGE:vztmpl/FILE, e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
    }
    if len(loc) >= 2 and loc[0] in ("hosts", "apps") and loc[-1] == "[key]":
        return hints[loc[0]]
    return hints.get(last, "")


def validate(model: Type[BaseModel], data, file: str, prefix: str):
    """Validate `data`; raise ConfigError listing every problem, located."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            if not loc and error["type"] == "value_error":
                for part in error["msg"].removeprefix("Value error, ").split("; "):
                    key, _, text = part.partition(": ")
                    problems.append(located(file, f"{prefix}{key}", text))
                continue
            what, fix = _describe(error, model)
            if loc and loc[-1] == "[key]":
                what = f"the name {error.get('input')!r} has the wrong form"
            problem = located(file, _key_path(prefix, loc), what, fix)
            if problem not in problems:
                problems.append(problem)
        raise ConfigError(problems) from None
