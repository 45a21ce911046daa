"""Short-lived forked children: work beside `serve`'s parent on another core.

A fresh start does several jobs that do not need each other until the end (the
scan and the parse cache load; the parse cache write and the first render), so
on a multi-core machine one of them runs in a forked child. The child inherits
everything it needs, sends back plain bytes over a pipe and exits without any
cleanup. If anything goes wrong there, or there is no fork, the caller learns
it (`result()` is None) and does the work itself: never a wrong answer, at worst
the time the child was meant to save.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Callable


class Forked:
    """`work()` running in a forked child; `result()` gives the bytes it returned."""

    def __init__(self, work: Callable[[], bytes], *, finish_on_stop: bool = False) -> None:
        """`finish_on_stop`: the child ignores SIGINT and SIGTERM (which reach the whole
        process group), for work that must not be cut short when the server stops."""
        self._pid = 0
        self._read_end = -1
        self._parent = os.getpid()
        self._lock = threading.Lock()
        if not hasattr(os, "fork"):
            return
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return
        if pid == 0:  # the child: work, report, exit without running any cleanup
            os.close(read_end)
            status = 1
            try:
                gc.disable()  # a collection would touch (and so copy) the parent's whole heap
                if finish_on_stop:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                payload = work()
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    @property
    def pid(self) -> int:
        """The child's process id; 0 if none was started (or it has been waited for)."""
        return self._pid

    def result(self) -> bytes | None:
        """What `work()` returned, once the child has exited; None if it failed, if no
        child was started, if it was already waited for, or if this process did not
        start it (a later fork inherits this object but not the child)."""
        with self._lock:
            pid, self._pid = self._pid, 0
            if not pid or os.getpid() != self._parent:
                return None
            with os.fdopen(self._read_end, "rb") as pipe:
                payload = pipe.read()
            status = 1
            with contextlib.suppress(ChildProcessError):
                status = os.waitpid(pid, 0)[1]
            return payload if status == 0 else None
