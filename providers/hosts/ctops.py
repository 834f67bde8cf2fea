"""Multi-step CT operations, each one SSH exec: create, read, update, delete, recreate.

Builders return argv lists (an `sh -c` script over quoted argv); parsers read the
sectioned output back. Nothing here opens a connection.
"""

from typing import Optional

from . import ctenv, holder_image, pct, script
from .script import q, section

GONE_MARKER = "does not exist"


def _readback(vmid: int) -> list:
    return [
        section("config"), q(pct.config_argv(vmid)) + " || exit $?",
        section("status"), q(pct.status_argv(vmid)) + " || exit $?",
        section("ip"), q(pct.ip_argv(vmid)) + " 2>/dev/null || true",
    ]


def create_script(
    vmid: int,
    template: str,
    options: dict,
    oci: bool,
    has_env: bool,
    start: bool,
    post_options: Optional[dict] = None,
    reclaim: Optional[tuple] = None,
    moves: Optional[list] = None,
    holder: Optional[int] = None,
    cleanup: Optional[str] = None,
    keep_options: Optional[dict] = None,
    checks: Optional[list] = None,
    keep_holder: bool = False,
    ignore_holders: Optional[list] = None,
) -> list:
    """pct create (no --start, no --env), the env write, pct start, read back; roll back on failure.

    `keep_options`: the create options to use instead when the host's pve-container is 6.1.2
    or later, the first with the `keepattrs` mount point flag (older versions refuse the key;
    6.0.19 to 6.1.1 inherited the owner for every volume anyway).

    `checks` (preflight lines) run first: a host that lacks what the CT needs is told so
    before anything changes.

    A failed `pct create` leaves nothing (PVE cleans up its own worker), so rollback only
    covers the steps after it: the CT this script created is destroyed before exiting.
    When it took data volumes from a `holder`, they go back to the holder first, and a CT
    that still holds one is never destroyed (see `_give_back`).

    `reclaim` (stack, app): before creating, look for a CT of this app that an interrupted
    run left (section `existing`), then for data holder candidates (section `holder`, every
    CT whose description has the holder line; the provider checks each config before using
    one, and names those it refused in `ignore_holders`). `moves` are (holder key, new key)
    pairs; the holder is destroyed afterwards only if it is left empty (`keep_holder` False),
    and the script checks that again on the host before destroying it.
    """
    after = []
    for source, volume in moves or []:
        after.append(q(pct.move_volume_argv(holder, source, vmid, volume)) + " </dev/null")
    if holder is not None and not keep_holder:
        after.append(_destroy_if_empty(holder))
    if post_options:
        after.append(q(pct.set_argv(vmid, post_options)) + " </dev/null")
    if oci or has_env:
        after.append(q(ctenv.write_argv(vmid, "merge")))
    if start:
        after.append(q(pct.start_argv(vmid)) + " </dev/null")
        after.append(q(pct.status_argv(vmid)) + " | grep -qx 'status: running'")
    lines = ["set -u"]
    if cleanup:
        lines.append(script.on_exit(["rm", "-f", cleanup]))
    lines += checks or []
    if not oci:
        lines += _fetch_classic(template)
    if reclaim:
        lines += _owned_probe(*reclaim) + _holder_probe(*reclaim, ignore=ignore_holders or [])
    create = q(pct.create_argv(vmid, template, options)) + " </dev/null || exit $?"
    keep = q(pct.create_argv(vmid, template, keep_options)) + " </dev/null || exit $?" if keep_options else None
    lines += _with_keepattrs(create, keep if keep_options != options else None)
    lines.append(section("created"))
    if after and holder is not None:
        lines += ["{ " + " && ".join(after) + "; } || {", "  rc=$?", *_give_back(vmid, holder, moves or []),
                  "  exit $rc", "}"]
    elif after:
        lines += [
            "{ " + " && ".join(after) + "; } || {",
            "  rc=$?",
            "  echo 'homefleet: setting up the new CT failed; removing it' >&2",
            "  " + q(["pct", "destroy", str(vmid), "--force", "1"]) + " </dev/null >&2 || true",
            "  exit $rc",
            "}",
        ]
    return script.sh(lines + _readback(vmid))


def _with_keepattrs(plain: str, keep: Optional[str]) -> list:
    """`keep` (the same command with `keepattrs=1` on its volumes) where the host's pve-container
    is 6.1.2 or later, `plain` elsewhere (older versions refuse the key)."""
    if not keep:
        return [plain]
    return _container_at_least((6, 1, 2), "hf_keepattrs") + [
        'if [ "$hf_keepattrs" = 1 ]; then', "  " + keep, "else", "  " + plain, "fi"]


