"""Rules for `volumes:` of a service (short and long syntax)."""

from __future__ import annotations

from typing import Optional

from .model import Mount
from .values import MOUNT_MODES, has_secret


class VolumeRules:
    def unset_at(self, where: str) -> str:
        """'the variable X is' / 'the variables X, Y are' — those used unset in the value at `where`."""
        names = list(dict.fromkeys(self.interp.unset_at.get(where, [])))
        if not names:
            return ""
        return f"the variable {names[0]} is" if len(names) == 1 else f"the variables {', '.join(names)} are"

    # ---- volumes

    def _volumes(self, where: str, value, named: dict) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{where}.volumes", "must be a list", "Write e.g. volumes: [data:/var/lib/data]")
            return []
        mounts = []
        for index, item in enumerate(value):
            at = f"{where}.volumes[{index}]"
            mount = self._short_volume(at, item) if isinstance(item, str) else \
                self._long_volume(at, item) if isinstance(item, dict) else None
            if mount is None:
                if not isinstance(item, (str, dict)):
                    self._plain(at, item) if has_secret(item) else \
                        self.fail(at, f"must be a string or a mapping (got {item!r})", "Write e.g. data:/data")
                continue
            if not mount.target.startswith("/"):
                self.fail(at, f"the container path {mount.target!r} must be absolute", "Start it with '/'")
                continue
            if mount.type == "volume" and mount.source is not None and mount.source not in named:
                self.fail(at, f"refers to the volume {mount.source!r}, which is not declared under the top-level "
                          "volumes:", f"Add `{mount.source}:` under volumes:, or write a host path (starting with / or "
                          "./) for a bind mount")
                continue
            mounts.append(mount)
        targets = [m.target.rstrip("/") or "/" for m in mounts]
        for target in sorted({t for t in targets if targets.count(t) > 1}):
            self.fail(f"{where}.volumes", f"two entries mount at {target}", "Keep one")
        return mounts

    def _short_volume(self, at: str, text: str) -> Optional[Mount]:
        parts = text.split(":")
        mode = ""
        last_is_mode = not parts[-1].startswith("/") and set(parts[-1].split(",")) <= MOUNT_MODES
        if len(parts) >= 3 or (len(parts) == 2 and last_is_mode):
            mode = parts.pop()
        if len(parts) == 1:
            return Mount("volume", None, parts[0], where=at)
        unset = self.unset_at(at)
        if unset and (len(parts) != 2 or not parts[0] or not parts[-1]):
            self.fail(at, f"{text!r} has an empty path because {unset} not set",
                      "Set it in the .env file beside the compose file, or in the app's env: in the stack")
            return None
        if len(parts) != 2 or not parts[0]:
            self.fail(at, f"{text!r} is not SOURCE:TARGET[:MODE]", "Write e.g. data:/var/lib/data or /srv/x:/x:ro")
            return None
        modes = set(filter(None, mode.split(",")))
        unknown = modes - MOUNT_MODES
        if unknown:
            self.fail(at, f"unknown mode {','.join(sorted(unknown))!r}", "Use ro or rw (and z, Z, nocopy, ...)")
        source, target = parts
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        options = {m: True for m in modes - {"ro", "rw"}}
        return Mount(kind, source, target, read_only="ro" in modes, where=at, options=options)

    def _long_volume(self, at: str, item: dict) -> Optional[Mount]:
        allowed = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "image", "consistency"}
        for key in item:
            if key not in allowed and not str(key).startswith("x-"):
                self.fail(f"{at}.{key}", "unknown key", "allowed: " + ", ".join(sorted(allowed)))
        kind = item.get("type")
        if kind not in ("volume", "bind", "tmpfs", "npipe", "cluster", "image"):
            self.fail(f"{at}.type", f"must be volume, bind or tmpfs (got {kind!r})")
            return None
        if kind in ("npipe", "cluster", "image"):
            self.fail(f"{at}.type", f"{kind} mounts are not supported", "Use a volume or a bind mount")
            return None
        target = item.get("target")
        for key in ("source", "target"):
            unset = self.unset_at(f"{at}.{key}")
            if unset and item.get(key) in ("", None):
                self.fail(f"{at}.{key}", f"is empty because {unset} not set",
                          "Set it in the .env file beside the compose file, or in the app's env: in the stack")
                return None
        if not isinstance(target, str):
            self.fail(f"{at}.target", "is required", "Write the path inside the container, e.g. target: /data")
            return None
        source = item.get("source")
        if kind == "bind" and not isinstance(source, str):
            self.fail(f"{at}.source", "is required for a bind mount", "Write the host path, e.g. source: /srv/data")
            return None
        options = {k: v for k, v in item.items() if k in ("bind", "volume", "tmpfs", "consistency")}
        return Mount(kind, source if kind != "tmpfs" else None, target, read_only=item.get("read_only") is True,
                     where=at, options=options)
