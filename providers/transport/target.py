"""Where and how to reach one host: plain data, safe to pickle into Pulumi state."""

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class SshTarget:
    """One host's SSH coordinates. Holds no secret: private keys come from `auth`."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    host_key: Optional[str] = None  # pinned "ssh-ed25519 AAAA..."; else known_hosts
    key_file: Optional[str] = None  # a private key file on this machine
    known_hosts: Optional[str] = None  # default ~/.ssh/known_hosts
    max_channels: int = 8  # concurrent commands on the one connection

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ValueError(f"host {self.name}: port {self.port} is not between 1 and 65535")
        if self.max_channels < 1:
            raise ValueError(f"host {self.name}: max_channels must be at least 1")

    @property
    def pool_key(self) -> tuple:
        return (self.address, self.port, self.user)

    @classmethod
    def from_dict(cls, data: dict) -> "SshTarget":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if data.get(k) is not None}
        for name in ("port", "max_channels"):  # numbers cross Pulumi's gRPC as floats
            if name in fields:
                fields[name] = int(fields[name])
        return cls(**fields)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k) is not None}
