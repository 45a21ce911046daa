"""Articles → an immutable catalog snapshot, and the incremental seed store behind it.

`build_catalog` is pure: the same articles and config always give the same
snapshot. `SeedStore` is the I/O edge: it re-reads only files whose size, mtime
or inode changed, and keeps the last good version of a file that turns bad.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from feedservice.articles import Article, Problem, parse_seed, slugify
from feedservice.config import Config, FeedSpec
from feedservice.seeds import FileStamp, SeedError, display_path, read_seed, scan

TOPIC_KIND = "topics"
CONFIGURED_KIND = "feeds"
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


def _configured_feed(spec: FeedSpec, articles: tuple[Article, ...]) -> Feed:
    wanted = {slugify(topic) for topic in spec.topics}
    excluded = {slugify(topic) for topic in spec.exclude_topics}

    def carries(article: Article) -> bool:
        slugs = {slugify(topic) for topic in article.topics}
        if not spec.all_topics and not slugs & wanted:
            return False
        if slugs & excluded:
            return False
        return spec.min_quality is None or (article.quality or 0) >= spec.min_quality

    items = tuple(article for article in articles if carries(article))
    return Feed(CONFIGURED_KIND, spec.name, spec.title, spec.description, items, spec.limit)


def _topic_feeds(articles: tuple[Article, ...], config: Config) -> list[Feed]:
    members: dict[str, list[Article]] = defaultdict(list)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for article in articles:
        for topic in article.topics:
            slug = slugify(topic)
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
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class ReloadStats:
    added: int = 0
    changed: int = 0
    removed: int = 0
    changed_sources: frozenset[str] = frozenset()

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


def _load_chunk(
    root: str, relatives: list[str]
) -> list[tuple[Article | None, tuple[Problem, ...]]]:
    return [load_seed_file(root, relative) for relative in relatives]


class SeedStore:
    """The seed directory as last read: one state per file, refreshed incrementally."""

    def __init__(self, root: str | os.PathLike[str], workers: int | None = None) -> None:
        self.root = Path(root)
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._files: dict[str, _FileState] = {}
        self._scan_problems: list[Problem] = []

    def refresh(self) -> ReloadStats:
        """Re-scan; parse only new or changed files; drop deleted ones."""
        stamps, scan_errors = scan(self.root)
        self._scan_problems = [Problem.from_error(error) for error in scan_errors]
        removed = [relative for relative in self._files if relative not in stamps]
        for relative in removed:
            del self._files[relative]
        todo = [
            relative
            for relative, stamp in stamps.items()
            if relative not in self._files or self._files[relative].stamp != stamp
        ]
        added = sum(1 for relative in todo if relative not in self._files)
        for relative, (article, problems) in zip(todo, self._parse_all(todo), strict=True):
            previous = self._files.get(relative)
            if article is None and previous is not None and previous.article is not None:
                # A good file turned bad (often a half-written save): keep serving
                # the last good version until the file is fixed or deleted.
                problems = tuple(
                    Problem(
                        p.source,
                        p.field,
                        p.message + "; serving the last good version",
                        p.line,
                        p.fatal,
                    )
                    for p in problems
                )
                article = previous.article
            self._files[relative] = _FileState(stamps[relative], article, problems)
        return ReloadStats(
            added=added,
            changed=len(todo) - added,
            removed=len(removed),
            changed_sources=frozenset(display_path(r) for r in [*todo, *removed]),
        )

    def _parse_all(self, relatives: list[str]) -> list[tuple[Article | None, tuple[Problem, ...]]]:
        root = str(self.root)
        if len(relatives) < PARALLEL_PARSE_THRESHOLD or self.workers < 2:
            return _load_chunk(root, relatives)
        size = math.ceil(len(relatives) / (self.workers * 4))
        chunks = [relatives[start : start + size] for start in range(0, len(relatives), size)]
        with ProcessPoolExecutor(max_workers=self.workers) as pool:
            results = pool.map(_load_chunk, [root] * len(chunks), chunks)
            return [item for chunk in results for item in chunk]

    def articles(self) -> list[Article]:
        return [state.article for state in self._files.values() if state.article is not None]

    def problems(self) -> list[Problem]:
        found = list(self._scan_problems)
        for state in self._files.values():
            found.extend(state.problems)
        return found

    def __len__(self) -> int:
        return len(self._files)
