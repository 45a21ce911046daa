"""Rendered feed documents: bytes, gzip, ETag, rendered once and reused while unchanged.

A `DocumentSet` belongs to one catalog snapshot. It carries over every page
whose fingerprint (its items' revisions plus the feed and site settings that
appear in the output) did not change, so a one-file change re-renders only the
feeds that contain or contained that file.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from werkzeug.http import http_date, quote_etag

from feedservice.catalog import Catalog, Feed
from feedservice.config import Config
from feedservice.feeds import CONTENT_TYPES, FORMATS, FeedPage, render
from feedservice.feeds.page import newest_date
from feedservice.forked import Forked
from feedservice.metrics import timed

PageKey = tuple[str, str, str, int]  # (format, feed kind, feed name, page number)
MIN_RENDERS_BESIDE = 24  # fewer first renders are quicker here than a fork of a large heap


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


class PagePrints:
    """The fingerprints of one feed's pages: everything that can change a page's bytes,
    in any format (site and feed settings, paging, the page's date, its items'
    revisions). Computed per page on first use: a 100k-article feed has thousands of
    pages, and most are never asked for."""

    __slots__ = ("_prints", "config", "fallback", "feed", "head")

    def __init__(self, feed: Feed, config: Config, fallback_updated: datetime) -> None:
        self.feed = feed
        self.config = config
        self.fallback = fallback_updated  # an empty feed's date: the catalog's newest
        self.head = _feed_head(feed, config)
        self._prints: list[str | None] = [None] * feed.page_count

    def same_pages(self, other: PagePrints) -> bool:
        """The same settings and the same items in the same order: every page is equal."""
        return (
            self.head == other.head
            and self.fallback == other.fallback
            and self.feed.items == other.feed.items
        )

    def share_with(self, other: PagePrints) -> None:
        self._prints = other._prints

    def get(self, number: int) -> str:
        found = self._prints[number - 1]
        if found is None:
            found = self._prints[number - 1] = self._compute(number)
        return found

    def _compute(self, number: int) -> str:
        feed = self.feed
        start = (number - 1) * feed.limit
        items = feed.items[start : start + feed.limit]
        updated = items[0].published if items else self.fallback
        parts = [self.head, str(number), str(len(self._prints)), updated.isoformat()]
        parts.extend(article.revision for article in items)
        text = "\x1f".join(parts).encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, digest_size=16).hexdigest()


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
        beside: bool = False,
    ) -> None:
        """`previous`: the last snapshot's set; `reusable`: documents from the render
        cache (rendercache.py). Either is used only where the fingerprint matches.
        `beside`: a forked child may render about half of the page-1 documents."""
        self.catalog = catalog
        self.renders = 0  # how many documents this set had to render (not carried over)
        self.rendered_feeds: set[tuple[str, str]] = set()  # (kind, name) of those
        self._lock = threading.Lock()
        self._documents: dict[PageKey, tuple[str, Document]] = {}
        self._extras: dict[tuple[str, ...], Document] = {}
        carried = previous.rendered_documents() if previous is not None else (reusable or {})
        known = previous._prints if previous is not None else {}
        fallback = newest_date(catalog)
        self._prints: dict[tuple[str, str], PagePrints] = {}
        missing: list[tuple[FeedPage, list[str]]] = []  # page 1 of a feed, formats to render
        for key, feed in catalog.feeds.items():
            prints = PagePrints(feed, catalog.config, fallback)
            last = known.get(key)
            if last is not None and last.same_pages(prints):
                prints.share_with(last)  # the same pages: what it computed holds here too
            self._prints[key] = prints
            formats = []
            for fmt in FORMATS:
                doc_key = (fmt, feed.kind, feed.name, 1)
                old = carried.get(doc_key)
                if old is not None and old[0] == prints.get(1):
                    self._documents[doc_key] = old
                elif eager:
                    formats.append(fmt)
            if formats:  # (one page object: its items expand once for all formats)
                missing.append((self._page(feed, 1), formats))
        self._render_first_pages(missing, beside=beside)
        # Later pages were rendered on request; keep those whose fingerprint still holds.
        for doc_key, old in carried.items():
            fmt, kind, name, number = doc_key
            prints = self._prints.get((kind, name))
            if (
                number > 1
                and prints is not None
                and number <= prints.feed.page_count
                and old[0] == prints.get(number)
            ):
                self._documents[doc_key] = old

    def _render_first_pages(
        self, missing: list[tuple[FeedPage, list[str]]], *, beside: bool
    ) -> None:
        """Render page 1 of these feeds; with `beside`, every other feed in a forked child
        while this process renders the rest (a cold start's first render, on two cores)."""
        child = None
        if beside and sum(len(formats) for _, formats in missing) >= MIN_RENDERS_BESIDE:
            theirs = missing[1::2]
            child = Forked(lambda: pickle.dumps(_rendered(theirs), pickle.HIGHEST_PROTOCOL))
            if child.pid:  # (no fork here: this process renders everything)
                missing = missing[::2]
        for key, document in _rendered(missing):
            self._keep(key, document)
        if child is not None and child.pid:
            payload = child.result()
            found = pickle.loads(payload) if payload is not None else _rendered(theirs)
            for key, document in found:  # (if the child failed, its share was rendered here)
                self._keep(key, document)

    def _keep(self, key: PageKey, document: Document) -> None:
        _, kind, name, number = key
        self.renders += 1
        self.rendered_feeds.add((kind, name))
        self._documents[key] = (self._prints[(kind, name)].get(number), document)

    def _page(self, feed: Feed, number: int) -> FeedPage:
        return FeedPage(feed, number, self.catalog.config, newest_date(self.catalog))

    def _render(self, page: FeedPage, fmt: str) -> Document:
        feed = page.feed
        self.renders += 1
        self.rendered_feeds.add((feed.kind, feed.name))
        return _make(page, fmt)

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
        prints = self._prints.get((kind, name))
        if prints is None or fmt not in CONTENT_TYPES or not 1 <= number <= prints.feed.page_count:
            return None
        with self._lock:
            found = self._documents.get(key)
            if found is None:
                page = self._page(prints.feed, number)
                found = (prints.get(number), self._render(page, fmt))
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


def _make(page: FeedPage, fmt: str) -> Document:
    return timed(lambda: make_document(render(page, fmt), CONTENT_TYPES[fmt], page.last_modified))


def _rendered(pages: list[tuple[FeedPage, list[str]]]) -> list[tuple[PageKey, Document]]:
    return [
        ((fmt, page.feed.kind, page.feed.name, page.number), _make(page, fmt))
        for page, formats in pages
        for fmt in formats
    ]
