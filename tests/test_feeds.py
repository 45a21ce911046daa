"""Feed documents read back by real consumers: feedparser, lxml and a JSON Feed check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import article_fields, write_seed
from consumers import read_feed
from lxml import etree

from feedservice.catalog import TOPIC_KIND, SeedStore, build_catalog
from feedservice.config import parse_config
from feedservice.feeds import FORMATS, FeedPage, render

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"


def page_of(seeds: Path, topic: str = "ai", number: int = 1, **config: object) -> FeedPage:
    store = SeedStore(seeds)
    store.refresh()
    catalog = build_catalog(
        store.articles(),
        parse_config({"base_url": "https://feeds.example", "reload_interval": 90, **config}),
    )
    feed = catalog.feed(TOPIC_KIND, topic)
    assert feed is not None
    return FeedPage(feed, number, catalog.config)


@pytest.fixture
def rich_seeds(seeds: Path) -> Path:
    write_seed(
        seeds,
        "1.md",
        **article_fields(
            1,
            title="First <em>story</em> & more",
            excerpt="Plain <b>excerpt</b> & text",
            images=[{"url": "https://img.example/1.png", "width": 640, "height": 320}],
            related=[{"title": "A related one", "webUrl": "https://rel.example/1"}],
            topics=["AI", "Robotics"],
        ),
    )
    write_seed(seeds, "2.md", **article_fields(2, publishedDateTime="2021-03-01T00:00:00Z"))
    return seeds


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_parses_with_titles_links_and_ids(rich_seeds: Path, fmt: str) -> None:
    page = page_of(rich_seeds)
    _feed, items = read_feed(render(page, fmt), fmt)
    assert [item.title for item in items] == [a.title for a in page.items]
    assert [item.link for item in items] == [a.link for a in page.items]
    assert [item.id for item in items] == [a.identity for a in page.items]
    assert items[0].title == "First story & more"  # markup stripped on input, text kept


def test_rss_channel_fields(rich_seeds: Path) -> None:
    page = page_of(rich_seeds)
    root = etree.fromstring(render(page, "rss"))
    channel = root.find("channel")
    assert channel.findtext("link") == "https://feeds.example/topics/ai/"
    self_link = channel.find(f"{ATOM}link[@rel='self']")
    assert self_link.get("href") == "https://feeds.example/topics/ai.rss"
    assert channel.findtext("ttl") == "2"  # 90 s rounds up to 2 minutes
    assert channel.findtext("language") == "en"
    assert channel.findtext("lastBuildDate") == "Tue, 02 Mar 2021 01:00:00 +0000"
    item = channel.find("item")
    assert item.find("guid").get("isPermaLink") == "true"
    assert [c.text for c in item.findall("category")] == ["AI", "Robotics"]
    enclosure = item.find("enclosure")
    assert enclosure.get("url") == "https://img.example/1.png"
    assert enclosure.get("type") == "image/png"
    thumbnail = item.find(f"{MEDIA}thumbnail")
    assert (thumbnail.get("width"), thumbnail.get("height")) == ("640", "320")
    # The description is HTML: the excerpt is escaped once more inside it.
    description = item.findtext("description")
    assert "Plain excerpt &amp; text" in description
    assert '<a href="https://rel.example/1">A related one</a>' in description


def test_atom_entry_fields(rich_seeds: Path) -> None:
    page = page_of(rich_seeds)
    root = etree.fromstring(render(page, "atom"))
    assert root.findtext(f"{ATOM}updated") == "2021-03-02T01:00:00+00:00"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["self"] == "https://feeds.example/topics/ai.atom"
    assert links["alternate"] == "https://feeds.example/topics/ai/"
    entry = root.find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}summary").get("type") == "text"
    assert entry.findtext(f"{ATOM}summary") == "Plain excerpt & text"
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Example News"
    related = entry.find(f"{ATOM}link[@rel='related']")
    assert related is not None and related.get("href") == "https://rel.example/1"
    assert entry.find(f"{ATOM}link[@rel='enclosure']").get("type") == "image/png"
    terms = [(c.get("term"), c.get("label")) for c in entry.findall(f"{ATOM}category")]
    assert terms == [("ai", "AI"), ("robotics", "Robotics")]


def test_json_feed_fields(rich_seeds: Path) -> None:
    document = json.loads(render(page_of(rich_seeds), "json"))
    assert document["feed_url"] == "https://feeds.example/topics/ai.json"
    item = document["items"][0]
    assert item["summary"] == "Plain excerpt & text"
    assert item["image"] == "https://img.example/1.png"
    assert item["tags"] == ["AI", "Robotics"]
    assert item["date_published"] == "2021-03-02T01:00:00Z"
    assert "https://rel.example/1" in item["content_html"]


def test_secured_never_published(rich_seeds: Path) -> None:
    page = page_of(rich_seeds)
    for fmt in FORMATS:
        assert b"SECRET" not in render(page, fmt)


def test_output_is_deterministic(rich_seeds: Path) -> None:
    for fmt in FORMATS:
        assert render(page_of(rich_seeds), fmt) == render(page_of(rich_seeds), fmt)


def test_empty_feed_is_valid_and_dated_from_data(seeds: Path) -> None:
    write_seed(seeds, "1.md", **article_fields(1))
    store = SeedStore(seeds)
    store.refresh()
    catalog = build_catalog(
        store.articles(),
        parse_config({"feeds": [{"name": "none", "title": "None", "topics": ["Nothing"]}]}),
    )
    feed = catalog.feed("feeds", "none")
    assert feed is not None and feed.items == ()
    for fmt in FORMATS:
        _, items = read_feed(render(FeedPage(feed, 1, catalog.config), fmt), fmt)
        assert items == []


def test_hostile_text_is_escaped_everywhere(seeds: Path) -> None:
    write_seed(
        seeds,
        "x.md",
        **article_fields(
            1, title="<script>alert(1)</script>Hi", excerpt='<img src=x onerror="alert(1)">Body'
        ),
    )
    page = page_of(seeds)
    for fmt in FORMATS:
        body = render(page, fmt)
        _, items = read_feed(body, fmt)
        assert items[0].title == "alert(1)Hi"
        assert b"onerror" not in body and b"<script" not in body
