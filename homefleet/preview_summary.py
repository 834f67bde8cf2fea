"""`pulumi preview --json` -> a short Markdown summary for the top of a pull-request comment.

    pulumi preview --json --refresh --show-sames -s dev > preview.json
    python -m homefleet.preview_summary < preview.json > summary.md

Pure: JSON in, Markdown out; no Pulumi, no SSH. One line per app, grouped by host, with
the data-affecting ones (deletions, CTs recreated or replaced) first, most dangerous
first. The Python dynamic providers send no detailed diff, so field changes are computed
here from the old and new inputs; values Pulumi prints as `[secret]` stay `[secret]`.

How the providers act (providers/proxmox_ct.py, oci_template.py) decides the wording:
a new image is an in-place *update* of the ProxmoxCT that recreates the CT and carries
its data volumes over through a holder CT, while the OciTemplate of the new image is a
create (new tag) or a replace (the tag moved to a new digest). Deleting a CT parks its
data volumes on a holder CT unless `deleteData` is set.

Safe upgrades (issue 15, docs/proxmox.md): a recreate in place (new image, `unprivileged`,
rootfs storage) backs the CT up to the host's `backupStorage` first, then recreates it and
waits for the health gate (`healthTimeout`), rolling back unless `rollback: false`; a delete
with `deleteData` backs it up before it destroys the data volumes. Bind mounts are the user's
and in no backup: the line names them. The upgrade keys (backupStorage, keepBackups,
rollback, healthTimeout) change nothing on the host: a state without them means their
defaults, and a change of only them says so.

Danger order (worst first): data destroyed (even with the backup taken first, the data leaves
the host's live storage and comes back only by a manual restore, and keepBackups prunes that
backup in time) > a root disk destroyed with no backup (a delete, a move) > a delete that parks
the data > a replace whose new CT starts with a fresh root disk (no backup: the engine's
delete-then-create never goes through the upgrade) > a recreate in place, which backs up first
and rolls back by itself: it is the least dangerous of the data-affecting changes, still listed
among them (the new version may migrate the data, and `rollback: false` leaves it so).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's "known after apply" sentinel
SECRET = "[secret]"
MISSING = object()

# Keys that are outputs only, or plumbing: never reported as a changed field.
IGNORED = {"__provider", "observed", "image_env", "raw_mounts", "hwaddrs", "ip", "status", "urls", "kept_on_holder",
           "volid", "digest", "size", "latest_digest", "path",
           "state", "published", "truenas_version", "compose_digest", "healthy", "last_backup"}
# ProxmoxCT inputs whose change recreates the CT (providers/ct_update.py RECREATE_KEYS, as inputs;
# a larger disk is `pct resize` in place, providers/ct_update.py resizes_of).
RECREATE_INPUTS = ("template", "template_kind", "rootfs_storage", "unprivileged")
RESTART_INPUTS = ("env", "secret_env")
# Provider input names -> the names users write in the stack file.
FIELD_NAMES = {"rootfs_size": "disk", "rootfs_storage": "storage", "delete_data": "deleteData",
               "nets": "networks", "ssh_public_keys": "sshPublicKeys", "secret_env": "secrets",
               "read_only": "readOnly", "backup_storage": "backupStorage", "keep_backups": "keepBackups",
               "health_timeout": "healthTimeout", "health_settle": "healthSettle"}
UNITS = {"memory": "MiB", "swap": "MiB", "rootfs_size": "GiB", "health_timeout": "s", "health_settle": "s"}
# The safe-upgrade inputs and their defaults (providers/upgrade_inputs.py DEFAULTS; the model never
# imports providers, tests/model/test_upgrade_keys.py checks the two agree). Missing means default.
UPGRADE_DEFAULTS = {"backup_storage": "local", "keep_backups": 3, "rollback": True, "health_timeout": 300,
                    "health_settle": 5}
DRIFT_KEYS = ("hostname", "cores", "memory", "swap")
SKIPPED_TYPES = ("pulumi:pulumi:Stack",)
CHANGE_OPS = {"create": "create", "update": "update", "delete": "delete", "replace": "replace",
              "create-replacement": "replace", "delete-replaced": "replace", "import": "import"}
MAX_LINES = 60
MAX_VALUE = 80

# Danger ranks; >= RECREATED is data-affecting and listed first.
DATA_DESTROYED = 5     # data volumes destroyed (deleteData: true)
ROOT_DESTROYED = 4     # a CT without data volumes deleted, or an app moved off its data
DELETED_KEPT = 3       # deleted; data volumes parked on a holder CT
ROOT_FRESH = 2         # recreated/replaced without data volumes: its root disk starts fresh
RECREATED = 1          # recreated/replaced, data volumes carried over
SAFE = 0


@dataclass
class Resource:
    urn: str
    op: str
    kind: str
    old: dict = field(default_factory=dict)
    new: dict = field(default_factory=dict)
    replace_reasons: list = field(default_factory=list)
    diff_reasons: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def old_inputs(self) -> dict:
        return self.old.get("inputs") or {}

    @property
    def new_inputs(self) -> dict:
        return self.new.get("inputs") or {}

    @property
    def inputs(self) -> dict:
        return self.new_inputs or self.old_inputs

    @property
    def old_outputs(self) -> dict:
        return self.old.get("outputs") or {}

    @property
    def host(self) -> str:
        host = self.inputs.get("host")
        return str(host.get("name")) if isinstance(host, dict) and host.get("name") else "(no host)"

    @property
    def app(self) -> str:
        app = self.inputs.get("app") or self.inputs.get("name")
        return str(app) if isinstance(app, str) and app != UNKNOWN else self.name


@dataclass
class Line:
    host: str
    app: str
    verb: str
    text: str
    danger: int = SAFE

    def render(self, with_host: bool) -> str:
        mark = "🔴 " if self.danger >= DELETED_KEPT else "🟠 " if self.danger >= RECREATED else ""
        who = f"{self.host} / {self.app}" if with_host else self.app
        sep = " " if self.text.startswith(("(", "`")) else ": "
        return f"- {mark}**{who}** — **{self.verb}**" + (f"{sep}{self.text}" if self.text else "")


# ---------------------------------------------------------------- steps

def _urn_type(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent types$>type::<name>` -> type."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def resources(preview: dict) -> dict:
    """{urn: Resource} for every step of a custom resource, replacement steps merged."""
    found: dict = {}
    for step in preview.get("steps") or []:
        urn = step.get("urn", "")
        old, new = step.get("oldState") or {}, step.get("newState") or {}
        rtype = str(old.get("type") or new.get("type") or _urn_type(urn))
        if rtype in SKIPPED_TYPES or rtype.startswith("pulumi:providers:"):
            continue
        op = CHANGE_OPS.get(step.get("op", ""), step.get("op", ""))
        if op == "refresh":
            continue  # `--refresh` steps repeat the state; the change steps after them carry it
        res = found.get(urn)
        if res is None:
            res = found[urn] = Resource(urn, op, rtype.rsplit(":", 1)[-1])
        elif op in CHANGE_OPS.values() and (res.op not in CHANGE_OPS.values() or op == "replace"):
            res.op = op
        if old and not res.old:
            res.old = old
        if new and not res.new:
            res.new = new
        for reason in step.get("replaceReasons") or []:
            if reason not in res.replace_reasons:
                res.replace_reasons.append(reason)
        for reason in step.get("diffReasons") or []:
            if reason not in res.diff_reasons:
                res.diff_reasons.append(reason)
    return found


# ---------------------------------------------------------------- values and fields

def _code(text: str) -> str:
    text = text.replace("\n", "⏎")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _secretish(path: str) -> bool:
    return path.split(".", 1)[0].split("[", 1)[0] == "secret_env"


def fmt(value: Any, path: str = "") -> str:
    if value is MISSING or value is None:
        return "(unset)"
    if value == UNKNOWN:
        return "(known after apply)"
    if value == SECRET or _secretish(path):
        return SECRET
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(", ", ": "))
    if len(text) > MAX_VALUE:
        text = text[:MAX_VALUE - 1] + "…"
    return _code(text)


def _display_path(path: str) -> str:
    head, sep, rest = path.partition(".")
    base, bracket, index = head.partition("[")
    return FIELD_NAMES.get(base, base) + bracket + index + sep + rest


def _walk(path: str, old: Any, new: Any, out: list) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(f"{path}.{key}", old.get(key, MISSING), new.get(key, MISSING), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new) \
            and all(isinstance(item, dict) for item in old + new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(f"{path}[{index}]", a, b, out)
    else:
        out.append((path, old, new))


def _input(inputs: dict, key: str) -> Any:
    value = inputs.get(key, MISSING)
    if key in UPGRADE_DEFAULTS and value in (MISSING, None):
        return UPGRADE_DEFAULTS[key]  # a state from before the key existed means its default
    return value


def upgrade_settings(inputs: dict) -> dict:
    return {key: _input(inputs, key) for key in UPGRADE_DEFAULTS}


def field_changes(old: dict, new: dict, skip: tuple = ()) -> list:
    """[(path, old, new)] between two input dicts; nested dicts and same-length lists of dicts
    are compared item by item (`env.TZ`, `volumes[0].size`)."""
    out: list = []
    for key in sorted(set(old) | set(new)):
        if key in IGNORED or key in skip:
            continue
        _walk(key, _input(old, key), _input(new, key), out)
    return out


def describe_fields(changes: list, backup_storage: Optional[str] = None) -> str:
    """`backup_storage`: where a Proxmox CT's delete with deleteData backs it up first (None: no backup)."""
    parts = []
    for path, old, new in changes:
        unit = UNITS.get(path, "")
        if _secretish(path):
            parts.append(f"{_display_path(path)}: {SECRET} changed")
            continue
        text = f"{_display_path(path)}: {fmt(old, path)} -> {fmt(new, path)}" + (f" {unit}" if unit else "")
        if path == "delete_data" and new is True:
            text += (f" (a later delete backs the CT up to {_code(backup_storage)} first, then destroys its data volumes)"
                     if backup_storage else " (a later delete destroys its data volumes)")
        parts.append(text)
    return "; ".join(parts)


