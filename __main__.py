"""homefleet: read the stack, ask the model for a plan, declare one resource per planned object."""


import shlex

import pulumi

from homefleet.compose.users import resolve as resolve_user, resolve_dirs
from homefleet.config import PROJECT, load_all, stack_file, unpinned_warnings
from homefleet.errors import ConfigError, located
from homefleet.outputs import known_ct_outputs
from homefleet.plan import make_plan
from homefleet.plan_truenas import plan_truenas, warnings_of
from homefleet.plan_types import template_name
from providers.app_files import AppFiles
from providers.oci_template import OciTemplate
from providers.proxmox_ct import ProxmoxCT
from providers.truenas_app import TrueNASApp
from providers.truenas_files import TrueNASAppFiles

config = pulumi.Config(PROJECT)
stack_name = pulumi.get_stack()


def config_object(key: str):
    """A config object; a value that is not JSON is refused without echoing it: it may be a secret."""
    try:
        return config.get_object(key)
    except pulumi.ConfigTypeError:
        raise ConfigError([located(stack_file(stack_name), f"{PROJECT}:{key}", "is not a mapping of keys",
                                   "Write it as YAML keys under the name (see docs/stacks.md)")]) from None


try:
    stack, catalog = load_all(stack_name, {"hosts": config_object("hosts"), "apps": config_object("apps")},
                              registries=config_object("registries"), secrets=config_object("secrets"))
    secret_names = {app: sorted(v) for app, v in (config_object("secrets") or {}).items() if isinstance(v, dict)}
    plan = make_plan(stack_name, stack, catalog, secret_names=secret_names)
    nas_apps = plan_truenas(stack_name, stack, plan.targets, secret_names=secret_names)
except ConfigError as exc:
    # RunError is shown to the user as its message alone, without a traceback
    raise pulumi.RunError(f"invalid stack config:\n{exc}") from None

secrets = config.get_secret_object("secrets") or pulumi.Output.secret({})

templates = {
    name: OciTemplate(name, tp.props)
    for name, tp in plan.templates.items()
}

# `pulumi up` runs this program twice (its preview, then the update): say each warning once, in the preview
# pass. Acknowledged warnings (`acknowledge:` on the app) are not shown at all.
show_warnings = pulumi.runtime.is_dry_run()
for warning in (plan.warnings + unpinned_warnings(stack_name, stack)) if show_warnings else []:
    pulumi.log.warn(warning)

def app_files_props(ad) -> dict:
    """A folder of a service running as a named user belongs to that user of its image, known once the template
    has read the image's /etc/passwd (homefleet/compose/users.py resolve_dirs)."""
    images = sorted({d["image"] for d in ad.props.get("dirs") or [] if "user" in d})
    if not images:
        return ad.props
    configs = [templates[template_name(ad.host, image)].image_config for image in images]
    dirs = pulumi.Output.all(*configs).apply(
        lambda found, dirs=ad.props["dirs"]: resolve_dirs(dirs, dict(zip(images, found))))
    return {**ad.props, "dirs": dirs}


app_dirs = {ad.name: AppFiles(ad.name, app_files_props(ad)) for ad in plan.app_dirs}  # compose apps' folders

apps = {}
cts = {}
for ct in plan.cts:
    props = dict(ct.props)
    if ct.template:
        props["template"] = templates[ct.template].volid
    if ct.command is not None:  # compose `command:` alone: Docker runs it behind the image's ENTRYPOINT
        props["entrypoint"] = templates[ct.template].image_config.apply(
            lambda config, argv=ct.command: shlex.join(list((config or {}).get("entrypoint") or []) + argv))
    if "name" in (ct.props.get("init_user") or {}):  # compose `user:` by name: the image's /etc/passwd has its uid
        props["init_user"] = templates[ct.template].image_config.apply(
            lambda config, init=ct.props["init_user"]: resolve_user(init, config))
    if ct.secret_env is not None:  # compose: only the variables this service names, rendered from the app's secrets
        props["secret_env"] = pulumi.Output.secret(secrets).apply(
            lambda s, app=ct.app, env=ct.secret_env: {k: t.render((s or {}).get(app, {})) for k, t in env.items()})
    else:
        props["secret_env"] = pulumi.Output.secret(secrets).apply(lambda s, app=ct.app: (s or {}).get(app, {}))
    after = pulumi.ResourceOptions(depends_on=[cts[d] for d in ct.depends_on]  # compose depends_on
                                   + ([app_dirs[ct.app_dir]] if ct.app_dir else []))
    resource = cts[ct.name] = ProxmoxCT(ct.name, props, after)
    shown = {"vmid": resource.vmid, "ip": resource.ip, "urls": resource.urls}
    if pulumi.runtime.is_dry_run():  # a preview cannot know them from the provider (homefleet/outputs.py)
        shown.update(known_ct_outputs(ct.props))
    if ct.service:
        notes = {"notes": ct.notes.strip()} if ct.notes else {}
        entry = apps.setdefault(ct.app, {"host": ct.host, "services": {}, **notes})
        entry["services"][ct.service] = shown
        continue
    apps[ct.app] = {
        "host": ct.host,
        **shown,
        **({"notes": ct.notes.strip()} if ct.notes else {}),
    }

for warning in warnings_of(nas_apps) if show_warnings else []:
    pulumi.log.warn(warning)
for na in nas_apps:
    folder = [TrueNASAppFiles(f"{na.name}-files", na.files)] if na.files else []  # relative binds: <appRoot>/<app>/
    resource = TrueNASApp(na.name, na.props, pulumi.ResourceOptions(protect=na.protect, depends_on=folder))
    apps[na.app] = {"host": na.host, "app": na.app, "state": resource.state, "urls": resource.urls}

pulumi.export("apps", apps)
pulumi.export("hosts", plan.hosts)
