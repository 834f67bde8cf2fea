"""A ProxmoxCT destroyed: for good (delete), or to be created again at its vmid with its data
volumes carried over a holder (recreate). Mixed into ProxmoxCTProvider (plain methods, no state:
the provider is pickled into the Pulumi state), which provides `_create_at` (CtCreate).
"""

from . import health, log
from .base import target_of
from .ct_data import key_order, write
from .ct_update import RECREATE_KEYS
from .errors import HostCommandError
from .hosts import ctops, pct


class Removal:
    """Destroy and replace steps of ProxmoxCTProvider."""

    def _replace(self, news: dict, olds: dict, current: dict, vmid: int, changed: list) -> dict:
        """The CT destroyed and created again at its vmid, its data volumes carried over a holder."""
        target = target_of(news)
        held = pct.held_volumes(current["config"])
        why = ", ".join(k for k in changed if k in (*RECREATE_KEYS, "volumes"))
        log.info(target.name, news["app"], f"recreating CT {vmid} ({why}); "
                 f"data volumes carried over: {', '.join(sorted(held, key=key_order)) or 'none'}")
        carry = self._carry_read(news, vmid)
        if held:
            self._park(news, vmid, current, held, purge=False)
        else:
            self._destroy(news, vmid, current["status"] == "running", purge=False)
        # The pool comes back with the create itself (`pct create --pool`, as PVE's own restore does).
        try:
            outs = self._create_at({**news, "pool": carry["pool"]} if carry["pool"] else news, vmid)
        except HostCommandError as exc:
            lost = ctops.carry_summary(vmid, carry)
            if isinstance(exc, health.UnhealthyError):  # the new CT is there: it takes them, then the rollback runs
                self._carry_restore(news, vmid, carry)
            elif lost:  # the destroy dropped them and the new CT is not there to take them back
                raise HostCommandError(exc.host, exc.step, exc.stderr + f"\nput back by hand once CT {vmid} runs: {lost}")
            raise
        outs.pop("pool", None)
        self._carry_restore(news, vmid, carry)
        return outs

    def _destroy(self, props: dict, vmid: int, running: bool, purge: bool = True) -> None:
        target = target_of(props)
        result = write(target, ctops.delete_script(vmid, running, purge=purge), timeout=600)
        if not result.ok and ctops.GONE_MARKER not in result.stderr:
            raise HostCommandError(target.name, f"destroying CT {vmid}", result.stderr)
