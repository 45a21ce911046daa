"""Progress bars for long work, shown only on a terminal.

Why tqdm: one small pure-Python package with no dependencies of its own; it
writes to stderr (so `check --format json` keeps stdout clean), redraws in
place, and is a no-op object when disabled. rich would bring three packages
for the same bar.

A bar appears only when stderr is a terminal, json logging is off and the work
is large enough to be worth watching; otherwise nothing is written at all.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from feedservice.catalog import PARALLEL_PARSE_THRESHOLD, SeedStore

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


def bar(iterable: Iterable[T], *, total: int | None, desc: str, unit: str = "file") -> Iterator[T]:
    """`iterable`, with a bar on a terminal (e.g. for `build`'s rendering)."""
    if not wanted():
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)


@contextmanager
def counter(total: int, *, desc: str, unit: str = "file") -> Iterator[Callable[[int], None]]:
    """`with counter(n, desc=...) as done: done(k)`: a bar advanced by counts (e.g. `build`)."""
    if not wanted():
        yield lambda count: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr) as progress:
        yield progress.update


class ProgressSeedStore(SeedStore):
    """A SeedStore whose large loads (typically the first) draw a bar.

    It parses in batches and advances the bar after each; batches stay above
    the parallel-parse threshold when the base class would parse in parallel,
    so the bar costs no speed.
    """

    def __init__(self, *args: Any, desc: str = "loading seeds", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.desc = desc

    def _parse_all(self, relatives: list[str]) -> list[Any]:
        if len(relatives) < MIN_FILES or not wanted():
            return super()._parse_all(relatives)
        from tqdm import tqdm

        parallel = len(relatives) >= PARALLEL_PARSE_THRESHOLD and self.workers >= 2
        size = max(PARALLEL_PARSE_THRESHOLD, math.ceil(len(relatives) / 10)) if parallel else 200
        results: list[Any] = []
        with tqdm(
            total=len(relatives), desc=self.desc, unit="file", leave=False, file=sys.stderr
        ) as progress:
            for start in range(0, len(relatives), size):
                batch = relatives[start : start + size]
                results.extend(super()._parse_all(batch))
                progress.update(len(batch))
        return results


def seed_store(root: Any, *, desc: str = "loading seeds") -> SeedStore:
    """The store to use for a load a person may be watching."""
    return ProgressSeedStore(root, desc=desc) if wanted() else SeedStore(root)


def initial_store(root: Any) -> SeedStore:
    """A granian worker's store: only the reporting worker draws the load bar."""
    from feedservice.metrics import is_reporter

    return seed_store(root) if wanted() and is_reporter() else SeedStore(root)
