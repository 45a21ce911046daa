"""Every real-world file (../shared/realworld, read in place) and both sample seeds,
loaded by the real loader and served by the HTTP app, checked against expectations
computed independently from the raw YAML."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
import yaml
from conftest import REPO, SAMPLE_SEEDS, Site, write_config
from consumers import read_feed


def expected_articles(directory: Path) -> dict[str, dict]:
    """link → raw fields, for every published file, straight from PyYAML."""
    found = {}
    for path in sorted(directory.iterdir()):
        text = path.read_text(encoding="utf-8")
        fields = yaml.safe_load(text.split("---\n")[1])
        if fields.get("published") is False:
            continue
        found[fields.get("webUrl") or fields["originalUrl"]] = fields
    return found


def slug(topic: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")


def load(directory: Path, tmp_path: Path, site_factory: Callable[..., Site], **config) -> Site:
    return site_factory(directory, write_config(tmp_path / "feeds.yaml", **config))


@pytest.mark.parametrize("source", ["realworld", "samples"])
def test_every_article_is_in_each_of_its_topic_feeds(
    source: str, request: pytest.FixtureRequest, tmp_path: Path, site_factory: Callable[..., Site]
) -> None:
    directory = request.getfixturevalue("realworld") if source == "realworld" else SAMPLE_SEEDS
    site = load(directory, tmp_path, site_factory, topic_limit=1000)
    catalog = site.loader.catalog
    assert catalog is not None
    expected = expected_articles(directory)
    assert [p.describe() for p in site.loader.problems() if p.fatal] == []
    assert len(catalog.articles) == len(expected)
    health = site.get("/healthz").get_json()
    assert health["articles"] == len(expected) and health["seed_errors"]["count"] == 0
    topics: dict[str, set[str]] = {}
    for link, fields in expected.items():
        for topic in fields["topics"]:
            topics.setdefault(slug(topic), set()).add(link)
    assert {feed.name for feed in catalog.of_kind("topics")} == set(topics)
    for topic_slug, links in topics.items():
        for fmt in ("rss", "atom", "json"):
            response = site.get(f"/topics/{topic_slug}.{fmt}")
            assert response.status_code == 200
            _, items = read_feed(response.data, fmt)
            assert {item.link for item in items} == links, (topic_slug, fmt)
            dates = [item.published for item in items]
            assert len(dates) == len(links) and all(dates)


def test_realworld_titles_survive_cleaning(
    realworld: Path, tmp_path: Path, site_factory: Callable[..., Site]
) -> None:
    site = load(realworld, tmp_path, site_factory, topic_limit=1000)
    expected = expected_articles(realworld)
    for fmt in ("rss", "atom", "json"):
        _, items = read_feed(site.get(f"/feeds/all.{fmt}").data, fmt)
        by_link = {item.link: item.title for item in items}
        assert by_link.keys() == expected.keys(), fmt
        for link, fields in expected.items():
            assert by_link[link] == " ".join(fields["title"].split()), (fmt, link)


def test_drafts_in_realworld_are_excluded(
    realworld: Path, tmp_path: Path, site_factory: Callable[..., Site]
) -> None:
    site = load(realworld, tmp_path, site_factory, topic_limit=1000)
    drafts = {p.name for p in realworld.iterdir() if "\npublished: false" in p.read_text()}
    assert site.loader.catalog is not None
    assert drafts and site.loader.catalog.drafts == drafts
    draft_links = {
        yaml.safe_load((realworld / name).read_text().split("---\n")[1])["webUrl"]
        for name in drafts
    }
    _, items = read_feed(site.get("/feeds/all.json").data, "json")
    assert items and not draft_links & {item.link for item in items}


def test_sample_seed_mojibake_is_repaired(site_factory: Callable[..., Site]) -> None:
    """The related titles of the samples, as the Atom feed publishes them
    (`<link rel="related" title=...>`)."""
    site = site_factory(SAMPLE_SEEDS, REPO / "config" / "feeds.yaml")
    parsed = feedparser.parse(site.get("/feeds/all.atom").data)
    assert not parsed.bozo
    related = [
        link.get("title", "")
        for entry in parsed.entries
        for link in entry.links
        if link.get("rel") == "related"
    ]
    assert (
        "Google’s self-supervised AI model can help improve neural networks in medical "
        "research" in related
    )
    assert not any("â€" in title for title in related)
