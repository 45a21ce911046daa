"""The HTML pages for people: the index of every feed and one page per feed.

Browsers no longer render feeds, so each feed has a page with its items, subscribe
links and autodiscovery tags. Jinja2 escapes every value; the pages carry no script
and no inline style, so they work under the strict Content-Security-Policy.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from feedservice import __version__
from feedservice.http import urls
from feedservice.ingest.clean import slugify
from feedservice.render.page import FeedPage

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
    page_links=lambda page: {
        fmt: urls.feed_path(page.kind, page.name, fmt, 1, page.filters) for fmt in urls.FORMATS
    },
)


def feed_page(page: FeedPage) -> bytes:
    html = _ENVIRONMENT.get_template("feed.html").render(
        config=page.site, page=page, feed=page.feed, items=page.items, brand=page.brand
    )
    return html.encode("utf-8", "surrogatepass")


INDEX_ROWS = 50  # feeds and topics shown on the index; all of them are on the lists
LIST_ROWS = 100  # rows per page of a list


def index(site: Any, feeds: list[dict[str, Any]], articles: int) -> bytes:
    """The front page: the first configured feeds and the largest topics, a topic finder
    and links to the full lists. Its size does not grow with the number of feeds."""
    configured = [_shown(feed) for feed in feeds if feed["kind"] == "feeds"]
    topics = [_shown(feed) for feed in feeds if feed["kind"] == "topics"]
    largest = sorted(topics, key=lambda feed: (-feed["count"], feed["name"]))[:INDEX_ROWS]
    html = _ENVIRONMENT.get_template("index.html").render(
        config=site,
        brand=functools.partial(getattr, site),
        articles=articles,
        configured=configured[:INDEX_ROWS],
        configured_count=len(configured),
        topics=largest,
        topic_count=len(topics),
        site_feed=next((feed for feed in configured if feed["name"] == "all"), None),
    )
    return html.encode("utf-8", "surrogatepass")


def feed_list(
    site: Any, feeds: list[dict[str, Any]], kind: str, number: int, words: str
) -> bytes | None:
    """Page `number` of every topic (A to Z) or configured feed (in config order) whose
    title holds `words`; None past the last page."""
    chosen = [_shown(feed) for feed in feeds if feed["kind"] == kind]
    if kind != "feeds":  # topics and providers A to Z; feeds in config order
        chosen.sort(key=lambda feed: (feed["title"].casefold(), feed["name"]))
    if words:
        chosen = [
            feed for feed in chosen if all(w in feed["title"].casefold() for w in words.split())
        ]
    pages = max(1, -(-len(chosen) // LIST_ROWS))
    if number > pages:
        return None
    html = _ENVIRONMENT.get_template("list.html").render(
        config=site,
        brand=functools.partial(getattr, site),
        kind=kind,
        heading={"topics": "Topics", "providers": "Providers"}.get(kind, "Feeds"),
        feeds=chosen[(number - 1) * LIST_ROWS : number * LIST_ROWS],
        total=len(chosen),
        number=number,
        pages=pages,
        words=words,
        list_path=urls.list_path,
    )
    return html.encode("utf-8", "surrogatepass")


def _shown(feed: dict[str, Any]) -> dict[str, Any]:
    return {**feed, "newest": _date(feed.get("newest"))}


def _date(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1e6, UTC)
