"""The error a user sees for a bad stack or package: file, key path, what is wrong, the fix."""


class ConfigError(Exception):
    """One or more located problems; `str()` is the full message, one problem per line."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__("\n".join(problems))


def located(file: str, key: str, message: str, fix: str = "") -> str:
    text = f"{file}: {key}: {message}"
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
