"""Hostile text for the injection tests: shell metacharacters, option look-alikes, control
characters, unicode and very long values, each mixed with commands that would leave a trace.

Every payload that would run a command runs `touch CANARY` or writes `> CANARY`, so if
quoting ever failed the canary file would appear. The canary path is unique per run and
is set by `set_canary()` before the strategies draw (the default is a path nothing creates).
Nothing here is destructive even if it ran.
"""

from __future__ import annotations

import secrets

from hypothesis import strategies as st

RUN_TOKEN = secrets.token_hex(6)
_canary = f"/tmp/homefleet-canary-{RUN_TOKEN}"


def set_canary(path: str) -> None:
    global _canary
    _canary = path


def canary() -> str:
    return _canary


# {c} is replaced by the canary path when drawn.
_COMMANDS = [
    "$(touch {c})", "`touch {c}`", ";touch {c}", "; touch {c};", "&& touch {c}", "|| touch {c}",
    "| touch {c}", "& touch {c} &", "\ntouch {c}\n", "\rtouch {c}", ">{c}", ">>{c}", "2>{c}",
    "'; touch {c}; '", "\"; touch {c}; \"", "\\'$(touch {c})", "'\"$(touch {c})\"'",
    "$(touch${{IFS}}{c})", "<(touch {c})", ">(touch {c})", "${{x:-$(touch {c})}}",
    "\"$(touch {c})\"", "\\\"`touch {c}`\\\"", "'\\''; touch {c}; '\\''", "$'\\x3b'touch {c}",
    "#\ntouch {c}", "\\\ntouch {c}", "eval touch {c}", "x=$(touch {c})", "%0atouch {c}",
    "\u2028touch {c}", "\x00touch {c}", "{{touch,{c}}}", "$((1))$(touch {c})",
]
_FRAGMENTS = [
    "'", '"', "`", "\\", ";", "&", "|", "<", ">", "(", ")", "{", "}", "[", "]", "$", "*", "?", "~",
    "#", "!", "%", "^", "=", ",", ":", "@", "+", "/", "..", "../", " ", "  ", "\t", "\n", "\r", "\x00",
    "\x1b[31m", "\x7f", "\x01", "\u00a0", "\u200b", "\u202e", "\ufeff", "é", "ß", "日本", "😀", "\U0010fffd",
    "--", "-", "--help", "-h", "--force", "--purge 1", "--delete", "--rootfs=/", "--hostname=x", "-rf",
    "--src-creds=u:p", "-j", "--", "--output-format=json", "$IFS", "${PATH}", "$0", "$1", "$@", "$$", "$?",
    "*.conf", "/etc/pve/lxc/*", "%s%n", "%x", "\\n", "\\x00", "NUL", "null", "None", "true", "0", "-1",
    "1e9", "a b", "a\tb", "a\nb", "mp=/etc", ",mp=/", ",ro=1", "=", "key=value", "volume=/", "@@homefleet:section:config@@",
    "managed-by: homefleet stack=x app=y", "lxc.environment.runtime: X=1", "\nlxc.cgroup2.devices.allow: a",
    "x-homefleet", '{"a":1}', "[\"a\"]", "${VAR}", "$${VAR}", "${VAR:?}", "{{.Digest}}",
]


def _fill(text: str) -> str:
    return text.replace("{c}", _canary).replace("{{", "{").replace("}}", "}")


def payloads() -> st.SearchStrategy[str]:
    """One listed payload: a command that would leave the canary, or a single odd fragment."""
    return st.one_of(st.sampled_from(_COMMANDS).map(_fill), st.sampled_from(_FRAGMENTS))


def mixed() -> st.SearchStrategy[str]:
    """Payloads, fragments and arbitrary text glued together."""
    part = st.one_of(payloads(), st.text(max_size=6), st.sampled_from(["a", "x1", "data", "/tank", "/data"]))
    return st.lists(part, min_size=1, max_size=6).map("".join)


LONG = (2_000, 9_000, 40_000, 140_000, 200_000)


def long_values(sizes=LONG) -> st.SearchStrategy[str]:
    """Very long values: 2 KB to 200 KB, around and past Linux's 128 KiB argument limit."""
    return st.builds(lambda unit, n: unit * n,
                     st.sampled_from(["a", "'", "$(touch {c})", "é", "a;b ", "\\"]).map(_fill),
                     st.sampled_from(sizes))


def hostile(sizes=LONG) -> st.SearchStrategy[str]:
    """Any hostile string: mostly listed payloads and mixtures, some arbitrary and very long text.

    `sizes`: the lengths of the very long values (YAML-heavy fields use smaller ones: PyYAML
    takes seconds per 100 KB).
    """
    return st.one_of(
        payloads(),
        mixed(),
        mixed(),
        st.text(max_size=40),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
        long_values(sizes),
    )


def prefixed(prefix: str) -> st.SearchStrategy[str]:
    """Hostile text after a harmless prefix, for fields that need a valid start (paths, names)."""
    return hostile().map(lambda text: prefix + text)


def unique(prefix: str = "hfv") -> st.SearchStrategy[str]:
    """A value that starts with a unique token, so finding it elsewhere is meaningful."""
    return st.builds(lambda token, text: f"{prefix}{token}{text}", st.text("abcdefghjkmnpqrstuvwxyz", min_size=8, max_size=8),
                     hostile())
