"""Errors a provider raises for a failed host step: they name the host, the step, the cause."""


class HostCommandError(Exception):
    """A host command failed. Carries the tool's own message (last lines of stderr)."""

    def __init__(self, host: str, step: str, stderr: str):
        tail = "\n".join(stderr.strip().splitlines()[-6:]) or "(no error output)"
        super().__init__(f"host {host}: {step} failed: {tail}")
        self.host = host
        self.step = step
        self.stderr = stderr


class OwnershipError(Exception):
    """An object on the host that homefleet did not create (or another stack/app owns)."""
