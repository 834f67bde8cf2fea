"""The single place where an argv list becomes a remote shell command line."""

import shlex
from typing import Sequence


def to_command_line(argv: Sequence[str]) -> str:
    """Quote every element so the remote shell sees exactly these arguments.

    NUL cannot travel in a command line at all, so it is refused rather than truncated.
    """
    if not argv:
        raise ValueError("empty argv")
    for arg in argv:
        if not isinstance(arg, str):
            raise TypeError(f"argv elements must be str, got {type(arg).__name__}")
        if "\x00" in arg:
            raise ValueError("an argument contains a NUL byte, which no command line can carry")
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("an argument is not valid UTF-8 text (it holds a lone surrogate)") from None
    return shlex.join(argv)


def describe(argv: Sequence[str], words: int = 3) -> str:
    """A short, secret-free name for a command in error messages: its first words only."""
    head = [a for a in argv[:words]]
    return " ".join(head) + (" ..." if len(argv) > words else "")


# Every command runs in the C locale: homefleet matches host messages in English, and a host's
# own locale (its /etc/default/locale, applied by PAM at login) would translate them.
LOCALE_PREFIX = "LC_ALL=C "


def remote_command_line(argv: Sequence[str]) -> str:
    """The line sent to the host: `LC_ALL=C` then the quoted argv (an assignment before a
    simple command holds in every POSIX shell and reaches all its children)."""
    return LOCALE_PREFIX + to_command_line(argv)
