"""Progress bars for long work, shown only on a terminal.

Why tqdm: one small pure-Python package with no dependencies of its own; it
writes to stderr (so `check --format json` keeps stdout clean), redraws in
place, and is a no-op object when disabled. rich would bring three packages
for the same bar.

A bar appears only when stderr is a terminal, json logging is off and the work
is large enough to be worth watching; otherwise nothing is written at all.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from feedservice.catalog import SeedStore

T = TypeVar("T")
MIN_FILES = 1000  # smaller seed directories load in well under a second
ENV_QUIET = "FEEDSERVICE_NO_PROGRESS"
_state = {"enabled": True}


def disable() -> None:
    """Turn bars off for this process (json logs: every line must be JSON)."""
    _state["enabled"] = False


def wanted(stream: Any = None) -> bool:
    """True if a bar would reach a person: a terminal, and not switched off."""
    stream = stream if stream is not None else sys.stderr
    if not _state["enabled"] or os.environ.get(ENV_QUIET):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@functools.cache
def _bar_type() -> Any:
    """tqdm without its monitor thread: while this process has no other thread, a parse
    pool can fork its workers (cheap) instead of starting a fork server."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        monitor_interval = 0

    return Bar


def bar(iterable: Iterable[T], *, total: int | None, desc: str, unit: str = "file") -> Iterator[T]:
    """`iterable`, with a bar on a terminal (e.g. for `build`'s rendering)."""
    if not wanted():
        yield from iterable
        return
    yield from _bar_type()(
        iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr
    )


@contextmanager
def counter(total: int, *, desc: str, unit: str = "file") -> Iterator[Callable[[int], None]]:
    """`with counter(n, desc=...) as done: done(k)`: a bar advanced by counts (e.g. `build`)."""
    if not wanted():
        yield lambda count: None
        return
    with _bar_type()(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr) as progress:
        yield progress.update


class ProgressSeedStore(SeedStore):
    """A SeedStore whose large loads (typically the first) draw a bar, advanced as
    files are parsed, in this process or in the parse pool."""

    def __init__(self, *args: Any, desc: str = "loading seeds", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.desc = desc
        self._advance_bar: Callable[[int], None] | None = None

    def _parse_all(self, work: list[Any]) -> list[Any]:
        if len(work) < MIN_FILES or not wanted():
            return super()._parse_all(work)
        with counter(len(work), desc=self.desc) as advance:
            self._advance_bar = advance
            try:
                return super()._parse_all(work)
            finally:
                self._advance_bar = None

    def _advance(self, count: int) -> None:
        if self._advance_bar is not None:
            self._advance_bar(count)


def seed_store(root: Any, *, desc: str = "loading seeds") -> SeedStore:
    """The store to use for a load a person may be watching."""
    return ProgressSeedStore(root, desc=desc) if wanted() else SeedStore(root)


def initial_store(root: Any) -> SeedStore:
    """A granian worker's store: only the reporting worker draws the load bar."""
    from feedservice.metrics import is_reporter

    return seed_store(root) if wanted() and is_reporter() else SeedStore(root)
