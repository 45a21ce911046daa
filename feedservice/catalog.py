"""Articles + config → feeds. Pure: the same entries and config always give the same catalog.

The catalog works on `Listed` articles (an Entry, or the store's row of a file): the few
fields of an article that decide which feeds hold it and where (the full article stays in
the store until a page is rendered).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from feedservice.ingest.clean import domain_name, slugify, utc_micros
from feedservice.ingest.problem import Problem, display_path
from feedservice.settings import ALL_TOPICS, BRAND_KEYS

TOPICS = "topics"
FEEDS = "feeds"
PROVIDERS = "providers"


class Listed(Protocol):
    """What the catalog needs of one article: an `Entry`, or the store's row of its file."""

    @property
    def source(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def sort(self) -> int: ...
    @property
    def topics(self) -> tuple[str, ...]: ...
    @property
    def quality(self) -> int | None: ...
    @property
    def draft(self) -> bool: ...
    @property
    def revision(self) -> str: ...
    @property
    def expires(self) -> int | None: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def order(self) -> tuple[int, str]: ...


class Entry(NamedTuple):
    """What the catalog needs of one article, as parsing sends it between processes."""

    source: str  # the seed file, relative to the seed directory
    identity: str
    sort: int  # minus the publish time in microseconds: ascending is newest first
    topics: tuple[str, ...]
    quality: int | None
    draft: bool
    revision: str  # a digest of everything the article publishes
    expires: int | None = None  # µs: out of every feed from then (Hugo's expiryDate)
    provider: str | None = None  # the provider's domain (clean.domain_name): its own feed

    @property
    def order(self) -> tuple[int, str]:
        """Newest first; ties by identity, so order never depends on I/O."""
        return (self.sort, self.identity)


_NEWEST_FIRST = operator.attrgetter("sort", "identity")  # Entry.order, in C
_TOPICS = operator.attrgetter("topics")


@dataclass(frozen=True)
class Feed:
    """A feed: its settings and which of the catalog's articles it holds. It keeps their
    positions, not the articles: thousands of feeds over the same articles then cost
    little, and the loader packs their members straight from positions."""

    kind: str  # TOPICS, FEEDS or PROVIDERS
    name: str  # topic slug or configured feed name
    title: str
    description: str
    limit: int
    articles: tuple[Listed, ...]  # the catalog's, newest first (every feed shares them)
    positions: Sequence[int]  # ascending: the feed's articles, newest first
    content: str = "full"  # or "summary": whether items carry their full content
    brand: Mapping[str, str] = field(default_factory=dict)  # icon, logo, language, author

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def entries(self) -> tuple[Listed, ...]:
        return tuple(map(self.articles.__getitem__, self.positions))

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(len(self.positions) / self.limit))

    def page(self, number: int) -> tuple[Listed, ...]:
        start = (number - 1) * self.limit
        return tuple(map(self.articles.__getitem__, self.positions[start : start + self.limit]))

    def meta(self) -> dict[str, Any]:
        """What renderers need of the feed itself (the store keeps it per feed)."""
        positions = self.positions
        return {
            "kind": self.kind,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "limit": self.limit,
            "count": len(positions),
            "newest": -self.articles[positions[0]].sort if positions else None,
            "content": self.content,
            **self.brand,
        }

    def fingerprint(self, number: int, site: Mapping[str, Any], newest: int | None) -> str:
        """Everything that can change page `number`'s bytes, in any format: site and feed
        settings, paging, and the page's items' revisions."""
        parts = [repr(sorted(site.items())), repr(sorted(self.meta().items())), str(number)]
        if not self.positions:
            parts.append(str(newest))  # an empty feed is dated by the catalog's newest article
        parts.extend(entry.revision for entry in self.page(number))
        digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Catalog:
    articles: tuple[Listed, ...]  # published, de-duplicated, newest first
    feeds: Mapping[str, Feed]  # by key: `topics/ai`, `feeds/all`
    duplicates: Mapping[str, str] = field(default_factory=dict)  # loser source → winner
    drafts: frozenset[str] = frozenset()
    warnings: tuple[Problem, ...] = ()
    scheduled: Mapping[str, int] = field(default_factory=dict)  # source → publish µs, soonest first
    expired: Mapping[str, int] = field(default_factory=dict)  # source → expiry µs
    next_due: int | None = None  # µs: when the next scheduled article or expiry falls due
    config_warnings: tuple[Problem, ...] = ()  # configured topics that match no article

    @functools.cached_property
    def identities(self) -> frozenset[str]:
        """The published articles' identities."""
        return frozenset(entry.identity for entry in self.articles)

    def of_kind(self, kind: str) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feed.kind == kind]

    @property
    def newest(self) -> int | None:
        """The newest article's sort value: an empty feed's date, never 'now'."""
        return self.articles[0].sort if self.articles else None


