"""What a plan is made of: templates and CTs (shared by the image-app and the compose-app planners)."""

import re
from dataclasses import dataclass, field
from typing import Optional

from .imageref import parse_image_ref
from .stack import Host


@dataclass
class TemplatePlan:
    name: str
    host: str
    props: dict


@dataclass
class CtPlan:
    name: str
    host: str
    app: str
    template: Optional[str]  # a TemplatePlan name, or None for a classic template
    props: dict
    secret_keys: list = field(default_factory=list)
    notes: str = ""
    depends_on: list = field(default_factory=list)  # names of CtPlans to create first (compose depends_on)
    secret_env: Optional[dict] = None  # compose: KEY -> SecretText rendered from the app's secrets
    service: Optional[str] = None  # compose: the service this CT runs
    command: Optional[list] = None  # compose: argv to run behind the image's ENTRYPOINT (the template's image_config)
    app_dir: Optional[str] = None  # compose: the AppFilesPlan this CT mounts from (created first)


@dataclass
class AppFilesPlan:
    """A compose app's folder on a Proxmox host (`<appRoot>/<app>/`): folders and uploaded files."""

    name: str
    host: str
    app: str
    props: dict


HEALTH_TIMEOUT_DEFAULT = 300  # homefleet/stack.py App.healthTimeout


def app_or_host(app, host: Host, key: str):
    """A key an app may set and its host gives the default for (keepBackups, healthSettle)."""
    own = getattr(app, key) if app is not None else None
    return own if own is not None else getattr(host, key)


def upgrade_inputs(app, host: Host) -> dict:
    """The ProxmoxCT inputs of a safe upgrade (docs/proxmox.md): where the backup goes, how many
    of the app's backups stay, whether an unhealthy upgrade is rolled back. They change nothing
    on the CT itself. `app` is None for a compose service that no stack app names."""
    return {"backup_storage": host.backupStorage, "keep_backups": app_or_host(app, host, "keepBackups"),
            "rollback": app.rollback if app is not None else True,
            "health_timeout": app.healthTimeout if app is not None else HEALTH_TIMEOUT_DEFAULT,
            "health_settle": app_or_host(app, host, "healthSettle")}


def pull_ref(image: str, host: Host) -> str:
    """The reference the host pulls: the image, or the same path on the host's mirror."""
    ref = parse_image_ref(image).normalized
    mirror = host.registryMirror.get(ref.registry)
    if not mirror:
        return str(ref)
    return str(ref).replace(ref.registry, mirror.rstrip("/"), 1)


def template_name(host: str, image: str) -> str:
    slug = re.sub(r"[^a-z0-9.-]+", "-", str(parse_image_ref(image).normalized).lower()).strip("-")
    return f"{host}-{slug}"
