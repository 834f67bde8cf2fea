"""Stack + catalog -> a plan of host-level specs: one template per (host, image), one CT per app.

Pure: no Pulumi resources, no SSH. `__main__.py` turns the plan into resources.
"""

from dataclasses import dataclass, field
from typing import Optional

from .compose.plan_proxmox import plan_compose_apps
from .imageref import parse_image_ref
from .plan_types import CtPlan, TemplatePlan, pull_ref, template_name, upgrade_inputs
from .stack import App, Host, Stack

__all__ = ["CtPlan", "Plan", "TemplatePlan", "ct_spec", "make_plan", "pull_ref", "target_of", "template_name"]

NVIDIA_DEVICES = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"]


@dataclass
class Plan:
    stack: str
    targets: dict
    templates: dict
    cts: list
    hosts: dict
    warnings: list = field(default_factory=list)
    app_dirs: list = field(default_factory=list)  # AppFilesPlans: compose apps' folders on Proxmox hosts


def target_of(name: str, host: Host, ssh_key_file: Optional[str] = None) -> dict:
    target = {"name": name, "address": host.address, "port": host.port, "user": host.user}
    if host.hostKey:
        target["host_key"] = host.hostKey
    if host.keyFile or ssh_key_file:
        target["key_file"] = host.keyFile or ssh_key_file
    return target


def _gpu_devices(gpu, host: Host) -> list:
    if gpu in ("intel", "amd"):
        return [
            {"path": "/dev/dri/card0", "gid": host.gpuGids.video},
            {"path": "/dev/dri/renderD128", "gid": host.gpuGids.render},
        ]
    if gpu == "nvidia":
        return [{"path": path} for path in NVIDIA_DEVICES]
    if isinstance(gpu, list):
        return [{"path": path, "gid": host.gpuGids.render} for path in gpu]
    return []


def _package_defaults(package) -> dict:
    if package is None:
        return {}
    res = package.resources
    return {
        "image": package.image,
        "cores": res.cores if res else None,
        "memory": res.memory if res else None,
        "swap": res.swap if res else None,
        "disk": res.disk if res else None,
        "volumes": [{"path": v.path, "size": v.size} for v in package.volumes],
        "ports": [{"port": p.port, "protocol": p.protocol, "name": p.name, "scheme": p.scheme} for p in package.ports],
        "env": dict(package.env or {}),
        "features": package.features.model_dump() if package.features else None,
        "secrets": [s.name for s in package.secrets],
        "notes": package.notes or "",
        "health": package.health.as_check() if package.health else None,
    }


def ct_spec(stack: str, name: str, app: App, host: Host, package=None) -> dict:
    """The ProxmoxCT inputs for one app (without `template`, which comes from the plan)."""
    base = _package_defaults(package)
    defaults = host.defaults

    def pick(key, fallback):
        value = getattr(app, key)
        if value is not None:
            return value
        if base.get(key) is not None:
            return base[key]
        default = getattr(defaults, key, None)
        return default if default is not None else fallback

    volumes = {v["path"]: v for v in base.get("volumes", [])}
    for vol in app.volumes or []:
        volumes[vol.path] = {"path": vol.path, "size": vol.size, "storage": vol.storage, "backup": vol.backup}
    storage = app.storage or host.storage
    nets = [
        {k: v for k, v in {"bridge": n.bridge or host.bridge, "ip": n.ip, "gw": n.gw, "ip6": n.ip6, "tag": n.tag,
                           "firewall": n.firewall, "hwaddr": n.hwaddr, "mtu": n.mtu}.items() if v is not None}
        for n in (app.networks or [])
    ] or [{"bridge": host.bridge, "ip": "dhcp"}]
    features = app.features.model_dump() if app.features else base.get("features")
    ports = [p.model_dump() for p in app.ports] if app.ports is not None else base.get("ports", [])
    spec = {
        "stack": stack,
        "app": name,
        "template_kind": "classic" if app.template else "oci",
        "vmid": app.vmid,
        "hostname": app.hostname or name,
        "cores": pick("cores", 1),
        "memory": pick("memory", 512),
        "swap": pick("swap", 512),
        "rootfs_storage": storage,
        "rootfs_size": pick("disk", 4),
        "nets": nets,
        "volumes": [
            {"path": v["path"], "size": v["size"], "storage": v.get("storage") or storage,
             **({"backup": v["backup"]} if v.get("backup") is not None else {})}
            for v in volumes.values()
        ],
        "mounts": [{"source": m.source, "path": m.path, "read_only": m.readOnly} for m in app.mounts],
        "devices": _gpu_devices(app.gpu, host) + [d.model_dump(exclude_none=True) for d in app.devices],
        "features": {k: v for k, v in (features or {}).items() if v} or None,
        "unprivileged": app.unprivileged,
        "onboot": pick("onboot", True),
        "startup": app.startup,
        "tags": sorted(set(app.tags) | set(defaults.tags)),
        "description": app.description,
        "env": {**base.get("env", {}), **app.env},
        "entrypoint": app.entrypoint,
        "timezone": pick("timezone", None),
        "nameserver": pick("nameserver", None),
        "searchdomain": app.searchdomain,
        "running": app.running,
        "adopt": app.adopt,
        "delete_data": app.deleteData,
        "ports": ports,
        "health": base.get("health"),
        **upgrade_inputs(app, host),
    }
    return {k: v for k, v in spec.items() if v is not None}


def make_plan(stack_name: str, stack: Stack, catalog: dict, ssh_key_file: Optional[str] = None,
              project_dir: str = ".", secret_names: Optional[dict] = None) -> Plan:
    """`secret_names`: {app: names set under homefleet:secrets} (names only) for compose variables."""
    targets = {name: target_of(name, host, ssh_key_file) for name, host in stack.hosts.items()}
    templates: dict = {}
    cts = []
    compose_cts, warnings, app_dirs = plan_compose_apps(stack_name, stack, catalog, targets, templates,
                                              project_dir=project_dir, secret_names=secret_names)
    for name, app in stack.apps.items():
        host = stack.hosts[app.host]
        package = catalog[app.package] if app.package else None
        if host.kind != "proxmox" or app.compose or (package is not None and package.compose):
            continue  # TrueNAS apps are planned elsewhere; compose apps above
        spec = {"host": targets[app.host], **ct_spec(stack_name, name, app, host, package)}
        image = app.image or (package.image if package else None)
        tmpl_name = None
        if image:
            tmpl_name = template_name(app.host, image)
            if tmpl_name not in templates:
                templates[tmpl_name] = TemplatePlan(tmpl_name, app.host, {
                    "host": targets[app.host],
                    "image": str(parse_image_ref(image).normalized),
                    "pull_ref": pull_ref(image, host),
                    "storage": host.templateStorage,
                })
        else:
            spec["template"] = app.template
            if app.sshPublicKeys:
                spec["ssh_public_keys"] = app.sshPublicKeys
        secret_keys = (_package_defaults(package).get("secrets") if package else []) or []
        cts.append(CtPlan(name, app.host, name, tmpl_name, spec, secret_keys,
                          _package_defaults(package).get("notes", "") if package else ""))
    hosts = {name: {"kind": host.kind, "address": host.address,
                    "apps": sorted(a for a, app in stack.apps.items() if app.host == name)}
             for name, host in stack.hosts.items()}
    return Plan(stack_name, targets, templates, cts + compose_cts, hosts, warnings, app_dirs)