# ---------------------------------------------------------------- images (OciTemplate)

def _short_digest(digest: Any) -> str:
    text = str(digest or "?")
    algo, _, hexpart = text.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else text[:19]


def _dependency(state: dict, key: str) -> Optional[str]:
    deps = (state.get("propertyDependencies") or {}).get(key) or []
    return deps[0] if deps else None


def _volid_label(volid: Any) -> str:
    if not isinstance(volid, str) or volid == UNKNOWN:
        return "(known after apply)"
    name = volid.split("/", 1)[-1]
    return name[:-4] if name.endswith(".tar") else name


def _template_image(template: Optional[Resource], volid: Any) -> str:
    if template is not None:
        image = template.inputs.get("image")
        if isinstance(image, str) and image != UNKNOWN:
            return image
    return _volid_label(volid)


def image_change(ct: Resource, index: dict) -> Optional[str]:
    """How a CT's image changes, or None: `a` -> `b`, or a new digest of the same tag."""
    old_volid, new_volid = ct.old_inputs.get("template"), ct.new_inputs.get("template")
    if old_volid == new_volid:
        return None
    if ct.inputs.get("template_kind", "oci") != "oci":
        return f"template: {fmt(old_volid)} -> {fmt(new_volid)}"
    old_urn, new_urn = _dependency(ct.old, "template"), _dependency(ct.new, "template")
    old_tmpl, new_tmpl = index.get(old_urn), index.get(new_urn)
    if new_volid == UNKNOWN and old_urn == new_urn and new_tmpl is not None and new_tmpl.op == "update":
        # The preview marks every output of an updated resource unknown, but an archive updated
        # in place (a new pull_ref) keeps its volid, so the CT keeps its image.
        return None
    if old_urn and old_urn == new_urn and new_tmpl is not None and new_tmpl.op == "replace":
        image = _template_image(new_tmpl, old_volid)
        if "digest" in new_tmpl.replace_reasons:
            outs = new_tmpl.old_outputs
            return (f"new digest of {_code(image)} "
                    f"({_short_digest(outs.get('digest'))} -> {_short_digest(outs.get('latest_digest'))})")
        return f"{_code(image)} pulled again ({', '.join(new_tmpl.replace_reasons) or 'replaced'})"
    old_image, new_image = _template_image(old_tmpl, old_volid), _template_image(new_tmpl, new_volid)
    if old_image == new_image:
        return f"{_code(old_image)} pulled again"
    return f"{_code(old_image)} -> {_code(new_image)}"


