"""Fixtures for the SSH transport tests: a fresh pool, clean simulated hosts, a real ssh-agent."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from providers import transport
from sim.testing import reset_host


@pytest.fixture
def fresh_pool():
    """No pooled connection and no secret key before and after the test."""
    transport.close_all()
    transport.set_private_key(None)
    yield
    transport.close_all()
    transport.set_private_key(None)


@pytest.fixture
def no_agent(monkeypatch):
    """Authentication must not depend on whatever agent the developer has running."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture
def pve1(sim_hosts, fresh_pool, no_agent):
    host = sim_hosts["pve1"]
    reset_host(host)
    yield host
    reset_host(host)


@pytest.fixture
def pve2(sim_hosts, fresh_pool, no_agent):
    host = sim_hosts["pve2"]
    reset_host(host)
    yield host
    reset_host(host)


@pytest.fixture
def ssh_agent(monkeypatch):
    """A real ssh-agent for this test only; yields its environment; killed by its pid after."""
    out = subprocess.run(["ssh-agent", "-s"], check=True, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout
    sock = re.search(r"SSH_AUTH_SOCK=([^;]+);", out).group(1)
    pid = int(re.search(r"SSH_AGENT_PID=(\d+);", out).group(1))
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    try:
        yield {**os.environ, "SSH_AUTH_SOCK": sock, "SSH_AGENT_PID": str(pid)}
    finally:
        os.kill(pid, signal.SIGTERM)
