"""Articles → an immutable catalog snapshot, and the incremental seed store behind it.

`build_catalog` is pure: the same articles and config always give the same
snapshot. `SeedStore` is the I/O edge: it re-reads only files whose size, mtime
or inode changed, and keeps the last good version of a file that turns bad.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import os
import pickle
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from feedservice import parsecache
from feedservice.articles import Article, Problem, parse_seed, slugify
from feedservice.config import Config, FeedSpec
from feedservice.seeds import FileStamp, SeedError, display_path, read_seed, scan

TOPIC_KIND = "topics"
CONFIGURED_KIND = "feeds"
log = logging.getLogger("feedservice")
PARALLEL_PARSE_THRESHOLD = 2000  # below this, process start-up costs more than it saves


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed: its articles newest first, paged by `limit`."""

    kind: str  # TOPIC_KIND or CONFIGURED_KIND
    name: str  # topic slug or configured feed name
    title: str
    description: str
    items: tuple[Article, ...]
    limit: int

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.name}"

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.items) / self.limit))

    def page(self, number: int) -> tuple[Article, ...]:
        start = (number - 1) * self.limit
        return self.items[start : start + self.limit]

    @property
    def newest(self) -> datetime | None:
        return self.items[0].published if self.items else None


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot: what every request of one reload generation sees."""

    config: Config
    articles: tuple[Article, ...]  # published, de-duplicated, newest first
    feeds: Mapping[tuple[str, str], Feed]
    problems: tuple[Problem, ...] = ()
    duplicates: Mapping[str, str] = field(default_factory=dict)  # loser source → winner source
    drafts: frozenset[str] = frozenset()

    def feed(self, kind: str, name: str) -> Feed | None:
        return self.feeds.get((kind, name))

    def feeds_of(self, kind: str) -> list[Feed]:
        return [feed for (feed_kind, _), feed in self.feeds.items() if feed_kind == kind]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.fatal)


def build_catalog(
    candidates: Iterable[Article], config: Config, problems: Iterable[Problem] = ()
) -> Catalog:
    """Published, de-duplicated articles, newest first, with every feed they imply."""
    drafts: set[str] = set()
    by_identity: dict[str, list[Article]] = defaultdict(list)
    for article in candidates:
        if article.is_draft:
            drafts.add(article.source)
        else:
            by_identity[article.identity].append(article)

    winners: list[Article] = []
    duplicates: dict[str, str] = {}
    found = list(problems)
    for group in by_identity.values():
        if len(group) == 1:
            winners.append(group[0])
            continue
        # Newest publish date wins, then the lexically first path: deterministic.
        group.sort(key=lambda article: (-article.published.timestamp(), article.source))
        winners.append(group[0])
        for loser in group[1:]:
            duplicates[loser.source] = group[0].source
            found.append(
                Problem(
                    loser.source,
                    "webUrl",
                    f"duplicate of {group[0].source} (same link "
                    f"{group[0].identity}); that file is served",
                    fatal=False,
                )
            )
    winners.sort(key=lambda article: article.sort_key)
    articles = tuple(winners)

    feeds: dict[tuple[str, str], Feed] = {}
    for spec in config.feeds:
        feeds[(CONFIGURED_KIND, spec.name)] = _configured_feed(spec, articles)
    for feed in _topic_feeds(articles, config):
        feeds[(TOPIC_KIND, feed.name)] = feed
    found.sort(key=lambda problem: (problem.source, problem.field, problem.message))
    return Catalog(
        config,
        articles,
        MappingProxyType(feeds),
        tuple(found),
        MappingProxyType(duplicates),
        frozenset(drafts),
    )


_slug = functools.lru_cache(maxsize=1 << 16)(slugify)  # a few hundred topics, 100k articles


@functools.lru_cache(maxsize=1 << 14)
def _slugs(topics: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_slug(topic) for topic in topics)


def _configured_feed(spec: FeedSpec, articles: tuple[Article, ...]) -> Feed:
    wanted = {_slug(topic) for topic in spec.topics}
    excluded = {_slug(topic) for topic in spec.exclude_topics}
    verdicts: dict[tuple[str, ...], bool] = {}  # topic tuples are shared: decide each once

    def topics_fit(topics: tuple[str, ...]) -> bool:
        verdict = verdicts.get(topics)
        if verdict is None:
            slugs = _slugs(topics)
            verdict = (spec.all_topics or bool(slugs & wanted)) and not slugs & excluded
            verdicts[topics] = verdict
        return verdict

    minimum = spec.min_quality
    if minimum is None:
        items = tuple(article for article in articles if topics_fit(article.topics))
    else:
        items = tuple(
            article
            for article in articles
            if (article.quality or 0) >= minimum and topics_fit(article.topics)
        )
    return Feed(CONFIGURED_KIND, spec.name, spec.title, spec.description, items, spec.limit)


def _topic_feeds(articles: tuple[Article, ...], config: Config) -> list[Feed]:
    members: dict[str, list[Article]] = defaultdict(list)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for article in articles:
        for topic in article.topics:
            slug = _slug(topic)
            if not members[slug] or members[slug][-1] is not article:
                members[slug].append(article)
            spellings[slug][topic] += 1
    feeds = []
    for slug in sorted(members):
        # Names that share a slug share a feed; the most used spelling names it.
        name = min(spellings[slug].items(), key=lambda item: (-item[1], item[0]))[0]
        feeds.append(
            Feed(
                TOPIC_KIND,
                slug,
                name,
                f"Articles about {name} — {config.title}",
                tuple(members[slug]),
                config.topic_limit,
            )
        )
    return feeds


# --- the incremental store -----------------------------------------------------------------


@dataclass(slots=True)
class _FileState:
    stamp: FileStamp
    article: Article | None  # the current good version, or the last good one
    problems: tuple[Problem, ...]  # what parsing the file as it is now found
    carried: bool = False  # `article` is a last good version the file no longer gives


@dataclass(frozen=True, slots=True)
class ReloadStats:
    added: int = 0
    changed: int = 0
    removed: int = 0
    changed_sources: frozenset[str] = frozenset()
    parsed: int = 0  # files actually parsed (not taken from the parse cache)
    cached: int = 0  # files taken from the persistent parse cache

    @property
    def any_change(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def load_seed_file(root: str, relative: str) -> tuple[Article | None, tuple[Problem, ...]]:
    """Read and parse one seed file; never raises for bad content. Picklable for workers."""
    try:
        parsed = parse_seed(read_seed(Path(root), relative), display_path(relative))
    except SeedError as error:
        return None, (Problem.from_error(error),)
    return parsed.article, parsed.warnings


def _load_chunk(root: str, relatives: list[str]) -> bytes:
    """A worker's share: parse results, encoded and pickled in one go (cheap IPC)."""
    return parsecache.dumps(
        [parsecache.encode_result(*load_seed_file(root, relative)) for relative in relatives]
    )


