"""Real feed consumers reading our output: feedparser, lxml and a JSON Feed 1.1 check.

Tests use these instead of string matching: if a reader library cannot read a
feed, the test fails the way a subscriber would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import feedparser
from lxml import etree

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
