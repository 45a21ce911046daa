"""Scheduled publishing and expiry (issue 18): an article dated in the future is in no
feed, page or count until its time, and then appears within a second (the loader's one
date job, not the next interval), with a hub ping; `future: publish` serves it at once
but never dates a feed later than now; Hugo's `expiryDate` takes an article out the
same way. Through the real loader, a real server, feedparser and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
from conftest import REPO, article_fields, wait_for, write_config, write_seed
from consumers import read_feed
from lxml import etree
from test_websub import hub  # noqa: F401  (the hub stand-in fixture)

from feedservice.runtime import scheduler

TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
FAR = "2099-01-01T00:00:00Z"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids(body: bytes, fmt: str = "atom") -> list[str]:
    return [item.id for item in read_feed(body, fmt)[1]]


def scheduled_site(seeds: Path, tmp_path: Path, site_factory, **config):
    write_seed(seeds, "old.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "later.md", **article_fields(2, topics=["AI", "Moon"], publishedDateTime=FAR))
    path = write_config(tmp_path / "feeds.yaml", base_url="http://feeds.test", **config)
    return site_factory(seeds, path), path


def test_a_future_article_is_in_no_feed_page_or_count(seeds, tmp_path, site_factory) -> None:
    site, _ = scheduled_site(seeds, tmp_path, site_factory)
    for fmt in ("rss", "atom", "json"):
        for path in ("/topics/ai", "/feeds/all"):
            assert ids(site.get(f"{path}.{fmt}").data, fmt) == ["https://example.com/articles/1"]
    assert site.get("/topics/moon.atom").status_code == 404  # its only topic: no feed yet
    assert b"Article number 2" not in site.get("/topics/ai/").data
    assert b"/topics/moon" not in site.get("/feeds.opml").data + site.get("/").data
    health = site.get("/healthz").get_json()
    assert health["articles"] == 1 and health["topics"] == 1
    assert health["scheduled"] == {"count": 1, "next": FAR}
    # Nothing is pinned to the future: feed dates and Last-Modified are the published ones.
    response = site.get("/topics/ai.rss")
    build = etree.fromstring(response.data).findtext("channel/lastBuildDate")
    assert parsedate_to_datetime(build) == datetime(2021, 3, 2, 1, tzinfo=UTC)
    assert parsedate_to_datetime(response.headers["Last-Modified"]) <= datetime.now(UTC)
    atom = feedparser.parse(site.get("/feeds/all.atom").data)
    assert atom.feed.updated.startswith("2021-03-02T01:00:00")


def test_check_and_explain_say_when(seeds, tmp_path, site_factory) -> None:
    _, config = scheduled_site(seeds, tmp_path, site_factory)
    common = ["--seeds", str(seeds), "--config", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "check", *common],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert f"{seeds}/later.md: publishedDateTime: scheduled for {FAR}" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        "checked 2 files: 1 articles published, 1 scheduled, 0 drafts, 0 errors"
    )
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "explain", *common, "--format", "json", "later.md"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    (item,) = json.loads(result.stdout)["files"]
    assert result.returncode == 1 and item["status"] == "scheduled"
    assert item["reason"] == f"scheduled for {FAR}: in no feed until then"


def test_future_publish_serves_at_once_but_never_dates_a_feed_later_than_now(
    seeds, tmp_path, site_factory
) -> None:
    site, _ = scheduled_site(seeds, tmp_path, site_factory, future="publish")
    now = datetime.now(UTC) + timedelta(seconds=1)
    for fmt in ("rss", "atom", "json"):
        assert ids(site.get(f"/topics/ai.{fmt}").data, fmt)[0] == "https://example.com/articles/2"
    for path in ("/topics/ai.rss", "/topics/ai.atom", "/topics/moon.json", "/", "/feeds.opml"):
        response = site.get(path)
        assert parsedate_to_datetime(response.headers["Last-Modified"]) <= now, path
    rss = etree.fromstring(site.get("/topics/ai.rss").data)
    assert parsedate_to_datetime(rss.findtext("channel/lastBuildDate")) <= now
    atom = feedparser.parse(site.get("/topics/ai.atom").data)
    assert datetime.fromisoformat(atom.feed.updated) <= now
    assert datetime.fromisoformat(atom.entries[0].updated) <= now  # (its published: 2099)


def test_a_scheduled_article_appears_within_a_second_of_its_time_and_pings_the_hub(
    live_server_factory,
    seeds: Path,
    tmp_path: Path,
    hub,  # noqa: F811
) -> None:
    """The interval is an hour: only the loader's date job can publish it in time."""
    config = write_config(tmp_path / "feeds.yaml", reload_interval=3600, websub_hub=hub.url)
    write_seed(seeds, "old.md", **article_fields(1))
    due = math.ceil(time.time()) + 8  # (whole seconds: the seed's resolution)
    write_seed(seeds, "due.md", **article_fields(2, publishedDateTime=iso(due)))
    server = live_server_factory(seeds, config)
    assert time.time() < due - 1, "the server took too long to start for this test"
    assert server.health()["scheduled"] == {"count": 1, "next": iso(due)}
    pinged = len(hub.urls())

    def served() -> bool:
        return "https://example.com/articles/2" in ids(server.get("/topics/ai.atom")[2])

    assert not served()
    wait_for(served, "the scheduled article", timeout=due - time.time() + 10)
    late = time.time() - due
    assert 0 <= late <= 2.0, f"served {late:.2f} s after its time"  # (≤ 1 s, on a quiet machine)
    assert server.health()["scheduled"] == {"count": 0, "next": None}
    urls = hub.wait_for(pinged + 9)[pinged:]  # all, ai and example.com, in 3 formats each
    assert f"{server.url}/topics/ai.atom" in urls and f"{server.url}/feeds/all.rss" in urls


def test_an_expired_article_leaves_at_its_time(seeds, tmp_path, site_factory) -> None:
    """Hugo's expiryDate, on the loader's own schedule (the interval is an hour)."""
    write_seed(seeds, "stays.md", **article_fields(1))
    expiry = math.ceil(time.time()) + 3
    write_seed(seeds, "goes.md", **article_fields(2, expiryDate=iso(expiry)))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=3600)
    site = site_factory(seeds, config)
    assert len(ids(site.get("/topics/ai.atom").data)) == 2
    running = scheduler.start(site.loader)
    try:
        wait_for(lambda: len(ids(site.get("/topics/ai.atom").data)) == 1, "the expiry", 10)
        assert time.time() - expiry <= 2.0
    finally:
        running.shutdown(wait=True)
    body = site.get("/topics/ai.atom").data
    (gone,) = etree.fromstring(body).iter(TOMBSTONE)  # expired: deleted, as readers see it
    assert gone.get("ref") == "https://example.com/articles/2"
    explained = site.loader.catalog.expired
    assert set(explained) == {"goes.md"}