def _container_at_least(version: tuple, var: str) -> list:
    """Shell lines setting `var` to 1 when `pveversion -v` shows pve-container >= `version`
    (three numbers), else 0; an unreadable version counts as older."""
    major, minor, patch = (str(p) for p in version)
    return [
        "hf_ge() { [ $# -ge 3 ] && { [ \"$1\" -gt " + major + " ] || { [ \"$1\" -eq " + major
        + " ] && { [ \"$2\" -gt " + minor + " ] || { [ \"$2\" -eq " + minor + " ] && [ \"$3\" -ge "
        + patch + " ]; }; }; }; }; }",
        var + "=0",
        "hf_ge $(" + q(["pveversion", "-v"]) + " 2>/dev/null | "
        + q(["sed", "-n", r"s/^pve-container: \([0-9]*\)\.\([0-9]*\)\.\([0-9]*\).*/\1 \2 \3/p"])
        + ") && " + var + "=1",
    ]


def _fetch_classic(volid: str) -> list:
    """A classic template missing from the storage is fetched with `pveam download` first."""
    storage, _, rest = volid.partition(":")
    name = rest.rsplit("/", 1)[-1]
    failed = q([f"homefleet: `pveam download {storage} {name}` did not store the template "
                "(PVE's download task exits 0 when it fails): "])
    return [
        f"tpl=$({q(['pvesm', 'path', volid])}) || exit $?",
        'if [ ! -e "$tpl" ]; then',
        f"  dl=$({q(['pveam', 'download', storage, name])} 2>&1 </dev/null) || {{ printf '%s\\n' \"$dl\" >&2; exit 1; }}",
        f'  [ -e "$tpl" ] || {{ printf \'%s%s\\n\' {failed} "$(printf \'%s\\n\' "$dl" | tail -n 1)" >&2; exit 1; }}',
        "fi",
    ]


def _give_back(vmid: int, holder: int, moves: list) -> list:
    """After a failed reclaim: volumes back to the holder, then the new CT destroyed, if the
    holder still exists and every volume went back. Otherwise the CT keeps the data, and the
    next run, which finds it by its marker, finishes it."""
    lines = [
        "  if " + q(pct.config_argv(holder)) + " >/dev/null 2>&1; then",
        "    back=1",
    ]
    for source, volume in moves:
        move = q(pct.move_volume_argv(vmid, volume, holder, source))
        lines.append(f"    if {q(pct.config_argv(vmid))} 2>/dev/null | grep -q {q(['^' + volume + ': '])}; then "
                     f"{move} </dev/null >&2 || back=0; fi")
    keep = f"homefleet: CT {vmid} holds data volumes it took from holder CT {holder}: kept; the next pulumi up finishes it"
    lines += [
        '    if [ "$back" = 1 ]; then',
        "      echo " + q([f"homefleet: setting up CT {vmid} failed; its data volumes are back on holder CT {holder}"]) + " >&2",
        "      " + q(["pct", "destroy", str(vmid), "--force", "1"]) + " </dev/null >&2 || true",
        "    else",
        "      echo " + q([keep]) + " >&2",
        "    fi",
        "  else",
        "    echo " + q([keep]) + " >&2",
        "  fi",
    ]
    return lines


def _owned_probe(stack: str, app: str) -> list:
    """Stop before creating if a CT of this stack and app exists: a run that was killed or lost
    its connection created it without recording it. The provider takes it over."""
    needle = "#" + pct.encode_text(pct.marker_line(stack, app))
    tagged = q(["grep", "-qsE", f"^tags: (.*;)?{pct.OWNER_TAG}(;.*)?$"]) + ' "$f"'
    return [
        f"owned=$(grep -lsxF -e {q([needle])} /etc/pve/lxc/*.conf | "
        f'while read -r f; do {tagged} && echo "$f"; done | head -n 1)',
        'if [ -n "$owned" ]; then',
        "  " + section("existing"),
        '  basename "$owned" .conf',
        "  exit 0",
        "fi",
    ]


