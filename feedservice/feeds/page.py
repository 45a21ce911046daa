"""What every format needs to know about one page of one feed: items, URLs, dates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from feedservice import __version__
from feedservice.articles import Article
from feedservice.catalog import Catalog, Feed
from feedservice.compact import StoredArticle
from feedservice.config import Config

GENERATOR = "feedservice"
GENERATOR_URI = "https://pypi.org/project/feedservice/"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedPage:
    feed: Feed
    number: int
    config: Config
    fallback_updated: datetime = EPOCH  # for an empty feed: the catalog's newest date
    _expanded: list[tuple[Article, ...]] = field(default_factory=list, compare=False, repr=False)

    @property
    def records(self) -> tuple[StoredArticle, ...]:
        """This page's articles in their stored form: enough for dates and revisions."""
        return self.feed.page(self.number)

    @property
    def items(self) -> tuple[Article, ...]:
        """This page's full articles, expanded once per page (renderers read every field)."""
        if not self._expanded:
            self._expanded.append(tuple([record.expand() for record in self.records]))
        return self._expanded[0]

    @property
    def updated(self) -> datetime:
        """The newest item's date, never now(): the same data gives the same bytes."""
        records = self.records
        return records[0].published if records else self.fallback_updated

    @property
    def last_modified(self) -> datetime:
        """For HTTP: the newest publish date or seed-file change among the items, so an
        edit moves it forward for `If-Modified-Since` pollers; never later than now."""
        dates = [self.updated]
        dates.extend(
            datetime.fromtimestamp(item.modified, UTC)
            for item in self.records
            if item.modified is not None
        )
        return min(max(dates), datetime.now(UTC))

    def url(self, fmt: str, number: int | None = None) -> str:
        """Absolute URL of this feed in `fmt`, on page `number` (default: this page)."""
        number = self.number if number is None else number
        query = f"?page={number}" if number > 1 else ""
        return f"{self.config.base_url}{self.feed.path}.{fmt}{query}"

    @property
    def html_url(self) -> str:
        return f"{self.config.base_url}{self.feed.path}/"

    def paging(self, fmt: str) -> dict[str, str]:
        """RFC 5005 paging links (first/previous/next/last) for a feed with several pages."""
        last = self.feed.page_count
        if last == 1:
            return {}
        links = {"first": self.url(fmt, 1), "last": self.url(fmt, last)}
        if self.number > 1:
            links["previous"] = self.url(fmt, self.number - 1)
        if self.number < last:
            links["next"] = self.url(fmt, self.number + 1)
        return links

    @property
    def title(self) -> str:
        if self.feed.kind == "topics":
            return f"{self.feed.title} — {self.config.title}"
        return self.feed.title

    @property
    def generator_version(self) -> str:
        return __version__


def newest_date(catalog: Catalog) -> datetime:
    """An empty feed's `updated`: the newest article anywhere, never now(), so the same
    data gives the same bytes (and validators flag a 1970 date as implausible)."""
    return catalog.articles[0].published if catalog.articles else EPOCH


def topic_url(config: Config, slug: str) -> str:
    return f"{config.base_url}/topics/{slug}/"
