"""Articles → an immutable catalog snapshot, and the incremental seed store behind it.

`build_catalog` is pure: the same articles and config always give the same
snapshot. `SeedStore` is the I/O edge: it re-reads only files whose size, mtime
or inode changed, and keeps the last good version of a file that turns bad.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
import multiprocessing
import operator
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from feedservice import compact, parsecache
from feedservice.articles import Article, Problem, parse_seed, slugify
from feedservice.compact import StoredArticle
from feedservice.config import Config, FeedSpec
from feedservice.seeds import (
    FileStamp,
    ScanInChild,
    SeedError,
    display_path,
    read_seed_stamped,
    scan,
    stamp_mtime_ns,
)

TOPIC_KIND = "topics"
CONFIGURED_KIND = "feeds"
log = logging.getLogger("feedservice")
JOURNAL_MAX_FILES = 500  # more changes at once: rewrite the parse cache instead
JOURNAL_MAX_BYTES = 8 << 20  # a journal this large is folded into a rewrite
PARALLEL_PARSE_THRESHOLD = 2000  # below this, process start-up costs more than it saves
MIN_CHUNK, MAX_CHUNK = 50, 1000  # files per pool task (see _chunk_sizes)
SCAN_BESIDE_LOAD_BYTES = 1 << 20  # a smaller parse cache loads faster than a fork pays off


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed: its articles newest first, paged by `limit`."""

    kind: str  # TOPIC_KIND or CONFIGURED_KIND
    name: str  # topic slug or configured feed name
    title: str
    description: str
    items: tuple[StoredArticle, ...]
    limit: int

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.name}"

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.items) / self.limit))

    def page(self, number: int) -> tuple[StoredArticle, ...]:
        start = (number - 1) * self.limit
        return self.items[start : start + self.limit]

    @property
    def newest(self) -> datetime | None:
        return self.items[0].published if self.items else None


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot: what every request of one reload generation sees."""

    config: Config
    articles: tuple[StoredArticle, ...]  # published, de-duplicated, newest first
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
    candidates: Iterable[StoredArticle | Article], config: Config, problems: Iterable[Problem] = ()
) -> Catalog:
    """Published, de-duplicated articles, newest first, with every feed they imply.

    Takes the store's compact articles; full Articles (tools, tests) are stored first."""
    drafts: set[str] = set()
    by_identity: dict[str, StoredArticle] = {}
    groups: dict[str, list[StoredArticle]] = {}  # identities that more than one file claims
    for article in candidates:
        if isinstance(article, Article):
            article = compact.store(article)
        if article.is_draft:
            drafts.add(article.source)
            continue
        first = by_identity.setdefault(article.identity, article)
        if first is not article:
            groups.setdefault(article.identity, [first]).append(article)

    duplicates: dict[str, str] = {}
    found = list(problems)
    for identity, group in groups.items():
        # Newest publish date wins, then the lexically first path: deterministic.
        group.sort(key=lambda article: (-article.published.timestamp(), article.source))
        winner = by_identity[identity] = group[0]
        for loser in group[1:]:
            duplicates[loser.source] = winner.source
            found.append(
                Problem(
                    loser.source,
                    "webUrl",
                    f"duplicate of {winner.source} (same link {identity}); that file is served",
                    fatal=False,
                )
            )
    winners = list(by_identity.values())
    # Newest first, ties by identity (StoredArticle.sort_key), as two stable sorts; by
    # timestamp, because comparing datetimes with different tzinfo objects is slow.
    winners.sort(key=_IDENTITY)
    winners.sort(key=_timestamp, reverse=True)
    articles = tuple(winners)

    feeds: dict[tuple[str, str], Feed] = {}
    # Topic tuples are shared between articles: slug each distinct one once, for every feed,
    # and look them up by object id (hashing 100k tuples once per feed is what costs).
    topic_ids = list(map(id, map(_TOPICS, articles)))
    slugs: Slugs = {
        id(t): _slug_tuple(t) for t in {id(t): t for t in map(_TOPICS, articles)}.values()
    }
    for spec in config.feeds:
        feeds[(CONFIGURED_KIND, spec.name)] = _configured_feed(spec, articles, topic_ids, slugs)
    for feed in _topic_feeds(articles, config, topic_ids, slugs):
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


_IDENTITY = operator.attrgetter("identity")
_TOPICS = operator.attrgetter("topics")
_QUALITY = operator.attrgetter("quality")


def _timestamp(article: StoredArticle) -> float:
    return article.published.timestamp()


