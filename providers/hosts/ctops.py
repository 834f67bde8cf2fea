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
) -> list:
    """pct create (no --start, no --env), the env write, pct start, read back; roll back on failure.

    A failed `pct create` leaves nothing (PVE cleans up its own worker), so rollback only
    covers the steps after it: the CT this script created is destroyed before exiting.
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
    if not oci:
        lines += _fetch_classic(template)
    if reclaim:
        lines += _holder_probe(*reclaim)
    lines += [
        q(pct.create_argv(vmid, template, options)) + " </dev/null || exit $?",
        section("created"),
    ]
    if after:
        lines += [
            "{ " + " && ".join(after) + "; } || {",
            "  rc=$?",
            "  echo 'homefleet: setting up the new CT failed; removing it' >&2",
            "  " + q(["pct", "destroy", str(vmid), "--purge", "1", "--force", "1"]) + " </dev/null >&2 || true",
            "  exit $rc",
            "}",
        ]
    return script.sh(lines + _readback(vmid))


def _fetch_classic(volid: str) -> list:
    """A classic template missing from the storage is fetched with `pveam download` first."""
    storage, _, rest = volid.partition(":")
    name = rest.rsplit("/", 1)[-1]
    return [
        f"if [ ! -e \"$({q(['pvesm', 'path', volid])})\" ]; then",
        f"  {q(['pveam', 'download', storage, name])} </dev/null >&2 || exit $?",
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


def park_script(vmid: int, holder: int, template: str, holder_options: dict, volumes: list, running: bool) -> list:
    """Move the CT's storage-backed volumes to a stopped holder CT, then destroy the CT.

    At every step each volume is owned by exactly one CT, so no failure loses data.
    """
    lines = ["set -eu", q(pct.create_argv(holder, template, holder_options)) + " </dev/null"]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    for key in volumes:
        lines.append(q(pct.move_volume_argv(vmid, key, holder, key)) + " </dev/null")
    lines.append(q(pct.destroy_argv(vmid)) + " </dev/null")
    lines.append(section("parked"))
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
) -> list:
    """pct set; then a restart only if PVE left changes pending or the env changed.

    `env` (the full merged list) is written while the CT is stopped; None leaves it alone.
    """
    lines = ["set -eu"]
    if options or delete:
        lines.append(q(pct.set_argv(vmid, options, delete)) + " </dev/null")
    for disk, gib in resizes or []:
        lines.append(q(pct.resize_argv(vmid, disk, gib)) + " </dev/null")
    lines += [
        "restart=0",
        q(pct.pending_argv(vmid)) + " </dev/null | grep -qE '^(new|del) ' && restart=1",
    ]
    if env is not None:
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


def delete_script(vmid: int, running: bool) -> list:
    lines = ["set -eu"]
    if running:
        lines.append(q(pct.shutdown_argv(vmid)) + " </dev/null")
    lines.append(q(pct.destroy_argv(vmid)) + " </dev/null")
    return script.sh(lines)


def parse_readback(stdout: str) -> dict:
    if "holder" in script.split_sections(stdout) and "config" not in script.split_sections(stdout):
        return {"holder": int(script.split_sections(stdout)["holder"].split()[0]), "created": False}
    return _parse_full(stdout)


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
