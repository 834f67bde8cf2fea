"""Errors a provider raises for a failed host step: they name the host, the step, the cause."""

import re

# PVE's `CT is locked (<lock>)` (pve-guest-common src/PVE/AbstractConfig.pm check_lock): a task holds the
# CT, or one that was killed (a vzdump ended by `kill -9`, a reboot mid-migration) left its lock
# behind and every later change fails the same way. PVE never drops such a lock by itself.
_LOCKED = re.compile(r"CT is locked \((\w+)\)")


def hint_for(stderr: str) -> str:
    """What the user can do about a host message homefleet knows, or ''."""
    found = _LOCKED.search(stderr or "")
    if found:
        return (f"\nPVE holds the CT's `{found.group(1)}` lock: a task on it (vzdump, migrate, snapshot) is "
                "running, or one was killed and left the lock. Wait for the task (the host's task list, "
                "`ps -ef | grep -e vzdump -e pct`); when none runs, clear it on the host with "
                "`pct unlock <vmid>` and run `pulumi up` again")
    return ""


class HostCommandError(Exception):
    """A host command failed. Carries the tool's own message (last lines of stderr)."""

    def __init__(self, host: str, step: str, stderr: str):
        tail = "\n".join(stderr.strip().splitlines()[-6:]) or "(no error output)"
        super().__init__(f"host {host}: {step} failed: {tail}{hint_for(tail)}")
        self.host = host
        self.step = step
        self.stderr = stderr


class OwnershipError(Exception):
    """An object on the host that homefleet did not create (or another stack/app owns)."""
