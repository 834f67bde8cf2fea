"""`pct set <vmid> [OPTIONS] [--delete a,b] [--revert a,b]` (API2/LXC/Config.pm update_vm)."""

from __future__ import annotations

import sys

from . import conf as conf_mod
from . import runstate, storage
from .ct_ops import update_config
from .ct_schema import CONFDESC, option_exists
from .errors import ParamError, PveError
from .schema import Prop, split_list

SET_ONLY: dict[str, Prop] = {
    "delete": Prop(format="pve-configid-list"),
    "revert": Prop(format="pve-configid-list"),
    "digest": Prop(max_length=40),
}


def set_config(params: dict) -> int:
    vmid = int(params["vmid"])
    digest = params.get("digest")
    delete_str = params.get("delete")
    revert_str = params.get("revert")
    changes = {k: v for k, v in params.items() if k in CONFDESC}

    revert: list[str] = []
    for opt in split_list(revert_str or ""):
        if not option_exists(opt):
            raise ParamError({"revert": f"unknown option '{opt}'"})
        if opt in changes:
            raise ParamError({"delete": f"you can't use '-{opt}' and '-revert {opt}' at the same time"})
        revert.append(opt)
    delete = split_list(delete_str or "")
    for opt in delete:
        if opt in changes:
            raise ParamError({"delete": f"you can't use '-{opt}' and -delete {opt}' at the same time"})
        if opt in revert:
            raise ParamError({"delete": f"you can't use '-delete {opt}' and '-revert {opt}' at the same time"})
        if not option_exists(opt):
            raise ParamError({"delete": f"unknown option '{opt}'"})
    if not delete_str and not revert_str and not changes:
        raise PveError("no options specified")

    with conf_mod.lock_config(vmid):
        conf = conf_mod.load(vmid)
        conf_mod.check_lock(conf)
        if digest and digest != conf.digest:
            raise PveError("detected modified configuration - file changed by other user? Try again.")
        running = runstate.is_running(vmid)
        errors = update_config(conf, running, changes, delete, revert, storage.load_config(),
                               lambda msg: sys.stderr.write(msg.rstrip("\n") + "\n"))
        conf_mod.write(conf)
    if errors:
        raise ParamError(errors)
    return 0
