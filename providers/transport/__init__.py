"""SSH transport: run argv lists and upload files on hosts over one pooled connection each.

Knows nothing of Pulumi, Proxmox or TrueNAS.
"""

from .auth import set_private_key
from .errors import TransportError
from .pool import close_all, stats
from .quoting import describe, to_command_line
from .run import Result, put, run
from .target import SshTarget

__all__ = [
    "Result", "SshTarget", "TransportError", "close_all", "describe", "put", "run",
    "set_private_key", "stats", "to_command_line",
]
