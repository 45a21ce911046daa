"""Parsing seed files: in this process, or across every core when there are many."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from feedservice.catalog import Entry, entry_of
from feedservice.ingest.article import DEFAULT_SITE, Site, read_article
from feedservice.ingest.clean import utc_micros
from feedservice.ingest.files import read_seed
from feedservice.ingest.problem import Problem, display_path
from feedservice.ingest.record import record_text, revision
from feedservice.runtime.processes import Pool
from feedservice.store.search import IndexText, index_text

_INDEXED = operator.attrgetter("title", "excerpt", "content_html")
POOL_THRESHOLD = 1000  # fewer files parse faster here than a pool starts
CHUNK = 500  # files per task


class ParseResult(NamedTuple):
    """One file's parse (a tuple: cheap to send back from the pool)."""

    path: str
    stamp: bytes | None  # of the bytes read; None if nothing could be read
    record: str | None  # the Article as a JSON record
    entry: Entry | None
    problems: tuple[Problem, ...]
    updated: int | None = None  # µs: the seed's own last change, if it says
    text: IndexText | None = None  # what the search index holds of it (None for a draft)


def parse_file(root: str, path: str, site: Site = DEFAULT_SITE) -> ParseResult:
    """Read and parse one seed file; never raises for bad content."""
    try:
        data, stamp = read_seed(root, path)
    except Problem as problem:
        return ParseResult(path, None, None, None, (problem,))
    article, problems = read_article(data, display_path(path), site)
    if article is None:
        return ParseResult(path, stamp, None, None, problems)
    text = record_text(article)
    entry = entry_of(article, revision(text), path)
    own = utc_micros(article.updated) if article.updated else None
    found = None if article.is_draft else index_text(*_INDEXED(article))
    return ParseResult(path, stamp, text, entry, problems, own, found)


def parse_chunk(root: str, paths: list[str], site: Site) -> list[ParseResult]:
    return [parse_file(root, path, site) for path in paths]


def parse_files(
    root: Path, paths: list[str], pool: Pool, site: Site
) -> Iterator[list[ParseResult]]:
    """Results for `paths`, in order, a chunk at a time (the caller stores each as it
    comes, while the pool parses the next)."""
    chunks = [paths[start : start + CHUNK] for start in range(0, len(paths), CHUNK)]
    return pool.map(parse_chunk, [(str(root), chunk, site) for chunk in chunks])
