"""Middleware errors as `midclt` prints them and as jobs record them.

* `ValidationErrors`: one `[EINVAL] attribute: message` line per error. midclt prints
  them as truenas_api_client's `ValidationErrors.__str__` (exc.py) does, `ALL` when the
  error has no attribute; a failed job's `error` is the middleware's own `str(exc)`
  (service_exception.py `ValidationError.__str__`), which writes `None` there and ends
  every line with a newline: `[ENOENT] None: App web does not exist\n`.
* `CallError`: `[ERRNAME] message`; the default errno is EFAULT, as in the middleware.
* `ClientError`: a plain ClientException text such as `Method does not exist`.

On a failed call `midclt` prints the error text, then the server's traceback, then the
`extra` list pretty-printed, all on stderr, and exits 1 (`-q` silences all three).
"""

from __future__ import annotations

import errno as errno_mod


class MiddlewareError(Exception):
    errno: int = errno_mod.EFAULT
    exc_type: str = "EXCEPTION"

    def text(self) -> str:
        raise NotImplementedError

    def job_text(self) -> str:
        """The text a failed job records as `error` (the server's str(exc))."""
        return self.text()

    def extra(self):
        return None

    def traceback(self) -> str:
        name = {"VALIDATION": "middlewared.service_exception.ValidationErrors",
                "CALL": "middlewared.service_exception.CallError"}.get(self.exc_type, "Exception")
        return ("Traceback (most recent call last):\n"
                '  File "/usr/lib/python3/dist-packages/middlewared/main.py", line 211, in call_method\n'
                "    result = await self.middleware.call_with_audit(message['method'], serviceobj, "
                "methodobj, params, self)\n"
                f"{name}: {self.text()}\n")

    def render(self) -> str:
        """What midclt writes to stderr."""
        out = self.text() + "\n" + self.traceback()
        if self.extra() is not None:
            import pprint          # imported on failure only: every midclt run pays for imports
            out += pprint.pformat(self.extra()) + "\n"
        return out

    def exc_info(self) -> dict:
        return {"repr": f"{type(self).__name__}({self.text()!r})", "type": self.exc_type,
                "errno": self.errno, "extra": self.extra()}


class ValidationErrors(MiddlewareError):
    exc_type = "VALIDATION"
    errno = errno_mod.EINVAL

    def __init__(self, errors: list[tuple[str | None, str, int]]):
        super().__init__(errors)
        self.errors = errors

    @classmethod
    def one(cls, attribute: str | None, message: str, code: int = errno_mod.EINVAL):
        return cls([(attribute, message, code)])

    def text(self) -> str:
        return "\n".join(f"[{errno_mod.errorcode.get(code, 'EUNKNOWN')}] {attr or 'ALL'}: {msg}"
                         for attr, msg, code in self.errors)

    def job_text(self) -> str:
        return "".join(f"[{errno_mod.errorcode.get(code, 'EUNKNOWN')}] {attr}: {msg}\n"
                       for attr, msg, code in self.errors)

    def extra(self):
        return [[attr, msg, code] for attr, msg, code in self.errors]


class CallError(MiddlewareError):
    exc_type = "CALL"

    def __init__(self, message: str, code: int = errno_mod.EFAULT):
        super().__init__(message)
        self.message = message
        self.errno = code

    def text(self) -> str:
        return f"[{errno_mod.errorcode.get(self.errno, 'EFAULT')}] {self.message}"


class ClientError(MiddlewareError):
    """A ClientException whose text is not errno-prefixed (unknown method, bad params)."""

    def __init__(self, message: str, code: int = errno_mod.EINVAL):
        super().__init__(message)
        self.message = message
        self.errno = code

    def text(self) -> str:
        return self.message

    def traceback(self) -> str:
        return ""
