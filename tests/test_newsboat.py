"""A real feed reader: newsboat subscribes to our feeds over loopback.

The server serves the real-world corpus plus the bundled seeds. newsboat keeps
one row per GUID across its whole cache, so an article that sits in ten feeds is
stored once; to compare each feed with the catalog, every feed gets a cache of
its own, and one shared cache checks the union. newsboat exits 0 even when a
feed fails, so its log (`-d log -l 4`) is read for USERERROR and ERROR lines.
The truth is the catalog built in-process from the same files and config.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, bump_mtime, realworld_and_samples, start_server

from feedservice.catalog import CONFIGURED_KIND, TOPIC_KIND, Catalog, SeedStore, build_catalog
from feedservice.config import load_config
from feedservice.feeds import FeedPage

NEWSBOAT = shutil.which("newsboat")
RELOAD_ARGS = (
    "-u",
    "urls",
    "-c",
    "cache.db",
    "-C",
    "config",
    "-x",
    "reload",
    "-d",
    "log",
    "-l",
    "4",
)
pytestmark = pytest.mark.skipif(
    NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)"
)


@dataclass
class Reader:
    """One newsboat cache, its log, and the feeds it subscribes to."""

    directory: Path
    urls: list[str]

    def reload(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "home").mkdir(exist_ok=True)
        (self.directory / "urls").write_text("".join(url + "\n" for url in self.urls))
        (self.directory / "config").write_text("reload-threads 4\nmax-items 0\n")
        log = self.directory / "log"
        log.unlink(missing_ok=True)
        result = subprocess.run(
            [NEWSBOAT, *RELOAD_ARGS],
            cwd=self.directory,
            env={**os.environ, "HOME": str(self.directory / "home")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        problems = [
            line
            for line in (log.read_text() if log.exists() else "").splitlines()
            if "USERERROR" in line or "ERROR:" in line
        ]
        assert problems == [], problems

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.directory / "cache.db") as db:
            return db.execute(sql, args).fetchall()


def make_site(tmp: Path) -> tuple[Path, Path]:
    """A copy of realworld + bundled seeds (so a test may edit it) and the shipped config."""
    seeds = realworld_and_samples(tmp)
    config = yaml.safe_load((REPO / "config" / "feeds.yaml").read_text())
    config["reload_interval"] = 1
    path = tmp / "feeds.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return seeds, path


def catalog_for(seeds: Path, config: Path, base_url: str) -> Catalog:
    store = SeedStore(seeds, workers=1)
    store.refresh()
    return build_catalog(
        store.articles(), load_config(config, environ={"FEEDSERVICE_BASE_URL": base_url})
    )


def pages(catalog: Catalog) -> list[FeedPage]:
    feeds = catalog.feeds_of(CONFIGURED_KIND) + catalog.feeds_of(TOPIC_KIND)
    return [FeedPage(feed, 1, catalog.config) for feed in feeds]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("newsboat")
    seeds, config = make_site(tmp)
    server = start_server(seeds, config, tmp)
    yield catalog_for(seeds, config, server.url), tmp
    server.stop()


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_each_feed_matches_the_catalog(site: Any, fmt: str) -> None:
    catalog, tmp = site
    checked = 0
    for page in pages(catalog):
        url = page.url(fmt)
        reader = Reader(tmp / fmt / page.feed.kind / page.feed.name, [url])
        reader.reload()
        assert reader.rows("SELECT rssurl, url, title FROM rss_feed") == [
            (url, page.html_url, page.title)
        ]
        items = reader.rows(
            "SELECT guid, title, url, pubDate FROM rss_item WHERE feedurl = ? ORDER BY pubDate",
            url,
        )
        expected = [(a.identity, a.title, a.link, int(a.published.timestamp())) for a in page.items]
        assert sorted(items) == sorted(expected), url
        assert len(items) == len(page.feed.page(1))
        checked += 1
    assert checked == len(catalog.feeds) >= 10


def test_one_cache_with_every_feed(site: Any) -> None:
    catalog, tmp = site
    urls = [page.url(fmt) for page in pages(catalog) for fmt in ("rss", "atom")]
    reader = Reader(tmp / "everything", urls)
    reader.reload()
    assert sorted(row[0] for row in reader.rows("SELECT rssurl FROM rss_feed")) == sorted(urls)
    guids = [row[0] for row in reader.rows("SELECT guid FROM rss_item")]
    assert len(guids) == len(set(guids))
    shown = {article.identity for page in pages(catalog) for article in page.items}
    assert set(guids) == shown == {article.identity for article in catalog.articles}


def test_no_duplicates_after_a_seed_edit(tmp_path: Path) -> None:
    seeds, config = make_site(tmp_path)
    server = start_server(seeds, config, tmp_path)
    try:
        catalog = catalog_for(seeds, config, server.url)
        victim = next(a for a in catalog.articles if a.source.startswith("bundled/"))
        watched = [
            page for page in pages(catalog) if victim.identity in {a.identity for a in page.items}
        ]
        assert len(watched) >= 3  # all, a configured feed and its topics
        readers = [
            Reader(tmp_path / "nb" / fmt / page.feed.kind / page.feed.name, [page.url(fmt)])
            for page in watched
            for fmt in ("rss", "atom")
        ]
        together = Reader(tmp_path / "nb" / "together", [r.urls[0] for r in readers])
        for reader in [*readers, together]:
            reader.reload()
        before = {id(r): r.rows("SELECT count(*) FROM rss_item")[0][0] for r in readers}

        path = seeds / victim.source
        text = path.read_text(encoding="utf-8")
        old_line = next(line for line in text.splitlines() if line.startswith("title:"))
        path.write_text(text.replace(old_line, 'title: "Edited: a new title"'), encoding="utf-8")
        bump_mtime(path)
        generation = server.health()["generation"]
        deadline = time.monotonic() + 30
        while server.health()["generation"] <= generation + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, _, body = server.get("/feeds/all.json")
        assert status == 200 and b"Edited: a new title" in body

        for reader in [*readers, together]:
            reader.reload()
            guids = [row[0] for row in reader.rows("SELECT guid FROM rss_item")]
            assert len(guids) == len(set(guids)), f"duplicate items in {reader.urls}"
            titles = reader.rows("SELECT title FROM rss_item WHERE guid = ?", victim.identity)
            assert titles == [("Edited: a new title",)], reader.urls
        for reader in readers:
            assert reader.rows("SELECT count(*) FROM rss_item")[0][0] == before[id(reader)]
    finally:
        server.stop()
