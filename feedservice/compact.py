"""Compact stored articles: what the catalog keeps in memory for each article.

A serving process holds every published article of the seed directory, so the
per-article cost decides how far one process scales. A `StoredArticle` keeps as
plain fields only what indexing, sorting, de-duplication and caching read for
every article (identity, publish date, topics, quality, revision, source, mtime)
and the provider as a shared plain tuple; everything only a rendered page needs
(link, title, excerpt, images, related, the AMP links) is a marshalled record,
expanded back into the full `Article` when a page is rendered. Expansion is
exact: `expand()` returns an Article equal to the one that was packed. Drafts
are never rendered, so they keep no record.

The records of up to PACK_GROUP articles stored together (`store_all`) are
compressed together, into one blob that each of them refers to: zlib's cost is
mostly per call (~12 of the ~17 µs one record takes), and similar records share
their words (~240 B each in a group of 8, against ~380 B alone). The price is in
rendering: expanding one article decompresses its group (~15 µs against ~6).

A StoredArticle is a tuple: immutable, cheap to build from the parse cache and
compared in C.
"""

from __future__ import annotations

import marshal
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

from feedservice.articles import Article, Image, Provider, RelatedArticle

_COLD_FIELDS = frozenset(
    {
        "link",
        "title",
        "excerpt",
        "category",
        "kind",
        "heat",
        "images",
        "related",
        "original_url",
        "amp_url",
        "cdn_amp_url",
        "provider",
    }
)
PACK_GROUP = 8  # published articles whose records are compressed together
_SAME = 0  # a link equal to the identity (or original_url equal to the link) is not stored twice
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


ImageFields = tuple[str, int | None, int | None, str | None]
ProviderFields = tuple[str, str | None, ImageFields | None]
ColdRecord = tuple[Any, ...]


class StoredArticle(NamedTuple):
    """The catalog's form of an Article: hot fields plain, the rest packed."""

    identity: str
    published: datetime
    source: str
    is_draft: bool
    topics: tuple[str, ...]
    quality: int | None
    revision: str
    modified: float | None  # the seed file's mtime, POSIX seconds (a float is half a datetime)
    provider_fields: ProviderFields | None  # plain (shared) tuple: cheap to load and keep
    packed: bytes  # the cold fields of this article's pack group, see store_all
    slot: int = 0  # this article's record in the group

    @property
    def sort_key(self) -> tuple[float, str]:
        """Newest first; ties broken by identity so order never depends on I/O."""
        return (-self.published.timestamp(), self.identity)

    def expand(self) -> Article:
        """The full Article, for rendering. A draft is never rendered, so its cold
        fields are not kept (SeedStore.reread gives them when a tool wants them)."""
        if not self.packed:
            raise LookupError(f"{self.source}: a draft's content is not kept in memory")
        link, title, excerpt, category, kind, heat, images, related, original, amp, cdn = (
            marshal.loads(zlib.decompress(self.packed))[self.slot]
        )
        link = self.identity if link == _SAME else link
        return Article(
            identity=self.identity,
            link=link,
            title=title,
            excerpt=excerpt,
            published=self.published,
            source=self.source,
            is_draft=self.is_draft,
            topics=self.topics,
            category=category,
            kind=kind,
            quality=self.quality,
            heat=heat,
            provider=_provider(self.provider_fields),
            images=tuple([Image(*image) for image in images]),
            related=tuple([_related(*item) for item in related]),
            original_url=link if original == _SAME else original,
            amp_url=amp,
            cdn_amp_url=cdn,
            revision=self.revision,
            modified=None if self.modified is None else datetime.fromtimestamp(self.modified, UTC),
        )

    def __getattr__(self, name: str) -> Any:
        """Cold fields read one at a time (explain, tests); renderers use expand()."""
        if name in _COLD_FIELDS and self.packed:
            return getattr(self.expand(), name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")


_new_tuple = tuple.__new__  # a StoredArticle from a list of its fields, built in C
_PROVIDER, _PACKED, _SLOT = (
    StoredArticle._fields.index(name) for name in ("provider_fields", "packed", "slot")
)


def store(article: Article, modified: float | None = None) -> StoredArticle:
    """Pack one Article into its stored form; `modified` is the seed file's mtime."""
    return store_all([(article, modified)])[0]


def store_all(items: Iterable[tuple[Article, float | None]]) -> list[StoredArticle]:
    """The stored forms of many articles (each with its seed file's mtime), in order;
    each run of PACK_GROUP published ones shares one compressed blob (module docstring)."""
    rows: list[list[Any]] = []
    records: list[ColdRecord] = []
    members: list[list[Any]] = []
    for article, modified in items:
        if modified is None and article.modified is not None:
            modified = article.modified.timestamp()
        row = [
            article.identity,
            article.published,
            article.source,
            article.is_draft,
            article.topics,
            article.quality,
            article.revision,
            modified,
            None,
            b"",
            0,
        ]
        if not article.is_draft:
            row[_PROVIDER] = _provider_fields(article.provider)
            row[_SLOT] = len(records)
            records.append(cold_record(article))
            members.append(row)
            if len(records) == PACK_GROUP:
                _pack(records, members)
        rows.append(row)
    if records:
        _pack(records, members)
    return [_new_tuple(StoredArticle, row) for row in rows]


def _pack(records: list[ColdRecord], members: list[list[Any]]) -> None:
    packed = zlib.compress(marshal.dumps(records), 1)
    for row in members:
        row[_PACKED] = packed
    records.clear()
    members.clear()


def cold_record(article: Article) -> ColdRecord:
    """The fields only rendering reads, as plain (marshallable) values."""
    link = _SAME if article.link == article.identity else article.link
    original = _SAME if article.original_url == article.link else article.original_url
    return (
        link,
        article.title,
        article.excerpt,
        article.category,
        article.kind,
        article.heat,
        tuple([(i.url, i.width, i.height, i.title) for i in article.images]),
        tuple([(r.title, r.link, r.provider, _date_fields(r.published)) for r in article.related]),
        original,
        article.amp_url,
        article.cdn_amp_url,
    )


def _provider_fields(provider: Provider | None) -> ProviderFields | None:
    if provider is None:
        return None
    logo = provider.image
    logo_fields = None if logo is None else (logo.url, logo.width, logo.height, logo.title)
    return (provider.name, provider.domain, logo_fields)


def _provider(fields: ProviderFields | None) -> Provider | None:
    if fields is None:
        return None
    name, domain, logo = fields
    return Provider(name, domain, None if logo is None else Image(*logo))


def _date_fields(value: datetime | None) -> tuple[int, int, int] | None:
    """An aware datetime as (seconds, microseconds, UTC offset seconds): marshallable, exact."""
    if value is None:
        return None
    offset = value.utcoffset()
    assert offset is not None  # parse_date only returns aware datetimes
    delta = value - _UNIX_EPOCH
    return (delta.days * 86400 + delta.seconds, delta.microseconds, int(offset.total_seconds()))


def _related(
    title: str, link: str, provider: str | None, published: tuple[int, int, int] | None
) -> RelatedArticle:
    return RelatedArticle(title, link, provider, None if published is None else _date(*published))


def _date(seconds: int, microseconds: int, offset: int) -> datetime:
    zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
    return (_UNIX_EPOCH + timedelta(seconds=seconds, microseconds=microseconds)).astimezone(zone)
