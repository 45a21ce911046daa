"""Compact stored articles: what the catalog keeps in memory for each article.

A serving process holds every published article of the seed directory, so the
per-article cost decides how far one process scales. A `StoredArticle` keeps as
plain fields only what indexing, sorting, de-duplication and caching read for
every article (identity, publish date, topics, quality, revision, source, mtime)
and the provider as a shared plain tuple; everything only a rendered page needs
(link, title, excerpt, images, related, the AMP links) is one compressed,
marshalled blob, expanded back into the full `Article` when a page is rendered.
Expansion is exact: `expand()` returns an Article equal to the one that was
packed. Drafts are never rendered, so they keep no blob.

A StoredArticle is a tuple: immutable, cheap to build from the parse cache and
compared in C.
"""

from __future__ import annotations

import marshal
import zlib
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
_SAME = 0  # a link equal to the identity (or original_url equal to the link) is not stored twice
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


ImageFields = tuple[str, int | None, int | None, str | None]
ProviderFields = tuple[str, str | None, ImageFields | None]


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
    packed: bytes  # the cold fields, see pack_cold

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
            marshal.loads(zlib.decompress(self.packed))
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


def store(article: Article, modified: float | None = None) -> StoredArticle:
    """Pack an Article into its stored form; `modified` is the seed file's mtime."""
    if modified is None and article.modified is not None:
        modified = article.modified.timestamp()
    return StoredArticle(
        article.identity,
        article.published,
        article.source,
        article.is_draft,
        article.topics,
        article.quality,
        article.revision,
        modified,
        None if article.is_draft else _provider_fields(article.provider),
        b"" if article.is_draft else pack_cold(article),
    )


def pack_cold(article: Article) -> bytes:
    """The fields only rendering reads: marshalled (plain types only) and compressed."""
    link = _SAME if article.link == article.identity else article.link
    original = _SAME if article.original_url == article.link else article.original_url
    cold = (
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
    return zlib.compress(marshal.dumps(cold), 1)


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
