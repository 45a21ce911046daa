"""Responses rendered from the store: a route in, a Document (bytes, gzip, ETag) out.

The loader renders with these functions inside its write transaction, and a worker
renders later pages with the same functions from a committed generation, so both give
the same bytes for the same generation.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from feedservice.http.urls import NO_FILTERS, Filters, Route
from feedservice.ingest.record import from_record_text
from feedservice.render import atom, html, jsonfeed, opml, rss
from feedservice.render.page import EPOCH, FeedPage
from feedservice.settings import Config
from feedservice.store.db import Store
from feedservice.store.rows import Document, Generation

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
}
MAX_TOMBSTONES = 500  # per feed document, newest first
RENDERERS: dict[str, Callable[[FeedPage], bytes]] = {
    "rss": rss.render,
    "atom": atom.render,
    "json": jsonfeed.render,
    "html": html.feed_page,
}


def make_document(
    body: bytes, content_type: str, last_modified: datetime, fingerprint: str = ""
) -> Document:
    """Wrap bytes with validators; gzip once, with mtime=0 so it is deterministic."""
    return Document(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
        etag=hashlib.blake2b(body, digest_size=16).hexdigest(),
        content_type=content_type,
        last_modified=int(last_modified.timestamp()),
        fingerprint=fingerprint,
    )


def site_of(generation: Generation) -> Any:
    return Config(**generation.site)


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


def feed_page(
    store: Store,
    generation: Generation,
    meta: dict[str, Any],
    number: int,
    filters: Filters = NO_FILTERS,
    ids: list[int] | None = None,
) -> FeedPage:
    """Page `number` of a feed as its renderers need it, read from the store; a
    subscriber's feed gives the page's file `ids` (it carries no tombstones)."""
    key = f"{meta['kind']}/{meta['name']}"
    rows = store.page(key, number, meta["limit"]) if ids is None else store.items(ids)
    items = tuple(from_record_text(record, path) for record, _, path in rows)
    now = datetime.fromtimestamp(generation.committed_at, UTC)
    modified = tuple(min(from_micros(row[1]), now) for row in rows)
    deleted = store.tombstones(key)[:MAX_TOMBSTONES] if number == 1 and ids is None else []
    tombstones = tuple((ref, from_micros(when)) for _, ref, when in deleted)
    newest = generation.summary.get("newest")
    changes = [*(item.published for item in items), *modified, *(t[1] for t in tombstones)]
    updated = min(max(changes, default=from_micros(newest) if newest else EPOCH), now)
    site = site_of(generation)
    return FeedPage(meta, number, site, items, updated, updated, modified, tombstones, filters)


def render_feed_route(
    store: Store, generation: Generation, route: Route, fingerprint: str = ""
) -> Document | None:
    """A feed or a feed's HTML page; None if there is no such feed or page."""
    meta = store.feed(route.feed_key)
    if meta is None:  # a feed whose last article was deleted answers empty for a while
        retired = store.retired(route.feed_key)
        meta = retired[0] if retired and not retired[1] else None
    if meta is None:
        return None
    page = feed_page(store, generation, meta, route.number) if route.number < 10**12 else None
    if page is None or route.number > page.page_count:
        return None
    return render_page(page, route.fmt, fingerprint)


def render_page(page: FeedPage, fmt: str, fingerprint: str = "") -> Document:
    """One format of one page: pure, so any process gives the same bytes."""
    body = RENDERERS[fmt](page)
    return make_document(body, CONTENT_TYPES[fmt], page.last_modified, fingerprint)


def render_listing(
    store: Store, generation: Generation, route: Route, fingerprint: str = ""
) -> Document | None:
    """The index, a list of feeds or an OPML list: every feed's settings, count and newest
    date. Dated by the newest publish or update of any article (never later than the
    generation); None for a list page past the last."""
    site = site_of(generation)
    feeds = store.feeds()
    changed = generation.summary.get("newest_change")
    modified = min(
        from_micros(changed) if changed else EPOCH,
        datetime.fromtimestamp(generation.committed_at, UTC),
    )
    if route.view == "opml":
        body = opml.render_opml(site, feeds, route.kind, route.fmt, modified)
        return make_document(body, CONTENT_TYPES["opml"], modified, fingerprint)
    if route.view == "index":
        found: bytes | None = html.index(site, feeds, generation.summary.get("articles", 0))
    else:
        found = html.feed_list(site, feeds, route.kind, route.number, route.words)
    return (
        None
        if found is None
        else make_document(found, CONTENT_TYPES["html"], modified, fingerprint)
    )
