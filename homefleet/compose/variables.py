"""Compose variables: `${VAR}` interpolation, `.env` files, and values that hold secrets.

Interpolation follows the Compose spec (compose-go's template package):

    $$            a literal $
    $VAR ${VAR}   the value; unset -> a blank string and a warning
    ${VAR:-d}     d when VAR is unset or empty      ${VAR-d}  d when VAR is unset
    ${VAR:?msg}   an error when VAR is unset or empty ${VAR?msg} an error when unset
    ${VAR:+a}     a when VAR is set and not empty   ${VAR+a}  a when VAR is set

Defaults and messages may themselves hold `${...}`. A `$` followed by anything else (a digit,
punctuation, a space, the end) stays a literal `$`, as in docker compose (compose-go's
template pattern matches only `$$`, `$name` and `${...}`); a malformed `${...}` is an error.

A variable can also be a *secret*: its value is not known to the plan (it lives in Pulumi's
encrypted config). Then the result is a `SecretText` — a template with `${NAME}` where
the secret goes and `$$` for a literal `$` — rendered only where the secret is at hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Union

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A `${...}` that is malformed or a required variable that is missing."""

    def __init__(self, message: str, public: str = ""):
        super().__init__(message)
        self._public = public or message

    def public(self) -> str:
        """The message without the text it was found in (for values read from env files)."""
        return self._public


@dataclass(frozen=True)
class SecretRef:
    name: str


@dataclass(frozen=True)
class SecretText:
    """A string with secrets in it: `template` has `${NAME}` per secret and `$$` per `$`."""

    template: str
    names: tuple

    def render(self, values: dict) -> str:
        """The real string; a secret missing from `values` becomes a blank string."""
        return _RENDER.sub(lambda m: "$" if m.group(0) == "$$" else str(values.get(m.group(1), "")), self.template)

    def __str__(self) -> str:
        return self.template


_RENDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Value = Union[str, SecretText]
# lookup(name) -> the value (str), a SecretRef, or None when the variable is unset
Lookup = Callable[[str], Union[str, SecretRef, None]]


def _escape(text: str) -> str:
    return text.replace("$", "$$")


def join(parts: list) -> Value:
    """Text and SecretRefs -> a plain string, or a SecretText if any secret is in it."""
    if not any(isinstance(p, SecretRef) for p in parts):
        return "".join(parts)
    template = "".join("${" + p.name + "}" if isinstance(p, SecretRef) else _escape(p) for p in parts)
    names = tuple(dict.fromkeys(p.name for p in parts if isinstance(p, SecretRef)))
    return SecretText(template, names)


def secret_names(value) -> tuple:
    return value.names if isinstance(value, SecretText) else ()


class Interpolator:
    """Interpolates strings against one lookup; collects the unset-variable warnings."""

    def __init__(self, lookup: Lookup):
        self.lookup = lookup
        self.unset: dict = {}  # variable -> the first key path that used it unset
        self.unset_at: dict = {}  # key path -> [variables it used unset], to name them in its errors

    def value(self, text: str, where: str) -> Value:
        return join(self.parts(text, where))

    def parts(self, text: str, where: str) -> list:
        out: list = []
        i = 0
        while i < len(text):
            dollar = text.find("$", i)
            if dollar < 0:
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            i = self._one(text, dollar, out, where)
        return [p for p in out if p != ""]

    def _one(self, text: str, start: int, out: list, where: str) -> int:
        """Interpolate the `$...` at `start`; return the index after it."""
        nxt = text[start + 1:start + 2]
        if nxt == "$":
            out.append("$")
            return start + 2
        if nxt == "{":
            return self._braced(text, start, out, where)
        match = _NAME.match(text, start + 1)
        if not match:  # `$1`, `$!`, `$ `, a trailing `$`: literal, as docker compose leaves them
            out.append("$")
            return start + 1
        out.extend(self._resolve(match.group(0), None, "", where, text))
        return match.end()

    def _braced(self, text: str, start: int, out: list, where: str) -> int:
        match = _NAME.match(text, start + 2)
        if not match:
            raise _invalid(text)
        name, pos = match.group(0), match.end()
        if text[pos:pos + 1] == "}":
            out.extend(self._resolve(name, None, "", where, text))
            return pos + 1
        op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
        if op is None:
            raise _invalid(text)
        end = _closing_brace(text, pos + len(op))
        if end < 0:
            raise _invalid(text)
        out.extend(self._resolve(name, op, text[pos + len(op):end], where, text))
        return end + 1

    def _resolve(self, name: str, op: Optional[str], word: str, where: str, text: str) -> list:
        found = self.lookup(name)
        is_set = found is not None
        non_empty = is_set and found != ""
        value = [found] if is_set and found != "" else []
        if op is None:
            if not is_set:
                self.unset.setdefault(name, where)
                self.unset_at.setdefault(where, []).append(name)
            return value
        if op in (":-", "-"):
            use_value = non_empty if op == ":-" else is_set
            return value if use_value else self.parts(word, where)
        if op in (":?", "?"):
            ok = non_empty if op == ":?" else is_set
            if not ok:
                message = "".join(str(p) for p in self.parts(word, where)) if word else ""
                raise InterpolationError(
                    f"required variable {name} is missing a value" + (f": {message}" if message else ""),
                    f"required variable {name} is missing a value")
            return value
        use_alt = non_empty if op == ":+" else is_set
        return self.parts(word, where) if use_alt else []


