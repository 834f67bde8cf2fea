"""Issue 19.3: a host that answers at a new address or port (a new DHCP lease, a restarted demo
host). Deletes and refreshes must reach it as the stack file describes it *now*, by host name;
the address in the state is used only for a host the stack no longer names.

The "old address" is a TCP forwarder in front of the simulated host's sshd: the same machine,
the same host key. Stopping the forwarder is the host moving away from that port.
"""

import contextlib
import socket
import threading

import pytest

from .conftest import hosts_config
from .helpers import ct_list

pytestmark = pytest.mark.engine
STACK = "moved"
APP = {"host": "pve1", "image": "nginx:1.27", "vmid": 610, "memory": 256}


@contextlib.contextmanager
def forwarder(to_port: int):
    """127.0.0.1:<free port> -> 127.0.0.1:to_port until the block ends; yields the port."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop, conns = threading.Event(), []

    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def accept():
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", to_port))
            conns.extend([client, upstream])
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()


def test_removing_an_app_refresh_and_destroy_reach_the_host_at_its_new_port(fleet, project):
    hosts = hosts_config(fleet)
    real_port = hosts["pve1"]["port"]
    keep = {**APP, "vmid": 611}

    def at(port):
        return {**hosts, "pve1": {**hosts["pve1"], "port": port}}

    with forwarder(real_port) as old_port:
        project.write_stack(STACK, {"homefleet:hosts": at(old_port), "homefleet:apps": {"web": APP, "keep": keep}})
        project.pulumi("up", "--yes", stack=STACK, check=True)
    assert {610, 611} <= {row["vmid"] for row in ct_list(fleet["pve1"])}

    # The host now answers only at its real port, the stack file says so, and `web` is removed:
    # the delete must go to the port the stack names now, not the one in the state.
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"keep": keep}})
    up = project.pulumi("up", "--yes", stack=STACK)
    assert up.ok, str(up)
    vmids = {row["vmid"] for row in ct_list(fleet["pve1"])}
    assert 610 not in vmids and 611 in vmids

    # Moved again: refresh, a refreshing preview and destroy do not run the program unless asked
    # (`--run-program`); with it they learn the stack's current address the same way.
    with forwarder(real_port) as old_port:
        project.write_stack(STACK, {"homefleet:hosts": at(old_port), "homefleet:apps": {"keep": keep}})
        project.pulumi("up", "--yes", stack=STACK, check=True)
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"keep": keep}})
    for args in (["preview", "--refresh", "--run-program"], ["refresh", "--yes", "--run-program"]):
        run = project.pulumi(*args, stack=STACK)
        assert run.ok and str(old_port) not in run.stdout + run.stderr, str(run)

    with forwarder(real_port) as old_port:
        project.write_stack(STACK, {"homefleet:hosts": at(old_port), "homefleet:apps": {"keep": keep}})
        project.pulumi("up", "--yes", stack=STACK, check=True)
    project.write_stack(STACK, {"homefleet:hosts": hosts, "homefleet:apps": {"keep": keep}})
    destroy = project.pulumi("destroy", "--yes", "--run-program", stack=STACK)
    assert destroy.ok, str(destroy)
    assert 611 not in {row["vmid"] for row in ct_list(fleet["pve1"])}
