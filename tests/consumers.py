"""Real feed consumers reading our output: feedparser, lxml and a JSON Feed 1.1 check.

Tests use these instead of string matching: if a reader library cannot read a
feed, the test fails the way a subscriber would. `load_truth` and `seed_article`
give what a feed should hold, from the real loader and parser, to compare with.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
from lxml import etree

from feedservice.catalog import Catalog
from feedservice.ingest.article import Article, parse_seed
from feedservice.runtime.loader import Loader
from feedservice.store.db import Store

JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    link: str
    published: str


def read_feed(body: bytes, fmt: str) -> tuple[dict[str, Any], list[Item]]:
    """Parse `body` as a reader would; assert it is well formed; return feed + items."""
    if fmt == "json":
        document = json.loads(body)
        check_jsonfeed(document)
        items = [
            Item(
                item["id"],
                item.get("title", ""),
                item.get("url", ""),
                item.get("date_published", ""),
            )
            for item in document["items"]
        ]
        return document, items
    etree.fromstring(body)  # well-formed XML, or raise
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, f"feedparser bozo: {parsed.get('bozo_exception')!r}"
    expected = {"rss": "rss20", "atom": "atom10"}[fmt]
    assert parsed.version == expected, parsed.version
    items = [
        Item(
            entry.get("id", ""),
            entry.get("title", ""),
            entry.get("link", ""),
            entry.get("published", ""),
        )
        for entry in parsed.entries
    ]
    return parsed.feed, items


def check_jsonfeed(document: Any) -> None:
    """The JSON Feed 1.1 rules a reader relies on (jsonfeed.org/version/1.1)."""
    assert isinstance(document, dict)
    assert document["version"] == JSONFEED_VERSION
    assert isinstance(document["title"], str) and document["title"]
    for key in ("home_page_url", "feed_url", "next_url"):
        if key in document:
            assert document[key].startswith(("http://", "https://")), key
    assert isinstance(document["items"], list)
    ids = set()
    for item in document["items"]:
        assert isinstance(item["id"], str) and item["id"], "item id must be a non-empty string"
        assert item["id"] not in ids, f"duplicate item id {item['id']}"
        ids.add(item["id"])
        assert "content_html" in item or "content_text" in item, "item needs content"
        if "date_published" in item:
            assert item["date_published"].endswith("Z") or "+" in item["date_published"]
        for author in item.get("authors", []):
            assert isinstance(author, dict) and author.get("name")
        for attachment in item.get("attachments", []):
            assert attachment["url"] and attachment["mime_type"]
        if "tags" in item:
            assert all(isinstance(tag, str) for tag in item["tags"])


def load_truth(
    seeds: Path,
    config: Path | None,
    tmp: Path,
    environ: Mapping[str, str] | None = None,
) -> tuple[Catalog, Any]:
    """(catalog, config) from the first reload of a Loader over a new store of its own
    (in a fresh directory under `tmp`): `catalog.feeds[key].entries` are the feed's
    items in feed order."""
    tmp.mkdir(parents=True, exist_ok=True)
    store = Store.in_dir(Path(tempfile.mkdtemp(prefix="truth-", dir=tmp)))
    try:
        loader = Loader(store, seeds, config, environ=dict(environ or {}), render=False)
        loader.reload()
    finally:
        store.close()
    assert loader.catalog is not None
    return loader.catalog, loader.config


def seed_article(seeds: Path, source: str) -> Article:
    """The article a seed file gives (title, link, dates), read with the real parser."""
    return parse_seed((seeds / source).read_bytes(), source).article
