"""The HTML pages for people: the index of every feed and one page per feed.

Browsers no longer render feeds, so each feed has a page with its items, subscribe
links and autodiscovery tags. Jinja2 escapes every value; the pages carry no script
and no inline style, so they work under the strict Content-Security-Policy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from feedservice import __version__
from feedservice.http import urls
from feedservice.ingest.clean import slugify
from feedservice.render.page import FeedPage, feed_title

_ENVIRONMENT = Environment(
    loader=PackageLoader("feedservice.render", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=False,
)
_ENVIRONMENT.filters["utc"] = lambda value: value.astimezone(UTC)
_ENVIRONMENT.globals.update(
    version=__version__,
    topic_path=lambda topic: urls.page_path("topics", slugify(topic)),
    feed_links=lambda feed: {
        fmt: urls.feed_path(feed["kind"], feed["name"], fmt) for fmt in urls.FORMATS
    },
    page_path=urls.page_path,
)


def feed_page(page: FeedPage) -> bytes:
    html = _ENVIRONMENT.get_template("feed.html").render(
        config=page.site, page=page, feed=page.feed, items=page.items
    )
    return html.encode("utf-8", "surrogatepass")


def index(site: Any, feeds: list[dict[str, Any]], articles: int) -> bytes:
    shown = [
        {**feed, "title": feed["title"], "newest": _date(feed.get("newest"))} for feed in feeds
    ]
    html = _ENVIRONMENT.get_template("index.html").render(
        config=site,
        articles=articles,
        configured=[feed for feed in shown if feed["kind"] == "feeds"],
        topics=[feed for feed in shown if feed["kind"] == "topics"],
        feed_title=lambda feed: feed_title(feed, site),
    )
    return html.encode("utf-8", "surrogatepass")


def _date(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1e6, UTC)
