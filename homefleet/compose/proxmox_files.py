"""`secrets:` and `configs:` of a service on Proxmox, from files beside the compose file.

Docker mounts each file into the container: a secret at `/run/secrets/<target or name>` (mode 0444), a
config at its `target` (default `/<name>`). On Proxmox:

- secrets: the file is uploaded to `<appRoot>/<app>/secrets/<service>/<target>` and that folder is
  bind-mounted read-only at `/run/secrets` (PVE bind-mounts folders only; one folder per service, so a
  service sees only the secrets it names). An absolute `target:` is written there like a config.
- configs: the file is uploaded to `<appRoot>/<app>/` and written into the CT at its target with
  `pct push`, as a bind-mounted file is (proxmox_appdir.py): an edit restarts only the CTs using it.

What cannot be a file homefleet uploads is refused with a fix: `external:` (made with `docker secret
create`/`docker config create`), `environment:` (Docker reads the variable of the shell running
compose), a file outside the compose file's folder. A config's inline `content:` is written as a file.
"""

from __future__ import annotations

import posixpath
import re

from .model import Service

SECRETS_DIR = "/run/secrets"
_NAME = re.compile(r"^[A-Za-z0-9._+@-]+$")


class FileRules:
    """Mixed into the Proxmox converter (fail/warn, compose, app_dir)."""

    def _secrets_and_configs(self, service: Service) -> tuple:
        """-> (bind mounts, files pushed into the CT)."""
        mounts, files = [], []
        folder = f"secrets/{_safe(service.name)}"
        has_secret_folder = False
        for section in ("secrets", "configs"):
            value = service.options.get(section)
            if value is None:
                continue
            at = f"{service.where}.{section}"
            if not isinstance(value, list):
                self.fail(at, "must be a list of names or {source, target} mappings",
                          f"Write e.g. {section}: [{'db_password' if section == 'secrets' else 'app_config'}]")
                continue
            declared = self.compose.top_level.get(section) or {}
            for index, item in enumerate(value):
                where = f"{at}[{index}]"
                source, target, extra = _entry(item)
                if source is None:
                    self.fail(where, "must be a name or a mapping with source:", "Write e.g. - source: app_config")
                    continue
                if not isinstance(declared, dict) or source not in declared:
                    self.fail(where, f"names the {section[:-1]} {source!r}, which the file does not declare",
                              f"Add it under the top-level {section}: with file: ./{source}")
                    continue
                file = self._declared_file(section, source, declared[source] or {}, service)
                if file is None:
                    continue
                for key in sorted(extra):
                    self.warn(f"{where}.{key}", "is ignored: homefleet writes the file readable by the service's user "
                              "(mode 0644)")
                if section == "secrets" and not (target or "").startswith("/"):
                    name = target or source
                    if not _NAME.match(name):
                        self.fail(f"{where}.target", f"{name!r} is not a plain file name", "Write e.g. target: token")
                        continue
                    if self.app_dir.copy(f"{section}.{source}.file", file, f"{folder}/{name}", service) is None:
                        continue
                    has_secret_folder = True
                    continue
                path = target or f"/{source}"
                if not path.startswith("/") or ".." in path.split("/") or re.search(r"[\s,=]", path):
                    self.fail(f"{where}.target", f"{path!r} is not a plain absolute path", "Write e.g. target: /etc/app.yml")
                    continue
                host = self._uploaded(f"{section}.{source}.file", file, service)
                if host is not None:
                    files.append({"path": posixpath.normpath(path), "source": host, "sha256": self.app_dir.sha256(host)})
        if has_secret_folder:
            mounts.append({"source": f"{self.app_dir.root}/{folder}", "path": SECRETS_DIR, "read_only": True})
        return mounts, files

    def _declared_file(self, section: str, name: str, spec, service: Service):
        """The file (relative to the compose file) of a declared secret/config, or None (reported)."""
        where = f"{section}.{name}"
        if not isinstance(spec, dict):
            self.fail(where, "must be a mapping with file:", f"Write e.g. {name}: {{file: ./{name}.txt}}")
            return None
        if spec.get("external"):
            self.fail(where, f"is external (made with docker {section[:-1]} create), which only Docker Swarm has",
                      f"Put the value in a file beside the compose file and write {name}: {{file: ./{name}}}")
            return None
        if "environment" in spec:
            self.fail(f"{where}.environment", "takes its value from the environment of the shell running docker "
                      "compose, which homefleet does not read",
                      f"Put the value in a file beside the compose file and write {name}: {{file: ./{name}}}, or pass "
                      "it through the service's environment: as ${VAR} with VAR a homefleet secret")
            return None
        if "content" in spec and section == "configs":
            self.fail(f"{where}.content", "is not supported on Proxmox: homefleet uploads config files from the repo",
                      f"Put the content in a file beside the compose file and write {name}: {{file: ./{name}}}")
            return None
        if not isinstance(spec.get("file"), str):
            self.fail(where, "needs file: (a file beside the compose file)", f"Write e.g. {name}: {{file: ./{name}}}")
            return None
        file = spec["file"]
        if file.startswith(("/", "~")):
            self.fail(f"{where}.file", f"{file!r} is a file on the Docker host; homefleet uploads files from beside "
                      "the compose file", f"Put it beside the compose file and write file: ./{posixpath.basename(file)}")
            return None
        return file

    def _uploaded(self, where: str, file: str, service: Service):
        """A file beside the compose file, uploaded as itself (pushed into the CT) -> its host path, or None."""
        host, kind = self.app_dir.relative_bind(where, file, service)
        if host is None:
            return None
        if kind != "file":
            self.fail(where, f"{file!r} is not a file next to the compose file", "Create it or fix the path")
            return None
        return host


def _entry(item) -> tuple:
    """(source, target, other long-syntax keys) of one `secrets:`/`configs:` entry."""
    if isinstance(item, str):
        return item, None, set()
    if isinstance(item, dict) and isinstance(item.get("source"), str):
        target = item.get("target")
        return item["source"], str(target) if target is not None else None, \
            {k for k in item if k in ("uid", "gid", "mode")}
    return None, None, set()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+@-]", "-", name)