def _closing_brace(text: str, pos: int) -> int:
    depth = 0
    i = pos
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _invalid(text: str) -> InterpolationError:
    return InterpolationError(f"invalid interpolation format in {text!r}; write $$ for a literal $",
                              "invalid interpolation format (a malformed ${...}); write $$ for a literal $")


# ---------------------------------------------------------------- .env files

def parse_dotenv(text: str, lookup: Lookup, display: str) -> dict:
    """`KEY=value` lines -> {KEY: Value}. Comments, blank lines, `export`, quotes, as compose reads them.

    Unquoted and double-quoted values are interpolated (earlier keys of the file first,
    then `lookup`); single-quoted values are literal. Raises ValueError naming line numbers.
    """
    values: dict = {}

    def local(name: str):
        if name not in values:
            return lookup(name)
        found = values[name]
        if isinstance(found, SecretText):
            if found.template != "${" + found.names[0] + "}":
                raise InterpolationError(f"{name} holds a secret mixed with text; refer to the secret itself")
            return SecretRef(found.names[0])
        return found

    interp = Interpolator(local)
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        key, sep, raw = stripped.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            # never quote the line: the file may not be a dotenv file at all (issue 18.3)
            raise ValueError(f"{display}: line {number} is not NAME=value (a name is letters, digits and _)")
        if not sep:
            continue  # `NAME` alone sets nothing (compose takes it from the shell, which homefleet does not read)
        raw = raw.lstrip()
        if raw[:1] in ("'", '"'):
            quote = raw[0]
            body = raw[1:]
            while not _closes(body, quote) and index < len(lines):
                body += "\n" + lines[index]
                index += 1
            end = _quote_end(body, quote)
            if end < 0:
                raise ValueError(f"{display}: line {number}: unterminated {quote} quote; close it")
            inner = body[:end]
            if quote == "'":
                values[key] = inner
                continue
            raw_value = _unescape_double(inner)
        else:
            raw_value = re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()
        try:
            values[key] = interp.value(raw_value, f"{display} line {number}")
        except InterpolationError as exc:
            raise ValueError(f"{display}: line {number}: {exc.public()}") from None
    return values


def _quote_end(body: str, quote: str) -> int:
    i = 0
    while i < len(body):
        if quote == '"' and body[i] == "\\":
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


def _closes(body: str, quote: str) -> bool:
    return _quote_end(body, quote) >= 0


def _unescape_double(inner: str) -> str:
    """Backslash escapes of a double-quoted value; `\\$` stays a literal `$` (as `$$`)."""
    out = []
    i = 0
    while i < len(inner):
        char, nxt = inner[i], inner[i + 1:i + 2]
        if char == "\\" and nxt:
            if nxt in "nrt":
                out.append({"n": "\n", "r": "\r", "t": "\t"}[nxt])
            elif nxt in '\\"':
                out.append(nxt)
            elif nxt == "$":
                out.append("$$")
            else:
                out.append(char + nxt)
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)
