"""Where a simulated CT's start and exit messages are kept: `/run/pve/ct-<vmid>.stderr`.

A real PVE starts a CT with the systemd unit `pve-container@<vmid>` (pve-container
`src/pve-container@.service`: `ExecStart=/usr/bin/lxc-start -F -n %i`,
`StandardError=file:/run/pve/ct-%i.stderr`); `PVE::LXC::vm_start` unlinks that file before each
start and prints it when the start fails (`print_ct_stderr_log`). The simulated host bind-mounts
`$SIM_STATE/run-pve` there (sim/hoststate.py). The simulator also writes the reason a simulated
entrypoint exited into it (a real lxc logs only `Child <pid> ended on error (N)` at INFO level,
lxc `src/lxc/error.c` `lxc_error_set_and_log`; the app's own output goes to its console).
"""

from __future__ import annotations

from pathlib import Path

from . import paths


def log_path(vmid: int) -> Path:
    return paths.host_path(f"/run/pve/ct-{vmid}.stderr")


def append(vmid: int, line: str) -> None:
    path = log_path(vmid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(line.rstrip("\n") + "\n")


def reset(vmid: int) -> None:
    """`vm_start`: unlink "/run/pve/ct-$vmid.stderr" (systemd does not truncate log files)."""
    try:
        log_path(vmid).unlink()
    except FileNotFoundError:
        pass
