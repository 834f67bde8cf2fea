"""Provider modules are imported by the dynamic provider process: importing them must
create no resource and open no connection, and the providers must pickle by reference."""

import subprocess
import sys
import textwrap

import dill

from providers.oci_template import OciTemplateProvider
from providers.proxmox_ct import ProxmoxCTProvider
from providers.truenas_app import TrueNASAppProvider

MODULES = ["providers.oci_template", "providers.proxmox_ct", "providers.ct_outputs", "providers.ct_create",
           "providers.ct_update", "providers.ct_remove", "providers.truenas_app", "providers.transport",
           "providers.credentials", "providers.hostcache", "providers.hosts.pct", "providers.hosts.midclt",
           "providers.backups", "providers.hosts.vzdump"]


def test_importing_providers_opens_no_socket_and_needs_no_engine():
    probe = textwrap.dedent(f"""
        import socket
        def refuse(*a, **k):
            raise AssertionError("a socket was opened at import time")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        import importlib
        for name in {MODULES!r}:
            importlib.import_module(name)
        print("imported", len({MODULES!r}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=".")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"imported {len(MODULES)}"


def test_providers_pickle_small_and_by_reference():
    for provider in (OciTemplateProvider(), ProxmoxCTProvider(), TrueNASAppProvider()):
        data = dill.dumps(provider, recurse=True)
        assert len(data) < 200, f"{type(provider).__name__} pickles {len(data)} bytes: it holds state"
        assert type(provider).__module__.encode() in data, "pickled by reference to its module"
        assert vars(provider) == {}
