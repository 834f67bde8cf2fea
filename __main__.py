"""homefleet: read the stack, ask the model for a plan, declare one resource per planned object."""

import sys

import pulumi

from homefleet.config import PROJECT, load
from homefleet.errors import ConfigError
from homefleet.plan import make_plan
from providers.oci_template import OciTemplate
from providers.proxmox_ct import ProxmoxCT

config = pulumi.Config(PROJECT)
stack_name = pulumi.get_stack()
try:
    stack, catalog = load(stack_name, {"hosts": config.get_object("hosts"), "apps": config.get_object("apps")})
    plan = make_plan(stack_name, stack, catalog)
except ConfigError as exc:
    pulumi.log.error(f"invalid stack config:\n{exc}")
    sys.exit(1)

secrets = config.get_secret_object("secrets") or pulumi.Output.secret({})

templates = {
    name: OciTemplate(name, tp.props)
    for name, tp in plan.templates.items()
}

apps = {}
for ct in plan.cts:
    props = dict(ct.props)
    if ct.template:
        props["template"] = templates[ct.template].volid
    props["secret_env"] = pulumi.Output.secret(secrets).apply(lambda s, app=ct.app: (s or {}).get(app, {}))
    resource = ProxmoxCT(ct.name, props)
    apps[ct.app] = {
        "host": ct.host,
        "vmid": resource.vmid,
        "ip": resource.ip,
        "urls": resource.urls,
        **({"notes": ct.notes.strip()} if ct.notes else {}),
    }

pulumi.export("apps", apps)
pulumi.export("hosts", plan.hosts)
