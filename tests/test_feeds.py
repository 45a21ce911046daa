"""Feed documents read back by real consumers: feedparser, lxml and a JSON Feed check.

The documents are fetched through the worker app (Flask's test client over a store the
real loader wrote); what they should hold comes from a Loader of its own over the same
files (identities in feed order) and the real seed parser (titles and links).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import Site, article_fields, write_config, write_seed
from consumers import load_truth, read_feed, seed_article
from lxml import etree

from feedservice.http.urls import FORMATS

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"


def config_for(tmp_path: Path, **keys: object) -> Path:
    return write_config(
        tmp_path / "config" / "feeds.yaml",
        base_url="https://feeds.example",
        reload_interval=90,
        **keys,
    )


def fetch(site: Site, path: str) -> bytes:
    response = site.get(path)
    assert response.status_code == 200, path
    return response.data


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


@pytest.fixture
def rich_site(rich_seeds: Path, tmp_path: Path, site_factory) -> Site:
    return site_factory(rich_seeds, config_for(tmp_path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_parses_with_titles_links_and_ids(
    rich_site: Site, rich_seeds: Path, tmp_path: Path, fmt: str
) -> None:
    catalog, _ = load_truth(rich_seeds, config_for(tmp_path), tmp_path)
    expected = [seed_article(rich_seeds, e.source) for e in catalog.feeds["topics/ai"].entries]
    assert len(expected) == 2
    _feed, items = read_feed(fetch(rich_site, f"/topics/ai.{fmt}"), fmt)
    assert [item.title for item in items] == [a.title for a in expected]
    assert [item.link for item in items] == [a.link for a in expected]
    assert [item.id for item in items] == [a.identity for a in expected]
    assert items[0].title == "First story & more"  # markup stripped on input, text kept


def test_rss_channel_fields(rich_site: Site) -> None:
    root = etree.fromstring(fetch(rich_site, "/topics/ai.rss"))
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


def test_atom_entry_fields(rich_site: Site) -> None:
    root = etree.fromstring(fetch(rich_site, "/topics/ai.atom"))
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


def test_json_feed_fields(rich_site: Site) -> None:
    document = json.loads(fetch(rich_site, "/topics/ai.json"))
    assert document["feed_url"] == "https://feeds.example/topics/ai.json"
    item = document["items"][0]
    assert item["summary"] == "Plain excerpt & text"
    assert item["image"] == "https://img.example/1.png"
    assert item["tags"] == ["AI", "Robotics"]
    assert item["date_published"] == "2021-03-02T01:00:00Z"
    assert "https://rel.example/1" in item["content_html"]


def test_secured_never_published(rich_site: Site) -> None:
    paths = [f"/{feed}.{fmt}" for feed in ("topics/ai", "feeds/all") for fmt in FORMATS]
    paths += ["/topics/ai/", "/feeds/all/", "/", "/feeds.opml", "/topics.opml?format=rss"]
    for path in paths:
        body = fetch(rich_site, path)
        assert b"SECRET" not in body, path
        zipped = rich_site.get(path, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.data) == body


def test_output_is_deterministic(rich_seeds: Path, tmp_path: Path, site_factory) -> None:
    """Two stores loaded from the same files serve the same bytes and validators."""
    first = site_factory(rich_seeds, config_for(tmp_path))
    second = site_factory(rich_seeds, config_for(tmp_path))
    for fmt in FORMATS:
        one, other = first.get(f"/topics/ai.{fmt}"), second.get(f"/topics/ai.{fmt}")
        assert one.data == other.data
        assert one.headers["ETag"] == other.headers["ETag"]
        assert one.data == first.get(f"/topics/ai.{fmt}").data


def test_empty_feed_is_valid_and_dated_from_data(seeds: Path, tmp_path: Path, site_factory) -> None:
    write_seed(seeds, "1.md", **article_fields(1))
    config = config_for(tmp_path, feeds=[{"name": "none", "title": "None", "topics": ["Nothing"]}])
    site = site_factory(seeds, config)
    catalog, _ = load_truth(seeds, config, tmp_path)
    assert catalog.feeds["feeds/none"].entries == ()
    for fmt in FORMATS:
        _, items = read_feed(fetch(site, f"/feeds/none.{fmt}"), fmt)
        assert items == []
    # Dated by the newest article there is (article 1: 2021-03-02 01:00), never "now".
    atom = etree.fromstring(fetch(site, "/feeds/none.atom"))
    assert atom.findtext(f"{ATOM}updated") == "2021-03-02T01:00:00+00:00"
    rss = etree.fromstring(fetch(site, "/feeds/none.rss"))
    assert rss.findtext("channel/lastBuildDate") == "Tue, 02 Mar 2021 01:00:00 +0000"


def test_hostile_text_is_escaped_everywhere(seeds: Path, tmp_path: Path, site_factory) -> None:
    write_seed(
        seeds,
        "x.md",
        **article_fields(
            1, title="<script>alert(1)</script>Hi", excerpt='<img src=x onerror="alert(1)">Body'
        ),
    )
    site = site_factory(seeds, config_for(tmp_path))
    for fmt in FORMATS:
        body = fetch(site, f"/topics/ai.{fmt}")
        _, items = read_feed(body, fmt)
        assert items[0].title == "alert(1)Hi"
        assert b"onerror" not in body and b"<script" not in body
