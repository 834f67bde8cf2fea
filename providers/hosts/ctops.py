"""Multi-step CT operations, each one SSH exec: create, read, update, delete, recreate.

Builders return argv lists (an `sh -c` script over quoted argv); parsers read the
sectioned output back. Nothing here opens a connection.
"""

from typing import Optional

from . import ctenv, pct, script
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
    run left (section `existing`), then for a data holder (section `holder`).
    """
    after = []
    for source, volume in moves or []:
        after.append(q(pct.move_volume_argv(holder, source, vmid, volume)) + " </dev/null")
    if holder is not None:
        after.append(q(["pct", "destroy", str(holder), "--purge", "1"]) + " </dev/null")
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
        lines += _owned_probe(*reclaim) + _holder_probe(*reclaim)
    create = q(pct.create_argv(vmid, template, options)) + " </dev/null || exit $?"
    if keep_options and keep_options != options:
        lines += _container_at_least((6, 1, 2), "hf_keepattrs") + [
            'if [ "$hf_keepattrs" = 1 ]; then',
            "  " + q(pct.create_argv(vmid, template, keep_options)) + " </dev/null || exit $?",
            "else",
            "  " + create,
            "fi",
        ]
    else:
        lines.append(create)
    lines.append(section("created"))
    if after and holder is not None:
        lines += ["{ " + " && ".join(after) + "; } || {", "  rc=$?", *_give_back(vmid, holder, moves or []),
                  "  exit $rc", "}"]
    elif after:
        lines += [
            "{ " + " && ".join(after) + "; } || {",
            "  rc=$?",
            "  echo 'homefleet: setting up the new CT failed; removing it' >&2",
            "  " + q(["pct", "destroy", str(vmid), "--purge", "1", "--force", "1"]) + " </dev/null >&2 || true",
            "  exit $rc",
            "}",
        ]
    return script.sh(lines + _readback(vmid))


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
        "      " + q(["pct", "destroy", str(vmid), "--purge", "1", "--force", "1"]) + " </dev/null >&2 || true",
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


def _holder_probe(stack: str, app: str) -> list:
    """Stop before creating if a data holder for this app exists: its volumes come first."""
    needle = "#" + pct.encode_text(pct.holder_line(stack, app))
    return [
        f"holder=$(grep -lsF -e {q([needle])} /etc/pve/lxc/*.conf | head -n 1)",
        'if [ -n "$holder" ]; then',
        "  " + section("holder"),
        '  basename "$holder" .conf',
        "  exit 0",
        "fi",
    ]


def park_script(vmid: int, holder: int, template: str, holder_options: dict, volumes: list, running: bool,
                reuse: Optional[tuple] = None) -> list:
    """Move the CT's storage-backed volumes to a stopped holder CT, then destroy the CT.

    At every step each volume is owned by exactly one CT, so no failure loses data. With
    `reuse` (stack, app), a holder of this app that an earlier, failed park left is used
    instead of a new one, so one app never has two holders. Prints the holder's vmid
    in the `parked` section.
    """
    lines = ["set -eu"]
    create = q(pct.create_argv(holder, template, holder_options)) + " </dev/null"
    if reuse:
        needle = "#" + pct.encode_text(pct.holder_line(*reuse))
        lines += [
            f"found=$(grep -lsxF -e {q([needle])} /etc/pve/lxc/*.conf | head -n 1 || true)",
            'if [ -n "$found" ]; then holder=$(basename "$found" .conf); else',
            f"  {create}",
            f"  holder={holder}",
            "fi",
        ]
    else:
        lines += [create, f"holder={holder}"]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    for key in volumes:
        lines.append(q(["pct", "move-volume", str(vmid), key, "--target-vmid"]) + ' "$holder" '
                     + q(["--target-volume", key]) + " </dev/null")
    lines.append(q(pct.destroy_argv(vmid)) + " </dev/null")
    lines += [section("parked"), 'echo "$holder"']
    return script.sh(lines)


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
        if keep_options and keep_options != options:
            lines += _container_at_least((6, 1, 2), "hf_keepattrs") + [
                'if [ "$hf_keepattrs" = 1 ]; then',
                "  " + q(pct.set_argv(vmid, keep_options, delete)) + " </dev/null",
                "else",
                "  " + set_line,
                "fi",
            ]
        else:
            lines.append(set_line)
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


def delete_script(vmid: int, running: bool) -> list:
    lines = ["set -eu"]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    lines.append(q(pct.destroy_argv(vmid)) + " </dev/null")
    return script.sh(lines)


def parse_readback(stdout: str) -> dict:
    sections = script.split_sections(stdout)
    if "existing" in sections and "config" not in sections:
        return {"existing": int(sections["existing"].split()[0]), "holder": None, "created": False}
    if "holder" in sections and "config" not in sections:
        return {"holder": int(sections["holder"].split()[0]), "created": False}
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