def template_note(res: Resource) -> tuple:
    """(action, text): ("pull", image) and ("remove", image) are listed together per host."""
    image = _code(str(res.inputs.get("image", res.name)))
    if res.op == "create":
        return "pull", image
    if res.op == "delete":
        return "remove", image
    return "", _template_change(res, image)


def _template_change(res: Resource, image: str) -> str:
    if res.op == "replace":
        if "digest" in res.replace_reasons:
            outs = res.old_outputs
            return (f"pull the new digest of {image} "
                    f"({_short_digest(outs.get('digest'))} -> {_short_digest(outs.get('latest_digest'))})")
        changes = field_changes(res.old_inputs, res.new_inputs)
        return f"pull {image} again ({describe_fields(changes) or ', '.join(res.replace_reasons)})"
    changes = field_changes(res.old_inputs, res.new_inputs)
    return f"{image}: {describe_fields(changes) or res.op}"


# ---------------------------------------------------------------- apps (ProxmoxCT and others)

def _vmid(res: Resource) -> str:
    vmid = res.old_outputs.get("vmid") or res.old_inputs.get("vmid")
    if vmid is None and res.old.get("id"):
        vmid = str(res.old["id"]).rsplit("/", 1)[-1]
    return f"CT {fmt(vmid)}" if vmid is not None else "the CT"


