"""Rules for `environment:`, `env_file:`, `command:`, `entrypoint:` and `restart:` of a service."""

from __future__ import annotations

import shlex
from typing import Optional

from .files import within
from .values import ENV_KEY, RESTART, has_secret, scalar, secret_names_in
from .variables import SecretRef, SecretText, parse_dotenv


class EnvironmentRules:
    """Mixed into the reader (a Findings with `base_dir`, `lookup`, `used_secrets`)."""

    def _plain(self, where: str, value):
        """A value that must not hold a secret (only environment values may)."""
        if isinstance(value, SecretText) or has_secret(value):
            names = ", ".join(sorted(set(secret_names_in(value))))
            self.fail(where, f"uses the secret {names}; secrets can only be used in environment values",
                      "Pass the secret through environment: and refer to it there")
            return None
        return value

    def _environment(self, where: str, body: dict) -> dict:
        env: dict = {}
        files = body.get("env_file")
        if files is not None:
            entries = files if isinstance(files, list) else [files]
            for index, entry in enumerate(entries):
                at = f"{where}.env_file" + (f"[{index}]" if isinstance(files, list) else "")
                required = True
                if isinstance(entry, dict):
                    required = entry.get("required", True) is not False
                    entry = entry.get("path")
                if not isinstance(entry, str):
                    self.fail(at, "must be a file path", "Write e.g. env_file: app.env")
                    continue
                file, refused = within(self.files, self.base_dir, entry)
                if refused:
                    self.fail(at, *refused)
                    continue
                if not file.is_file():
                    if required:
                        self.fail(at, f"file {entry!r} not found next to the compose file",
                                  "Create it, fix the path, or write {path: ..., required: false}")
                    continue
                try:
                    env.update(parse_dotenv(file.read_text(encoding="utf-8"), self.lookup, entry))
                except UnicodeDecodeError:
                    self.fail(at, f"{entry!r} is not UTF-8 text", "Save it as UTF-8")
                except OSError:
                    self.fail(at, f"{entry!r} cannot be read", "Check the file's permissions")
                except ValueError as exc:
                    self.fail(at, str(exc))
        raw = body.get("environment")
        if raw is None:
            return env
        if isinstance(raw, list):
            items = []
            for index, item in enumerate(raw):
                if isinstance(item, SecretText):
                    key, _, _ = item.template.partition("=")
                    items.append((key, SecretText(item.template[len(key) + 1:], item.names) if "=" in item.template
                                  else None, f"{where}.environment[{index}]"))
                elif isinstance(item, str):
                    key, sep, value = item.partition("=")
                    items.append((key, value if sep else None, f"{where}.environment[{index}]"))
                else:
                    self.fail(f"{where}.environment[{index}]", f"must be a KEY=value string (got {item!r})",
                              'Quote it, e.g. - "DEBUG=1"')
        elif isinstance(raw, dict):
            items = [(str(k), scalar(v), f"{where}.environment.{k}") for k, v in raw.items()]
        else:
            self.fail(f"{where}.environment", "must be a mapping or a list of KEY=value",
                      "Write e.g. environment: {TZ: Etc/UTC}")
            return env
        for key, value, at in items:
            if not ENV_KEY.match(key):
                self.fail(at, f"{key!r} is not an environment variable name", "Write NAME=value")
                continue
            if value is None:  # `- KEY` / `KEY:` take the value from the variables, if set
                found = self.lookup(key)
                if isinstance(found, SecretRef):
                    env[key] = SecretText("${" + found.name + "}", (found.name,))
                    self.used_secrets.setdefault(found.name, at)
                elif found is not None:
                    env[key] = found
                continue
            if isinstance(value, SecretText):
                for name in value.names:
                    self.used_secrets.setdefault(name, at)
            env[key] = value
        for key, value in env.items():
            for name in getattr(value, "names", ()):
                self.used_secrets.setdefault(name, f"{where}.environment.{key}")
        return env

    def _argv(self, where: str, value) -> Optional[list]:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                self.fail(where, f"cannot be split into words: {exc}", "Write it as a list: [prog, arg1, arg2]")
                return None
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                           for v in value):
            return [str(v) for v in value]
        if isinstance(value, list) and any(isinstance(v, SecretText) for v in value):
            self._plain(where, value)
            return None
        self.fail(where, f"must be a string or a list of strings (got {value!r})",
                  "Write e.g. [redis-server, --save, '60', '1']")
        return None

    def _mapping(self, where: str, value) -> Optional[dict]:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping")
            return None
        return value

    def _restart(self, where: str, value) -> Optional[str]:
        if value is None:
            return None
        if value is False:
            value = "no"  # restart: no unquoted in YAML 1.1 files
        if not isinstance(value, str) or not RESTART.match(value):
            self.fail(f"{where}.restart", f"must be no, always, unless-stopped or on-failure[:N] (got {value!r})")
            return None
        return value
