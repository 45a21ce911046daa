"""The one Article model, for every kind of seed file (article.py reads files into it).

The store keeps each Article as a JSON record derived from these type hints
(record.py), so a new field needs no codec code. Fields at their default are left
out of the record: adding one changes no existing record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from feedservice.ingest.problem import Problem


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    domain: str | None = None
    image: Image | None = None

    @property
    def url(self) -> str | None:
        return f"https://{self.domain}/" if self.domain else None


@dataclass(frozen=True, slots=True)
class Author:
    """A person who wrote the article (static sites' `author`/`authors`)."""

    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RelatedArticle:
    title: str
    link: str
    provider: str | None = None
    published: datetime | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article, ready for every output format. Never holds `secured`."""

    identity: str  # canonical URL: RSS guid, Atom id, JSON Feed id
    link: str
    title: str
    published: datetime  # always timezone-aware
    source: str  # seed path relative to the seed directory
    excerpt: str = ""  # plain text: the summary
    is_draft: bool = False
    topics: tuple[str, ...] = ()
    category: str | None = None
    kind: str | None = None  # the `type` field
    quality: int | None = None
    heat: int | None = None
    provider: Provider | None = None
    images: tuple[Image, ...] = ()
    related: tuple[RelatedArticle, ...] = ()
    original_url: str | None = None
    amp_url: str | None = None
    cdn_amp_url: str | None = None
    content_html: str = ""  # the body, rendered and sanitised, every URL absolute
    updated: datetime | None = None  # the front matter's last-modified time
    authors: tuple[Author, ...] = ()
    expires: datetime | None = None  # out of every feed from then (Hugo's expiryDate)

    @property
    def people(self) -> tuple[Author, ...]:
        """Who the feeds name as the author: the provider, else the authors."""
        if self.provider is not None:
            return (Author(self.provider.name, self.provider.url),)
        return self.authors


@dataclass(frozen=True, slots=True)
class Parsed:
    article: Article
    warnings: tuple[Problem, ...] = ()
