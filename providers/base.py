"""What every homefleet dynamic provider shares: configuration and the target from inputs."""

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from . import credentials
from .transport import SshTarget


class HomefleetProvider(ResourceProvider):
    """Holds no state on self: it is pickled into the Pulumi state by reference."""

    def configure(self, req: ConfigureRequest) -> None:
        credentials.load_from_config(req.config)


def target_of(props: dict) -> SshTarget:
    return SshTarget.from_dict(props["host"])


def same_host(old: dict, new: dict) -> bool:
    """Whether two `host` inputs name the same machine (a pinned key change is not a move)."""
    keys = ("name", "address", "port", "user")
    return all(str(old.get(k)) == str(new.get(k)) for k in keys)


def ints(value):
    """Numbers cross gRPC as floats; PVE wants `256`, not `256.0`. Whole floats become ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value