def build_catalog(entries: Iterable[Listed], config: Any, now: int | None = None) -> Catalog:
    """Published, de-duplicated articles, newest first, with every feed they imply. `now`
    (µs) holds back articles due later and takes out expired ones; None: no clock."""
    entries = list(entries)
    drafts = {entry.source for entry in entries if entry.draft}
    hold = config.future == "schedule"
    winner_of: dict[str, Listed] = {}
    losers: list[Listed] = []
    scheduled: list[Listed] = []
    expired: dict[str, int] = {}
    expiries: list[int] = []
    for entry in entries:
        if entry.draft:
            continue
        if now is not None and entry.expires is not None:
            if entry.expires <= now:
                expired[entry.source] = entry.expires
                continue
            expiries.append(entry.expires)
        if now is not None and hold and -entry.sort > now:
            scheduled.append(entry)
            continue
        other = winner_of.setdefault(entry.identity, entry)
        if other is not entry:  # newest publish date wins, then the first path: deterministic
            if (entry.sort, entry.source) < (other.sort, other.source):
                winner_of[entry.identity], entry = entry, other
            losers.append(entry)
    duplicates: dict[str, str] = {}
    warnings: list[Problem] = []
    for loser in losers:
        winner = winner_of[loser.identity].source
        duplicates[loser.source] = winner
        message = (
            f"duplicate of {display_path(winner)} (same link {loser.identity}); that file is served"
        )
        warnings.append(Problem(display_path(loser.source), "webUrl", message, fatal=False))
    winners = sorted(winner_of.values(), key=_NEWEST_FIRST)
    articles = tuple(winners)
    topic_feeds, positions = _topic_feeds(articles, config)
    index = _Index(articles, positions)
    feeds: dict[str, Feed] = {}
    for spec in config.feeds:
        feed = _configured_feed(spec, index)
        feeds[feed.key] = feed
    for feed in (*topic_feeds, *_provider_feeds(articles, config)):
        feeds[feed.key] = feed
    warnings.sort(key=lambda problem: (problem.source, problem.message))
    scheduled.sort(key=_NEWEST_FIRST, reverse=True)
    due = min([-entry.sort for entry in scheduled[:1]] + expiries, default=None)
    known = set(positions).union(*(map(slugify, entry.topics) for entry in scheduled))
    return Catalog(
        articles, feeds, duplicates, frozenset(drafts), tuple(warnings),
        {entry.source: -entry.sort for entry in scheduled}, expired, due,
        _unmatched(config, known),
    )  # fmt: skip


def _unmatched(config: Any, known: set[str]) -> tuple[Problem, ...]:
    """Configured topics and exclusions that no article has (usually a typo)."""
    named = [
        (f"feeds[{spec.name}].{key}", topic)
        for spec in config.feeds
        for key in ("topics", "exclude_topics")
        for topic in getattr(spec, key)
    ]
    named += [(f"topics[{topic}]", topic) for topic in config.topics or {}]
    return tuple(
        Problem("", key, f"{topic!r} matches no article (a typo?)", fatal=False)
        for key, topic in named if topic != ALL_TOPICS and slugify(topic) not in known
    )  # fmt: skip


def why_not(spec: Any, entry: Listed) -> tuple[str, str] | None:
    """Which of a configured feed's rules keeps this published article out, and why in
    words; None if none does."""
    return _topic_rule(spec, entry.topics) or _quality_rule(spec, entry.quality)


def _topic_rule(spec: Any, topics: tuple[str, ...]) -> tuple[str, str] | None:
    found = {slugify(topic) for topic in topics}
    wanted = {slugify(topic) for topic in spec.topics}
    if ALL_TOPICS not in spec.topics and wanted.isdisjoint(found):
        carried = ", ".join(spec.topics)
        return "topics", f"none of its topics ({', '.join(topics) or 'none'}) is in {carried}"
    excluded = sorted(found & {slugify(topic) for topic in spec.exclude_topics})
    return ("exclude_topics", f"its topic {excluded[0]!r} is excluded") if excluded else None


def _quality_rule(spec: Any, quality: int | None) -> tuple[str, str] | None:
    if spec.min_quality is not None and (quality or 0) < spec.min_quality:
        reason = f"its quality {quality or 0} is below the feed's min_quality {spec.min_quality}"
        return "min_quality", reason
    return None


