"""The service's one way to run work in other processes: multiprocessing's `spawn`.

Spawned children are fresh interpreters: nothing of a threaded parent's state (locks
held by other threads, a large heap) is inherited. Every child ends soon after the
process that started it is gone, even after a SIGKILL, so nothing of a dead service
keeps running. (granian forks its own serving workers; they watch their parent too.)
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

CONTEXT = multiprocessing.get_context("spawn")


def exit_with_parent(parent: int, interval: float = 0.25) -> None:
    """End this process soon after `parent` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class Pool:
    """Up to `workers` processes for one piece of work, shut down after it; with one
    worker, `map` simply runs here (no process is worth starting for small work)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = None
        if workers > 1:
            self.executor = ProcessPoolExecutor(
                workers, mp_context=CONTEXT, initializer=exit_with_parent, initargs=(os.getpid(),)
            )

    def map(self, function: Callable[..., Any], arguments: list[tuple[Any, ...]]) -> Iterator[Any]:
        """`function(*args)` for each args, results in order, each as soon as it is done."""
        if self.executor is None or len(arguments) < 2:
            return (function(*args) for args in arguments)
        return self.executor.map(function, *zip(*arguments, strict=True))

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exception: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)


def spawn(target: Callable[..., Any], arguments: tuple[Any, ...], name: str) -> Any:
    """Start `target(*arguments)` in a new process (the caller joins it)."""
    process = CONTEXT.Process(target=target, args=arguments, name=name)
    process.start()
    return process
