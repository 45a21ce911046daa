"""Deletions reach readers (issue 18): a deleted or unpublished article leaves an RFC 6721
`at:deleted-entry` in every Atom feed that held it, for `tombstone_retention`, and the
hub is pinged; an article that only leaves a feed leaves none; a topic feed whose last
article was deleted answers an empty, valid feed for as long, then 410 Gone. Read with
lxml, feedparser and newsboat, on a real server with its own schedule."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import feedparser
import pytest
from conftest import article_fields, bump_mtime, wait_for, write_config, write_seed
from consumers import read_feed
from lxml import etree
from test_websub import hub  # noqa: F401  (the hub stand-in fixture)

NS = "http://purl.org/atompub/tombstones/1.0"
LINK = "https://example.com/articles/{}"


def tombstones(body: bytes) -> dict[str, str]:
    """ref → when of every deleted entry, as lxml reads them (namespaced, well formed)."""
    return {
        e.get("ref"): e.get("when") for e in etree.fromstring(body).iter(f"{{{NS}}}deleted-entry")
    }


def corpus(seeds: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI", "Robots"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI"]))
    write_seed(seeds, "c.md", **article_fields(3, topics=["AI", "Vision"]))


@pytest.fixture
def site(seeds: Path, tmp_path: Path, site_factory):
    corpus(seeds)
    config = write_config(
        tmp_path / "feeds.yaml",
        base_url="http://feeds.test",
        feeds=[{"name": "robots", "title": "Robots", "topics": ["Robots"]}],
    )
    return site_factory(seeds, config)


def test_a_deleted_article_leaves_a_tombstone_in_the_atom_feeds_that_held_it(site) -> None:
    before = {path: site.get(path).headers["Last-Modified"] for path in ("/topics/ai.atom",)}
    time.sleep(1.05)  # (HTTP dates have one-second resolution)
    (site.loader.seeds / "a.md").unlink()
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {
        "topics/ai",
        "topics/robots",
        "feeds/all",
        "feeds/robots",
        "providers/example.com",
    }
    for path in ("/topics/ai.atom", "/feeds/all.atom", "/feeds/robots.atom", "/topics/robots.atom"):
        body = site.get(path).data
        assert list(tombstones(body)) == [LINK.format(1)], path
        assert LINK.format(1) not in [item.id for item in read_feed(body, "atom")[1]]
        assert feedparser.parse(body).bozo == 0
    assert tombstones(site.get("/topics/vision.atom").data) == {}  # it never held it
    response = site.get("/topics/ai.atom", headers={"If-Modified-Since": before["/topics/ai.atom"]})
    assert response.status_code == 200  # a deletion is a change, even for date-only pollers
    updated = feedparser.parse(response.data).feed.updated
    assert updated == tombstones(response.data)[LINK.format(1)]
    for fmt in ("rss", "json"):  # (no tombstones there: neither format has them)
        assert b"deleted-entry" not in site.get(f"/topics/ai.{fmt}").data


def test_unpublishing_leaves_one_and_publishing_again_takes_it_back(site) -> None:
    seeds = site.loader.seeds
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI"], published=False))
    bump_mtime(seeds / "b.md")
    site.reload()
    assert list(tombstones(site.get("/topics/ai.atom").data)) == [LINK.format(2)]
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI"]))
    bump_mtime(seeds / "b.md")
    site.reload()
    body = site.get("/topics/ai.atom").data
    assert tombstones(body) == {} and LINK.format(2) in [i.id for i in read_feed(body, "atom")[1]]


def test_an_article_that_only_leaves_a_feed_leaves_no_tombstone(site) -> None:
    seeds = site.loader.seeds
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))  # no longer Robots
    shutil.move(seeds / "c.md", seeds / "renamed.md")  # a rename deletes nothing
    bump_mtime(seeds / "a.md")
    site.reload()
    for path in ("/topics/ai.atom", "/feeds/robots.atom", "/feeds/all.atom"):
        assert tombstones(site.get(path).data) == {}, path
    assert site.get("/topics/robots.atom").status_code == 404  # left by an edit: just gone


def test_a_topic_whose_last_article_is_deleted_answers_empty_then_410(
    seeds: Path,
    tmp_path: Path,
    live_server_factory,
    hub,  # noqa: F811
) -> None:
    """On a real server whose interval is an hour: the loader's own schedule ends it."""
    corpus(seeds)
    retention = 6
    config = write_config(
        tmp_path / "feeds.yaml",
        reload_interval=1,
        tombstone_retention=retention,
        websub_hub=hub.url,
    )
    server = live_server_factory(seeds, config, workers=2)
    pinged = len(hub.urls())
    (seeds / "c.md").unlink()  # Vision's only article
    wait_for(lambda: tombstones(server.get("/topics/vision.atom")[2]), "the tombstone", 10)
    deleted = time.time()
    write_config(config, reload_interval=3600, tombstone_retention=retention, websub_hub=hub.url)
    for fmt in ("atom", "rss", "json"):  # a valid empty feed, for every worker
        for _ in range(4):
            status, _, body = server.get(f"/topics/vision.{fmt}")
            assert status == 200 and read_feed(body, fmt)[1] == []
    assert server.get("/topics/vision/")[0] == 200
    urls = hub.wait_for(pinged + 1)[pinged:]
    assert f"{server.url}/topics/vision.atom" in urls and f"{server.url}/topics/ai.atom" in urls
    wait_for(lambda: server.get("/topics/vision.atom")[0] == 410, "410 Gone", retention + 10)
    assert time.time() - deleted <= retention + 3
    assert server.get("/topics/vision/")[0] == 410 and server.get("/topics/nothing.atom")[0] == 404
    assert tombstones(server.get("/topics/ai.atom")[2]) == {}  # kept for the retention only


def test_tombstones_survive_a_restart(seeds: Path, tmp_path: Path, site_factory) -> None:
    from conftest import make_site

    corpus(seeds)
    config = write_config(tmp_path / "feeds.yaml", base_url="http://feeds.test")
    first = make_site(seeds, config, tmp_path / "state")
    first.store.close()
    (seeds / "b.md").unlink()  # while the service is down
    again = make_site(seeds, config, tmp_path / "state")
    assert list(tombstones(again.get("/topics/ai.atom").data)) == [LINK.format(2)]
    again.store.close()
    third = make_site(seeds, config, tmp_path / "state")
    assert list(tombstones(third.get("/topics/ai.atom").data)) == [LINK.format(2)]


def test_a_retired_topic_comes_back_with_a_new_article(site) -> None:
    (site.loader.seeds / "c.md").unlink()
    site.reload()
    body = site.get("/topics/vision.atom").data
    assert list(tombstones(body)) == [LINK.format(3)] and read_feed(body, "atom")[1] == []
    assert b"/topics/vision" not in site.get("/topics.opml").data  # not listed while empty
    write_seed(site.loader.seeds, "d.md", **article_fields(4, topics=["Vision"]))
    site.reload()
    body = site.get("/topics/vision.atom").data
    assert [item.id for item in read_feed(body, "atom")[1]] == [LINK.format(4)]
    assert list(tombstones(body)) == [LINK.format(3)]  # (still within its retention)
