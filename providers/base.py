"""What every homefleet dynamic provider shares: configuration and the target from inputs."""

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from . import credentials, workers
from .transport import SshTarget


class HomefleetProvider(ResourceProvider):
    """Holds no state on self: it is pickled into the Pulumi state by reference."""

    def configure(self, req: ConfigureRequest) -> None:
        credentials.load_from_config(req.config)
        workers.widen()  # past pulumi.dynamic's 4 calls at once; see providers/workers.py


def target_of(props: dict) -> SshTarget:
    return SshTarget.from_dict(props["host"])


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