def _volumes(inputs: dict) -> list:
    return [str(v.get("path")) for v in inputs.get("volumes") or [] if isinstance(v, dict)]


def _volume_moves(old: dict, new: dict) -> list:
    """'`/a` -> `/b`' where the volume slot (mpN, volumes first, in order: providers/hosts/pct.py
    mount_slots) would get another container path: the provider recreates the CT then, matching
    volumes by path (providers/ct_data.py volume_path_changes)."""
    before, after = _volumes(old), _volumes(new)
    return [f"{_code(a)} -> {_code(b)}" for a, b in zip(before, after) if a != b]


def _paths(paths: list) -> str:
    return ", ".join(_code(p) for p in paths)


def _bind_mounts(inputs: dict) -> str:
    """'bind mounts are not in the backup: `/tank/media` (at `/media`)', or ''."""
    mounts = [m for m in inputs.get("mounts") or [] if isinstance(m, dict) and m.get("source")]
    if not mounts:
        return ""
    return "bind mounts are not in the backup: " + ", ".join(
        f"{_code(str(m['source']))} (at {_code(str(m.get('path', '?')))})" for m in mounts)


def _upgrade_plan(inputs: dict, ct: str) -> str:
    """'backup to `local`, then recreate CT 501, health gate 300 s' (+ ', rollback off')."""
    s = upgrade_settings(inputs)
    gate = (f", health gate {fmt(s['health_timeout'])} s" if inputs.get("running", True) is not False
            else ", no health gate (it is not running)")
    return (f"backup to {_code(str(s['backup_storage']))}, then recreate {ct}{gate}"
            + ("" if s["rollback"] is not False else ", rollback off"))


def _backed_up(inputs: dict) -> str:
    return f"backed up to {_code(str(upgrade_settings(inputs)['backup_storage']))}, then "


def _drift(res: Resource) -> str:
    observed = res.old_outputs.get("observed") or {}
    parts = []
    for key in DRIFT_KEYS:
        want, have = res.new_inputs.get(key), observed.get(key)
        if want is None or have is None:
            continue
        if (str(int(want)) if isinstance(want, (int, float)) else str(want)) != str(have):
            unit = f" {UNITS[key]}" if key in UNITS else ""
            shown = str(have) if str(have).isdigit() else fmt(have)
            parts.append(f"{key}: {shown} on the host -> {fmt(want)}{unit}")
    return "; ".join(parts)


