"""Every real-world file (../shared/realworld, read in place) and both sample seeds,
checked against expectations computed independently from the raw YAML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SAMPLE_SEEDS, write_config
from consumers import read_feed

from feedservice.service import Service
from feedservice.web import create_app


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


@pytest.mark.parametrize("source", ["realworld", "samples"])
def test_every_article_is_in_each_of_its_topic_feeds(
    source: str, realworld: Path, tmp_path: Path
) -> None:
    directory = realworld if source == "realworld" else SAMPLE_SEEDS
    config = write_config(tmp_path / "feeds.yaml", topic_limit=1000)
    service = Service(directory, config)
    client = create_app(service).test_client()
    expected = expected_articles(directory)
    assert service.snapshot.catalog.errors == ()
    assert len(service.snapshot.catalog.articles) == len(expected)
    topics: dict[str, set[str]] = {}
    for link, fields in expected.items():
        for topic in fields["topics"]:
            topics.setdefault(slug(topic), set()).add(link)
    assert {feed.name for feed in service.snapshot.catalog.feeds_of("topics")} == set(topics)
    for topic_slug, links in topics.items():
        for fmt in ("rss", "atom", "json"):
            response = client.get(f"/topics/{topic_slug}.{fmt}")
            assert response.status_code == 200
            _, items = read_feed(response.data, fmt)
            assert {item.link for item in items} == links, (topic_slug, fmt)
            dates = [item.published for item in items]
            assert len(dates) == len(links)


def test_realworld_titles_survive_cleaning(realworld: Path, tmp_path: Path) -> None:
    service = Service(realworld, write_config(tmp_path / "feeds.yaml", topic_limit=1000))
    by_link = {a.link: a for a in service.snapshot.catalog.articles}
    for link, fields in expected_articles(realworld).items():
        assert by_link[link].title == " ".join(fields["title"].split())


def test_drafts_in_realworld_are_excluded(realworld: Path, tmp_path: Path) -> None:
    service = Service(realworld, write_config(tmp_path / "feeds.yaml"))
    drafts = {p.name for p in realworld.iterdir() if "\npublished: false" in p.read_text()}
    assert drafts and service.snapshot.catalog.drafts == drafts


def test_sample_seed_mojibake_is_repaired() -> None:
    service = Service(SAMPLE_SEEDS, REPO / "config" / "feeds.yaml")
    related = [r.title for a in service.snapshot.catalog.articles for r in a.related]
    assert (
        "Google’s self-supervised AI model can help improve neural networks in medical "
        "research" in related
    )
    assert not any("â€" in title for title in related)
