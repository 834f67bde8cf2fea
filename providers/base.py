"""What every homefleet dynamic provider shares: configuration and the target from inputs."""

import json
import threading

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from . import credentials, diffdetail, workers
from .transport import SshTarget

# How the stack file describes each host *now* (address, port, user, host key, key file), by host
# name, read from the stack config the engine hands the provider process at configure. A delete or
# read only sees the old outputs, so without this they would connect to an address that moved.
# Every homefleet resource type runs in the one pulumi-python provider process of a run
# (pulumi/dynamic/__main__.py: one servicer, one _config, one _PROVIDER_CACHE).
_hosts_lock = threading.Lock()
_current_hosts: dict = {}
_CONNECTION_KEYS = {"address": "address", "port": "port", "user": "user", "hostKey": "host_key", "keyFile": "key_file"}


def load_hosts(raw) -> None:
    """`homefleet:hosts` as the config gives it (JSON text) -> the connection part of each host."""
    try:
        hosts = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        hosts = None
    current = {}
    for name, host in (hosts or {}).items() if isinstance(hosts, dict) else []:
        if isinstance(host, dict) and isinstance(host.get("address"), str) and host["address"]:
            current[name] = {ours: host[theirs] for theirs, ours in _CONNECTION_KEYS.items()
                             if host.get(theirs) is not None}
            current[name].setdefault("port", 22)
            current[name].setdefault("user", "root")
    with _hosts_lock:
        _current_hosts.clear()
        _current_hosts.update(current)


class HomefleetProvider(ResourceProvider):
    """Holds no state on self: it is pickled into the Pulumi state by reference."""

    def configure(self, req: ConfigureRequest) -> None:
        credentials.load_from_config(req.config)
        load_hosts(req.config.get("hosts"))
        diffdetail.install()  # drift marked in `preview --diff`; see providers/diffdetail.py
        workers.widen()  # past pulumi.dynamic's 4 calls at once; see providers/workers.py


def target_of(props: dict) -> SshTarget:
    """Where to reach the resource's host: as the stack names it now; from the state only for a
    host the stack no longer names (or a run that has no stack config, such as a bare provider)."""
    data = dict(props["host"])
    with _hosts_lock:
        now = _current_hosts.get(str(data.get("name")))
    if now:
        data.update(now)
    return SshTarget.from_dict(data)


def same_host(old: dict, new: dict) -> bool:
    """Whether two `host` inputs name the same machine: by name, so a new address, port,
    user or pinned key is an in-place update (the next call uses them), not a move."""
    return str(old.get("name")) == str(new.get("name"))


def inputs_moved(olds: dict, news: dict, not_inputs: set) -> bool:
    """Whether an input differs from the state (the outputs repeat every input)."""
    return any(olds.get(k) != news.get(k) for k in (set(olds) | set(news)) - not_inputs - {"__provider"})


def diff_changes(changed: list, replaces: list, moved: bool):
    """DiffResult.changes: None when an input moved, so the engine diffs the inputs itself and
    names them (diffReasons, --diff), which this SDK's DiffResult cannot carry; drift alone,
    seen only in outputs, stays True."""
    if changed and not replaces and moved:
        return None
    return bool(changed or replaces)


def ints(value):
    """Numbers cross gRPC as floats; PVE wants `256`, not `256.0`. Whole floats become ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value