def _ct_replace(res: Resource, host: str, app: str, volumes: list, delete_data: bool, ct: str) -> Line:
    """A real replacement (engine: delete, then create): a new vmid, or another host."""
    old, new = res.old_inputs, res.new_inputs
    reasons = res.replace_reasons or ["replaced"]
    old_host = (old.get("host") or {}).get("name", "?")
    moved = ({k: old[k] for k in reasons if k in old and k != "host"},
             {k: new[k] for k in reasons if k in new and k != "host"})
    if "host" in reasons:  # same_host(): name, address, port, user
        keys = ("name",) if old_host != host else ("address", "port", "user")
        moved[0]["host"] = {k: (old.get("host") or {}).get(k) for k in keys}
        moved[1]["host"] = {k: (new.get("host") or {}).get(k) for k in keys}
    why = describe_fields(field_changes(*moved)) or ", ".join(reasons)
    if "host" in reasons:
        label = f"{old_host} -> {host}" if old_host != host else host
        if volumes and delete_data:
            return Line(label, app, "move", f"({why}): {ct} {_backed_up(old)}deleted with its data on {old_host}; "
                        f"created again on {host} with empty volumes", DATA_DESTROYED)
        kept = (f"data volumes ({_paths(volumes)}) stay on {old_host} on a holder CT; {host} starts with empty volumes"
                if volumes else "nothing on its root disk moves")
        return Line(label, app, "move", f"({why}): {ct} deleted on {old_host} and created on {host}; {kept}",
                    ROOT_DESTROYED)
    if volumes and delete_data:
        return Line(host, app, "replace", f"({why}): {ct} {_backed_up(old)}deleted with its data, a new CT created",
                    DATA_DESTROYED)
    if volumes:
        return Line(host, app, "replace", f"({why}): {ct} deleted and a new CT created; "
                    f"data volumes carried over through a holder CT ({_paths(volumes)})", RECREATED)
    return Line(host, app, "replace", f"({why}): {ct} deleted and a new CT created; "
                "no data volumes, its root disk starts fresh", ROOT_FRESH)


def ct_line(res: Resource, index: dict) -> Optional[Line]:
    """The app's line, or None when the engine lists the CT but `up` will leave it alone."""
    old, new = res.old_inputs, res.new_inputs
    host, app = res.host, res.app
    volumes = _volumes(old)
    delete_data = bool(res.old_outputs.get("delete_data", old.get("delete_data")))
    ct = _vmid(res)

    if res.op == "create":
        image = _template_image(index.get(_dependency(res.new, "template")), new.get("template"))
        extra = f", data volumes {_paths(_volumes(new))}" if _volumes(new) else ""
        return Line(host, app, "create", f"from {_code(image)}{extra}")

    if res.op == "delete":
        if volumes and delete_data:
            return Line(host, app, "delete", f"{ct} {_backed_up(old)}deleted with its data "
                        f"(deleteData: true; volumes {_paths(volumes)})", DATA_DESTROYED)
        if volumes:
            return Line(host, app, "delete", f"{ct} deleted; data volumes kept on a holder CT ({_paths(volumes)})",
                        DELETED_KEPT)
        return Line(host, app, "delete", f"{ct} deleted with its root disk (it has no data volumes)", ROOT_DESTROYED)

    if res.op == "replace":
        line = _ct_replace(res, host, app, volumes, delete_data, ct)
        also = describe_fields(field_changes(old, new, skip=("template", "host", *res.replace_reasons)))
        line.text += f"; also {also}" if also else ""
        return line

    # update: in place, or a recreation in place (new image, rootfs, unprivileged)
    changes = field_changes(old, new, skip=("template",))
    changed_keys = {path.split(".", 1)[0].split("[", 1)[0] for path, _, _ in changes}
    image = image_change(res, index)
    moved = _volume_moves(old, new)
    recreate = image is not None or bool(changed_keys & set(RECREATE_INPUTS)) or bool(moved)
    storage = upgrade_settings(new or old)["backup_storage"]
    if recreate:
        # providers/proxmox_ct.py _recreate: backup, recreate at the same vmid, health gate, rollback
        kept = [p for p in volumes if p in _volumes(new or old)]
        left = [p for p in volumes if p not in kept]
        after = (f"data volumes carried over ({_paths(kept)})" if kept
                 else "no data volumes, its root disk starts fresh (the backup holds the old one)")
        if left:
            after += f"; {_paths(left)} stays on a holder CT (the app no longer names it)"
        if image is not None:
            verb = "image upgrade" if res.inputs.get("template_kind", "oci") == "oci" else "recreate"
            head = image
            also = describe_fields(changes, storage)
        else:
            verb = "recreate"
            why = RECREATE_INPUTS + (("volumes",) if moved else ())
            head = describe_fields([c for c in changes if c[0].split(".", 1)[0].split("[", 1)[0] in why], storage)
            also = describe_fields([c for c in changes if c[0].split(".", 1)[0].split("[", 1)[0] not in why], storage)
            if moved and not changed_keys & set(RECREATE_INPUTS):
                head = f"a data volume changes slot ({', '.join(moved)})"
        parts = [_upgrade_plan(new or old, ct), after, _bind_mounts(new or old)]
        text = f"{head}: " + "; ".join(p for p in parts if p) + (f"; also {also}" if also else "")
        return Line(host, app, verb, text, RECREATED)

    # Fields the engine names (diffReasons) that the masked inputs cannot show: secrets.
    # A reason whose input is visible and unchanged is drift the provider marked (providers/diffdetail.py).
    hidden = [r for r in res.diff_reasons if r not in changed_keys and r not in IGNORED and r != "template"
              and (r not in UPGRADE_DEFAULTS or _input(old, r) != _input(new, r))
              and (_secretish(r) or r not in new or r not in old or old[r] != new[r])]
    changed_keys |= set(hidden)
    named = [f"{_display_path(r)}: {SECRET} changed" if _secretish(r) else f"{_display_path(r)} changed"
             for r in hidden]
    text = "; ".join(filter(None, [describe_fields(changes, storage), *named]))
    if not text and new.get("template") == UNKNOWN:
        return None  # only its image archive updates in place, which keeps its volid: the CT stays as it is
    if not text:
        drift = _drift(res)
        text = (f"the host drifted from the stack; up puts it back ({drift})" if drift else
                "re-applied: the host drifted from the stack, or a [secret] value changed")
    if changed_keys & set(RESTART_INPUTS):
        text += " (restarts the CT)"
    elif changed_keys and changed_keys <= set(UPGRADE_DEFAULTS):
        text += " (nothing changes on the host)"
    return Line(host, app, "update", f"{text}")