def _holder_probe(stack: str, app: str, ignore: list) -> list:
    """Stop before creating if data holder candidates for this app exist: every CT whose
    description has the holder line as a whole line (the provider reads each config and uses
    only a real holder; `ignore` lists those it refused)."""
    needle = "#" + pct.encode_text(pct.holder_line(stack, app))
    skip = "".join(f" | grep -vxF -e {q([f'/etc/pve/lxc/{vmid}.conf'])}" for vmid in ignore)
    return [
        f"holders=$(grep -lsxF -e {q([needle])} /etc/pve/lxc/*.conf{skip} || true)",
        'if [ -n "$holders" ]; then',
        "  " + section("holder"),
        '  for f in $holders; do basename "$f" .conf; done',
        "  exit 0",
        "fi",
    ]


def _destroy_if_empty(holder: int) -> str:
    """Destroy the holder only if it holds no storage volume any more (checked on the host)."""
    held = q(["grep", "-qE", r"^(mp[0-9]+: [^/]|unused[0-9]+: )"])
    return (f"{{ {q(pct.config_argv(holder))} </dev/null | {held} || "
            f"{q(['pct', 'destroy', str(holder), '--purge', '1'])} </dev/null; }}")


def holder_candidates_script(stack: str, app: str) -> list:
    """The config of every CT whose description has this app's holder line (whole line):
    sections `holder:<vmid>`. The provider decides which, if any, is really a holder."""
    needle = "#" + pct.encode_text(pct.holder_line(stack, app))
    return script.sh([
        "set -u",
        f"for f in $(grep -lsxF -e {q([needle])} /etc/pve/lxc/*.conf || true); do",
        '  vmid=$(basename "$f" .conf)',
        '  echo "@@homefleet:section:holder:$vmid@@"',
        '  pct config "$vmid" </dev/null || true',
        "done",
    ])


def parse_holder_candidates(stdout: str) -> dict:
    """{vmid: parsed pct config} from `holder_candidates_script`."""
    found = {}
    for name, text in script.split_sections(stdout).items():
        if name.startswith("holder:") and name[7:].isdigit():
            found[int(name[7:])] = pct.parse_config(text)
    return found


def park_script(vmid: int, holder: int, holder_options: dict, moves: list, running: bool,
                reuse: Optional[int] = None, holder_template: Optional[str] = None, purge: bool = True,
                upload: Optional[str] = None) -> list:
    """Move the CT's storage-backed volumes to a stopped holder CT, then destroy the CT.

    At every step each volume is owned by exactly one CT, so no failure loses data. `moves`
    are (CT key, holder key) pairs. With `reuse`, the holder the provider found and checked
    (this app's, from an earlier park) takes the volumes instead of a new one, so one app never
    has two holders. A new holder is made from homefleet's own tiny archive (`holder_template`;
    the provider uploads it as `upload`, and it replaces the storage's copy only when that is
    missing or different).
    `purge` False keeps the CT's vmid in backup jobs, replication and HA (the recreate path:
    the same vmid comes back). Prints the holder's vmid in the `parked` section.
    """
    lines = ["set -eu"]
    if reuse is not None:
        lines.append(f"holder={reuse}")
    else:
        lines += _upload_holder_archive(holder_template, upload) + [
            q(pct.create_argv(holder, holder_template, holder_options)) + " </dev/null",
            f"holder={holder}",
        ]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    for key, target in moves:
        lines.append(q(["pct", "move-volume", str(vmid), key, "--target-vmid"]) + ' "$holder" '
                     + q(["--target-volume", target]) + " </dev/null")
    destroy = pct.destroy_argv(vmid) if purge else ["pct", "destroy", str(vmid)]
    lines.append(q(destroy) + " </dev/null")
    lines += [section("parked"), 'echo "$holder"']
    return script.sh(lines)


def _upload_holder_archive(volid: str, upload: str) -> list:
    """Put the holder archive (uploaded beside the script as `upload`) into the template storage,
    unless the same bytes are there already; the upload is removed however the script ends."""
    return [
        script.on_exit(["rm", "-f", upload]),
        f"tpl=$({q(['pvesm', 'path', volid])})",
        'if [ "$(' + q(["sha256sum"]) + ' < "$tpl" 2>/dev/null | ' + q(["cut", "-d", " ", "-f", "1"]) + ')" != '
        + q([holder_image.sha256()]) + " ]; then",
        f'  {q(["mv", "-f", upload])} "$tpl"',
        "fi",
    ]


def read_script(vmid: int) -> list:
    return script.sh(["set -u", *_readback(vmid)])


