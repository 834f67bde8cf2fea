"""Engine-level fixtures: a private simulated fleet per module and a local Pulumi project."""

import json

import pytest

from sim.engine import LocalProject, host_entries
from sim.testing import running_fleet

from .helpers import QUICK_SETTLE


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=2) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return LocalProject.create(tmp_path_factory.mktemp("project"))


def hosts_config(fleet, settle: int = QUICK_SETTLE) -> dict:
    return host_entries(json.loads(fleet.hosts_json.read_text())["hosts"], health_settle=settle)