_DEFAULT = object()


class SeedStore:
    """The seed directory as last read: one state per file, refreshed incrementally.

    The first refresh takes unchanged files from the persistent parse cache
    (see parsecache.py) and parses the rest, across processes when there are
    many; later refreshes parse only files whose size, mtime or inode changed.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        workers: int | None = None,
        cache: parsecache.ParseCache | object | None = _DEFAULT,
    ) -> None:
        self.root = Path(root)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.cache: parsecache.ParseCache | None = (
            parsecache.ParseCache.default_for(self.root) if cache is _DEFAULT else cache  # type: ignore[assignment]
        )
        self._files: dict[str, _FileState] = {}
        self._scan_problems: list[Problem] = []
        self._cache_consulted = False
        self._interned: dict[Any, Any] = {}
        self._saved_once = False
        self._save_guard = threading.Lock()
        self._pending: list[tuple[str, _FileState]] | None = None
        self._saver: threading.Thread | None = None

    def refresh(self) -> ReloadStats:
        """Re-scan; parse only new or changed files; drop deleted ones."""
        stamps, scan_errors = scan(self.root)
        self._scan_problems = [Problem.from_error(error) for error in scan_errors]
        files = self._files
        removed = [relative for relative in files if relative not in stamps]
        for relative in removed:
            del files[relative]
        todo = []
        for relative, stamp in stamps.items():
            state = files.get(relative)
            if state is None or state.stamp != stamp:
                todo.append(relative)
        added = sum(1 for relative in todo if relative not in files)
        results, cached = self._results(todo, stamps)
        for relative, (article, problems) in zip(todo, results, strict=True):
            previous = files.get(relative)
            carried = False
            if article is None and previous is not None and previous.article is not None:
                # A good file turned bad (often a half-written save): keep serving
                # the last good version until the file is fixed or deleted.
                article, carried = previous.article, True
            elif article is not None:
                modified = datetime.fromtimestamp(stamps[relative].mtime_ns / 1e9, UTC)
                article = replace(self._intern(article, relative), modified=modified)
            files[relative] = _FileState(stamps[relative], article, problems, carried)
        parsed = len(todo) - cached
        if self.cache is not None and (parsed or removed):
            self._save_cache()
        return ReloadStats(
            added=added,
            changed=len(todo) - added,
            removed=len(removed),
            changed_sources=frozenset(display_path(r) for r in [*todo, *removed]),
            parsed=parsed,
            cached=cached,
        )

    def _results(
        self, todo: list[str], stamps: dict[str, FileStamp]
    ) -> tuple[list[tuple[Article | None, tuple[Problem, ...]]], int]:
        """Parse results for `todo`: from the parse cache where the stamp matches."""
        entries: dict[str, parsecache.Entry] = {}
        if self.cache is not None and not self._cache_consulted and todo:
            self._cache_consulted = True  # only a fresh store can gain from the file
            entries = self.cache.load(self.root)
        results: list[tuple[Article | None, tuple[Problem, ...]] | None] = []
        missing: list[str] = []
        for relative in todo:
            entry = entries.get(relative)
            stamp = stamps[relative]
            if entry is not None and (entry[0], entry[1], entry[2]) == (
                stamp.size,
                stamp.mtime_ns,
                stamp.inode,
            ):
                results.append(parsecache.decode_result(entry[3]))
            else:
                results.append(None)
                missing.append(relative)
        parsed = iter(self._parse_all(missing))
        cached = len(todo) - len(missing)
        return [item if item is not None else next(parsed) for item in results], cached

    def _parse_all(self, relatives: list[str]) -> list[tuple[Article | None, tuple[Problem, ...]]]:
        root = str(self.root)
        if len(relatives) >= PARALLEL_PARSE_THRESHOLD and self.workers > 1:
            try:
                blobs = _parse_in_processes(root, relatives, self.workers)
            except Exception as error:  # no pool here (daemonic worker, no /dev/shm, ...)
                log.warning("parallel parse unavailable (%s); parsing in one process", error)
            else:
                return [
                    parsecache.decode_result(item) for blob in blobs for item in pickle.loads(blob)
                ]
        return [load_seed_file(root, relative) for relative in relatives]

    def _intern(self, article: Article, relative: str) -> Article:
        """Share equal values between articles (providers, topic tuples, the path
        string, a link equal to the identity): much less memory per article.
        The values are equal, so nothing any output uses changes."""
        interned = self._interned
        provider = article.provider
        if provider is not None:
            shared = interned.setdefault(("p", provider), provider)
            if shared is not provider:
                object.__setattr__(article, "provider", shared)
        topics = article.topics
        shared = interned.setdefault(("t", topics), topics)
        if shared is not topics:
            object.__setattr__(article, "topics", shared)
        for name, value in (("source", relative), ("link", article.identity)):
            current = getattr(article, name)
            if current is not value and current == value:
                object.__setattr__(article, name, value)
        original = article.original_url
        if original is not None and original == article.link and original is not article.link:
            object.__setattr__(article, "original_url", article.link)
        return article

    def _save_cache(self) -> None:
        """The first load saves at once (a restart right after it is warm); later
        reloads save in the background, so one changed file never waits for a
        rewrite of the whole cache. Saves are atomic, so an interrupted one is harmless."""
        assert self.cache is not None
        if not self._saved_once:
            self._saved_once = True
            self.cache.save(self.root, self._cache_entries(list(self._files.items())))
            return
        with self._save_guard:
            # States are replaced, never mutated: a shallow copy is a consistent view.
            self._pending = list(self._files.items())
            if self._saver is not None and self._saver.is_alive():
                return  # the running saver will pick the newer state up
            self._saver = threading.Thread(
                target=self._save_in_background, name="parse-cache-save", daemon=True
            )
            self._saver.start()

    def _save_in_background(self) -> None:
        while True:
            with self._save_guard:
                pending, self._pending = self._pending, None
            if pending is None:
                return
            if self.cache is not None:
                self.cache.save(self.root, self._cache_entries(pending))

    def flush_cache(self) -> None:
        """Wait for a background save (tests, and a clean shutdown)."""
        saver = self._saver
        if saver is not None:
            saver.join()

    @staticmethod
    def _cache_entries(states: list[tuple[str, _FileState]]) -> dict[str, parsecache.Entry]:
        entries: dict[str, parsecache.Entry] = {}
        for relative, state in states:
            stamp = state.stamp
            article = None if state.carried else state.article
            entries[relative] = (
                stamp.size,
                stamp.mtime_ns,
                stamp.inode,
                parsecache.encode_result(article, state.problems),
            )
        return entries

    def articles(self) -> list[Article]:
        return [state.article for state in self._files.values() if state.article is not None]

    def problems(self) -> list[Problem]:
        found = list(self._scan_problems)
        for state in self._files.values():
            if state.carried:
                found.extend(
                    Problem(
                        p.source,
                        p.field,
                        p.message + "; serving the last good version",
                        p.line,
                        p.fatal,
                    )
                    for p in state.problems
                )
            else:
                found.extend(state.problems)
        return found

    def __len__(self) -> int:
        return len(self._files)


def _parse_in_processes(root: str, relatives: list[str], workers: int) -> list[bytes]:
    """Parse across processes; raises if no process pool can be started here."""
    # fork is cheapest but unsafe once threads exist (scheduler, server threads).
    method = "fork" if threading.active_count() == 1 else "forkserver"
    size = max(50, min(2000, math.ceil(len(relatives) / (workers * 8))))
    chunks = [relatives[start : start + size] for start in range(0, len(relatives), size)]
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_load_chunk, [root] * len(chunks), chunks))


def prime_parse_cache(root: str | os.PathLike[str], workers: int | None = None) -> int:
    """Bring the persistent parse cache up to date, parsing across processes.

    `serve` runs this once before its workers start, so a large cold start
    parses each file once, on every core, instead of once per worker; the
    workers then load from the cache. Returns how many files it parsed; does
    nothing (0) when the cache is off, the directory small or the cache fresh.
    """
    cache = parsecache.ParseCache.default_for(root)
    if cache is None:
        return 0
    stamps, _ = scan(Path(root))
    if len(stamps) < max(cache.min_files, PARALLEL_PARSE_THRESHOLD):
        return 0
    known = cache.load_stamps(root)
    todo = [
        relative
        for relative, stamp in stamps.items()
        if known.get(relative) != (stamp.size, stamp.mtime_ns, stamp.inode)
    ]
    if len(todo) < PARALLEL_PARSE_THRESHOLD:
        return 0  # a few changes: each worker parses them faster than a pool starts
    entries = cache.load(root) if len(todo) < len(stamps) else {}
    workers = workers if workers is not None else (os.cpu_count() or 1)
    try:
        encoded = [
            item
            for blob in _parse_in_processes(str(root), todo, workers)
            for item in pickle.loads(blob)
        ]
    except Exception as error:
        log.warning("parallel parse unavailable (%s); workers will parse", error)
        return 0
    fresh: dict[str, parsecache.Entry] = {}
    parsed = dict(zip(todo, encoded, strict=True))
    for relative, stamp in stamps.items():
        value = (
            parsed[relative] if relative in parsed else entries.get(relative, (0, 0, 0, None))[3]
        )
        if value is not None:  # (a file the cache lost meanwhile is left to the workers)
            fresh[relative] = (stamp.size, stamp.mtime_ns, stamp.inode, value)
    cache.save(root, fresh)
    return len(todo)


def prime_in_subprocess(root: str | os.PathLike[str]) -> None:
    """`prime_parse_cache` in a short-lived child, so the server's parent process
    never holds the catalog itself; failures only cost the workers time."""
    try:
        method = "fork" if threading.active_count() == 1 else "spawn"
        child = multiprocessing.get_context(method).Process(
            target=prime_parse_cache, args=(str(root),), name="feedservice-prime", daemon=False
        )
        child.start()
        child.join()
    except Exception as error:  # pragma: no cover - platform without processes
        log.warning("could not prime the parse cache: %s", error)
