"""Docker Compose files, in the stages a file goes through (see docs/compose.md):

- `read` (+ `variables`): YAML as docker compose reads it, `${VAR}` interpolation, `.env` and
  `env_file`, one `Service` per service (`model`), every problem of the file in one report;
- `proxmox` (+ `names`, `addresses`, `plan_proxmox`, and one module per rule that grew: `proxmox_keys`,
  `proxmox_network` for network_mode, `proxmox_storage`/`proxmox_appdir` for volumes, `proxmox_files` for
  secrets/configs, `users` for `user:` by name): services -> one ProxmoxCT spec each;
- `truenas`: the file as a TrueNAS custom app.
"""

from .model import ComposeFile, Dependency, DeviceSpec, Mount, PortSpec, Service, start_order
from .read import SERVICE_KEYS, load_compose, load_compose_text, read_compose_yaml
from .variables import SecretText, Value

__all__ = [
    "ComposeFile", "Service", "Mount", "PortSpec", "DeviceSpec", "Dependency", "SecretText", "Value",
    "SERVICE_KEYS", "load_compose", "load_compose_text", "read_compose_yaml", "start_order",
]
