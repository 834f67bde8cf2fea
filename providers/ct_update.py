"""A ProxmoxCT brought to its spec in place: `pct set` / `pct resize` and a restart only where PVE
needs one, the compose `user:` (lxc.init), /etc/hosts and shipped files written into the CT; a
change that only a new CT can carry goes to `_recreate`. Mixed into ProxmoxCTProvider (plain
methods, no state: the provider is pickled into the Pulumi state), which provides `_recreate` and `_gate`.
"""

import re
import secrets

from . import log
from .base import target_of
from .ct_data import CREATE_TIMEOUT, view_spec, volume_path_changes, write
from .ct_outputs import hide_secrets, hwaddr_of, merged_env, outputs_of, stack_names, template_of
from .errors import HostCommandError
from .hosts import ctenv, ctfiles, ctinit, ctops, ctview, pct, preflight, script
from .transport import put, run

RECREATE_KEYS = ("template", "rootfs", "unprivileged")
SETTABLE = ("hostname", "cores", "memory", "swap", "onboot", "tags", "description", "startup",
            "timezone", "nameserver", "searchdomain", "features", "entrypoint")


def resizes_of(observed: dict, desired: dict, changed: list) -> list:
    """(disk, GiB) for the rootfs and volumes that only grew: `pct resize`, no restart."""
    resizes = []
    if "disk" in changed:
        before, after = float(observed["disk"].rstrip("G")), float(desired["disk"].rstrip("G"))
        if after < before:
            raise ValueError(f"the rootfs is {observed['disk']}; PVE cannot shrink a disk (unable to shrink disk size)")
        resizes.append(("rootfs", desired["disk"].rstrip("G").removesuffix(".0")))
    for key in changed:
        if re.fullmatch(r"mp\d+", key):
            grown = ctview.grown_volume(observed.get(key), desired.get(key))
            if grown:
                resizes.append((key, grown))
    return resizes


