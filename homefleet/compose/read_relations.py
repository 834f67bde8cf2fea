"""Rules for `depends_on:` and `networks:` of a service, and the dependency graph of the file."""

from __future__ import annotations

from .model import Dependency, find_cycle
from .values import CONDITIONS


class RelationRules:
    # ---- relations

    def _depends_on(self, where: str, value) -> dict:
        if value is None:
            return {}
        out = {}
        if isinstance(value, list):
            for index, name in enumerate(value):
                if not isinstance(name, str):
                    self.fail(f"{where}.depends_on[{index}]", f"must be a service name (got {name!r})")
                    continue
                out[name] = Dependency(name)
            return out
        if not isinstance(value, dict):
            self.fail(f"{where}.depends_on", "must be a list of service names or a mapping",
                      "Write e.g. depends_on: [db] or depends_on: {db: {condition: service_healthy}}")
            return {}
        for name, spec in value.items():
            at = f"{where}.depends_on.{name}"
            spec = spec or {}
            if not isinstance(spec, dict):
                self.fail(at, "must be a mapping", "Write e.g. {condition: service_started}")
                continue
            for key in spec:
                if key not in ("condition", "required", "restart"):
                    self.fail(f"{at}.{key}", "unknown key", "allowed: condition, required, restart")
            condition = spec.get("condition", "service_started")
            if condition not in CONDITIONS:
                self.fail(f"{at}.condition", f"must be one of {', '.join(CONDITIONS)} (got {condition!r})")
                continue
            out[str(name)] = Dependency(str(name), condition, spec.get("required", True) is not False,
                                        spec.get("restart", False) is True)
        return out

    def _networks(self, where: str, value, declared: dict) -> dict:
        if value is None:
            return {}
        if isinstance(value, list):
            value = {str(n): None for n in value}
        if not isinstance(value, dict):
            self.fail(f"{where}.networks", "must be a list of network names or a mapping")
            return {}
        out = {}
        for name, spec in value.items():
            at = f"{where}.networks.{name}"
            if name != "default" and name not in declared:
                self.fail(at, f"network {name!r} is not declared under the top-level networks:",
                          f"Add `{name}:` under networks:")
                continue
            spec = spec or {}
            if not isinstance(spec, dict):
                self.fail(at, "must be a mapping or empty")
                continue
            aliases = spec.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                self.fail(f"{at}.aliases", "must be a list of names")
                aliases = []
            out[str(name)] = {**spec, "aliases": aliases}
        return out

    def _check_dependencies(self, services: dict, raw: dict) -> None:
        for service in services.values():
            for name, dep in list(service.depends_on.items()):
                if name in services:
                    continue
                del service.depends_on[name]
                if name in raw and dep.required is False:
                    continue
                if name in raw:
                    why, fix = self.refused.get(name, ("it has errors", f"Fix services.{name} first"))
                    self.fail(f"{service.where}.depends_on.{name}", f"service {name} is not deployed: {why}", fix)
                elif self.included:
                    continue  # it may be defined in the included file, which is reported once
                elif dep.required:
                    self.fail(f"{service.where}.depends_on.{name}", f"no service named {name!r}",
                              f"Services in this file: {', '.join(sorted(services))}")
        cycle = find_cycle({n: list(s.depends_on) for n, s in services.items()})
        if cycle:
            self.fail(f"services.{cycle[0]}.depends_on",
                      "services depend on each other in a cycle: " + " -> ".join(cycle),
                      "Remove one of these dependencies")
