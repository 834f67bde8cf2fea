"""A detailed diff for drift, which pulumi.dynamic's DiffResult cannot carry.

pulumi/dynamic/__main__.py `Diff` builds `proto.DiffResponse` from `changes`, `replaces` and
`delete_before_replace` only. For an input change that is fine (the provider answers "unknown"
and the engine diffs the inputs itself, naming them); for drift, where the inputs are unchanged
and the host is not, the engine then knows only "something changed" and `pulumi preview --diff`
prints every property of the resource (146 lines for one CT) with none marked.

`offer()` hands the keys that drifted to the `DiffResponse` built next on the same thread (the
server's `Diff` builds it right after `provider.diff()` returns); `install()` wraps
`proto.DiffResponse` in the provider server once. The paths are the inputs that put the drift
back (`memory`, `mounts`, `running`), with `inputDiff: false`, so `--diff` shows just those lines,
marked (`~ memory: 256 => 256`; the refresh above them shows what the host had). Outside the
provider server, or where the SDK is not shaped as expected, nothing changes.
"""

import sys
import threading

SERVER_MODULE = "pulumi.dynamic.__main__"
_pending = threading.local()
_lock = threading.Lock()


class _DetailedDiffResponse:
    """Stands in for proto.DiffResponse: constants and everything else pass through."""

    def __init__(self, original, proto):
        self._original, self._proto = original, proto

    def __getattr__(self, name):
        return getattr(self._original, name)

    def __call__(self, **fields):
        keys = getattr(_pending, "keys", None)
        _pending.keys = None
        if keys and fields.get("changes") == self._original.DIFF_SOME and "detailedDiff" not in fields:
            update = self._proto.PropertyDiff.UPDATE
            fields["diffs"] = sorted({path.split(".", 1)[0] for path in keys})
            fields["detailedDiff"] = {path: self._proto.PropertyDiff(kind=update, inputDiff=False) for path in keys}
            fields["hasDetailedDiff"] = True
        return self._original(**fields)


def install() -> bool:
    """Wrap the server's DiffResponse (once). False when not in the provider server."""
    server = sys.modules.get("__main__")
    if getattr(getattr(server, "__spec__", None), "name", None) != SERVER_MODULE:
        return False
    proto = getattr(server, "proto", None)
    original = getattr(proto, "DiffResponse", None)
    if original is None or not hasattr(proto, "PropertyDiff"):
        return False
    with _lock:
        if not isinstance(proto.DiffResponse, _DetailedDiffResponse):
            proto.DiffResponse = _DetailedDiffResponse(original, proto)
    return True


def offer(paths: list) -> None:
    """The property paths (`memory`) the next DiffResponse on this thread marks."""
    _pending.keys = list(paths) or None