def _services(text: Any) -> Optional[dict]:
    try:
        doc = yaml.safe_load(text) if isinstance(text, str) and text != UNKNOWN else None
    except yaml.YAMLError:
        return None
    services = doc.get("services") if isinstance(doc, dict) else None
    return services if isinstance(services, dict) else None


def compose_change(old: Any, new: Any) -> str:
    """`compose: services db changed, cache added` rather than two walls of YAML."""
    before, after = _services(old), _services(new)
    if before is None or after is None:
        return "compose: the file changed"
    parts = []
    for label, names in (("changed", [n for n in before if n in after and before[n] != after[n]]),
                         ("added", [n for n in after if n not in before]),
                         ("removed", [n for n in before if n not in after])):
        if names:
            parts.append(f"{', '.join(_code(str(n)) for n in sorted(names))} {label}")
    return "compose: " + ("services " + "; ".join(parts) if parts else "the file changed outside its services")


def generic_line(res: Resource) -> Line:
    """A TrueNAS app, or a resource this module has no special knowledge of."""
    host, app = res.host, res.app
    what = "the TrueNAS app" if res.kind == "TrueNASApp" else res.kind
    delete_data = bool(res.old_outputs.get("delete_data", res.old_inputs.get("delete_data")))
    if res.op in ("delete", "replace"):
        fate = (f"{what} deleted with its data (deleteData: true)" if delete_data else
                f"{what} deleted; its ix volumes and host paths stay" if res.kind == "TrueNASApp" else
                f"{what} deleted")
        if res.op == "delete":
            return Line(host, app, "delete", fate, DATA_DESTROYED if delete_data else DELETED_KEPT)
        why = ", ".join(res.replace_reasons) or "replaced"
        return Line(host, app, "replace", f"({why}): {fate}, then created again",
                    DATA_DESTROYED if delete_data else DELETED_KEPT)
    if res.op == "create":
        return Line(host, app, "create", "" if res.kind == "TrueNASApp" else res.kind)
    changes = field_changes(res.old_inputs, res.new_inputs)
    parts = [compose_change(old, new) if path == "compose" else describe_fields([(path, old, new)])
             for path, old, new in changes]
    return Line(host, app, res.op, "; ".join(parts) or "re-applied: the app drifted from the stack")


# ---------------------------------------------------------------- the summary

def _stack_of(preview: dict) -> Optional[str]:
    for step in preview.get("steps") or []:
        parts = str(step.get("urn", "")).split("::")
        if parts and parts[0].startswith("urn:pulumi:"):
            return parts[0][len("urn:pulumi:"):]
    return None


def _diagnostics(preview: dict, severity: str) -> list:
    lines = []
    for diag in preview.get("diagnostics") or []:
        if diag.get("severity") != severity:
            continue
        message = str(diag.get("message", "")).strip()
        if message.startswith("error: "):
            message = message[len("error: "):]
        if message and message not in lines:
            lines.append(message)
    generic = [m for m in lines if m.startswith("an unhandled error occurred: program exited")]
    return [m for m in lines if m not in generic] or generic


