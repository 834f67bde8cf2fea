"""The error a user sees for a bad stack or package: file, key path, what is wrong, the fix."""

import re


class ConfigError(Exception):
    """One or more located problems; `str()` is the full message, one problem per line."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__("\n".join(problems))


MESSAGE_MAX = 400
KEY_MAX = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    """One readable line: control characters escaped (a name may hold a newline), a huge
    echoed value cut to its start and end."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) <= limit:
        return text
    return f"{text[:limit * 2 // 3]} ...[{len(text) - limit} characters cut]... {text[-limit // 5:]}"


def located(file: str, key: str, message: str, fix: str = "") -> str:
    text = f"{file}: {clip(key, KEY_MAX)}: {clip(message)}"
    return f"{text}. {fix}" if fix else text


class Findings:
    """Located problems and warnings collected while reading one file, each reported once."""

    def __init__(self, display: str):
        self.display = display
        self.problems: list = []
        self.warnings: list = []

    def fail(self, where: str, message: str, fix: str = "") -> None:
        line = located(self.display, where, message, fix)
        if line not in self.problems:
            self.problems.append(line)

    def warn(self, where: str, message: str, fix: str = "") -> None:
        line = located(self.display, where, message, fix)
        if line not in self.warnings:
            self.warnings.append(line)
