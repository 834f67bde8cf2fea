"""Watch a folder with inotify and stat each file the moment it is created or changed.

The simulated hosts share this machine's file system, so a test can observe, from
outside SSH, which permissions an uploaded file had while it was being written.
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading

_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE = 0x2, 0x4, 0x8, 0x100
_EVENT = struct.Struct("iIII")


class ModeWatcher:
    """Records (event mask, file name, permission bits, size) for every event in `folder`."""

    def __init__(self, folder: str):
        self.folder = folder
        self.seen: list[tuple[int, str, int, int]] = []
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_CREATE | IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE
        if _libc.inotify_add_watch(self._fd, os.fsencode(folder), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "ModeWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        os.close(self._fd)

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._stop.is_set():
            if poller.poll(20):
                self._drain()

    def _drain(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            _, mask, _, size = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size: offset + _EVENT.size + size].rstrip(b"\0")
            offset += _EVENT.size + size
            try:
                st = os.lstat(os.path.join(self.folder, os.fsdecode(name)))
            except FileNotFoundError:
                continue
            self.seen.append((mask, os.fsdecode(name), st.st_mode & 0o7777, st.st_size))