def plan_lines(preview: dict) -> tuple:
    """(app lines, {host: [image notes]}) for the changes in a preview."""
    index = resources(preview)
    lines, images = [], {}
    for res in index.values():
        if res.op not in CHANGE_OPS.values():
            continue
        if res.kind == "OciTemplate":
            images.setdefault(res.host, []).append(template_note(res))
        elif res.kind == "ProxmoxCT":
            line = ct_line(res, index)
            if line is not None:
                lines.append(line)
        else:
            lines.append(generic_line(res))
    lines.sort(key=lambda line: (-line.danger, line.host, line.app))
    return lines, images


def _image_notes(notes: list) -> str:
    parts = []
    for action in ("pull", "remove"):
        items = sorted(text for act, text in notes if act == action)
        if items:
            parts.append(f"{action} {', '.join(items)}")
    return "; ".join(parts + sorted(text for act, text in notes if act == ""))


def _counts(lines: list) -> str:
    counts: dict = {}
    for line in lines:
        counts[line.verb] = counts.get(line.verb, 0) + 1
    return ", ".join(f"{n} {verb}" for verb, n in counts.items())


def summarize(preview: dict, stack: Optional[str] = None) -> str:
    stack = stack or _stack_of(preview) or "?"
    out = [f"### homefleet preview: stack {_code(stack)}", ""]
    errors = _diagnostics(preview, "error")
    if errors:
        out += ["**❌ The preview failed.** Nothing will change until this is fixed:", "", "```"]
        out += [error.replace("```", "'''") for error in errors] + ["```", ""]
        if not preview.get("steps"):
            return "\n".join(out)
    lines, images = plan_lines(preview)
    if errors and not lines and not images:
        pass  # "No changes" would contradict the failure: the plan is incomplete
    elif not lines and not images:
        out.append("No changes: the hosts already match the stack.")
    else:
        app_count = len(lines)
        verb = "app changes" if app_count == 1 else "apps change"
        if errors:
            out.append("Planned before the failure (incomplete; nothing of it is applied):")
        out.append(f"{app_count} {verb}" + (f": {_counts(lines)}." if lines else " (images only)."))
        shown = 0
        risky = [line for line in lines if line.danger >= RECREATED]
        if risky:
            out += ["", "**⚠️ Data-affecting — read these first**"]
            for line in risky:
                if shown < MAX_LINES:
                    out.append(line.render(with_host=True))
                shown += 1
        rest = [line for line in lines if line.danger < RECREATED]
        for host in sorted({line.host for line in rest} | set(images)):
            out += ["", f"**{host}**"]
            for line in (line for line in rest if line.host == host):
                if shown < MAX_LINES:
                    out.append(line.render(with_host=False))
                shown += 1
            if host in images:
                out.append("- images: " + _image_notes(images[host]))
        if shown > MAX_LINES:
            out += ["", f"…and {shown - MAX_LINES} more changes: see the full preview below."]
    warnings = _diagnostics(preview, "warning")
    if warnings:
        out += ["", "**Warnings**"] + [f"- {w.splitlines()[0]}" for w in warnings]
    return "\n".join(out) + "\n"


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m homefleet.preview_summary",
        description="Turn `pulumi preview --json` (on stdin or in FILE) into a Markdown summary.")
    parser.add_argument("file", nargs="?", help="the JSON file (default: stdin)")
    parser.add_argument("--stack", help="the stack name to show (default: read from the preview)")
    args = parser.parse_args(argv)
    source = args.file or "stdin"
    try:
        text = Path(args.file).read_text(encoding="utf-8") if args.file else sys.stdin.read()
    except OSError as exc:
        print(f"preview_summary: cannot read {source}: {exc.strerror}", file=sys.stderr)
        return 2
    if not text.strip():
        print(f"preview_summary: {source} is empty; pipe `pulumi preview --json` into it", file=sys.stderr)
        return 2
    try:
        preview = json.loads(text)
    except ValueError as exc:
        print(f"preview_summary: {source} is not JSON from `pulumi preview --json` ({exc})", file=sys.stderr)
        return 2
    if not isinstance(preview, dict) or not ({"steps", "diagnostics", "changeSummary"} & set(preview)):
        print(f"preview_summary: {source} is JSON but not the output of `pulumi preview --json` "
              "(no steps, diagnostics or changeSummary)", file=sys.stderr)
        return 2
    sys.stdout.write(summarize(preview, args.stack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