class _Index:
    """The published articles by position (0 is the newest), per topic slug and by
    quality: a configured feed is then a few set operations done in C, so thousands of
    feeds over tens of thousands of articles build in well under a second."""

    def __init__(self, articles: tuple[Listed, ...], positions: dict[str, list[int]]) -> None:
        self.articles = articles
        self.positions = positions
        self.all_positions = range(len(articles))
        self.everything = frozenset(self.all_positions)
        self._by_quality = sorted(range(len(articles)), key=lambda p: -(articles[p].quality or 0))
        self._minus_quality = [-(articles[p].quality or 0) for p in self._by_quality]
        self._at_least: dict[int, frozenset[int]] = {}

    def with_topics(self, topics: Iterable[str]) -> set[int]:
        return set().union(*(self.positions.get(slugify(topic), ()) for topic in topics))

    def at_least(self, quality: int) -> frozenset[int]:
        """The positions whose quality (missing counts as 0) is `quality` or more."""
        found = self._at_least.get(quality)
        if found is None:
            count = bisect.bisect_right(self._minus_quality, -quality)
            found = self._at_least[quality] = frozenset(self._by_quality[:count])
        return found


def _configured_feed(spec: Any, index: _Index) -> Feed:
    """The articles `why_not` lets in, newest first."""
    chosen: Set[int] = (
        index.everything if ALL_TOPICS in spec.topics else index.with_topics(spec.topics)
    )
    if spec.min_quality is not None:
        chosen = chosen & index.at_least(spec.min_quality)
    if spec.exclude_topics:
        chosen = chosen - index.with_topics(spec.exclude_topics)
    positions = index.all_positions if chosen is index.everything else sorted(chosen)
    brand = {key: getattr(spec, key) for key in BRAND_KEYS if getattr(spec, key)}
    return Feed(
        FEEDS,
        spec.name,
        spec.title,
        spec.description,
        spec.limit,
        index.articles,
        positions,
        content=spec.content,
        brand=brand,
    )


def _topic_feeds(
    articles: tuple[Listed, ...], config: Any
) -> tuple[list[Feed], dict[str, list[int]]]:
    """A feed per topic slug, and each slug's article positions."""
    with_topics: dict[tuple[str, ...], list[int]] = defaultdict(list)  # topic lists repeat
    for position, topics in enumerate(map(_TOPICS, articles)):
        with_topics[topics].append(position)
    positions: dict[str, list[int]] = defaultdict(list)
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for topics, members in with_topics.items():
        slugs = {}
        for topic in topics:
            slug = slugify(topic)
            spellings[slug][topic] += len(members)
            slugs[slug] = True
        for slug in slugs:  # (two spellings of one topic: the article is there once)
            positions[slug] += members
    for members in positions.values():
        members.sort()  # (sorted runs, one per topic list: a merge)
    feeds = []
    brands = {slugify(name): brand for name, brand in (config.topics or {}).items()}
    for slug in sorted(positions):
        # Names that share a slug share a feed; the most used spelling names it.
        brand = dict(brands.get(slug, {}))
        name = (
            brand.pop("title", None)
            or min(spellings[slug].items(), key=lambda item: (-item[1], item[0]))[0]
        )
        description = brand.pop("description", None) or f"Articles about {name} — {config.title}"
        limit = config.topic_limit
        feeds.append(
            Feed(TOPICS, slug, name, description, limit, articles, positions[slug], brand=brand)
        )
    return feeds, positions


def _provider_feeds(articles: tuple[Listed, ...], config: Any) -> list[Feed]:
    """A feed per provider domain, titled by the provider's most used name."""
    positions: dict[str, list[int]] = defaultdict(list)
    for position, entry in enumerate(articles):
        if entry.provider:
            positions[entry.provider.partition(" ")[0]].append(position)
    names: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in articles:
        if entry.provider:
            domain, _, name = entry.provider.partition(" ")
            names[domain][name or domain] += 1
    feeds = []
    for domain in sorted(positions):
        name = min(names[domain].items(), key=lambda item: (-item[1], item[0]))[0]
        description = f"Articles from {name} ({domain}) — {config.title}"
        feed = Feed(PROVIDERS, domain, name, description, config.topic_limit, articles,
                    positions[domain])  # fmt: skip
        feeds.append(feed)
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
        expires=utc_micros(article.expires) if article.expires else None,
        provider=_provider_of(article),
    )


def _provider_of(article: Any) -> str | None:
    """`<domain> <name>`: the domain names the feed, the name titles it."""
    provider = article.provider
    domain = domain_name(provider.domain) if provider and provider.domain else None
    return f"{domain} {provider.name}" if domain else None
