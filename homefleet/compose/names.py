"""Service names -> addresses, in environment values and command lines (see docs/compose.md).

On Docker, `DB_HOSTNAME=database` works because Docker's DNS resolves service names. An
OCI app container on Proxmox has no such resolver and PVE does not manage its /etc/hosts,
so the plan writes the peer's static address where a service name is used as a host:

- in a URL's host part:          postgres://u:${PW}@db:5432/x  -> postgres://u:${PW}@198.18.0.7:5432/x
- as `name:port`:                 broker:6379                   -> 198.18.0.9:6379
- as the whole value (or one item of a `,`/space separated list) of a variable whose name
  says it holds a host (…HOST…, …ADDR…, …SERVER…, …ENDPOINT…): DB_HOSTNAME=database

Anything else is left alone: `CACHE_PROVIDER=redis` stays `redis` even with a service named
redis. Matching is exact and case-sensitive.
"""

from __future__ import annotations

import re
from typing import Optional

from .variables import SecretText

HOST_KEY = re.compile(r"HOST|ADDR|SERVER|ENDPOINT", re.I)
_EDGE = r"A-Za-z0-9_.\-"


def _patterns(names: dict) -> tuple:
    if not names:
        return None, None
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    url = re.compile(rf"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/\s?#]*@)?)(?P<name>{alternatives})(?![{_EDGE}])")
    host_port = re.compile(rf"(?<![{_EDGE}/:${{])(?P<name>{alternatives})(?=:\d{{1,5}}(?![{_EDGE}]))")
    return url, host_port


def rewrite_text(text: str, names: dict, host_key: bool) -> tuple:
    """-> (text with service names replaced by addresses, [names replaced])."""
    url, host_port = _patterns(names)
    if url is None:
        return text, []
    used: list = []

    def sub_url(match):
        used.append(match.group("name"))
        return match.group("pre") + names[match.group("name")]

    def sub_name(match):
        used.append(match.group("name"))
        return names[match.group("name")]

    text = url.sub(sub_url, text)
    text = host_port.sub(sub_name, text)
    if host_key:
        parts = re.split(r"([,\s]+)", text)
        if any(p in names for p in parts):
            used += [p for p in parts if p in names]
            text = "".join(names.get(p, p) for p in parts)
    return text, used


def rewrite_value(value, names: dict, key: Optional[str] = None) -> tuple:
    """A str or SecretText (rewritten inside its template) -> (new value, [names replaced])."""
    host_key = bool(key and HOST_KEY.search(key))
    if isinstance(value, SecretText):
        template, used = rewrite_text(value.template, names, host_key)
        return SecretText(template, value.names), used
    return rewrite_text(value, names, host_key)


def rewrite_argv(argv: list, names: dict) -> tuple:
    out, used = [], []
    for arg in argv:
        new, found = rewrite_text(arg, names, host_key=False)
        out.append(new)
        used += found
    return out, used
