"""Engine-level fixtures: a private simulated fleet per module and a local Pulumi project."""

import pytest

from sim.engine import LocalProject
from sim.testing import running_fleet

from .helpers import hosts_config  # noqa: F401 (the modules import it from here)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=2) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return LocalProject.create(tmp_path_factory.mktemp("project"))

