"""JSON Schemas for editors, generated from the models: `python -m homefleet.schemas`.

schemas/stack.schema.json validates a whole `stacks/Pulumi.<stack>.yaml`;
schemas/package.schema.json a `packages/<name>.yml`. Tests check both are current.
"""

import json
import sys
from pathlib import Path

from .catalog import write_schema as write_package_schema
from .stack import App, Host

ROOT = Path(__file__).resolve().parent.parent
STACK_SCHEMA = ROOT / "schemas" / "stack.schema.json"
PACKAGE_SCHEMA = ROOT / "schemas" / "package.schema.json"
_SECURE = {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"],
           "additionalProperties": False, "description": "set with `pulumi config set --secret`"}


def stack_schema() -> dict:
    defs: dict = {}
    hosts = Host.model_json_schema(ref_template="#/$defs/{model}")
    apps = App.model_json_schema(ref_template="#/$defs/{model}")
    for schema in (hosts, apps):
        defs.update(schema.pop("$defs", {}))
    defs["Host"], defs["App"] = hosts, apps
    name = {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$"}
    config = {
        "type": "object",
        "properties": {
            "homefleet:hosts": {"type": "object", "propertyNames": name,
                                "additionalProperties": {"$ref": "#/$defs/Host"},
                                "description": "the machines apps run on, by name"},
            "homefleet:apps": {"type": "object", "propertyNames": name,
                               "additionalProperties": {"$ref": "#/$defs/App"},
                               "description": "what runs where, by app name"},
            "homefleet:secrets": {"anyOf": [_SECURE, {"type": "object"}],
                                  "description": "per app, secret env values: `pulumi config set --secret --path 'secrets.APP.NAME'`"},
            "homefleet:sshKey": _SECURE,
            "homefleet:registries": _SECURE,
        },
        "required": ["homefleet:hosts"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "homefleet stack file (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {"config": config, "secretsprovider": {"type": "string"},
                       "encryptionsalt": {"type": "string"}, "encryptedkey": {"type": "string"}},
        "$defs": defs,
    }


def render(schema: dict) -> str:
    """The same layout as the package schema's (homefleet.catalog.write_schema)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    STACK_SCHEMA.write_text(render(stack_schema()), encoding="utf-8")
    write_package_schema(PACKAGE_SCHEMA)
    print(f"wrote {STACK_SCHEMA.relative_to(ROOT)} and {PACKAGE_SCHEMA.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
