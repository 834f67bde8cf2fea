"""Argument checks the middleware makes before a call starts (so they fail the call itself,
not a job), with the wording of each generation: the 24.10 schema layer
(`Field was not expected`, `attribute required`) or 25.x pydantic models
(`Extra inputs are not permitted`, `Field required`, `String should match pattern ...`).
"""

from __future__ import annotations

import errno
import re

from .errors import ClientError, ValidationErrors

APP_NAME_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
APP_NAME_MAX = 40

CREATE_KEYS = ("app_name", "custom_app", "custom_compose_config", "custom_compose_config_string",
               "values", "catalog_app", "train", "version")
UPDATE_KEYS = ("values", "custom_compose_config", "custom_compose_config_string")
DELETE_KEYS = ("remove_images", "remove_ix_volumes", "force_remove_ix_volumes")
DELETE_KEYS_25 = DELETE_KEYS + ("force_remove_custom_app",)


class Schema:
    def __init__(self, version: tuple):
        self.pydantic = version >= (25, 4)
        self.version = version

    # ---------------------------------------------------------------- messages
    def extra_key(self) -> str:
        return "Extra inputs are not permitted" if self.pydantic else "Field was not expected"

    def required(self) -> str:
        return "Field required" if self.pydantic else "attribute required"

    def not_type(self, kind: str) -> str:
        if self.pydantic:
            return {"str": "Input should be a valid string", "bool": "Input should be a valid boolean",
                    "dict": "Input should be a valid dictionary"}[kind]
        return {"str": "Not a string", "bool": "Not a boolean", "dict": "Not a dictionary"}[kind]

    # ---------------------------------------------------------------- checks
    def arg_count(self, method: str, args: list, low: int, high: int) -> None:
        if len(args) < low:
            raise ValidationErrors.one(method, f"Too few arguments (expected {low}, found {len(args)})")
        if len(args) > high:
            raise ValidationErrors.one(method, f"Too many arguments (expected {high}, found {len(args)})")

    def app_name(self, attr: str, value) -> None:
        if not isinstance(value, str):
            raise ValidationErrors.one(attr, self.not_type("str"))
        if self.pydantic:
            if len(value) < 1:
                raise ValidationErrors.one(attr, "String should have at least 1 character")
            if len(value) > APP_NAME_MAX:
                raise ValidationErrors.one(attr, f"String should have at most {APP_NAME_MAX} characters")
            if not re.match(APP_NAME_PATTERN, value):
                raise ValidationErrors.one(attr, f"String should match pattern '{APP_NAME_PATTERN}'")
        else:
            if not re.match(APP_NAME_PATTERN, value):
                raise ValidationErrors.one(attr, f"Value does not match '{APP_NAME_PATTERN}' pattern")
            if len(value) > APP_NAME_MAX:
                raise ValidationErrors.one(attr, f"The value may not be longer than {APP_NAME_MAX} characters")

    def mapping(self, prefix: str, value, allowed: tuple, types: dict) -> dict:
        if not isinstance(value, dict):
            raise ValidationErrors.one(prefix, self.not_type("dict"))
        problems = []
        for key in value:
            if key not in allowed:
                problems.append((f"{prefix}.{key}", self.extra_key(), errno.EINVAL))
        for key, kind in types.items():
            if key in value and not _is(value[key], kind):
                problems.append((f"{prefix}.{key}", self.not_type(kind), errno.EINVAL))
        if problems:
            raise ValidationErrors(problems)
        return value

    # ---------------------------------------------------------------- per method
    def create(self, args: list) -> dict:
        self.arg_count("app.create", args, 1, 1)
        data = self.mapping("app_create", args[0], CREATE_KEYS,
                            {"custom_app": "bool", "custom_compose_config": "dict",
                             "custom_compose_config_string": "str", "values": "dict",
                             "catalog_app": "str", "train": "str", "version": "str"})
        if "app_name" not in data:
            raise ValidationErrors.one("app_create.app_name", self.required())
        self.app_name("app_create.app_name", data["app_name"])
        return data

    def update(self, args: list) -> tuple[str, dict]:
        self.arg_count("app.update", args, 1, 2)
        if not isinstance(args[0], str):
            raise ValidationErrors.one("app_update.app_name", self.not_type("str"))
        data = self.mapping("app_update", args[1] if len(args) > 1 else {}, UPDATE_KEYS,
                            {"custom_compose_config": "dict", "custom_compose_config_string": "str",
                             "values": "dict"})
        return args[0], data

    def delete(self, args: list) -> tuple[str, dict]:
        self.arg_count("app.delete", args, 1, 2)
        if not isinstance(args[0], str):
            raise ValidationErrors.one("app_delete.app_name", self.not_type("str"))
        allowed = DELETE_KEYS_25 if self.pydantic else DELETE_KEYS
        options = self.mapping("options", args[1] if len(args) > 1 else {}, allowed,
                               {k: "bool" for k in allowed})
        return args[0], {"remove_images": True, "remove_ix_volumes": False,
                         "force_remove_ix_volumes": False, "force_remove_custom_app": False, **options}

    def name_only(self, method: str, args: list) -> str:
        self.arg_count(method, args, 1, 1)
        if not isinstance(args[0], str):
            raise ValidationErrors.one(f"{method.replace('.', '_')}.app_name", self.not_type("str"))
        return args[0]

    def filters(self, method: str, args: list) -> tuple[list, dict]:
        self.arg_count(method, args, 0, 2)
        filters = args[0] if args else []
        options = args[1] if len(args) > 1 else {}
        if not isinstance(filters, list) or not all(isinstance(f, list) and len(f) == 3 for f in filters):
            raise ClientError("Invalid filters: each filter is [name, operator, value]", errno.EINVAL)
        if not isinstance(options, dict):
            raise ValidationErrors.one(f"{method}.options", self.not_type("dict"))
        return filters, options


def _is(value, kind: str) -> bool:
    return {"str": isinstance(value, str), "bool": isinstance(value, bool),
            "dict": isinstance(value, dict),
            "int": isinstance(value, int) and not isinstance(value, bool)}[kind]


OPERATORS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "in": lambda a, b: a in (b or []),
    "nin": lambda a, b: a not in (b or []),
    "rin": lambda a, b: isinstance(a, list) and b in a,
    "^": lambda a, b: isinstance(a, str) and a.startswith(b),
}


def matches(entry: dict, filters: list) -> bool:
    for name, op, value in filters:
        if op not in OPERATORS:
            raise ClientError(f"Invalid operator: {op}", errno.EINVAL)
        if not OPERATORS[op](entry.get(name), value):
            return False
    return True