Slugs = dict[int, tuple[str, ...]]  # id of a topic tuple → its slugs, each once


def _slug_tuple(topics: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(map(slugify, topics)))  # names that share a slug share a feed


def _configured_feed(
    spec: FeedSpec, articles: tuple[StoredArticle, ...], topic_ids: list[int], slugs: Slugs
) -> Feed:
    wanted = {slugify(topic) for topic in spec.topics}
    excluded = {slugify(topic) for topic in spec.exclude_topics}
    fits = {
        topics: (spec.all_topics or not wanted.isdisjoint(found)) and excluded.isdisjoint(found)
        for topics, found in slugs.items()
    }
    selected = map(fits.__getitem__, topic_ids)
    minimum = spec.min_quality
    if minimum is not None:
        selected = (
            fit and (quality or 0) >= minimum
            for fit, quality in zip(selected, map(_QUALITY, articles), strict=True)
        )
    items = tuple(itertools.compress(articles, selected))
    return Feed(CONFIGURED_KIND, spec.name, spec.title, spec.description, items, spec.limit)


def _topic_feeds(
    articles: tuple[StoredArticle, ...], config: Config, topic_ids: list[int], slugs: Slugs
) -> list[Feed]:
    members: dict[str, list[StoredArticle]] = defaultdict(list)
    for article, topics in zip(articles, topic_ids, strict=True):
        for slug in slugs[topics]:
            members[slug].append(article)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for topics, count in Counter(map(_TOPICS, articles)).items():
        for topic in topics:
            spellings[slugify(topic)][topic] += count
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