def update_script(
    vmid: int,
    options: dict,
    delete: list,
    env: Optional[dict],
    was_running: bool,
    want_running: bool,
    resizes: Optional[list] = None,
    keep_options: Optional[dict] = None,
    restart: bool = False,
    checks: Optional[list] = None,
) -> list:
    """pct set; then a restart only if PVE left changes pending, the env changed or `restart`
    (a config-only change such as `hostname`, which a running CT only takes at its start).

    `env` (the full merged list) is written while the CT is stopped; None leaves it alone.
    `keep_options`: the options to set instead on pve-container 6.1.2+ (see create_script).
    `checks`: preflight lines for what the changed options need, run before any change.
    """
    lines = ["set -eu", *(checks or [])]
    if options or delete:
        set_line = q(pct.set_argv(vmid, options, delete)) + " </dev/null"
        keep = q(pct.set_argv(vmid, keep_options, delete)) + " </dev/null" if keep_options else None
        lines += _with_keepattrs(set_line, keep if keep_options != options else None)
    for disk, gib in resizes or []:
        lines += _resize_checked(vmid, disk, gib)
    lines += [
        "restart=0",
        q(pct.pending_argv(vmid)) + " </dev/null | grep -qE '^(new|del) ' && restart=1",
    ]
    if env is not None or restart:
        lines.append("restart=1")
    stop_start = []
    if was_running:
        stop_start.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    if env is not None:
        stop_start.append(q(ctenv.write_argv(vmid, "replace")))
    if want_running:
        stop_start.append(q(pct.start_argv(vmid)) + " </dev/null")
    lines += [
        'if [ "$restart" = 1 ]; then',
        *["  " + step for step in stop_start],
        "  " + section("restarted"),
        "fi",
    ]
    if want_running and not was_running:
        lines.append(q(pct.status_argv(vmid)) + " | grep -qx 'status: running' || " + q(pct.start_argv(vmid)) + " </dev/null")
    if not want_running and was_running:
        lines.append(q(pct.status_argv(vmid)) + " | grep -qx 'status: stopped' || " + q(pct.shutdown_argv(vmid)) + " </dev/null")
    return script.sh(lines + _readback(vmid))


def _resize_checked(vmid: int, disk: str, gib) -> list:
    """`pct resize`, then its result read back: its task exits 0 even when it failed (no
    `$upid_exit` in pve-container src/PVE/CLI/pct.pm), with PVE's error only on stderr."""
    argv = pct.resize_argv(vmid, disk, gib)
    size = pct.stored_size(gib)
    said = q([f"homefleet: `{' '.join(argv)}` did not take effect (PVE's resize task exits 0 when it fails): "])
    return [
        f"rs=$({q(argv)} 2>&1 </dev/null) || {{ printf '%s\\n' \"$rs\" >&2; exit 1; }}",
        f"{q(pct.config_argv(vmid))} </dev/null | {q(['grep', '-qE', f'^{disk}: (.*,)?size={size}(,|$)'])} || "
        f"{{ printf '%s%s\\n' {said} \"$rs\" >&2; exit 1; }}",
    ]


def delete_script(vmid: int, running: bool, purge: bool = True) -> list:
    """Stop and destroy. `purge` False (the recreate path) keeps the vmid in backup jobs,
    replication and HA, which `--purge 1` would drop (pve-container API2/LXC.pm destroy_vm)."""
    lines = ["set -eu"]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    lines.append(q(pct.destroy_argv(vmid) if purge else ["pct", "destroy", str(vmid)]) + " </dev/null")
    return script.sh(lines)


def parse_readback(stdout: str) -> dict:
    sections = script.split_sections(stdout)
    if "existing" in sections and "config" not in sections:
        return {"existing": int(sections["existing"].split()[0]), "holder": None, "created": False}
    if "holder" in sections and "config" not in sections:
        return {"holders": [int(w) for w in sections["holder"].split() if w.isdigit()], "holder": None,
                "created": False}
    return _parse_full(stdout)


def parse_parked(stdout: str) -> Optional[int]:
    """The holder's vmid from a park script's output (None if it printed none)."""
    words = script.split_sections(stdout).get("parked", "").split()
    return int(words[0]) if words and words[0].isdigit() else None


