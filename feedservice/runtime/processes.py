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
from collections.abc import Callable, Iterable, Iterator
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


def pool_map(
    function: Callable[..., Any], arguments: Iterable[tuple[Any, ...]], workers: int
) -> Iterator[Any]:
    """`function(*args)` for each args, across `workers` processes, results in order as
    they finish; the pool lives for this one call."""
    with ProcessPoolExecutor(
        workers, mp_context=CONTEXT, initializer=exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
        yield from pool.map(function, *zip(*arguments, strict=True))


def spawn(target: Callable[..., Any], arguments: tuple[Any, ...], name: str) -> Any:
    """Start `target(*arguments)` in a new process (the caller joins it)."""
    process = CONTEXT.Process(target=target, args=arguments, name=name)
    process.start()
    return process
