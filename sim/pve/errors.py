"""Errors the fake tools raise, and how the PVE CLI prints them.

* `PveError` is a Perl `die`: the message goes to stderr, exit code 255.
* `ParamError` is a `raise_param_exc`: `400 Parameter verification failed.` then one
  `<param>: <msg>` line per error; the CLI adds the command's usage line.
* `OptionError` is a parse failure of the command line (`400 unable to parse option`,
  `400 not enough arguments`, ...); it is printed like a `ParamError` without the error list.
"""

from __future__ import annotations

EXIT_DIE = 255


class PveError(Exception):
    """A plain `die "msg\\n"`."""

    def __init__(self, message: str, exit_code: int = EXIT_DIE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def render(self) -> str:
        return self.message if self.message.endswith("\n") else self.message + "\n"


class ParamError(PveError):
    """`raise_param_exc({param => msg, ...})` (HTTP 400)."""

    def __init__(self, errors: dict[str, str], message: str = "Parameter verification failed."):
        super().__init__(message)
        self.errors = dict(errors)
        self.usage: str | None = None

    def render(self) -> str:
        out = f"400 {self.message}\n"
        for key in sorted(self.errors):
            out += f"{key}: {self.errors[key]}\n"
        if self.usage:
            out += self.usage if self.usage.endswith("\n") else self.usage + "\n"
        return out


class OptionError(ParamError):
    """`raise("unable to parse option\\n", code => 400)` and friends."""

    def __init__(self, message: str, preamble: str = ""):
        super().__init__({}, message)
        self.preamble = preamble

    def render(self) -> str:
        return self.preamble + super().render()


def fold(message: str) -> str:
    """A task's final error line: newlines folded into spaces."""
    return " ".join(part for part in message.rstrip("\n").split("\n"))
