"""What every format needs to know about one page of one feed: items, URLs, dates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from feedservice import __version__
from feedservice.http import urls
from feedservice.ingest.article import Article

GENERATOR = "feedservice"
GENERATOR_URI = "https://pypi.org/project/feedservice/"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedPage:
    """One page of one feed, with everything its renderers read: no I/O, no clock."""

    feed: dict[str, Any]  # the feed's settings: kind, name, title, description, limit, count
    number: int
    site: Any  # the site settings (Config)
    items: tuple[Article, ...]
    updated: datetime  # the newest item's date; an empty page: the catalog's newest
    last_modified: datetime  # for HTTP: the newest publish or update time, never later than now
    modified: tuple[datetime, ...] = ()  # each item's last change (Atom updated, date_modified)
    tombstones: tuple[tuple[str, datetime], ...] = ()  # (identity, when) deleted: page 1 only
    filters: urls.Filters = urls.NO_FILTERS  # a subscriber's: kept in every link

    @property
    def websub(self) -> bool:
        """Whether the hub is advertised: fixed feeds only (subscribers' are never pinged)."""
        return bool(self.site.websub_hub) and not self.filters and self.kind != urls.SEARCH

    def brand(self, key: str) -> Any:
        """The feed's own icon, logo, language or author, else the site's."""
        return self.feed.get(key) or getattr(self.site, key)

    @property
    def kind(self) -> str:
        return str(self.feed["kind"])

    @property
    def name(self) -> str:
        return str(self.feed["name"])

    @property
    def description(self) -> str:
        return str(self.feed["description"])

    @property
    def full(self) -> bool:
        """Whether items carry their full content (the feed's `content` setting)."""
        return self.feed.get("content", "full") == "full"

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.feed["count"] / self.feed["limit"]))

    @property
    def title(self) -> str:
        return feed_title(self.feed, self.site)

    def url(self, fmt: str, number: int | None = None) -> str:
        """The absolute URL of this feed in `fmt`, on page `number` (default: this page)."""
        number = self.number if number is None else number
        path = urls.feed_path(self.kind, self.name, fmt, number, self.filters)
        return self.site.base_url + path

    @property
    def html_url(self) -> str:
        return self.site.base_url + urls.page_path(self.kind, self.name, 1, self.filters)

    def paging(self, fmt: str) -> dict[str, str]:
        """RFC 5005 paging links (first/previous/next/last) for a feed with several pages."""
        last = self.page_count
        if last == 1:
            return {}
        links = {"first": self.url(fmt, 1), "last": self.url(fmt, last)}
        if self.number > 1:
            links["previous"] = self.url(fmt, self.number - 1)
        if self.number < last:
            links["next"] = self.url(fmt, self.number + 1)
        return links

    @property
    def generator_version(self) -> str:
        return __version__


def feed_title(feed: dict[str, Any], site: Any) -> str:
    """A feed's title as readers list it: topic and provider feeds are `<topic> — <site
    title>`; a subscriber's feed says what it holds (`AI — Acme (exclude: ml)`)."""
    title = str(feed["title"])
    if feed["kind"] in ("topics", "providers", urls.SEARCH):
        title = f"{title} — {site.title}"
    return f"{title} ({feed['filtered']})" if feed.get("filtered") else title
