"""What the loader keeps of each seed file, and how a new parse of it changes that.

A file's row holds its stamp, its problems and the article it gives: its new one, or,
when a good file turns bad (often a half-written save), its last good one, `carried`
until the file is fixed or deleted. Each article's `updated` time is when the store
first saw its published content: its publish time when the store first meets it, the
reload's time after an edit, and unchanged by a rename or an edit that changes nothing
published (a comment, `secured`); a seed that gives its own (`Article.updated`) wins.
"""

from __future__ import annotations

import logging
import operator
import sys
from collections.abc import Iterable
from typing import Any

from feedservice.catalog import Catalog
from feedservice.ingest.problem import Problem
from feedservice.runtime.parsing import ParseResult
from feedservice.store.rows import FileRow

log = logging.getLogger("feedservice.reload")
Seen = dict[tuple[str, str], int]  # (identity, revision) -> its updated time, in µs


def published_part(row: FileRow | None) -> tuple[Any, ...] | None:
    """What of a file's row decides the feeds (a change of it re-renders them)."""
    if row is None or row.identity is None:
        return None
    return (
        *(row.identity, row.sort, row.topics, row.quality, row.draft, row.revision),
        *(row.expires, row.provider),
    )


def seen_before(rows: Iterable[FileRow], identities: set[str] | None = None) -> Seen:
    """The published content these rows hold (of `identities` only, if given), with when
    it was first seen."""
    return {
        (row.identity, row.revision): row.updated
        for row in rows
        if row.identity
        and row.revision
        and row.updated is not None
        and (identities is None or row.identity in identities)
    }


def next_row(old: FileRow | None, result: ParseResult, seen: Seen, now: float) -> FileRow:
    """The file's new row: its new article, or its last good one if it turned bad."""
    problems = tuple(problem.as_dict() for problem in result.problems)
    path = sys.intern(result.path)  # (one string per path, however many maps hold it)
    stamp = result.stamp or b""
    entry = result.entry
    if entry is None:
        if old is not None and old.identity is not None:  # keep serving the last good version
            return old._replace(stamp=stamp, problems=problems, carried=True)
        nothing = (None, None, (), None, False, None, None)  # (no article)
        return FileRow(path, stamp, problems, False, *nothing, id=old.id if old is not None else 0)
    if result.updated is not None:
        updated = result.updated  # the seed says when it last changed
    elif old is not None and old.revision == entry.revision and old.updated is not None:
        updated = old.updated  # the same published content: not an update
    elif (entry.identity, entry.revision) in seen:
        updated = seen[(entry.identity, entry.revision)]  # moved, renamed or duplicated
    elif old is not None and old.identity == entry.identity:
        updated = int(now * 1_000_000)  # an edit: readers see it as an update now
    else:
        updated = -entry.sort  # new to the store: as it was published
    return FileRow(
        path,
        stamp,
        problems,
        False,
        entry.identity,
        entry.sort,
        tuple(map(sys.intern, entry.topics)),  # (topic names repeat across files)
        entry.quality,
        entry.draft,
        entry.revision,
        updated,
        entry.expires,
        sys.intern(entry.provider) if entry.provider else None,  # (few, on many files)
        old.id if old is not None else 0,
    )


def all_problems(rows: Iterable[FileRow], scan: list[Problem], catalog: Catalog) -> list[Problem]:
    """Every finding, sorted: the scan's, each file's and the catalog's (duplicates)."""
    found = list(scan)
    for row in rows:
        for data in row.problems:
            problem = Problem.from_dict(data)
            if row.carried and problem.fatal:
                message = problem.message + "; serving the last good version"
                problem = Problem(problem.source, problem.field, message, problem.line)
            found.append(problem)
    found.extend(catalog.warnings)
    found.sort(key=lambda problem: (problem.source, problem.field, problem.message))
    return found


def newest_change(catalog: Catalog, files: dict[str, FileRow], now: float) -> int:
    """The newest publish or update time of any published article, never later than now
    (µs): the Last-Modified of the index and the lists."""
    rows = map(files.__getitem__, map(_SOURCE, catalog.articles))
    updated = max(filter(None, map(_UPDATED, rows)), default=0)
    published = -catalog.articles[0].sort if catalog.articles else 0
    return min(max(updated, published), int(now * 1_000_000))


_SOURCE = operator.attrgetter("source")
_UPDATED = operator.attrgetter("updated")


def log_problems(result: ParseResult) -> None:
    for problem in result.problems:
        if problem.fatal:
            log.warning(
                "seed error: %s",
                problem.describe(),
                extra={
                    "path": problem.source,
                    "field": problem.field,
                    "reason": problem.message,
                    "line": problem.line,
                },
            )