@dataclass(frozen=True, slots=True)
class ReloadStats:
    added: int = 0
    changed: int = 0
    removed: int = 0
    changed_sources: frozenset[str] = frozenset()  # (not filled in on a whole-cache load)
    parsed: int = 0  # files actually parsed (not taken from the parse cache)
    cached: int = 0  # files taken from the persistent parse cache

    @property
    def any_change(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def load_seed_file(root: str, relative: str) -> tuple[Article | None, tuple[Problem, ...]]:
    """Read and parse one seed file; never raises for bad content. Picklable for workers."""
    _, article, problems = _load_stamped(root, relative)
    return article, problems


def _load_stamped(
    root: str, relative: str
) -> tuple[FileStamp | None, Article | None, tuple[Problem, ...]]:
    """`load_seed_file`, with the stamp of the bytes read (None if none could be)."""
    try:
        data, stamp = read_seed_stamped(root, relative)
    except SeedError as error:
        return None, None, (Problem.from_error(error),)
    try:
        parsed = parse_seed(data, display_path(relative))
    except SeedError as error:
        return stamp, None, (Problem.from_error(error),)
    return stamp, parsed.article, parsed.warnings


def parse_stored(root: str, relatives: list[str]) -> list[parsecache.ParsedFile]:
    """`load_seed_file` for each file, in the stored form, dated by the file's mtime.
    Parsing files together lets their articles be packed together (compact.store_all)."""
    loaded = [_load_stamped(root, relative) for relative in relatives]
    stored = iter(
        compact.store_all(
            # (an article always comes with the stamp of the bytes it was parsed from)
            [(article, _mtime(stamp)) for stamp, article, _ in loaded if article is not None]  # type: ignore[arg-type]
        )
    )
    return [
        (stamp, (None if article is None else next(stored), problems))
        for stamp, article, problems in loaded
    ]


def _mtime(stamp: FileStamp) -> float:
    return stamp_mtime_ns(stamp) / 1e9


def _parse_chunk(root: str, work: list[str]) -> bytes:
    """A pool worker's share: parse results, as columns (parsecache.results_to_bytes)."""
    with parsecache.paused_gc():
        return parsecache.results_to_bytes(parse_stored(root, work))


_DEFAULT = object()


class SeedStore:
    """The seed directory as last read: one state per file, refreshed incrementally.

    The first refresh takes unchanged files from the persistent parse cache
    (see parsecache.py) and parses the rest, across processes when there are
    many; later refreshes parse only files whose size, mtime or inode changed.
    Articles are held in their compact stored form (compact.py).
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
        # The state of the directory as last read, one entry per seed file:
        self._stamps: dict[str, FileStamp] = {}
        self._articles: dict[str, StoredArticle | None] = {}  # None: the file gives no article
        self._problems: dict[str, tuple[Problem, ...]] = {}  # only files that have problems
        self._carried: set[str] = set()  # files served from their last good version
        self._scan_problems: list[Problem] = []
        # `serve`'s parent turns this on: a fresh load may then use short-lived children
        # (a scan beside the parse cache load; the first render on two cores, see Service;
        # a cold load's cache write, once the first snapshot is built).
        self.use_children = False
        # `serve`'s parent turns this on too: it freezes its heap before granian forks the
        # workers anyway (server._Inherited), so the first load's objects are frozen as soon
        # as they are in. The catalog and first render then run without the cyclic GC
        # traversing a million young objects (a full collection there took ~70 ms at 100k).
        self.freeze_first_load = False
        self.cold_save: parsecache.SaveInChild | None = None  # the cold load's save, in a child
        self._cold_save_due = False  # a cold load's save waits for start_cold_save()
        self._share = parsecache.Interner()
        self._saved_once = False
        self._save_guard = threading.Lock()
        self._pending: parsecache.Contents | None = None
        self._saver: threading.Thread | None = None

    def refresh(self) -> ReloadStats:
        """Re-scan; parse only new or changed files; drop deleted ones."""
        first = not self._stamps
        stats = self._refresh()
        if first and self.freeze_first_load:
            gc.freeze()
        return stats

    def _refresh(self) -> ReloadStats:
        previous = self._stamps
        saved = None  # the parse cache file: only a fresh store can gain from it
        if previous:
            stamps, scan_errors = scan(self.root)
        else:
            stamps, scan_errors, saved = self._first_scan()
        self._scan_problems = [Problem.from_error(error) for error in scan_errors]
        if stamps == previous:  # the common case, compared in C: nothing changed
            return ReloadStats()
        if not previous and self._take_whole(saved, stamps):  # an unchanged directory
            return ReloadStats(added=len(stamps), cached=len(stamps))
        articles, problems, carried = self._articles, self._problems, self._carried
        removed = [relative for relative in previous if relative not in stamps]
        for relative in removed:
            del articles[relative]
            problems.pop(relative, None)
            carried.discard(relative)
        todo = [relative for relative, stamp in stamps.items() if previous.get(relative) != stamp]
        added = sum(1 for relative in todo if relative not in articles)
        results, cached = self._results(todo, stamps, saved)
        for relative, (article, found) in zip(todo, results, strict=True):
            carried.discard(relative)
            if article is None:
                last = articles.get(relative)
                if last is not None:
                    # A good file turned bad (often a half-written save): keep serving
                    # the last good version until the file is fixed or deleted.
                    article = last
                    carried.add(relative)
            articles[relative] = article
            if found:
                problems[relative] = found
            else:
                problems.pop(relative, None)
        self._stamps = stamps
        parsed = len(todo) - cached
        if self.cache is not None and (parsed or removed):
            self._save_cache(todo, removed, cold=not previous and not cached)
        return ReloadStats(
            added=added,
            changed=len(todo) - added,
            removed=len(removed),
            changed_sources=frozenset(display_path(r) for r in [*todo, *removed]),
            parsed=parsed,
            cached=cached,
        )

    def _first_scan(
        self,
    ) -> tuple[dict[str, FileStamp], list[SeedError], parsecache.Contents | None]:
        """A fresh store's scan and what the parse cache holds; side by side (the scan in
        a child) when that pays off."""
        if not self._scan_beside_load():
            if self._nothing_saved():  # every file will be read: take stamps from the reads
                stamps, errors = scan(self.root, stat_files=False)
                return stamps, errors, None
            stamps, errors = scan(self.root)
            return stamps, errors, self._saved_contents(stamps)
        assert self.cache is not None  # (_scan_beside_load checked)
        scanning = ScanInChild(self.root)
        try:
            saved = self.cache.load(self.root)
        finally:
            stamps, errors = scanning.result()
        return stamps, errors, saved if self._cache_applies(stamps) else None

    def _scan_beside_load(self) -> bool:
        """Whether a fresh load should scan in a child while it loads the parse cache:
        only in `serve`'s parent (use_children), and only when the cache is large
        enough for the overlap to outweigh a fork."""
        if not self.use_children or self.cache is None:
            return False
        try:
            return self.cache.path.stat().st_size >= SCAN_BESIDE_LOAD_BYTES
        except OSError:
            return False

    def _nothing_saved(self) -> bool:
        """No parse cache file to compare stamps with: a cold load."""
        return self.cache is None or not self.cache.path.exists()

    def _cache_applies(self, stamps: dict[str, FileStamp]) -> bool:
        """A directory this small (or no cache at all) is parsed afresh."""
        return self.cache is not None and len(stamps) >= self.cache.min_files

    def _saved_contents(self, stamps: dict[str, FileStamp]) -> parsecache.Contents | None:
        if self.cache is None or not self._cache_applies(stamps):
            return None
        return self.cache.load(self.root)

    def _take_whole(self, saved: parsecache.Contents | None, stamps: dict[str, FileStamp]) -> bool:
        """A fresh store on an unchanged directory: take the cache file as it is.

        The common warm start: one bulk load, no per-file work and no temporaries
        (which would only fragment the heap of a long-lived server process)."""
        if saved is None or saved.articles is None or len(saved.stamps) != len(stamps):
            return False
        known = dict(zip(saved.relatives, saved.stamps, strict=True))
        if known != stamps:
            return False
        self._stamps = known  # (its path strings are the ones the articles share)
        self._articles = dict(zip(saved.relatives, saved.articles, strict=True))
        self._problems = dict(saved.problems or {})
        return True

    def _results(
        self,
        todo: list[str],
        stamps: dict[str, FileStamp],
        saved: parsecache.Contents | None,
    ) -> tuple[list[parsecache.Result], int]:
        """Parse results for `todo`: from the parse cache where the stamp matches."""
        entries = saved.entries() if saved is not None else {}
        results: list[parsecache.Result | None] = []
        missing: list[str] = []
        for relative in todo:
            entry = entries.get(relative)
            if entry is not None and entry[0] == stamps[relative]:
                results.append(entry[1])
            else:
                results.append(None)
                missing.append(relative)
        parsed = iter(self._parse_all(missing))
        found: list[parsecache.Result] = []
        for relative, result in zip(todo, results, strict=True):
            if result is None:
                stamp, result = next(parsed)
                if stamp is not None:
                    # The stamp of what was read (an UNSTAMPED file's first): if the file
                    # changed after the scan, the next reload neither misses nor re-reads it.
                    stamps[relative] = stamp
            found.append(result)
        return found, len(todo) - len(missing)

    def _parse_all(self, work: list[str]) -> list[parsecache.ParsedFile]:
        """Parse results for `work`, in its order: across processes when there are many
        files, else here. Calls `self._advance(n)` as files are done (progress bars)."""
        root = str(self.root)
        if len(work) >= PARALLEL_PARSE_THRESHOLD and self.workers > 1:
            try:
                return self._parse_across_processes(root, work)
            except Exception as error:  # no pool here (daemonic worker, no /dev/shm, ...)
                log.warning("parallel parse unavailable (%s); parsing in one process", error)
        results: list[parsecache.ParsedFile] = []
        for start in range(0, len(work), compact.PACK_GROUP):
            batch = work[start : start + compact.PACK_GROUP]
            results.extend(self._taken(batch, parse_stored(root, batch)))
            self._advance(len(batch))
        return results

    def _taken(
        self, relatives: list[str], parsed: list[parsecache.ParsedFile]
    ) -> Iterator[parsecache.ParsedFile]:
        """Parse results as this store keeps them: equal values shared (Interner)."""
        share = self._share
        for relative, (stamp, (article, problems)) in zip(relatives, parsed, strict=True):
            yield stamp, (share(article, relative) if article is not None else None, problems)

    def _parse_across_processes(self, root: str, work: list[str]) -> list[parsecache.ParsedFile]:
        """Each chunk's results are taken in as soon as a pool worker finishes it, so
        loading them overlaps the parse and the last result is ready right after it.

        The cyclic GC is paused from the first result to the last: what is taken in makes
        no cycles, and with GC on, the growing heap's full collections cost this process
        ~1 s of CPU at 100k files, taken from the pool. (Not from before the first result:
        the pool's workers, forked when it starts, must not inherit a paused GC.)"""
        results: list[parsecache.ParsedFile] = []
        collecting = gc.isenabled()
        try:
            for blob, relatives in _parse_in_processes(root, work, self.workers):
                gc.disable()
                results.extend(parsecache.results_from_bytes(blob, relatives, self._share))
                self._advance(len(relatives))
        finally:
            if collecting:
                gc.enable()
        if len(results) != len(work):
            raise ValueError(f"{len(results)} results for {len(work)} files")
        return results

    def _advance(self, count: int) -> None:
        """`count` more files parsed: a hook for progress bars (progress.py)."""

    def _save_cache(self, changed: list[str], removed: list[str], *, cold: bool) -> None:
        """A cold load saves at once (a restart right after it is warm). A few changes
        are appended to the cache's journal: one small write, proportional to the
        change. Otherwise (many changes, or a journal grown large) the whole cache is
        rewritten in the background, so a reload never waits for it. Every write is
        atomic or checksummed, so an interrupted one is harmless."""
        assert self.cache is not None
        if cold and not self._saved_once:
            self._saved_once = True
            if self.use_children:  # `serve`: written by a child once the snapshot is built
                self._cold_save_due = True
            else:
                self.cache.save(self.root, self._contents())
            return
        if (
            len(changed) + len(removed) <= JOURNAL_MAX_FILES
            and self.cache.journal_bytes() < JOURNAL_MAX_BYTES
            and self.cache.append(self.root, self._changes(changed, removed))
        ):
            return
        with self._save_guard:
            self._pending = self._contents()  # a consistent copy of the current state
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
                self.cache.save(self.root, pending)

    def start_cold_save(self) -> None:
        """With `use_children`, a cold load's parse cache is written only when this is
        called (`Service` calls it once the first snapshot is built), by a forked child
        on another core: the catalog and the first render need every core until then."""
        if self._cold_save_due and self.cache is not None:
            self._cold_save_due = False
            self.cold_save = parsecache.SaveInChild(self.cache, self.root, self._contents())

    def flush_cache(self) -> None:
        """Save what is due and wait for background saves (tests, and a clean shutdown)."""
        self.start_cold_save()
        saver = self._saver
        if saver is not None:
            saver.join()
        if self.cold_save is not None:
            self.cold_save.wait()

    def _changes(self, changed: list[str], removed: list[str]) -> parsecache.Changes:
        """The journal record for these files: as `_contents` would save them."""
        found: parsecache.Changes = dict.fromkeys(removed)
        for relative in changed:
            article = None if relative in self._carried else self._articles[relative]
            found[relative] = (self._stamps[relative], article, self._problems.get(relative, ()))
        return found

    def _contents(self) -> parsecache.Contents:
        """The state as the cache stores it: a carried last good version is not what the
        file gives, so a restart must find the file bad, as a fresh parse would."""
        relatives = list(self._articles)
        stamps = self._stamps
        carried = self._carried
        articles = self._articles
        return parsecache.Contents(
            relatives,
            [stamps[relative] for relative in relatives],
            [None if relative in carried else articles[relative] for relative in relatives],
            dict(self._problems),
        )

    def reread(self, source: str) -> Article | None:
        """The full Article a file gives now, by its `source` (tools such as `explain`;
        the store keeps no draft content)."""
        for relative in self._articles:
            if display_path(relative) == source:
                return load_seed_file(str(self.root), relative)[0]
        return None

    def articles(self) -> list[StoredArticle]:
        return [article for article in self._articles.values() if article is not None]

    def problems(self) -> list[Problem]:
        found = list(self._scan_problems)
        for relative, problems in self._problems.items():
            if relative in self._carried:
                found.extend(
                    Problem(
                        p.source,
                        p.field,
                        p.message + "; serving the last good version",
                        p.line,
                        p.fatal,
                    )
                    for p in problems
                )
            else:
                found.extend(problems)
        return found

    def __len__(self) -> int:
        return len(self._articles)


def _parse_in_processes(
    root: str, work: list[str], workers: int
) -> Iterator[tuple[bytes, list[str]]]:
    """Parse across processes, yielding each chunk's results (as bytes) with its files, in
    order, as soon as it is done, so the caller's loading overlaps the parse. Raises if no
    process pool can be started here."""
    # fork is cheapest but unsafe once threads exist (scheduler, server threads).
    method = "fork" if threading.active_count() == 1 else "forkserver"
    chunks = []
    start = 0
    for size in _chunk_sizes(len(work), workers):
        chunks.append(work[start : start + size])
        start += size
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from zip(pool.map(_parse_chunk, [root] * len(chunks), chunks), chunks, strict=True)


def _chunk_sizes(total: int, workers: int) -> list[int]:
    """Chunks for `total` files: each a quarter of a worker's share of what is left,
    between MIN_CHUNK and MAX_CHUNK files. Large chunks keep the per-chunk cost small;
    ever smaller ones at the end make every worker finish at about the same time."""
    sizes = []
    remaining = total
    while remaining > 0:
        size = min(remaining, max(MIN_CHUNK, min(MAX_CHUNK, math.ceil(remaining / (workers * 4)))))
        sizes.append(size)
        remaining -= size
    return sizes