def _parse_full(stdout: str) -> dict:
    """{'config': parsed pct config, 'status': str, 'ip': str|None, 'created', 'restarted'}."""
    sections = script.split_sections(stdout)
    ip_lines = [line.strip() for line in sections.get("ip", "").splitlines() if line.strip()]
    return {
        "config": pct.parse_config(sections.get("config", "")),
        "status": pct.parse_status(sections.get("status", "")),
        "ip": ip_lines[0] if ip_lines else None,
        "created": "created" in sections,
        "holder": int(sections["holder"].split()[0]) if sections.get("holder", "").strip() else None,
        "restarted": "restarted" in sections,
        "image_env": ctenv.parse_previous(sections.get("created", "")),
        "task_output": sections.get("", ""),
    }


# ---------- what a destroy drops, carried over a recreate at the same vmid ----------

def carry_read_script(vmid: int) -> list:
    """What `pct destroy` drops even without `--purge` (pve-container API2/LXC.pm destroy_vm:
    remove_vm_access, remove_vmfw_conf), and whether HA manages the CT (then PVE refuses a
    destroy without purge). Sections: `ha` (the resource line if any), `acl` (user.cfg ACL lines
    for /vms/VMID), `pool` (the pool line naming VMID), `fw` (the firewall file, base64)."""
    fw = f"/etc/pve/firewall/{vmid}.fw"
    return script.sh([
        "set -u",
        section("ha"),
        q(["grep", "-sE", f"^ct: *{vmid} *$", "/etc/pve/ha/resources.cfg"]) + " || true",
        section("acl"),
        q(["grep", "-sE", f"^acl:[01]:/vms/{vmid}:", "/etc/pve/user.cfg"]) + " || true",
        section("repl"),
        q(["grep", "-sE", f"^local: {vmid}-[0-9]+", "/etc/pve/replication.cfg"]) + " || true",
        section("pool"),
        q(["grep", "-sE", f"^pool:[^:]*:[^:]*:([^:]*,)?{vmid}(,[^:]*)?:", "/etc/pve/user.cfg"]) + " || true",
        section("fw"),
        f"if [ -f {q([fw])} ]; then base64 -w0 < {q([fw])}; echo; fi",
    ])


def parse_carry(stdout: str) -> dict:
    """{'ha': bool, 'replicated': bool, 'acls': [(propagate, ugt list, roles)], 'pool': str or None,
    'firewall': bytes or None}."""
    import base64

    sections = script.split_sections(stdout)
    acls = []
    for line in sections.get("acl", "").split("\n"):
        parts = line.strip().split(":")
        if len(parts) >= 5 and parts[0] == "acl":
            acls.append((parts[1], parts[3], parts[4]))
    pools = [line.split(":")[1] for line in sections.get("pool", "").split("\n") if line.startswith("pool:")]
    fw = sections.get("fw", "").strip()
    return {"ha": bool(sections.get("ha", "").strip()), "replicated": bool(sections.get("repl", "").strip()),
            "acls": acls, "pool": pools[0] if pools else None,
            "firewall": base64.b64decode(fw) if fw else None}


def carry_restore_script(vmid: int, acls: list, firewall: bool) -> list:
    """Put the firewall file (on stdin) and the ACL entries back on the new CT at the same vmid."""
    lines = ["set -eu"]
    if firewall:
        fw = f"/etc/pve/firewall/{vmid}.fw"
        lines += ["mkdir -p /etc/pve/firewall", f"cat > {q([fw + '.tmp'])}", q(["mv", "-f", fw + ".tmp", fw])]
    for propagate, ugt, roles in acls:
        argv = ["pveum", "acl", "modify", f"/vms/{vmid}", "--roles", roles, "--propagate", propagate]
        users = [w for w in ugt.split(",") if w and not w.startswith("@") and "!" not in w]
        groups = [w[1:] for w in ugt.split(",") if w.startswith("@")]
        tokens = [w for w in ugt.split(",") if "!" in w]
        for flag, names in (("--users", users), ("--groups", groups), ("--tokens", tokens)):
            if names:
                argv += [flag, ",".join(names)]
        lines.append(q(argv) + " </dev/null")
    return script.sh(lines)


def carry_summary(vmid: int, carry: dict) -> str:
    """What a failed recreate leaves to put back by hand (no secrets in any of it)."""
    parts = []
    if carry.get("firewall") is not None:
        size = len(carry["firewall"])
        parts.append(f"the firewall file /etc/pve/firewall/{vmid}.fw ({size} bytes, as before the upgrade)")
    for propagate, ugt, roles in carry.get("acls") or []:
        parts.append(f"ACL /vms/{vmid} {ugt} {roles} (propagate {propagate})")
    if carry.get("pool"):
        parts.append(f"pool {carry['pool']}")
    return "; ".join(parts)
