"""Articles + config → feeds. Pure: the same entries and config always give the same catalog.

The catalog works on `Entry`s, the few fields of an article that decide which feeds
hold it and where (the full article stays in the store until a page is rendered).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from feedservice.ingest.clean import slugify, utc_micros
from feedservice.ingest.problem import Problem, display_path
from feedservice.settings import ALL_TOPICS

TOPICS = "topics"
FEEDS = "feeds"


class Entry(NamedTuple):
    """What the catalog needs of one article (a tuple: cheap to send between processes)."""

    source: str  # the seed file, relative to the seed directory
    identity: str
    sort: int  # minus the publish time in microseconds: ascending is newest first
    topics: tuple[str, ...]
    quality: int | None
    draft: bool
    revision: str  # a digest of everything the article publishes

    @property
    def order(self) -> tuple[int, str]:
        """Newest first; ties by identity, so order never depends on I/O."""
        return (self.sort, self.identity)


@dataclass(frozen=True)
class Feed:
    kind: str  # TOPICS or FEEDS
    name: str  # topic slug or configured feed name
    title: str
    description: str
    limit: int
    entries: tuple[Entry, ...]  # newest first

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.entries) / self.limit))

    def page(self, number: int) -> tuple[Entry, ...]:
        start = (number - 1) * self.limit
        return self.entries[start : start + self.limit]

    def meta(self) -> dict[str, Any]:
        """What renderers need of the feed itself (the store keeps it per feed)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "limit": self.limit,
            "count": len(self.entries),
            "newest": -self.entries[0].sort if self.entries else None,
        }

    def fingerprint(self, number: int, site: Mapping[str, Any], newest: int | None) -> str:
        """Everything that can change page `number`'s bytes, in any format: site and feed
        settings, paging, and the page's items' revisions."""
        parts = [repr(sorted(site.items())), repr(sorted(self.meta().items())), str(number)]
        if not self.entries:
            parts.append(str(newest))  # an empty feed is dated by the catalog's newest article
        parts.extend(entry.revision for entry in self.page(number))
        digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Catalog:
    articles: tuple[Entry, ...]  # published, de-duplicated, newest first
    feeds: Mapping[str, Feed]  # by key: `topics/ai`, `feeds/all`
    duplicates: Mapping[str, str] = field(default_factory=dict)  # loser source → winner
    drafts: frozenset[str] = frozenset()
    warnings: tuple[Problem, ...] = ()

    def of_kind(self, kind: str) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feed.kind == kind]

    @property
    def newest(self) -> int | None:
        """The newest article's sort value: an empty feed's date, never 'now'."""
        return self.articles[0].sort if self.articles else None


def build_catalog(entries: Iterable[Entry], config: Any) -> Catalog:
    """Published, de-duplicated articles, newest first, with every feed they imply."""
    drafts: set[str] = set()
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.draft:
            drafts.add(entry.source)
        else:
            groups[entry.identity].append(entry)
    duplicates: dict[str, str] = {}
    warnings: list[Problem] = []
    winners: list[Entry] = []
    for identity, group in groups.items():
        if len(group) > 1:  # newest publish date wins, then the first path: deterministic
            group.sort(key=lambda entry: (entry.sort, entry.source))
            winner = display_path(group[0].source)
            message = f"duplicate of {winner} (same link {identity}); that file is served"
            for loser in group[1:]:
                duplicates[loser.source] = group[0].source
                warnings.append(Problem(display_path(loser.source), "webUrl", message, fatal=False))
        winners.append(group[0])
    winners.sort(key=lambda entry: entry.order)
    articles = tuple(winners)
    topic_feeds = _topic_feeds(articles, config)
    by_slug = {feed.name: feed.entries for feed in topic_feeds}
    feeds: dict[str, Feed] = {}
    for spec in config.feeds:
        feed = _configured_feed(spec, articles, by_slug)
        feeds[feed.key] = feed
    for feed in topic_feeds:
        feeds[feed.key] = feed
    warnings.sort(key=lambda problem: (problem.source, problem.message))
    return Catalog(articles, feeds, duplicates, frozenset(drafts), tuple(warnings))


def why_not(spec: Any, entry: Entry) -> str | None:
    """Why a configured feed's rules keep this published article out; None if they don't."""
    return _topic_rule(spec, entry.topics) or _quality_rule(spec, entry.quality)


def _topic_rule(spec: Any, topics: tuple[str, ...]) -> str | None:
    found = {slugify(topic) for topic in topics}
    wanted = {slugify(topic) for topic in spec.topics}
    if ALL_TOPICS not in spec.topics and wanted.isdisjoint(found):
        return f"none of its topics ({', '.join(topics) or 'none'}) is one the feed carries"
    excluded = sorted(found & {slugify(topic) for topic in spec.exclude_topics})
    return f"its topic {excluded[0]!r} is excluded" if excluded else None


def _quality_rule(spec: Any, quality: int | None) -> str | None:
    if spec.min_quality is not None and (quality or 0) < spec.min_quality:
        return f"its quality {quality or 0} is below the feed's min_quality {spec.min_quality}"
    return None


def _configured_feed(
    spec: Any, articles: tuple[Entry, ...], by_slug: dict[str, tuple[Entry, ...]]
) -> Feed:
    """The feed's entries, newest first. Only the articles of its topics are looked at
    (merged from the topic feeds), so thousands of narrow feeds cost what they hold."""
    if ALL_TOPICS not in spec.topics:
        wanted = dict.fromkeys(slugify(topic) for topic in spec.topics)
        lists = [by_slug.get(slug, ()) for slug in wanted]
        merged = heapq.merge(*lists, key=lambda entry: entry.order) if len(lists) > 1 else lists[0]
        articles = tuple(entry for entry, _ in itertools.groupby(merged))
    verdicts: dict[tuple[str, ...], bool] = {}  # topic lists repeat: decide each once
    carried = []
    for entry in articles:
        fits = verdicts.get(entry.topics)
        if fits is None:
            fits = verdicts[entry.topics] = _topic_rule(spec, entry.topics) is None
        if fits and _quality_rule(spec, entry.quality) is None:
            carried.append(entry)
    return Feed(FEEDS, spec.name, spec.title, spec.description, spec.limit, tuple(carried))


def _topic_feeds(articles: tuple[Entry, ...], config: Any) -> list[Feed]:
    members: dict[str, list[Entry]] = defaultdict(list)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in articles:
        for topic in entry.topics:
            slug = slugify(topic)
            spellings[slug][topic] += 1
            if not members[slug] or members[slug][-1] is not entry:
                members[slug].append(entry)
    feeds = []
    for slug in sorted(members):
        # Names that share a slug share a feed; the most used spelling names it.
        name = min(spellings[slug].items(), key=lambda item: (-item[1], item[0]))[0]
        description = f"Articles about {name} — {config.title}"
        feeds.append(
            Feed(TOPICS, slug, name, description, config.topic_limit, tuple(members[slug]))
        )
    return feeds


def entry_of(article: Any, revision: str, source: str) -> Entry:
    """The catalog's view of an Article (ingest.article) read from the file `source`."""
    return Entry(
        source=source,
        identity=article.identity,
        sort=-utc_micros(article.published),
        topics=article.topics,
        quality=article.quality,
        draft=article.is_draft,
        revision=revision,
    )
