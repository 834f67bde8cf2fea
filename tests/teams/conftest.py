"""Fixtures for the team workflows: a throwaway PostgreSQL server and a simulated fleet per module."""


import pytest

from sim.engine import LocalProject
from sim.postgres import running_postgres
from sim.testing import running_fleet

from ..engine.helpers import hosts_config  # noqa: F401 (the modules import it from here)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(tmp_path_factory.mktemp("fleet"), hosts=2) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pg():
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def pg_project(tmp_path_factory, pg):
    """A local project whose state lives in PostgreSQL. The password travels in PGPASSWORD, as
    docs/teams.md advises: Pulumi prints the backend URL in some messages (the lock message)."""
    project = LocalProject.create(tmp_path_factory.mktemp("project"))
    project.env.update({"PULUMI_BACKEND_URL": pg.url(password=False), "PGPASSWORD": pg.password})
    return project

