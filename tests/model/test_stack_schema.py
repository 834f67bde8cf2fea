"""The committed stack schema is the one the model generates, and it describes the contract."""

import json

import yaml

from homefleet import schemas


def test_committed_stack_schema_is_current():
    assert schemas.STACK_SCHEMA.read_text(encoding="utf-8") == schemas.render(schemas.stack_schema()), \
        "run `make schemas` and commit schemas/stack.schema.json"


def test_schema_covers_the_documented_keys():
    schema = json.loads(schemas.STACK_SCHEMA.read_text())
    config = schema["properties"]["config"]["properties"]
    assert set(config) >= {"homefleet:hosts", "homefleet:apps", "homefleet:secrets", "homefleet:sshKey"}
    app = schema["$defs"]["App"]["properties"]
    assert {"package", "image", "compose", "host", "vmid", "memory", "mounts", "gpu", "env"} <= set(app)
    assert schema["$defs"]["App"]["additionalProperties"] is False
    memory = json.dumps(app["memory"])
    assert "integer" in memory and "string" in memory, "sizes may be numbers or '4G'"


def test_example_stacks_validate(tmp_path):
    from homefleet.config import load
    for path in sorted(schemas.ROOT.glob("stacks/Pulumi.*.yaml")):
        config = yaml.safe_load(path.read_text())["config"]
        raw = {"hosts": config.get("homefleet:hosts"), "apps": config.get("homefleet:apps")}
        load(path.name.split(".")[1], raw, project_dir=str(schemas.ROOT))
