"""The error a user sees for a bad stack or package: file, key path, what is wrong, the fix."""


class ConfigError(Exception):
    """One or more located problems; `str()` is the full message, one problem per line."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__("\n".join(problems))


def located(file: str, key: str, message: str, fix: str = "") -> str:
    text = f"{file}: {key}: {message}"
    return f"{text}. {fix}" if fix else text
