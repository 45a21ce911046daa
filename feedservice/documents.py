"""Rendered feed documents: bytes, gzip, ETag, rendered once and reused while unchanged.

A `DocumentSet` belongs to one catalog snapshot. It carries over every page
whose fingerprint (its items' revisions plus the feed and site settings that
appear in the output) did not change, so a one-file change re-renders only the
feeds that contain or contained that file.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from werkzeug.http import http_date, quote_etag

from feedservice.catalog import Catalog, Feed
from feedservice.config import Config
from feedservice.feeds import CONTENT_TYPES, FORMATS, FeedPage, render
from feedservice.feeds.page import newest_date
from feedservice.metrics import timed

PageKey = tuple[str, str, str, int]  # (format, feed kind, feed name, page number)


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    gzip_body: bytes
    etag: str  # strong validator of `body`, without quotes
    gzip_etag: str  # a distinct strong validator for the gzip representation
    content_type: str
    last_modified: datetime
    # Header values computed once per render, not once per request (the poll hot path).
    etag_header: str = ""
    gzip_etag_header: str = ""
    last_modified_header: str = ""


def make_document(body: bytes, content_type: str, last_modified: datetime) -> Document:
    """Wrap bytes with validators; gzip once, with mtime=0 so it is deterministic."""
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    modified = last_modified.astimezone(UTC).replace(microsecond=0)
    return Document(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
        etag=digest,
        gzip_etag=digest + "-gz",
        content_type=content_type,
        last_modified=modified,
        etag_header=quote_etag(digest),
        gzip_etag_header=quote_etag(digest + "-gz"),
        last_modified_header=http_date(modified),
    )


def feed_fingerprints(feed: Feed, config: Config, fallback_updated: datetime) -> list[str]:
    """One fingerprint per page of `feed`: everything that can change that page's bytes,
    in any format (site and feed settings, paging, the page's date, its items' revisions)."""
    head = _feed_head(feed, config)
    count = feed.page_count
    items = feed.items
    revisions = [article.revision for article in items]
    prints = []
    for number in range(1, count + 1):
        start = (number - 1) * feed.limit
        chunk = revisions[start : start + feed.limit]
        updated = items[start].published if chunk else fallback_updated  # an empty feed's date
        text = "\x1f".join([head, str(number), str(count), updated.isoformat(), *chunk])
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
        prints.append(digest.hexdigest())
    return prints


def _feed_head(feed: Feed, config: Config) -> str:
    return "\x1f".join(
        [
            config.title,
            config.base_url,
            config.language,
            str(config.reload_interval),
            config.websub_hub or "",
            feed.kind,
            feed.name,
            feed.title,
            feed.description,
            str(feed.limit),
        ]
    )


class DocumentSet:
    """The documents of one snapshot; page 1 of every feed is rendered up front."""

    def __init__(
        self,
        catalog: Catalog,
        previous: DocumentSet | None = None,
        reusable: Mapping[PageKey, tuple[str, Document]] | None = None,
        *,
        eager: bool = True,
    ) -> None:
        """`previous`: the last snapshot's set; `reusable`: documents from the render
        cache (rendercache.py). Either is used only where the fingerprint matches."""
        self.catalog = catalog
        self.renders = 0  # how many documents this set had to render (not carried over)
        self.rendered_feeds: set[tuple[str, str]] = set()  # (kind, name) of those
        self._lock = threading.Lock()
        self._fingerprints: dict[tuple[str, str, int], str] = {}
        self._documents: dict[PageKey, tuple[str, Document]] = {}
        self._extras: dict[tuple[str, ...], Document] = {}
        carried = previous._documents if previous is not None else (reusable or {})
        known = previous._feed_prints if previous is not None else {}
        fallback = newest_date(catalog)
        config = catalog.config
        self._feed_prints: dict[tuple[str, str], tuple[str, datetime, Feed, list[str]]] = {}
        for feed in catalog.feeds.values():
            head = _feed_head(feed, config)
            last = known.get((feed.kind, feed.name))
            if last is not None and last[:2] == (head, fallback) and last[2].items == feed.items:
                prints = last[3]  # the same items in the same order: every page is the same
            else:
                prints = feed_fingerprints(feed, config, fallback)
            self._feed_prints[(feed.kind, feed.name)] = (head, fallback, feed, prints)
            for number, fingerprint in enumerate(prints, start=1):
                self._fingerprints[(feed.kind, feed.name, number)] = fingerprint
                page = None
                for fmt in FORMATS:
                    key = (fmt, feed.kind, feed.name, number)
                    old = carried.get(key)
                    if old is not None and old[0] == fingerprint:
                        self._documents[key] = old
                    elif number == 1 and eager:  # (one page object: items expand once for all)
                        page = page or self._page(feed, number)
                        self._documents[key] = (fingerprint, self._render(page, fmt))

    def _page(self, feed: Feed, number: int) -> FeedPage:
        return FeedPage(feed, number, self.catalog.config, newest_date(self.catalog))

    def _render(self, page: FeedPage, fmt: str) -> Document:
        feed = page.feed
        self.renders += 1
        self.rendered_feeds.add((feed.kind, feed.name))
        return timed(
            lambda: make_document(render(page, fmt), CONTENT_TYPES[fmt], page.last_modified)
        )

    def rendered_documents(self) -> dict[PageKey, tuple[str, Document]]:
        """What the render cache keeps: every document this set holds, with its fingerprint."""
        with self._lock:
            return dict(self._documents)

    def get(self, fmt: str, kind: str, name: str, number: int = 1) -> Document | None:
        """The document, rendering a later page the first time it is asked for."""
        key = (fmt, kind, name, number)
        found = self._documents.get(key)
        if found is not None:
            return found[1]
        fingerprint = self._fingerprints.get((kind, name, number))
        feed = self.catalog.feed(kind, name)
        if fingerprint is None or feed is None or fmt not in CONTENT_TYPES:
            return None
        with self._lock:
            found = self._documents.get(key)
            if found is None:
                found = (fingerprint, self._render(self._page(feed, number), fmt))
                self._documents[key] = found
        return found[1]

    def extra(self, key: tuple[str, ...], build: Callable[[], Document]) -> Document:
        """A snapshot-wide document (index, HTML page, OPML), built on first use."""
        found = self._extras.get(key)
        if found is None:
            with self._lock:
                found = self._extras.get(key)
                if found is None:
                    found = self._extras[key] = build()
        return found