class InPlace:
    """The in-place update steps of ProxmoxCTProvider."""

    def _apply(self, news: dict, olds: dict, current: dict, vmid: int) -> dict:
        target = target_of(news)
        image_env = olds.get("image_env") or {}
        observed = hide_secrets(ctview.from_config(current["config"], current["status"], news), news, image_env)
        desired = ctview.from_spec(view_spec(news), image_env)
        changed = ctview.changed_keys(observed, desired)
        # The template the CT was made from says it best: an upgrade that stopped after the new
        # CT was made must not recreate it again.
        if (template_of(current["config"]) or olds.get("template")) != news.get("template"):
            changed.append("template")
        moved = volume_path_changes(current["config"], news)
        if moved:
            # A slot's volume would get another path: its data would show at the wrong place.
            # Recreating matches every volume by path through the holder.
            changed.append("volumes")
        if any(key in changed for key in RECREATE_KEYS) or moved:
            return self._recreate(news, olds, current, vmid, changed)
        resizes = resizes_of(observed, desired, changed)
        grown = {disk for disk, _ in resizes}
        options, delete = self._set_options(news, olds, current, [k for k in changed if k not in grown])
        env = None
        if "env" in changed or (olds.get("secret_env") or {}) != (news.get("secret_env") or {}):
            env = merged_env(news, image_env)
        was_running = current["status"] == "running"
        want_running = news.get("running", True)
        # hostname is config-only (pve-container Config.pm $LXC_FASTPLUG_OPTIONS): never pending,
        # and a running CT keeps its UTS name until its next start
        restart = was_running and want_running and "hostname" in options
        checks = preflight.ct_checks(news, keys=options)
        keep = pct.with_keepattrs(options, news) if news.get("template_kind", "oci") == "oci" else None
        argv = ctops.update_script(vmid, options, delete, env, was_running, want_running, resizes, keep_options=keep,
                                   restart=restart, checks=checks)
        log.info(target.name, news["app"], f"updating CT {vmid}: {stack_names(changed, news) or 'outputs only'}")
        result = write(target, argv, stdin=ctenv.stdin_data(env or {}), timeout=CREATE_TIMEOUT)
        if not result.ok:
            raise HostCommandError(target.name, f"updating CT {vmid} ({news['app']})", result.stderr)
        readback = ctops.parse_readback(result.stdout)
        if readback["restarted"]:
            why = "its new hostname takes effect at a start" if restart else "PVE left changes pending until the next start"
            log.info(target.name, news["app"], f"restarted CT {vmid}: {why}")
        if news.get("init_user") and news.get("init_user") != olds.get("init_user"):
            readback = {**readback, **self._set_init_user(news, vmid, readback["status"] == "running",
                                                           news.get("running", True))}
        if news.get("hosts") != olds.get("hosts") or not was_running:
            self._write_hosts(news, vmid, readback["status"])
        before = {f.get("path"): f.get("sha256") for f in olds.get("files") or []}
        self._push_files(news, vmid, readback["status"],
                         [f for f in news.get("files") or [] if before.get(f["path"]) != f["sha256"] or not was_running])
        return outputs_of(news, vmid, readback, image_env, olds.get("kept_on_holder"), self._gate(news, vmid, readback))

    def _set_init_user(self, props: dict, vmid: int, running: bool, start: bool) -> dict:
        """lxc.init.uid/gid/cwd from the compose `user:`/`working_dir:` (stop first if running; start after if wanted) ->
        a fresh read back."""
        target = target_of(props)
        user = props["init_user"]
        lines = ["set -eu"]
        if running:
            lines.append(script.q(pct.shutdown_argv(vmid)) + " </dev/null")
        env = user.get("env") or {}  # compose env names PVE's env cannot hold: raw lxc.environment lines, on stdin;
        # always replaced (none left when the file drops them)
        lines.append(script.q(ctinit.write_argv(vmid, user.get("uid"), user.get("gid"), user.get("cwd"), True)))
        if start:
            lines.append(script.q(pct.start_argv(vmid)) + " </dev/null")
        result = write(target, script.sh(lines), stdin=ctinit.env_stdin(env))
        if not result.ok:
            raise HostCommandError(target.name, f"setting the user of CT {vmid} ({props['app']})", result.stderr)
        result = run(target, ctops.read_script(vmid))
        if not result.ok:
            raise HostCommandError(target.name, f"reading CT {vmid}", result.stderr)
        fresh = ctops.parse_readback(result.stdout)
        return {"config": fresh["config"], "status": fresh["status"], "ip": fresh["ip"]}

    def _push_files(self, props: dict, vmid: int, status: str, files: list) -> None:
        """Files shipped beside a compose file (`files`: [{path, source, sha256}], uploaded to the host by
        AppFiles): PVE bind-mounts folders only, so each is pushed into the running CT, then the CT is
        restarted once so the app reads them. Only new or changed files, only this CT."""
        if not files:
            return
        target = target_of(props)
        if status != "running":
            log.info(target.name, props["app"], f"CT {vmid} is not running; its files are written when it starts")
            return
        log.info(target.name, props["app"], f"writing {', '.join(f['path'] for f in files)} into CT {vmid}; restarting it")
        result = write(target, ctfiles.push_files_script(vmid, files, restart=True), timeout=CREATE_TIMEOUT)
        if not result.ok:
            raise HostCommandError(target.name, f"writing files into CT {vmid} ({props['app']})", result.stderr)

    def _write_hosts(self, props: dict, vmid: int, status: str) -> None:
        """A compose service's peers by name: /etc/hosts inside the CT (`hosts`: [[address, names...]]).

        Written into the running CT; no restart (resolvers read /etc/hosts on every lookup). A CT
        that is not running gets it the next time homefleet starts it."""
        if not props.get("hosts"):
            return
        target = target_of(props)
        if status != "running":
            log.info(target.name, props["app"], f"CT {vmid} is not running; its /etc/hosts is written when it starts")
            return
        text = ctfiles.hosts_text(props["hosts"])
        upload = f".homefleet-hosts-{secrets.token_hex(8)}"
        put(target, text.encode(), upload, 0o644)
        result = write(target, ctfiles.push_script(vmid, upload, ctfiles.HOSTS))
        if not result.ok:
            raise HostCommandError(target.name, f"writing /etc/hosts of CT {vmid} ({props['app']})", result.stderr)

    def _set_options(self, news: dict, olds: dict, current: dict, changed: list) -> tuple:
        wanted = pct.spec_options(news)
        if news.get("entrypoint"):
            wanted["entrypoint"] = news["entrypoint"]
        config = current["config"]
        options, delete = {}, []
        for key in changed:
            if key in SETTABLE:
                if key in wanted:
                    options[key] = wanted[key]
                elif key in config:
                    delete.append(key)
            elif re.fullmatch(r"net\d+", key):
                if key in wanted:
                    value = wanted[key]
                    hwaddr = hwaddr_of(config.get(key, ""))
                    if hwaddr and "hwaddr=" not in value:
                        value += f",hwaddr={hwaddr}"
                    options[key] = value
                else:
                    delete.append(key)
            elif re.fullmatch(r"dev\d+", key):
                if key in wanted:
                    options[key] = wanted[key]
                else:
                    delete.append(key)
            elif re.fullmatch(r"mp\d+", key):
                if key not in wanted:
                    delete.append(key)
                    continue
                existing = config.get(key, "").split(",", 1)[0]
                slot = dict((k, item) for k, kind, item in pct.mount_slots(news) if kind == "volume")
                if key in slot and existing and not existing.startswith("/"):
                    item = slot[key]
                    value = f"{existing},mp={item['path']},backup={pct.backup_flag(item)}" \
                        + (",ro=1" if item.get("read_only") else "")
                    options[key] = value
                else:
                    options[key] = wanted[key]
        return options, delete
